"""Notebook 06: β in the optimum π* ∝ π_ref e^(r/β) of the toy bandit."""

import numpy as np

from ..bandit import exact_kl, optimal_policy
from . import Widget

NAMES = tuple(f"y{k + 1}" for k in range(6))
PI_REF = np.array([0.30, 0.25, 0.18, 0.12, 0.09, 0.06])
REWARD = np.array([0.0, 0.8, -1.0, 1.6, 0.4, 2.2])


def dpo_optimum(beta, ax):
    """π_ref and π* side by side over the six responses, at ``beta``."""
    optimum = optimal_policy(PI_REF, REWARD, beta)
    x = np.arange(len(PI_REF))
    ax.bar(x - 0.2, PI_REF, width=0.4, label="π_ref")
    ax.bar(x + 0.2, optimum, width=0.4, label="π*")
    ax.set_xticks(x, [f"{n}\nr={r:+.1f}" for n, r in zip(NAMES, REWARD)], fontsize=8)
    ax.set_ylim(0, 1.08)  # room above a bar that reaches one
    ax.set_ylabel("probability")
    ax.set_title(f"β = {beta:.2g}: KL(π*‖π_ref) = {exact_kl(optimum, PI_REF):.2f} nats, "
                 f"E[r] = {optimum @ REWARD:.2f}", fontsize=9)
    ax.legend(fontsize=8)


WIDGETS = [Widget("dpo_optimum", "06", dpo_optimum, "β", low=0.01, high=100.0, step=0.05, value=0.5,
                  settings=(0.1, 0.5, 2.0, 10.0), log=True)]
