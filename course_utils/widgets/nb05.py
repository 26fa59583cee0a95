"""Notebook 05: ε in PPO's clipped surrogate, min(ρ A, clip(ρ, 1 − ε, 1 + ε) A), and its gradient in ρ."""

import numpy as np

from . import Widget

RATIO = np.linspace(0.4, 1.6, 241)


def clipped_objective(ratio, advantage: float, epsilon: float):
    """min(ρ A, clip(ρ, 1 − ε, 1 + ε) A) and its derivative in ρ (A where the unclipped term is taken,
    0 where the clipped one is), at each ratio ρ (Schulman et al. 2017, eq. 7)."""
    clipped = np.clip(ratio, 1 - epsilon, 1 + epsilon) * advantage
    unclipped = ratio * advantage
    return np.minimum(unclipped, clipped), np.where(clipped < unclipped, 0.0, advantage)


def ppo_clip(epsilon, ax):
    """The clipped objective (solid) and its gradient (dashed) against the ratio, for A = +1 and A = −1."""
    if not 0 < epsilon < 1:
        raise ValueError(f"ppo_clip: epsilon must be in (0, 1), got {epsilon}")
    for advantage, color in ((1.0, "tab:blue"), (-1.0, "tab:orange")):
        objective, gradient = clipped_objective(RATIO, advantage, epsilon)
        ax.plot(RATIO, objective, color=color, lw=2, label=f"objective, A = {advantage:+.0f}")
        ax.plot(RATIO, gradient, "--", color=color, label=f"∂/∂ρ, A = {advantage:+.0f}")
    ax.axvspan(1 - epsilon, 1 + epsilon, alpha=0.1, color="gray")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlim(RATIO[0], RATIO[-1])
    ax.set_ylim(-1.9, 1.9)
    ax.set_xlabel("ratio ρ = π_θ / π_old")
    ax.set_ylabel("objective per token (units of A)")
    ax.set_title(f"ε = {epsilon:.2f}: flat past ρ = {1 + epsilon:.2f} (A > 0)\nand below ρ = {1 - epsilon:.2f} (A < 0)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


WIDGETS = [Widget("ppo_clip", "05", ppo_clip, "ε", low=0.05, high=0.5, step=0.05, value=0.2,
                  settings=(0.1, 0.2, 0.4))]
