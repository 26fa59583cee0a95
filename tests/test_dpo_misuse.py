"""Bad input to the DPO helpers (losses, metrics, reference log-probs, the step) and to the toy bandit of
notebook 06: a clear error at the door, naming the argument, nothing changed. ``test_misuse.py`` checks that
every public function has a case here or elsewhere."""

import functools

import numpy as np
import pytest
import torch

from course_utils import bandit, dpo, runs
from course_utils.batching import encode_preference
from course_utils.data import format_prompt
from course_utils.profiles import get_profile
from misuse import Case, lm, model_state, tiny

PROMPT = format_prompt("Write a movie review.")
LOGPS = [torch.tensor([-3.0, -4.0])] * 4
PI_REF, REWARD = [0.5, 0.3, 0.2], [0.0, 1.0, 2.0]


@functools.cache
def rows():
    return [encode_preference(tiny()[1], PROMPT, " Great fun.", " Boring.", 64)]


def batch(**drop):
    with_ref = [dict(r, ref_chosen_logps=-10.0, ref_rejected_logps=-12.0) for r in rows()]
    return {k: v for k, v in dpo.collate_dpo(with_ref, tiny()[1].pad_token_id).items() if k not in drop}


CASES = [
    Case("dpo.dpo_loss", lambda: dpo.dpo_loss(*LOGPS[:3], torch.zeros(3)), ValueError, "ref_rejected_logps"),
    Case("dpo.dpo_loss", lambda: dpo.dpo_loss(*LOGPS, beta=-0.1), ValueError, "beta"),
    Case("dpo.dpo_loss", lambda: dpo.dpo_loss([-3.0], *LOGPS[1:]), TypeError, "policy_chosen_logps"),
    Case("dpo.conservative_dpo_loss", lambda: dpo.conservative_dpo_loss(*LOGPS, epsilon=0.7), ValueError, "epsilon"),
    Case("dpo.robust_dpo_loss", lambda: dpo.robust_dpo_loss(*LOGPS, epsilon=0.5), ValueError, "epsilon"),
    Case("dpo.robust_dpo_loss", lambda: dpo.robust_dpo_loss(torch.tensor([float("nan")] * 2), *LOGPS[1:]),
         ValueError, "policy_chosen_logps.*NaN"),
    Case("dpo.ipo_loss", lambda: dpo.ipo_loss(*LOGPS, tau=0), ValueError, "tau"),
    Case("dpo.ipo_loss", lambda: dpo.ipo_loss(*LOGPS, chosen_lengths=torch.tensor([3, 4])), ValueError,
         "rejected_lengths"),
    Case("dpo.ipo_loss", lambda: dpo.ipo_loss(*LOGPS, chosen_lengths=torch.tensor([3, 0]),
                                              rejected_lengths=torch.tensor([3, 4])), ValueError, "chosen_lengths"),
    Case("dpo.preference_metrics", lambda: dpo.preference_metrics(*LOGPS[:2], torch.zeros(2, 1), LOGPS[3]),
         ValueError, "ref_chosen_logps"),
    Case("dpo.add_reference_logprobs", lambda: dpo.add_reference_logprobs(lm(), rows()[0], 1), TypeError, "rows",
         unchanged=lambda: model_state(lm())),
    Case("dpo.add_reference_logprobs", lambda: dpo.add_reference_logprobs(lm(), rows(), None), ValueError,
         "pad_token_id", unchanged=lambda: model_state(lm())),
    Case("dpo.add_reference_logprobs",
         lambda: dpo.add_reference_logprobs(lm(), [{"input_ids": [1, 2], "completion_mask": [0, 1]}], 1),
         ValueError, "chosen_input_ids", unchanged=lambda: model_state(lm())),
    Case("dpo.add_reference_logprobs", lambda: dpo.add_reference_logprobs("model", rows(), 1), TypeError,
         "reference"),
    Case("dpo.collate_dpo", lambda: dpo.collate_dpo(rows(), 1), ValueError, "ref_chosen_logps"),
    Case("dpo.collate_dpo", lambda: dpo.collate_dpo(rows()[0], 1), TypeError, "rows"),
    Case("dpo.dpo_step", lambda: dpo.dpo_step(lm(), batch(ref_rejected_logps=True)), ValueError,
         "ref_rejected_logps", unchanged=lambda: model_state(lm())),
    Case("dpo.dpo_step", lambda: dpo.dpo_step(lm(), batch(), "sigmoid", 0.1, 0.1), ValueError, "epsilon",
         unchanged=lambda: model_state(lm())),
    Case("dpo.dpo_step", lambda: dpo.dpo_step(lm(), batch(), "kto"), ValueError, "loss_type",
         unchanged=lambda: model_state(lm())),
    Case("dpo.dpo_objective", lambda: dpo.dpo_objective("ipo", beta=0), ValueError, "beta"),
    Case("dpo.dpo_objective", lambda: dpo.dpo_objective("robust", epsilon=0.6), ValueError, "epsilon"),
    Case("dpo.without_dropout", lambda: dpo.without_dropout(lm().state_dict()), TypeError, "model",
         unchanged=lambda: model_state(lm())),
    Case("runs.dpo_pairs", lambda: runs.dpo_pairs(get_profile("smoke"), None, lm()), TypeError, "tokenizer",
         unchanged=lambda: model_state(lm())),
    Case("runs.dpo_pairs", lambda: runs.dpo_pairs(get_profile("smoke"), tiny()[1], "sft"), TypeError, "reference"),
    Case("runs.dpo_recipe", lambda: runs.dpo_recipe("cpu", tiny()[1]), TypeError, "profile"),
    Case("runs.dpo_policy", lambda: runs.dpo_policy(get_profile("smoke"), "08", policy=lm()), ValueError,
         "policy and tokenizer", unchanged=lambda: model_state(lm())),
    Case("runs.dpo_policy", lambda: runs.dpo_policy(get_profile("smoke"), "../08"), ValueError, "notebook"),
    # the bandit
    Case("bandit.log_partition", lambda: bandit.log_partition([0.5, 0.6], [0, 1], 1.0), ValueError, "pi_ref"),
    Case("bandit.optimal_policy", lambda: bandit.optimal_policy(PI_REF, [0.0, 1.0], 1.0), ValueError, "reward"),
    Case("bandit.optimal_policy", lambda: bandit.optimal_policy(PI_REF, REWARD, 0.0), ValueError, "beta"),
    Case("bandit.objective", lambda: bandit.objective([0.5, 0.5], PI_REF, REWARD, 1.0), ValueError, r"\bpi\b"),
    Case("bandit.objective", lambda: bandit.objective(PI_REF, PI_REF, ["a", "b", "c"], 1.0), TypeError, "reward"),
    Case("bandit.implicit_reward", lambda: bandit.implicit_reward([1.0, 0.0, 0.0], PI_REF, 1.0), ValueError,
         r"\bpi\b"),
    Case("bandit.sample_preferences", lambda: bandit.sample_preferences(PI_REF, REWARD, 0), ValueError, r"\bn\b"),
    Case("bandit.sample_preferences", lambda: bandit.sample_preferences("uniform", REWARD, 5), TypeError, "policy"),
    Case("bandit.train_tabular_policy", lambda: bandit.train_tabular_policy(np.array([[0, 0]]), PI_REF, 1.0),
         ValueError, "pairs"),
    Case("bandit.train_tabular_policy", lambda: bandit.train_tabular_policy(np.array([[0, 1]]), PI_REF, 1.0,
                                                                            objective="ppo"), ValueError, "objective"),
    Case("bandit.train_tabular_policy", lambda: bandit.train_tabular_policy(np.array([[0, 1]]), PI_REF, 1.0,
                                                                            lr=float("inf")), ValueError, "lr"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
