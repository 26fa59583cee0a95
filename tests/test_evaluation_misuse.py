"""Bad input to notebook 09's helpers (evaluating a policy, win rates, distinct-n), RAFT's step and the loaders
of the runs notebook 09 adds (weaker reward models, IPO, RAFT): a clear error at the door, naming the argument,
nothing changed. ``test_misuse.py`` checks that every public function has a case here or elsewhere."""

import functools
import hashlib

import pytest
import torch

from course_utils import evaluation, raft, runs
from course_utils.data import format_prompt
from course_utils.judge import Judge
from course_utils.profiles import get_profile
from misuse import Case, lm, tiny

PROMPT = format_prompt("Write a movie review.")
SMOKE = get_profile("smoke")


def tok():
    return tiny()[1]


@functools.cache
def judge():
    return Judge.load()


@functools.cache
def rm():
    from course_utils.reward_model import reward_model_from_policy
    return reward_model_from_policy(tiny()[0])


def state():
    h = hashlib.sha256()
    for p in lm().state_dict().values():
        h.update(p.detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return lm().training, h.hexdigest()


def evaluate(**kwargs):
    args = dict(model=lm(), reference=tiny()[0], tokenizer=tok(), judge=judge(), domains=["movie", "tweet"],
                max_new_tokens=4)
    return evaluation.evaluate_policy(**{**args, **kwargs})


CASES = [
    Case("evaluation.win_rate", lambda: evaluation.win_rate([1.0, 2.0, 3.0], [1.0, 2.0]), ValueError, "paired"),
    Case("evaluation.win_rate", lambda: evaluation.win_rate([1.0, float("nan")], [0.0, 0.0]), ValueError, "scores"),
    Case("evaluation.win_rate", lambda: evaluation.win_rate(["a", "b"], [0.0, 0.0]), TypeError, "scores"),
    Case("evaluation.win_rate", lambda: evaluation.win_rate([1.0, 2.0], [0.0, 0.0], level=95), ValueError, "level"),
    Case("evaluation.distinct_n", lambda: evaluation.distinct_n("one response"), TypeError, "responses"),
    Case("evaluation.distinct_n", lambda: evaluation.distinct_n(["a b", 3]), TypeError, "responses"),
    Case("evaluation.distinct_n", lambda: evaluation.distinct_n(["a b"], n=0), ValueError, r"\bn\b"),
    Case("evaluation.evaluate_policy", lambda: evaluate(judge="judge"), TypeError, "judge", unchanged=state),
    Case("evaluation.evaluate_policy", lambda: evaluate(domains=["movie", "poem"]), ValueError, "domains.*poem",
         unchanged=state),
    Case("evaluation.evaluate_policy", lambda: evaluate(domains="movie"), TypeError, "domains", unchanged=state),
    Case("evaluation.evaluate_policy", lambda: evaluate(reference=None), TypeError, "reference", unchanged=state),
    Case("evaluation.evaluate_policy", lambda: evaluate(max_new_tokens=0), ValueError, "max_new_tokens",
         unchanged=state),
    Case("evaluation.evaluate_policy", lambda: evaluate(reward_model="proxy"), TypeError, "reward_model",
         unchanged=state),
    Case("raft.raft_step", lambda: raft.raft_step(lm(), rm(), tok(), PROMPT), TypeError, "prompts",
         unchanged=state),
    Case("raft.raft_step", lambda: raft.raft_step(lm(), rm(), tok(), [PROMPT, " "]), ValueError, "prompts",
         unchanged=state),
    Case("raft.raft_step", lambda: raft.raft_step(lm(), rm(), tok(), [PROMPT], samples_per_prompt=0), ValueError,
         "samples_per_prompt", unchanged=state),
    Case("raft.raft_step", lambda: raft.raft_step(lm(), "reward model", tok(), [PROMPT]), TypeError, "reward_model",
         unchanged=state),
    Case("raft.raft_step", lambda: raft.raft_step(lm(), rm(), tok(), [PROMPT], lr=0.0), ValueError, "lr",
         unchanged=state),
    Case("runs.raft_recipe", lambda: runs.raft_recipe("cpu"), TypeError, "profile"),
    Case("runs.raft_policy", lambda: runs.raft_policy(SMOKE, "09", policy=lm(), tokenizer=tok()), ValueError,
         "together", unchanged=state),
    Case("runs.raft_policy", lambda: runs.raft_policy(SMOKE, "09", history=1), TypeError, "history"),
    Case("runs.raft_policy", lambda: runs.raft_policy(SMOKE, "../03"), ValueError, "notebook"),
    Case("runs.reward_recipe", lambda: runs.reward_recipe(SMOKE, tok(), steps=0), ValueError, "steps"),
    Case("runs.reward_model", lambda: runs.reward_model(SMOKE, "09", steps=2.5), TypeError, "steps"),
    Case("runs.reward_model", lambda: runs.reward_model("smoke", "09", steps=20), TypeError, "profile"),
    Case("runs.dpo_recipe", lambda: runs.dpo_recipe(SMOKE, tok(), loss_type="robust"), ValueError, "loss_type"),
    Case("runs.dpo_policy", lambda: runs.dpo_policy(SMOKE, "09", loss_type="orpo"), ValueError, "loss_type"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id or f"{c.target}: {c.names[:30]}")
def test_misuse(case):
    case.run()
