"""Notebook 03: n in best-of-n, the exact best-of-n distribution of a toy policy and its KL against the bound."""

import numpy as np

from ..best_of_n import best_of_n_distribution, exact_kl, kl_bound
from . import Widget

# a base policy over eight responses, listed by increasing reward; the best one has probability 0.1
PROBS = np.array([0.06, 0.22, 0.08, 0.18, 0.14, 0.12, 0.10, 0.10])
REWARD = np.arange(8.0)


def best_of_n(n, ax):
    """The base policy and the best-of-``n`` policy over the eight responses, with KL(best-of-n ‖ base)
    against its bound log n - (n-1)/n and the limit -log p_best."""
    n = int(round(n))
    best = best_of_n_distribution(PROBS, REWARD, n)
    x = np.arange(len(PROBS))
    ax.bar(x - 0.2, PROBS, width=0.4, label="base policy π")
    ax.bar(x + 0.2, best, width=0.4, label=f"best-of-{n}")
    ax.set_xticks(x, [f"r={r:.0f}" for r in REWARD], fontsize=8)
    ax.set_xlabel("response, by increasing reward")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("probability")
    ax.set_title(f"n = {n}: KL = {exact_kl(best, PROBS):.2f} nats, bound {kl_bound(n):.2f}, "
                 f"limit {-np.log(PROBS[-1]):.2f}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")


WIDGETS = [Widget("best_of_n", "03", best_of_n, "n", low=1, high=256, step=1, value=8, settings=(1, 4, 16, 64))]
