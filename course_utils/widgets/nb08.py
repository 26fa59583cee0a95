"""Notebook 08: λ in ORPO's loss, at the exact optimum of a toy with six one-token responses.

A one-token response's mean log-probability is its log-probability, so P(y) = π(y). The pairs are every two
different responses, each ranked by a random rater with P(y_i ≻ y_j) = σ(r_i − r_j) (Bradley–Terry). The
expected ORPO loss over those pairs,

    L(π) = Σ_{i≠j} w_ij [ −log π(y_i) + λ · (−log σ(log odds π(y_i) − log odds π(y_j))) ],   w_ij ∝ σ(r_i − r_j),

has its minimum at π_0 = the share of each response among the chosen ones (SFT on the chosen responses) for
λ = 0, and tends, as λ → ∞, to the π whose log-odds are the rewards plus one constant (the Bradley–Terry fit of
the log-odds): π_∞(y) = σ(r(y) + c), with c such that the π_∞(y) sum to one.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks
from ..orpo import log_odds
from . import Widget

NAMES = tuple(f"y{k + 1}" for k in range(6))
REWARD = np.array([0.0, 0.8, -1.0, 1.6, 0.4, 2.2])
_R = torch.tensor(REWARD)
_WEIGHTS = torch.sigmoid(_R[:, None] - _R[None, :]).fill_diagonal_(0.0)
_WEIGHTS /= _WEIGHTS.sum()             # w_ij: the share of pairs with y_i chosen over y_j
CHOSEN_SHARE = _WEIGHTS.sum(1).numpy()  # π_0: the optimum at λ = 0


def _limit() -> np.ndarray:
    """π_∞(y) = σ(r(y) + c), with c found by bisection so that the probabilities sum to one."""
    low, high = -50.0, 50.0
    for _ in range(100):
        c = (low + high) / 2
        low, high = (low, c) if torch.sigmoid(_R + c).sum() > 1 else (c, high)
    return torch.sigmoid(_R + c).numpy()


LIMIT = _limit()


def _loss(theta: torch.Tensor, lam: float) -> torch.Tensor:
    logp = torch.log_softmax(theta, 0)
    lo = log_odds(logp)
    return (_WEIGHTS * (-logp[:, None] - lam * F.logsigmoid(lo[:, None] - lo[None, :]))).sum()


def _newton_step(free: torch.Tensor, lam: float):
    """The loss at ``free`` (the logits of y1..y5; y6's is 0), its gradient and its Hessian, by autograd."""
    free = free.detach().requires_grad_(True)
    value = _loss(torch.cat([free, free.new_zeros(1)]), lam)
    (grad,) = torch.autograd.grad(value, free, create_graph=True)
    hessian = torch.stack([torch.autograd.grad(g, free, retain_graph=True)[0] for g in grad])
    return value.detach(), grad.detach(), hessian


def toy_optimum(lam: float) -> np.ndarray:
    """The policy over the six responses that minimises the expected ORPO loss at ``lam`` (λ >= 0): Newton's
    method with a backtracking line search from π_0, in float64, until the largest gradient is below
    1e-10 · (1 + λ)."""
    lam = _checks.number("toy_optimum", "lam", lam, nonnegative=True)
    free = torch.tensor(np.log(CHOSEN_SHARE[:-1] / CHOSEN_SHARE[-1]))
    for _ in range(100):
        value, grad, hessian = _newton_step(free, lam)
        if grad.abs().max() < 1e-10 * (1 + lam):
            break
        step = torch.linalg.solve(hessian, grad)
        if step @ grad <= 0:   # not a descent direction where the loss is not convex: a gradient step
            step = grad
        size = 1.0
        with torch.no_grad():
            while _loss(torch.cat([free - size * step, free.new_zeros(1)]), lam) > value and size > 1e-8:
                size /= 2
        free = free - size * step
    return torch.softmax(torch.cat([free, free.new_zeros(1)]), 0).numpy()


def orpo_lambda(lam, ax):
    """π_0 (SFT on the chosen responses), the optimum at ``lam`` and the λ → ∞ limit, over the six responses."""
    optimum = toy_optimum(lam)
    x = np.arange(len(REWARD))
    ax.bar(x - 0.2, CHOSEN_SHARE, width=0.4, label="λ = 0 (SFT on chosen)", color="tab:gray")
    ax.bar(x + 0.2, optimum, width=0.4, label=f"λ = {lam:g}", color="tab:blue")
    ax.plot(x + 0.2, LIMIT, "k_", ms=14, mew=2, label="λ → ∞")
    ax.set_xticks(x, [f"{n}\nr={r:+.1f}" for n, r in zip(NAMES, REWARD)], fontsize=8)
    ax.set_ylim(0, 0.5)
    ax.set_ylabel("probability π(y)")
    ax.set_title(f"λ = {lam:g}: E[r] = {optimum @ REWARD:.2f} (λ = 0: {CHOSEN_SHARE @ REWARD:.2f}, "
                 f"λ → ∞: {LIMIT @ REWARD:.2f})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


WIDGETS = [Widget("orpo_lambda", "08", orpo_lambda, "λ", low=0.0, high=50.0, step=0.1, value=1.0,
                  settings=(0.0, 1.0, 5.0, 50.0))]
