"""Bad input to the ORPO helpers (log1mexp, log-odds, the odds-ratio term, the loss, its metrics, the step), to
notebook 08's recipe and to the step costs it measures (``costs``): a clear error at the door, naming the argument, nothing changed. ``test_misuse.py`` checks
that every public function has a case here or elsewhere."""

import functools

import pytest
import torch

from course_utils import costs, orpo, runs
from course_utils.batching import collate_preference, encode_preference
from course_utils.data import format_prompt
from course_utils.profiles import get_profile
from misuse import Case, lm, model_state, tiny

PROMPT = format_prompt("Write a movie review.")
LOGPS = [torch.tensor([-3.0, -4.0]), torch.tensor([-3.5, -2.0])]


@functools.cache
def batch():
    rows = [encode_preference(tiny()[1], PROMPT, " Great fun.", " Boring.", 64)]
    return collate_preference(rows, tiny()[1].pad_token_id)


def without(key):
    return {k: v for k, v in batch().items() if k != key}


CASES = [
    Case("orpo.log1mexp", lambda: orpo.log1mexp(torch.tensor([-1.0, 0.5])), ValueError, r"\bx\b.*<= 0"),
    Case("orpo.log1mexp", lambda: orpo.log1mexp(torch.tensor([-1, -2])), TypeError, r"\bx\b"),
    Case("orpo.log1mexp", lambda: orpo.log1mexp(-0.5), TypeError, r"\bx\b"),
    Case("orpo.log_odds", lambda: orpo.log_odds(torch.tensor([-1.0, 2.0])), ValueError, "logps.*<= 0"),
    Case("orpo.log_odds", lambda: orpo.log_odds(torch.zeros(2, 3) - 1), ValueError, "logps"),
    Case("orpo.log_odds_ratio", lambda: orpo.log_odds_ratio(LOGPS[0], torch.tensor([-1.0])), ValueError,
         "rejected_logps"),
    Case("orpo.odds_ratio_loss", lambda: orpo.odds_ratio_loss(torch.tensor([float("nan"), -1.0]), LOGPS[1]),
         ValueError, "chosen_logps.*NaN"),
    Case("orpo.odds_ratio_loss", lambda: orpo.odds_ratio_loss([-1.0], LOGPS[1]), TypeError, "chosen_logps"),
    Case("orpo.orpo_loss", lambda: orpo.orpo_loss(*LOGPS, lam=-1.0), ValueError, "lam"),
    Case("orpo.orpo_loss", lambda: orpo.orpo_loss(*LOGPS, lam="0.1"), TypeError, "lam"),
    Case("orpo.orpo_loss", lambda: orpo.orpo_loss(torch.tensor([3.0, 1.0]), LOGPS[1]), ValueError,
         "chosen_logps.*<= 0"),
    Case("orpo.orpo_metrics", lambda: orpo.orpo_metrics(LOGPS[0], torch.tensor([-1, -2])), TypeError,
         "rejected_logps"),
    Case("orpo.orpo_step", lambda: orpo.orpo_step(lm(), without("rejected_completion_mask")), ValueError,
         "rejected_completion_mask", unchanged=lambda: model_state(lm())),
    Case("orpo.orpo_step", lambda: orpo.orpo_step(lm(), batch(), lam=float("inf")), ValueError, "lam",
         unchanged=lambda: model_state(lm())),
    Case("orpo.orpo_step", lambda: orpo.orpo_step(lm().state_dict(), batch()), TypeError, "model"),
    Case("orpo.orpo_objective", lambda: orpo.orpo_objective(-0.5), ValueError, "lam"),
    Case("runs.encoded_pairs", lambda: runs.encoded_pairs("cpu", tiny()[1]), TypeError, "profile"),
    Case("runs.encoded_pairs", lambda: runs.encoded_pairs(get_profile("smoke"), lm()), TypeError, "tokenizer",
         unchanged=lambda: model_state(lm())),
    Case("runs.orpo_recipe", lambda: runs.orpo_recipe(get_profile("smoke"), None), TypeError, "tokenizer"),
    Case("runs.orpo_policy", lambda: runs.orpo_policy(get_profile("smoke"), "09", policy=lm()), ValueError,
         "policy and tokenizer", unchanged=lambda: model_state(lm())),
    Case("runs.orpo_policy", lambda: runs.orpo_policy(get_profile("smoke"), "../09"), ValueError, "notebook"),
    Case("runs.orpo_policy", lambda: runs.orpo_policy(get_profile("smoke"), "09", "base", tiny()[1]), TypeError,
         "policy"),
    Case("runs.sft_policy", lambda: runs.sft_policy(get_profile("smoke"), "09", history=1), TypeError, "history"),
    Case("costs.activation_bytes", lambda: costs.activation_bytes("orpo", lm(), batch()), TypeError, "loss_fn",
         unchanged=lambda: model_state(lm())),
    Case("costs.activation_bytes", lambda: costs.activation_bytes(orpo.orpo_step, lm(), [batch()]), TypeError,
         "batch", unchanged=lambda: model_state(lm())),
    Case("costs.activation_bytes", lambda: costs.activation_bytes(orpo.orpo_step, None, batch()), TypeError,
         "model"),
    Case("costs.training_state_bytes", lambda: costs.training_state_bytes(lm().state_dict()), TypeError, "model"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
