"""Notebook 08, ORPO: the log-odds of a mean log-probability, the odds-ratio term, the ORPO loss."""

import torch
import torch.nn.functional as F

from ..orpo import log_odds, odds_ratio_loss, orpo_loss
from ._runner import Case, Exercise, Mistake


def _logps(g, n, low=-6.0):
    """n mean log-probabilities in (low, 0), float64."""
    return torch.rand(n, generator=g, dtype=torch.float64) * low


def _log_odds_cases():
    g = torch.Generator().manual_seed(8)
    return [Case((torch.tensor([-4.5099, -3.2, -2.3026, -1.0], dtype=torch.float64),), label="P from 0.011 to 0.37"),
            Case((torch.tensor([-0.6931, -0.1054, -0.01], dtype=torch.float64),), label="P from 1/2 to 0.99"),
            Case((_logps(g, 5).float(),), label="float32 stays float32"),
            Case((torch.tensor([-1e-16, -1e-9, -1e-6], dtype=torch.float64),),
                 label="P within 1e-6 of one: 1 − P cancels unless you use expm1"),
            Case((torch.tensor([-20.0, -40.0, -700.0], dtype=torch.float64),), label="P tiny: e^a underflows"),
            Case((torch.tensor([-4.5], dtype=torch.float64),), label="one response")]


def _pair_cases():
    g = torch.Generator().manual_seed(9)
    same = _logps(g, 3)
    return [Case((_logps(g, 4), _logps(g, 4)), label="four pairs"),
            Case((_logps(g, 3, low=-0.7), _logps(g, 3, low=-0.7)), label="likely responses, P above 1/2"),
            Case((same, same.clone()), label="equal odds: log 2 each"),
            Case((torch.tensor([-4.6], dtype=torch.float64), torch.tensor([-4.5], dtype=torch.float64)),
                 label="one pair at the tiny model's scale"),
            Case((torch.tensor([-2000.0, -1.0], dtype=torch.float64), torch.tensor([-1.0, -2000.0], dtype=torch.float64)),
                 label="pairs ranked wrong and right by a huge margin")]


def _orpo_cases():
    g = torch.Generator().manual_seed(10)
    return [Case((_logps(g, 4), _logps(g, 4), 0.5), label="four pairs, λ = 0.5"),
            Case((_logps(g, 3), _logps(g, 3), 2.0), label="λ = 2"),
            Case((_logps(g, 3), _logps(g, 3)), label="λ left at its default 0.1"),
            Case((_logps(g, 2), _logps(g, 2), 0.0), label="λ = 0: SFT on the chosen responses"),
            Case((torch.tensor([-800.0], dtype=torch.float64), torch.tensor([-4.5], dtype=torch.float64), 1.0),
                 label="one pair ranked wrong by a huge margin")]


def _log_odds_naive(logps):
    return logps - torch.log(1 - torch.exp(logps))


def _odds_ratio_of_logps(chosen_logps, rejected_logps):
    return -F.logsigmoid(chosen_logps - rejected_logps)


def _odds_ratio_unstable(chosen_logps, rejected_logps):
    return -torch.log(torch.sigmoid(log_odds(chosen_logps) - log_odds(rejected_logps)))


EXERCISES = [
    Exercise(
        name="log_odds", notebook="08", reference=log_odds, cases=_log_odds_cases, grad=True,
        mistakes=(Mistake(_log_odds_naive, "1 − e^a loses its digits as a → 0: there use log(−expm1(a)), "
                                           "exact where 1 − P is small"),
                  Mistake(lambda logps: logps + torch.log(-torch.expm1(logps)),
                          "the sign: log odds = log P − log(1 − P)"),
                  Mistake(lambda logps: torch.exp(logps) / -torch.expm1(logps),
                          "that is the odds P / (1 − P): return their log"))),
    Exercise(
        name="odds_ratio_loss", notebook="08", reference=odds_ratio_loss, cases=_pair_cases, grad=True,
        mistakes=(Mistake(lambda w, l: odds_ratio_loss(l, w), "the sign: the chosen response's log-odds come first"),
                  Mistake(_odds_ratio_of_logps, "compare the log-odds, log P − log(1 − P), not the log-probabilities"),
                  Mistake(lambda w, l: odds_ratio_loss(w, l).mean(),
                          "return the term of each pair, shape [B]; the batch mean comes later"),
                  Mistake(_odds_ratio_unstable,
                          "log(sigmoid(x)) underflows to log 0 for a large negative x: use F.logsigmoid"))),
    Exercise(
        name="orpo_loss", notebook="08", reference=orpo_loss, cases=_orpo_cases, grad=True,
        mistakes=(Mistake(lambda w, l, lam=0.1: -l + lam * odds_ratio_loss(w, l),
                          "the NLL term is the chosen response's: −log P(y_w)"),
                  Mistake(lambda w, l, lam=0.1: -lam * w + odds_ratio_loss(w, l),
                          "λ multiplies the odds-ratio term, not the NLL"),
                  Mistake(lambda w, l, lam=0.1: w + lam * odds_ratio_loss(w, l),
                          "the NLL is minus the log-probability: −log P(y_w)"),
                  Mistake(lambda w, l, lam=0.1: (-w + lam * odds_ratio_loss(w, l)).mean(),
                          "return the loss of each pair, shape [B]; the batch mean comes later"))),
]
