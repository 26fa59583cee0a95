"""ORPO, odds ratio preference optimisation (Hong et al. 2024), as plain functions of mean log-probabilities.

ORPO folds preference learning into supervised fine-tuning: one stage, from the base model, with no reference
model. Its likelihood of a response is the geometric mean of the token probabilities (the paper's eq. 4),

    log P_θ(y|x) = (1/|y|) Σ_t log π_θ(y_t | x, y_<t)       (``sequence_logprobs(..., average=True)``),

its odds are odds_θ(y|x) = P_θ(y|x) / (1 - P_θ(y|x)) (eq. 5), and the loss of a pair (x, y_w, y_l) is

    L_ORPO = L_SFT + λ · L_OR                                                         (eq. 6)
    L_SFT  = -log P_θ(y_w|x)        the chosen response's mean token NLL (response tokens only)
    L_OR   = -log σ( log [odds_θ(y_w|x) / odds_θ(y_l|x)] )                              (eq. 7)

L_SFT teaches the chosen responses as SFT would; L_OR widens the gap between the chosen and the rejected
response's odds. Nothing is compared to a reference: the NLL term keeps the policy on the data, which is the
part a reference model plays in DPO. The log-odds are computed from log P without leaving log space:

    log odds = log P - log(1 - P) = log P - log1mexp(log P),   log1mexp(a) = log(1 - exp(a)), a < 0,

stable at both ends (``log1mexp``). On identical token ids, TRL's ``ORPOTrainer`` (trl 1.16,
``trl.experimental.orpo``) computes the same log-odds and OR term (its ``beta`` is λ) but its NLL term runs
over the prompt *and* the response, as a token mean over the batch, and it logs the mean of log σ(·) under the
name ``log_odds_ratio`` (the log odds ratio itself is its ``log_odds_chosen``). tests/test_orpo.py pins both.

From text the ids are not identical: TRL's pipeline prepends the BOS token to the prompt, which the course's
``batching.encode_preference`` does not, and it encodes prompt + completion jointly, so a prompt that ends in
the middle of a token gives other ids too (the course's prompts end on a token boundary). The BOS token changes
every log-probability after it: on the course's tiny model and the four pairs of tests/test_orpo.py, TRL's log
odds ratio from text is 0.321 and the course's 0.381; the course's on [BOS] + its ids is TRL's (to 1e-6).
tests/test_orpo.py pins the BOS difference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _checks
from .dpo import _check_batch, _pair_logps, _PAIR_KEYS


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, elementwise (any shape), without cancellation (Mächler 2012):

        log1mexp(x) = log(-expm1(x))   for -log 2 < x <= 0   (1 - e^x is small: expm1 keeps its digits)
                    = log1p(-exp(x))   for x <= -log 2        (e^x is small: log1p keeps its digits)

    ``log1mexp(0)`` is -inf (probability 1 has no complement)."""
    _checks.finite("log1mexp", "x", _checks.tensor("log1mexp", "x", x, floating=True), allow_inf=True)
    if (x > 0).any():
        raise ValueError("log1mexp: x must be a log-probability (<= 0, not NaN): log(1 - exp(x)) is undefined "
                         f"for x > 0; got a maximum of {x.max().item():.4g}")
    return _log1mexp(x)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    small = x < -math.log(2)
    return torch.where(small, torch.log1p(-torch.exp(torch.where(small, x, -1.0))),
                       torch.log(-torch.expm1(torch.where(small, -1.0, x))))


def log_odds(logps: torch.Tensor) -> torch.Tensor:
    """log odds_θ(y|x) = log P - log(1 - P) of the mean log-probabilities ``logps`` ([B], each <= 0) -> [B].

    P = exp(logps) is the geometric mean of the response's token probabilities (ORPO's eq. 4); the odds are
    P / (1 - P) (eq. 5): 0 at P = 0, 1 at P = 1/2, growing without bound as P -> 1."""
    _check_logps("log_odds", logps=logps)
    return _log_odds(logps)


def _log_odds(logps: torch.Tensor) -> torch.Tensor:
    return logps - _log1mexp(logps)


def _check_logps(where: str, **logps) -> None:
    """[B] floating tensors of one shape, B >= 1, each a mean log-probability: finite and <= 0."""
    for name, value in logps.items():
        _checks.finite(where, name, _checks.tensor(where, name, value, dims=1, floating=True))
        if (value > 0).any():
            raise ValueError(f"{where}: {name} must be log-probabilities (<= 0), got a maximum of "
                             f"{value.max().item():.4g}; pass sequence_logprobs(..., average=True), not logits")
    shapes = {name: tuple(value.shape) for name, value in logps.items()}
    if len(set(shapes.values())) != 1 or next(iter(logps.values())).numel() == 0:
        raise ValueError(f"{where}: {' and '.join(shapes)} must be [B] with one B >= 1, got shapes {shapes}")


def log_odds_ratio(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor) -> torch.Tensor:
    """log [odds_θ(y_w|x) / odds_θ(y_l|x)] of each pair: [B] mean log-probabilities of the chosen and the
    rejected responses -> [B]. Positive where the policy gives the chosen response the higher odds (the same
    ordering as its higher mean log-probability: the odds grow with P)."""
    _check_logps("log_odds_ratio", chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    return _log_odds(chosen_logps) - _log_odds(rejected_logps)


def odds_ratio_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor) -> torch.Tensor:
    """ORPO's odds-ratio term of each pair (Hong et al. 2024, eq. 7):

        L_OR = -log σ( log [odds_θ(y_w|x) / odds_θ(y_l|x)] )

    ``chosen_logps``, ``rejected_logps``: [B] mean per-token log-probabilities of the responses (eq. 4). Returns
    [B]: log 2 where the odds are equal, -> 0 as the chosen response's odds dominate. Equals minus the terms
    whose mean TRL's ``ORPOTrainer`` logs as ``log_odds_ratio``."""
    _check_logps("odds_ratio_loss", chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    return _odds_ratio_loss(chosen_logps, rejected_logps)


def _odds_ratio_loss(chosen_logps, rejected_logps):
    return -F.logsigmoid(_log_odds(chosen_logps) - _log_odds(rejected_logps))


def orpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    """The ORPO loss of each pair (Hong et al. 2024, eq. 6), with the NLL over the response only:

        L_ORPO = -log P_θ(y_w|x) + λ · (-log σ(log odds_θ(y_w|x) - log odds_θ(y_l|x)))

    ``chosen_logps``, ``rejected_logps``: [B] mean per-token log-probabilities of the responses (eq. 4), so the
    first term is the chosen response's mean token NLL, notebook 01's SFT loss. Returns [B]; the batch loss is
    its mean (each pair weighs the same, whatever its length). ``lam`` (λ) >= 0; λ = 0 is SFT on the chosen
    responses alone."""
    lam = _checks.number("orpo_loss", "lam", lam, nonnegative=True)
    _check_logps("orpo_loss", chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    return -chosen_logps + lam * _odds_ratio_loss(chosen_logps, rejected_logps)


def orpo_metrics(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor) -> dict:
    """What to watch while ORPO trains, as 0-dim tensors (means over the [B] pairs):

    - ``nll``: the chosen responses' mean token NLL, -log P_θ(y_w|x) (the SFT term);
    - ``or_loss``: the odds-ratio term -log σ(log odds ratio) (log 2 = 0.693 at equal odds);
    - ``log_odds_ratio``: log odds_θ(y_w|x) - log odds_θ(y_l|x) (TRL logs it as ``log_odds_chosen``);
    - ``log_odds/chosen``, ``log_odds/rejected``: the log-odds of each side;
    - ``logps/chosen``, ``logps/rejected``: the mean per-token log-probabilities (TRL's names);
    - ``accuracy``: the share of pairs whose chosen response has the higher odds."""
    _check_logps("orpo_metrics", chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    with torch.no_grad():
        chosen, rejected = _log_odds(chosen_logps), _log_odds(rejected_logps)
        ratio = chosen - rejected
        return {"nll": -chosen_logps.mean(), "or_loss": -F.logsigmoid(ratio).mean(), "log_odds_ratio": ratio.mean(),
                "log_odds/chosen": chosen.mean(), "log_odds/rejected": rejected.mean(),
                "logps/chosen": chosen_logps.mean(), "logps/rejected": rejected_logps.mean(),
                "accuracy": (ratio > 0).float().mean()}


def _lam(where: str, lam) -> float:
    return _checks.number(where, "lam", lam, nonnegative=True)


def orpo_step(model, batch: dict, lam: float = 0.1):
    """The ORPO loss on a ``collate_preference`` batch: ``(loss, metrics)``, the ``loss_fn`` contract of
    ``training.train`` (use ``orpo_objective`` to fix λ).

    Chosen and rejected go through the model in one forward pass ([2B, T]); each response's mean per-token
    log-probability (``sequence_logprobs(..., average=True)``, response tokens only, the end token included)
    feeds ``orpo_loss``. No reference log-probabilities: ORPO has no reference model. Metrics: those of
    ``orpo_metrics``."""
    lam = _lam("orpo_step", lam)
    _check_batch("orpo_step", batch, _PAIR_KEYS)
    _checks.model("orpo_step", "model", model)
    chosen, rejected = _pair_logps(model, batch, average=True)
    return orpo_loss(chosen, rejected, lam).mean(), orpo_metrics(chosen, rejected)


def orpo_objective(lam: float = 0.1):
    """``orpo_step`` with λ fixed: the ``loss_fn`` to pass to ``training.train``. Its name carries λ
    (``orpo_step(lam=0.1)``), so a checkpoint of one λ is never resumed, or loaded, as another."""
    lam = _lam("orpo_objective", lam)

    def objective(model, batch):
        return orpo_step(model, batch, lam)

    objective.__qualname__ = objective.__name__ = f"orpo_step(lam={lam!r})"
    return objective
