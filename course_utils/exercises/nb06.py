"""Notebook 06, the DPO derivation: the optimum π*, the implicit reward, the DPO loss."""

import numpy as np
import torch
import torch.nn.functional as F

from ..bandit import implicit_reward, optimal_policy
from ..dpo import dpo_loss
from ._runner import Case, Exercise, Mistake

PI_REF = np.array([0.30, 0.25, 0.18, 0.12, 0.09, 0.06])
REWARD = np.array([0.0, 0.8, -1.0, 1.6, 0.4, 2.2])


def _optimum_cases():
    rng = np.random.default_rng(6)
    other = rng.dirichlet(np.ones(4))
    return [Case((PI_REF, REWARD, 0.5), label="the toy bandit, β = 0.5"),
            Case((PI_REF, REWARD, 5.0), label="β = 5, close to π_ref"),
            Case((other, rng.normal(size=4), 1.0), label="four responses"),
            Case((PI_REF, np.zeros(6), 0.5), label="equal rewards: π* = π_ref"),
            Case((PI_REF, REWARD, 0.002), label="β = 0.002: e^(r/β) overflows unless you subtract the largest exponent")]


def _naive_optimum(pi_ref, reward, beta):
    weights = pi_ref * np.exp(reward / beta)
    return weights / weights.sum()


def _implicit_cases():
    rng = np.random.default_rng(7)
    pi = rng.dirichlet(np.ones(6))
    return [Case((pi, PI_REF, 0.5), label="a random policy, β = 0.5"),
            Case((pi, PI_REF, 2.0), label="β = 2"),
            Case((PI_REF, PI_REF, 0.5), label="π = π_ref: zero everywhere"),
            Case((rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3)), 0.1), label="three responses, β = 0.1")]


def _dpo_cases():
    g = torch.Generator().manual_seed(6)

    def logps(n):
        return -torch.rand(n, generator=g, dtype=torch.float64) * 20

    same = logps(3)
    return [Case((logps(4), logps(4), logps(4), logps(4), 0.1), label="four pairs, β = 0.1"),
            Case((logps(2), logps(2), logps(2), logps(2), 1.0), label="β = 1"),
            Case((same, same.clone(), logps(3), logps(3)), label="β left at its default 0.1"),
            Case((same, same - 3, same, same - 3, 0.5), label="the policy is the reference: log 2 each"),
            Case((logps(1) - 4000, logps(1), logps(1), logps(1), 0.5), label="one pair ranked wrong by a huge margin")]


EXERCISES = [
    Exercise(
        name="optimal_policy", notebook="06", reference=optimal_policy, cases=_optimum_cases,
        mistakes=(Mistake(lambda pi_ref, reward, beta: pi_ref * np.exp(reward / beta),
                          "π* must sum to one: divide by Z = Σ π_ref(y) e^(r(y)/β)"),
                  Mistake(lambda pi_ref, reward, beta: _naive_optimum(pi_ref, reward * beta, 1.0),
                          "β divides the reward: e^(r/β), not e^(β r)"),
                  Mistake(_naive_optimum,
                          "for small β, e^(r/β) overflows: work with log π_ref + r/β and subtract its maximum "
                          "before exponentiating"))),
    Exercise(
        name="implicit_reward", notebook="06", reference=implicit_reward, cases=_implicit_cases,
        mistakes=(Mistake(lambda pi, pi_ref, beta: np.log(pi / pi_ref), "the implicit reward is β times the log-ratio"),
                  Mistake(lambda pi, pi_ref, beta: beta * np.log(pi_ref / pi),
                          "the ratio is π / π_ref: more probability than the reference means more reward"))),
    Exercise(
        name="dpo_loss", notebook="06", reference=dpo_loss, cases=_dpo_cases, grad=True,
        mistakes=(Mistake(lambda pc, pr, rc, rr, beta=0.1: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean(),
                          "return the loss of each pair, shape [B]; the batch mean comes later"),
                  Mistake(lambda pc, pr, rc, rr, beta=0.1: -F.logsigmoid(beta * ((pr - rr) - (pc - rc))),
                          "the sign: the chosen response's log-ratio comes first"),
                  Mistake(lambda pc, pr, rc, rr, beta=0.1: -F.logsigmoid(beta * (pc - pr)),
                          "subtract the reference's log-probabilities: DPO's reward is β log π_θ/π_ref"),
                  Mistake(lambda pc, pr, rc, rr, beta=0.1: -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))),
                          "log(sigmoid(x)) underflows to log 0 for a large negative x: use F.logsigmoid"),
                  Mistake(lambda pc, pr, rc, rr, beta=0.1: -F.logsigmoid((pc - rc) - (pr - rr)),
                          "multiply the margin by β"))),
]
