"""Notebook 11, KTO, SimPO and LoRA: the KTO loss given log-ratios and z0, SimPO's loss, the LoRA forward."""

import torch
import torch.nn.functional as F

from ..kto import kto_loss
from ..lora import lora_forward
from ..simpo import simpo_loss
from ._runner import Case, Exercise, Mistake


def _logps(g, n):
    return -torch.rand(n, generator=g, dtype=torch.float64) * 30


def _kto_cases():
    g = torch.Generator().manual_seed(11)
    mixed = torch.tensor([True, False, True, True, False, False])
    same = _logps(g, 4)
    return [Case((_logps(g, 6), _logps(g, 6), mixed, 0.4, 0.1, 1.0, 1.0), label="six examples, z0 = 0.4"),
            Case((_logps(g, 6), _logps(g, 6), mixed, 2.0, 0.5, 1.0, 2.5), label="λ_U = 2.5, β = 0.5"),
            Case((_logps(g, 3), _logps(g, 3), torch.tensor([True, True, True]), 0.0, 0.3, 1.33, 1.0),
                 label="all desirable, λ_D = 1.33, z0 = 0"),
            Case((same, same.clone(), torch.tensor([True, False, True, False]), 0.0, 0.1, 1.0, 1.0),
                 label="the policy is the reference and z0 = 0: λ/2 each"),
            Case((torch.tensor([-1.0, -900.0], dtype=torch.float64), torch.tensor([-900.0, -1.0], dtype=torch.float64),
                  torch.tensor([True, False]), 0.0, 1.0, 1.0, 1.0), label="huge log-ratios: the loss saturates at 0")]


def _kto_undesirable_sign(policy_logps, ref_logps, desirable, z0, beta, desirable_weight, undesirable_weight):
    h = policy_logps - ref_logps
    return torch.where(desirable, desirable_weight * (1 - torch.sigmoid(beta * (h - z0))),
                       undesirable_weight * (1 - torch.sigmoid(beta * (h - z0))))


def _kto_no_z0(policy_logps, ref_logps, desirable, z0, beta, desirable_weight, undesirable_weight):
    return kto_loss(policy_logps, ref_logps, desirable, 0.0, beta, desirable_weight, undesirable_weight)


def _kto_swapped(policy_logps, ref_logps, desirable, z0, beta, desirable_weight, undesirable_weight):
    return kto_loss(policy_logps, ref_logps, desirable, z0, beta, undesirable_weight, desirable_weight)


def _simpo_cases():
    g = torch.Generator().manual_seed(12)

    def lengths(n):
        return torch.randint(1, 40, (n,), generator=g).double()

    return [Case((_logps(g, 5), _logps(g, 5), lengths(5), lengths(5), 2.0, 1.0), label="five pairs, β = 2, γ = 1"),
            Case((_logps(g, 3), _logps(g, 3), lengths(3), lengths(3), 2.5, 1.375), label="the paper's β = 2.5, γ = 1.375"),
            Case((_logps(g, 4), _logps(g, 4), lengths(4), lengths(4), 1.0, 0.0), label="γ = 0"),
            Case((torch.tensor([-20.0, -3.0], dtype=torch.float64), torch.tensor([-5.0, -3.0], dtype=torch.float64),
                  torch.tensor([20.0, 1.0], dtype=torch.float64), torch.tensor([5.0, 1.0], dtype=torch.float64), 2.0, 0.5),
                 label="equal log-probs per token, lengths 20 and 5; one-token responses"),
            Case((torch.tensor([-1.0], dtype=torch.float64), torch.tensor([-2000.0], dtype=torch.float64),
                  torch.ones(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), 2.0, 1.0),
                 label="one pair won by a huge margin")]


def _simpo_summed(chosen, rejected, chosen_lengths, rejected_lengths, beta, gamma):
    return -F.logsigmoid(beta * chosen - beta * rejected - gamma)


def _simpo_margin_sign(chosen, rejected, chosen_lengths, rejected_lengths, beta, gamma):
    return -F.logsigmoid(beta * chosen / chosen_lengths - beta * rejected / rejected_lengths + gamma)


def _simpo_gamma_scaled(chosen, rejected, chosen_lengths, rejected_lengths, beta, gamma):
    return -F.logsigmoid(beta * (chosen / chosen_lengths - rejected / rejected_lengths - gamma))


def _lora_cases():
    g = torch.Generator().manual_seed(13)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return [Case((randn(3, 6), randn(5, 6), randn(2, 6), randn(5, 2), 4.0), label="3 inputs, d_in 6, d_out 5, r = 2, α = 4"),
            Case((randn(2, 4, 6), randn(5, 6), randn(3, 6), randn(5, 3), 16.0), label="a batch of sequences [2, 4, 6], r = 3"),
            Case((randn(1, 8), randn(8, 8), randn(1, 8), randn(8, 1), 1.0), label="rank one, one token"),
            Case((randn(3, 6), randn(5, 6), randn(4, 6), torch.zeros(5, 4, dtype=torch.float64), 8.0),
                 label="B = 0, as LoRA starts: exactly W x")]


EXERCISES = [
    Exercise(
        name="kto_loss", notebook="11", reference=kto_loss, cases=_kto_cases, grad=True,
        mistakes=(Mistake(_kto_undesirable_sign,
                          "an undesirable response gains by falling below z0: σ(β (z0 − h)), not σ(β (h − z0))"),
                  Mistake(_kto_no_z0, "the reference point z0 is missing: compare h with z0, not with 0"),
                  Mistake(_kto_swapped, "λ_D weighs the desirable examples and λ_U the undesirable ones, not the "
                                        "other way round"))),
    Exercise(
        name="simpo_loss", notebook="11", reference=simpo_loss, cases=_simpo_cases, grad=True,
        mistakes=(Mistake(_simpo_summed, "divide each log-prob by its response's length |y|: SimPO's reward is the "
                                         "average log-prob per token"),
                  Mistake(_simpo_margin_sign, "the margin γ is subtracted: the chosen response must win by γ"),
                  Mistake(_simpo_gamma_scaled, "γ stands outside β: -log σ(β Δ̄ − γ), not -log σ(β (Δ̄ − γ))"))),
    Exercise(
        name="lora_forward", notebook="11", reference=lora_forward, cases=_lora_cases, grad=True,
        mistakes=(Mistake(lambda x, weight, lora_A, lora_B, alpha: x @ weight.T + (x @ lora_A.T) @ lora_B.T,
                          "scale the low-rank path by α / r"),
                  Mistake(lambda x, weight, lora_A, lora_B, alpha:
                          x @ weight.T + alpha * (x @ lora_A.T) @ lora_B.T,
                          "the scale is α / r (r is lora_A's number of rows), not α"),
                  Mistake(lambda x, weight, lora_A, lora_B, alpha:
                          (alpha / lora_A.shape[0]) * (x @ lora_A.T) @ lora_B.T,
                          "keep the frozen layer: W x + (α / r) B A x"))),
]
