"""Best-of-n (rejection sampling at inference): draw n responses, keep the one the
reward model likes best.

Its KL to the policy it samples from is bounded (Beirami et al. 2024, "Theoretical
guarantees on the best-of-n alignment policy"):

    KL(π_best-of-n ‖ π) ≤ log n - (n - 1) / n

The familiar "analytic" formula is this upper bound; it is tight when every single
response is rare (a continuum of distinct responses) and loose when some response
has high probability. On a discrete distribution the exact value is computable:
with responses sorted by reward and F the cumulative probability, the best of n
draws is response i with probability F(i)^n - F(i-1)^n (ties in reward aside).
"""

from __future__ import annotations

import numpy as np

from . import _checks


def kl_bound(n) -> np.ndarray:
    """log n - (n - 1)/n, elementwise, for n >= 1 (0 at n = 1)."""
    n = np.asarray(n, dtype=float)
    if (n < 1).any() or not np.isfinite(n).all():
        raise ValueError(f"kl_bound: n must be >= 1, got {n.min() if n.size else n}")
    return np.log(n) - (n - 1) / n


def best_of_n_distribution(probs, rewards, n: int) -> np.ndarray:
    """Exact distribution of the best of ``n`` independent draws from ``probs``, best by
    ``rewards`` (distinct, finite rewards; ties would need a tie-break rule). ``probs`` must be a
    probability vector (entries >= 0, summing to 1 within ``_checks.DISTRIBUTION_ATOL``)."""
    probs = _checks.distribution("best_of_n_distribution", "probs", probs)
    rewards = _checks.finite("best_of_n_distribution", "rewards", np.asarray(rewards, dtype=float))
    if probs.ndim != 1 or probs.shape != rewards.shape:
        raise ValueError(f"best_of_n_distribution: probs and rewards must have one entry per response each, "
                         f"got shapes {probs.shape} and {rewards.shape}")
    if len(np.unique(rewards)) != len(rewards):
        raise ValueError("best_of_n_distribution: rewards must be distinct")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"best_of_n_distribution: n must be a positive int, got {n!r}")
    order = np.argsort(rewards)
    cdf = np.cumsum(probs[order])
    best = cdf ** n - np.concatenate([[0.0], cdf[:-1]]) ** n
    out = np.empty_like(best)
    out[order] = best
    return out


def exact_kl(p, q) -> float:
    """KL(p ‖ q) = Σ p log(p / q) over the support of p; inf where q is 0 on p's support.
    ``p`` and ``q`` must be probability vectors (entries >= 0, summing to 1 within
    ``_checks.DISTRIBUTION_ATOL``)."""
    p, q = _checks.distribution("exact_kl", "p", p), _checks.distribution("exact_kl", "q", q)
    if p.shape != q.shape:
        raise ValueError(f"exact_kl: p and q must have one shape, got {p.shape} and {q.shape}")
    keep = p > 0
    if (q[keep] <= 0).any():
        return float("inf")
    return float((p[keep] * np.log(p[keep] / q[keep])).sum())


def best_of_n_scores(proxy: np.ndarray, target: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each row of samples (one row per prompt, the same samples in both arrays)
    into groups of ``n`` consecutive samples and keep, per group, the one the ``proxy``
    scores highest. Returns the kept samples' ``proxy`` and ``target`` scores (e.g. the
    reward model's and the judge's), ``[prompts * (samples // n)]`` each."""
    proxy, target = np.asarray(proxy, dtype=float), np.asarray(target, dtype=float)
    if proxy.ndim != 2 or proxy.shape != target.shape:
        raise ValueError(f"best_of_n_scores: proxy and target must be [prompts, samples] arrays of one shape, "
                         f"got {proxy.shape} and {target.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= proxy.shape[1]:
        raise ValueError(f"best_of_n_scores: n must be an int in 1..{proxy.shape[1]} (samples per prompt), got {n!r}")
    _checks.finite("best_of_n_scores", "proxy", proxy)
    _checks.finite("best_of_n_scores", "target", target)
    groups = proxy.shape[1] // n
    p = proxy[:, :groups * n].reshape(len(proxy), groups, n)
    t = target[:, :groups * n].reshape(len(target), groups, n)
    pick = p.argmax(-1)[..., None]
    return np.take_along_axis(p, pick, -1).ravel(), np.take_along_axis(t, pick, -1).ravel()
