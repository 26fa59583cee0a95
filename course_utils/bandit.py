"""The DPO derivation on a toy bandit: one prompt, K responses, every quantity exact (notebook 06).

A policy is a probability vector π over the K responses; π_ref is the reference (the SFT policy), r the
reward. The KL-regularised objective and its optimum:

    J(π) = E_{y~π}[r(y)] - β KL(π ‖ π_ref)
    π*(y) = π_ref(y) exp(r(y)/β) / Z,      Z = Σ_y π_ref(y) exp(r(y)/β),      J(π*) = β log Z.

Inverted, r(y) = β log(π*(y)/π_ref(y)) + β log Z: the reward is the policy's *implicit reward* plus a
constant, which cancels in the Bradley–Terry probability σ(r(y_w) - r(y_l)). (KL: ``best_of_n.exact_kl``.) That gives the DPO loss, here
trained on a tabular policy π_θ = softmax(θ) with the same ``dpo_loss`` the language model uses.
Everything is float64.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _checks
from .best_of_n import exact_kl
from .dpo import dpo_loss

OBJECTIVES = ("dpo", "unlikelihood")


def _probs(where: str, name: str, p) -> np.ndarray:
    """A probability vector over K >= 2 responses, every entry > 0, summing to 1 within 1e-9."""
    p = _checks.distribution(where, name, p, atol=1e-9, positive=True)
    if p.size < 2:
        raise ValueError(f"{where}: {name} must be a probability vector over K >= 2 responses, got {p.size} entry")
    return p


def _rewards(where: str, reward, k: int) -> np.ndarray:
    try:
        reward = np.asarray(reward, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: reward must be a list of numbers, got {type(reward).__name__}") from None
    if reward.shape != (k,):
        raise ValueError(f"{where}: reward must hold {k} finite numbers, one per response, got shape {reward.shape}")
    return _checks.finite(where, "reward", reward)


def log_partition(pi_ref, reward, beta: float) -> float:
    """log Z = log Σ_y π_ref(y) exp(r(y)/β), computed stably (log-sum-exp)."""
    pi_ref = _probs("log_partition", "pi_ref", pi_ref)
    reward = _rewards("log_partition", reward, len(pi_ref))
    beta = _checks.number("log_partition", "beta", beta, positive=True)
    a = np.log(pi_ref) + reward / beta
    return float(a.max() + np.log(np.exp(a - a.max()).sum()))


def optimal_policy(pi_ref, reward, beta: float) -> np.ndarray:
    """π*(y) = π_ref(y) exp(r(y)/β) / Z, the maximiser of J: [K] probabilities."""
    pi_ref = _probs("optimal_policy", "pi_ref", pi_ref)
    reward = _rewards("optimal_policy", reward, len(pi_ref))
    beta = _checks.number("optimal_policy", "beta", beta, positive=True)
    return np.exp(np.log(pi_ref) + reward / beta - log_partition(pi_ref, reward, beta))


def objective(pi, pi_ref, reward, beta: float) -> float:
    """J(π) = Σ_y π(y) r(y) - β KL(π ‖ π_ref)."""
    pi_ref = _probs("objective", "pi_ref", pi_ref)
    reward = _rewards("objective", reward, len(pi_ref))
    beta = _checks.number("objective", "beta", beta, positive=True)
    pi = _checks.distribution("objective", "pi", pi, atol=1e-9)
    if pi.shape != pi_ref.shape:
        raise ValueError(f"objective: pi must be a probability vector of pi_ref's shape {pi_ref.shape}, "
                         f"got shape {pi.shape}")
    return float(pi @ reward - beta * exact_kl(pi, pi_ref))


def implicit_reward(pi, pi_ref, beta: float) -> np.ndarray:
    """β log(π(y)/π_ref(y)): the reward under which π is the optimum, up to the constant β log Z."""
    pi = _probs("implicit_reward", "pi", pi)
    pi_ref = _probs("implicit_reward", "pi_ref", pi_ref)
    if pi.shape != pi_ref.shape:
        raise ValueError(f"implicit_reward: pi and pi_ref must have one shape, got {pi.shape} and {pi_ref.shape}")
    beta = _checks.number("implicit_reward", "beta", beta, positive=True)
    return beta * np.log(pi / pi_ref)


def sample_preferences(policy, reward, n: int, seed: int = 0) -> np.ndarray:
    """``n`` preference pairs ``[n, 2]`` (winner, loser): two different responses drawn from ``policy`` (a draw
    of the same response twice carries no preference and is redrawn), the first preferred with the
    Bradley–Terry probability σ(r(y_1) - r(y_2))."""
    policy = _probs("sample_preferences", "policy", policy)
    reward = _rewards("sample_preferences", reward, len(policy))
    n = _checks.integer("sample_preferences", "n", n, minimum=1)
    seed = _checks.integer("sample_preferences", "seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    pairs = np.zeros((0, 2), dtype=int)
    while len(pairs) < n:
        draw = rng.choice(len(policy), size=(2 * n, 2), p=policy)
        pairs = np.concatenate([pairs, draw[draw[:, 0] != draw[:, 1]]])[:n]
    first_wins = rng.random(n) < 1 / (1 + np.exp(-(reward[pairs[:, 0]] - reward[pairs[:, 1]])))
    return np.where(first_wins[:, None], pairs, pairs[:, ::-1])


def train_tabular_policy(pairs, pi_ref, beta: float, objective: str = "dpo", steps: int = 2000,
                         lr: float = 1.0) -> dict:
    """Full-batch gradient descent on a tabular policy π_θ = softmax(θ), θ starting at log π_ref.

    ``objective``: ``"dpo"``, the mean of ``dpo.dpo_loss`` over ``pairs`` ([n, 2] winner, loser), or
    ``"unlikelihood"``, the mean of -(log π_θ(y_w) - log π_θ(y_l)): raise the chosen, lower the rejected,
    no reference and no weight. Returns a dict of arrays over the steps 0..``steps``: ``policy`` [steps+1, K],
    ``loss``, ``weight`` (the mean per-pair gradient weight, σ(r̂_l - r̂_w) for DPO with r̂ = β log π_θ/π_ref,
    1 for unlikelihood) and ``grad_norm`` (of the loss in θ)."""
    pi_ref = _probs("train_tabular_policy", "pi_ref", pi_ref)
    try:
        pairs = np.asarray(pairs)
    except (TypeError, ValueError):
        raise TypeError("train_tabular_policy: pairs must be an [n, 2] array of response indices") from None
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] == 0 or pairs.dtype.kind not in "iu":
        raise ValueError(f"train_tabular_policy: pairs must be an [n, 2] integer array (winner, loser), n >= 1, "
                         f"got shape {pairs.shape}")
    if pairs.min() < 0 or pairs.max() >= len(pi_ref) or (pairs[:, 0] == pairs[:, 1]).any():
        raise ValueError(f"train_tabular_policy: pairs must index two different responses among 0..{len(pi_ref) - 1}")
    beta = _checks.number("train_tabular_policy", "beta", beta, positive=True)
    _checks.choice("train_tabular_policy", "objective", objective, OBJECTIVES)
    steps = _checks.integer("train_tabular_policy", "steps", steps, minimum=1)
    lr = _checks.number("train_tabular_policy", "lr", lr, positive=True)

    # the loss only depends on how often each ordered pair occurs: sum over distinct pairs, weighted
    distinct, counts = np.unique(pairs, axis=0, return_counts=True)
    w, l = torch.as_tensor(distinct[:, 0]), torch.as_tensor(distinct[:, 1])
    share = torch.as_tensor(counts / counts.sum(), dtype=torch.float64)
    log_ref = torch.log(torch.as_tensor(pi_ref, dtype=torch.float64))
    theta = log_ref.clone().requires_grad_(True)
    history = {key: [] for key in ("policy", "loss", "weight", "grad_norm")}
    for step in range(steps + 1):
        logp = torch.log_softmax(theta, dim=0)
        if objective == "dpo":
            per_pair = dpo_loss(logp[w], logp[l], log_ref[w], log_ref[l], beta=beta)
            weight = torch.sigmoid(-beta * ((logp[w] - log_ref[w]) - (logp[l] - log_ref[l])))
        else:
            per_pair = -(logp[w] - logp[l])
            weight = torch.ones_like(per_pair)
        loss = (share * per_pair).sum()
        (grad,) = torch.autograd.grad(loss, theta)
        history["policy"].append(logp.exp().detach().numpy())
        history["loss"].append(loss.item())
        history["weight"].append(float((share * weight.detach()).sum()))
        history["grad_norm"].append(float(grad.norm()))
        if step < steps:
            with torch.no_grad():
                theta -= lr * grad
    return {key: np.array(value) for key, value in history.items()}
