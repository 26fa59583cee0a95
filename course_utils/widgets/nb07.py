"""Notebook 07: the label-noise rate ε in conservative DPO, -(1 − ε) log σ(βΔ) − ε log σ(−βΔ)."""

import math

import torch

from ..dpo import conservative_dpo_loss
from . import Widget

BETA = 0.1
MARGIN = torch.linspace(-20, 80, 401, dtype=torch.float64)


def cdpo_loss_and_push(epsilon: float, beta: float = BETA):
    """The cDPO loss per pair at each margin Δ of ``MARGIN`` and its push −∂loss/∂Δ = β((1 − ε) − σ(βΔ))
    (Mitchell 2023): zero at the optimum βΔ = log((1 − ε)/ε)."""
    zero = torch.zeros_like(MARGIN)
    loss = conservative_dpo_loss(MARGIN, zero, zero, zero, beta=beta, epsilon=epsilon)
    return loss.numpy(), (beta * ((1 - epsilon) - torch.sigmoid(beta * MARGIN))).numpy()


def cdpo_noise(epsilon, ax):
    """cDPO's loss (solid) and push (dashed, right axis) against the margin, beside DPO's (ε = 0), with the
    optimum margin marked."""
    if not 0 < epsilon < 0.5:
        raise ValueError(f"cdpo_noise: epsilon must be in (0, 0.5), got {epsilon}")
    dpo_loss, dpo_push = cdpo_loss_and_push(0.0)
    loss, push = cdpo_loss_and_push(epsilon)
    optimum = math.log((1 - epsilon) / epsilon) / BETA
    push_ax = ax.twinx()
    ax.plot(MARGIN, dpo_loss, color="gray", label="DPO loss (ε = 0)")
    ax.plot(MARGIN, loss, color="tab:blue", lw=2, label=f"cDPO loss, ε = {epsilon:.2f}")
    push_ax.plot(MARGIN, dpo_push, ":", color="gray")
    push_ax.plot(MARGIN, push, "--", color="tab:orange", label="cDPO push −∂loss/∂Δ (right)")
    push_ax.axhline(0, color="tab:orange", lw=0.5)
    ax.axvline(optimum, color="k", lw=1, ls="-.", label=f"optimum Δ = {optimum:.1f}")
    ax.set_ylim(0, 2.5)
    push_ax.set_ylim(-0.05, 0.1)
    ax.set_xlabel("log-ratio margin Δ (nats)")
    ax.set_ylabel("loss per pair (nats)")
    push_ax.set_ylabel("push on Δ, −∂loss/∂Δ")
    ax.set_title(f"ε = {epsilon:.2f}, β = {BETA}: cDPO's optimum\nat Δ = log((1−ε)/ε)/β = {optimum:.1f} nats", fontsize=9)
    lines = ax.get_legend_handles_labels()
    more = push_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=6, loc="upper right")


WIDGETS = [Widget("cdpo_noise", "07", cdpo_noise, "ε", low=0.01, high=0.45, step=0.01, value=0.1,
                  settings=(0.02, 0.1, 0.25, 0.4))]
