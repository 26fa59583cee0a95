"""Bad input to notebook 10's helpers (verifiable tasks, GRPO's step, pass@k, pass counts): a
clear error at the door, naming the argument."""

import copy

import pytest

from course_utils import grpo, verifiers
from course_utils.verifiers import Constraint, Task
from misuse import Case, lm, model_state, tiny

TASK = Task("movie", (Constraint("max_words", 8),))


def _policy():
    return tiny()[0]


CASES = [
    Case("verifiers.words", lambda: verifiers.words(None), TypeError, "text"),
    Case("verifiers.meets", lambda: verifiers.meets("max_words", "hi"), TypeError, "constraint"),
    Case("verifiers.meets", lambda: verifiers.meets(TASK.constraints[0], 3), TypeError, "text"),
    Case("verifiers.verify", lambda: verifiers.verify(TASK, b"hi"), TypeError, "text"),
    Case("verifiers.verify_loose", lambda: verifiers.verify_loose(TASK.prompt, "hi"), TypeError, "task"),
    Case("verifiers.partial_credit", lambda: verifiers.partial_credit(TASK, 1.0), TypeError, "text"),
    Case("verifiers.task_from_prompt", lambda: verifiers.task_from_prompt(""), ValueError, "prompt"),
    Case("verifiers.task_from_prompt", lambda: verifiers.task_from_prompt("Write a poem."), ValueError, "prompt"),
    Case("verifiers.reward_function", lambda: verifiers.reward_function("judge"), ValueError, "verifier"),
    Case("verifiers.make_tasks", lambda: verifiers.make_tasks(-1), ValueError, "n"),
    Case("verifiers.make_tasks", lambda: verifiers.make_tasks(4, families=["rhyme"]), ValueError, "families"),
    Case("grpo.pass_at_k", lambda: grpo.pass_at_k(8, 9, 1), ValueError, "c <= n"),
    Case("grpo.pass_at_k_curve", lambda: grpo.pass_at_k_curve([], 8, [1]), ValueError, "counts"),
    Case("grpo.pass_at_k_curve", lambda: grpo.pass_at_k_curve([1, 2], 8, "1"), TypeError, "ks"),
    Case("grpo.pass_counts", lambda: grpo.pass_counts(_policy(), tiny()[1], [TASK], verifiers.verify, n=0),
         ValueError, "n", unchanged=lambda: model_state(_policy())),
    Case("grpo.pass_counts", lambda: grpo.pass_counts(_policy(), tiny()[1], TASK, verifiers.verify), TypeError,
         "tasks"),
    Case("grpo.grpo_step", lambda: grpo.grpo_step(lm(), copy.deepcopy(lm()), tiny()[1], verifiers.reward_function(),
                                                  beta=-1.0), ValueError, "beta"),
    Case("grpo.grpo_step", lambda: grpo.grpo_step(lm(), copy.deepcopy(lm()), tiny()[1], verifiers.reward_function(),
                                                  dynamic_sampling="yes"), TypeError, "dynamic_sampling"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.target}: {c.names}" for c in CASES])
def test_misuse(case):
    case.run()
