"""Policy gradients for language models (notebook 04): the KL-penalised reward, KL
estimators, advantages (baselines), and the REINFORCE loss.

The contextual-bandit view: a prompt x is the context, a whole response y ~ π_θ(·|x)
is the action, and the reward is the reward model's score less a KL penalty to the
reference (SFT) policy,

    R(x, y) = r_φ(x, y) - β · Σ_t k(t),    k(t) an estimate of the KL at token t,

so the objective is E_{x, y~π_θ}[R(x, y)] and its gradient (Williams 1992) is

    ∇_θ E[R] = E[(R(x, y) - b(x)) · ∇_θ log π_θ(y | x)],

for any baseline b that does not depend on y. Here log π_θ(y|x) = Σ_t log π_θ(y_t|x, y_<t)
over response tokens; masks mark them (1 on the response and its end token, 0 on padding).
"""

from __future__ import annotations

import torch

from . import _checks

KL_ESTIMATORS = ("k1", "k2", "k3")
ADVANTAGES = ("none", "moving_average", "leave_one_out", "group_normalised")


def _check_same_shape(where: str, **tensors):
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{where}: {', '.join(shapes)} must share one shape, got "
                         + ", ".join(f"{n} {s}" for n, s in shapes.items()))


def _check_reward_inputs(where: str, score, logp, logp_ref, mask, beta) -> torch.Tensor:
    """score [B], logp and logp_ref [B, T], a mask of logp's shape and beta >= 0, checked; returns the mask
    as floats."""
    _checks.finite(where, "score", _checks.tensor(where, "score", score, dims=1, floating=True))
    _checks.finite(where, "logp", _checks.tensor(where, "logp", logp, dims=2, floating=True))
    _checks.finite(where, "logp_ref", _checks.tensor(where, "logp_ref", logp_ref, floating=True))
    _checks.number(where, "beta", beta, nonnegative=True)
    if score.shape[0] != logp.shape[0]:
        raise ValueError(f"{where}: score has {score.shape[0]} entries but logp has {logp.shape[0]} rows")
    return _check_mask(where, mask, logp)


def _check_mask(where: str, mask, like):
    """``mask`` (0/1: bool, integer or float) of ``like``'s shape, as ``like``'s float dtype."""
    _checks.tensor(where, "mask", mask)
    if mask.shape != like.shape:
        raise ValueError(f"{where}: mask must have the shape {tuple(like.shape)} of the values, got {tuple(mask.shape)}")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError(f"{where}: mask must hold 0 and 1 only")
    return mask.to(like.dtype if like.is_floating_point() else torch.float32)


def _check_contiguous(where: str, mask: torch.Tensor) -> None:
    """Each row of a [B, T] 0/1 ``mask`` is its 1s first, then its 0s (a response without holes)."""
    rises = mask[:, 1:] > mask[:, :-1]
    if rises.any():
        row = int(rises.any(-1).nonzero()[0])
        shown = mask[row].long().tolist()
        raise ValueError(f"{where}: mask row {row} is {shown[:12]}{'...' if len(shown) > 12 else ''}; each row "
                         "must be 1s first, then 0s (one contiguous response, no holes)")


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over all entries, or along ``dim``).

    values, mask: one shape (mask 0/1, bool or numbers). Σ m·v / Σ m; padding counts for nothing.
    ``values`` must be finite, on padding too (0 · NaN is NaN)."""
    _checks.finite("masked_mean", "values", _checks.tensor("masked_mean", "values", values, floating=True))
    m = _check_mask("masked_mean", mask, values)
    if dim is not None:
        _checks.integer("masked_mean", "dim", dim)
        if not -values.dim() <= dim < values.dim():
            raise ValueError(f"masked_mean: dim={dim} is out of range for values of shape {tuple(values.shape)}")
    total = m.sum() if dim is None else m.sum(dim)
    if (total == 0).any():
        raise ValueError("masked_mean: mask selects no entry (of a row, with dim) to average")
    return (values * m).sum() / total if dim is None else (values * m).sum(dim) / total


def kl_estimate(logp: torch.Tensor, logp_ref: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-sample estimates of KL(π ‖ π_ref) from samples y ~ π (Schulman, "Approximating
    KL divergence", 2020). With the log-ratio ℓ = log π(y) - log π_ref(y):

        k1 = ℓ                      unbiased; high variance; negative on some samples
        k2 = ℓ² / 2                 biased (exact to second order); low variance; >= 0
        k3 = (e^{-ℓ} - 1) + ℓ       unbiased (E_π[π_ref/π] = 1); low variance; >= 0

    logp, logp_ref: one shape (e.g. [B, T] per token) -> that shape. Elementwise; mask
    padding afterwards."""
    _checks.finite("kl_estimate", "logp", _checks.tensor("kl_estimate", "logp", logp, floating=True))
    _checks.finite("kl_estimate", "logp_ref", _checks.tensor("kl_estimate", "logp_ref", logp_ref, floating=True))
    _check_same_shape("kl_estimate", logp=logp, logp_ref=logp_ref)
    _checks.choice("kl_estimate", "kind", kind, KL_ESTIMATORS)
    log_ratio = logp - logp_ref
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio ** 2
    return torch.expm1(-log_ratio) + log_ratio


def kl_penalised_reward(score: torch.Tensor, logp: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor,
                        beta: float, kind: str = "k1") -> torch.Tensor:
    """R(x, y) = r_φ(x, y) - β · Σ_t m_t · k(t): the reward of a whole response.

    score [B] (the reward model's r_φ), logp and logp_ref [B, T] (per response token,
    under the policy that sampled and under the reference), mask [B, T] -> [B].
    With k1 (the default) Σ_t k(t) = log π(y|x) - log π_ref(y|x), whose mean over
    samples is exactly KL(π ‖ π_ref)."""
    m = _check_reward_inputs("kl_penalised_reward", score, logp, logp_ref, mask, beta)
    return score - beta * (kl_estimate(logp, logp_ref, kind) * m).sum(-1)


def _check_rewards(where: str, rewards, group_size):
    _checks.finite(where, "rewards", _checks.tensor(where, "rewards", rewards, dims=1, floating=True))
    _checks.integer(where, "group_size", group_size, minimum=1)
    if rewards.shape[0] % group_size:
        raise ValueError(f"{where}: rewards has {rewards.shape[0]} entries, not a multiple of group_size={group_size} "
                         "(samples of one prompt must be consecutive, group_size per prompt)")


def advantages(rewards: torch.Tensor, method: str, group_size: int = 1, baseline: float = 0.0,
               eps: float = 1e-6) -> torch.Tensor:
    """The advantage A_i of each sample: how much better than expected its reward is.

    rewards [N] (N = prompts × group_size, the samples of one prompt consecutive) -> [N]:

        "none"               A_i = R_i                                    (plain REINFORCE)
        "moving_average"     A_i = R_i - b                                (b: ``baseline``, a running mean
                                                                           of past rewards, see ``update_baseline``)
        "leave_one_out"      A_i = R_i - 1/(k-1) Σ_{j≠i} R_j              (RLOO, Ahmadian et al. 2024;
                                                                           k = group_size >= 2)
        "group_normalised"   A_i = (R_i - mean_g R) / (std_g R + eps)      (GRPO, Shao et al. 2024; std with
                                                                           Bessel's correction, as TRL)

    Leave-one-out keeps the estimator unbiased (R_j does not depend on y_i); equals
    k/(k-1) · (R_i - mean_g R). GRPO's division by the group's std rescales every
    prompt's advantages to unit size: prompts where all samples score alike get
    their small differences blown up (``eps`` keeps an all-equal group at 0)."""
    _checks.choice("advantages", "method", method, ADVANTAGES)
    _check_rewards("advantages", rewards, group_size)
    _checks.number("advantages", "baseline", baseline)
    _checks.number("advantages", "eps", eps, positive=True)
    if method in ("leave_one_out", "group_normalised") and group_size < 2:
        raise ValueError(f"advantages: method={method!r} compares the samples of one prompt: group_size must be "
                         f">= 2, got {group_size}")
    if method == "none":
        return rewards.clone()
    if method == "moving_average":
        return rewards - baseline
    groups = rewards.view(-1, group_size)
    if method == "leave_one_out":
        others = (groups.sum(-1, keepdim=True) - groups) / (group_size - 1)
        return (groups - others).reshape(-1)
    return ((groups - groups.mean(-1, keepdim=True)) / (groups.std(-1, keepdim=True) + eps)).reshape(-1)


def update_baseline(baseline: float, rewards: torch.Tensor, decay: float = 0.9) -> float:
    """b ← decay · b + (1 - decay) · mean(rewards): the moving-average baseline after a batch.

    Use it *after* computing the batch's advantages, so a sample's own reward is not
    in its baseline (that would bias the estimate)."""
    _checks.number("update_baseline", "baseline", baseline)
    _checks.finite("update_baseline", "rewards", _checks.tensor("update_baseline", "rewards", rewards, dims=1,
                                                                floating=True))
    if not rewards.numel():
        raise ValueError("update_baseline: rewards is empty")
    _checks.number("update_baseline", "decay", decay)
    if not 0 <= decay < 1:
        raise ValueError(f"update_baseline: decay must be in [0, 1), got {decay}")
    return float(decay * baseline + (1 - decay) * rewards.mean())


def reinforce_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-1/B Σ_i A_i · Σ_t m_it · log π_θ(y_it | x_i, y_i,<t): minus the REINFORCE surrogate.

    logp [B, T] (per response token, with gradients), advantages [B] (constants:
    detached here), mask [B, T] -> scalar. Its gradient is minus the policy-gradient
    estimate (1/B) Σ_i A_i ∇ log π_θ(y_i | x_i); its value means nothing by itself.
    One sum per sequence (a sequence-level loss, as RLOO's); padding contributes 0."""
    _checks.finite("reinforce_loss", "logp", _checks.tensor("reinforce_loss", "logp", logp, dims=2, floating=True))
    _checks.finite("reinforce_loss", "advantages", _checks.tensor("reinforce_loss", "advantages", advantages, dims=1,
                                                                  floating=True))
    if advantages.shape[0] != logp.shape[0]:
        raise ValueError(f"reinforce_loss: advantages has {advantages.shape[0]} entries but logp has "
                         f"{logp.shape[0]} rows")
    m = _check_mask("reinforce_loss", mask, logp)
    return -(advantages.detach() * (logp * m).sum(-1)).mean()


def reinforce_step(policy, reference, reward_model, tokenizer, method: str = "leave_one_out", group_size: int = 4,
                   beta: float = 0.05, max_new_tokens: int = 48, max_grad_norm: float = 1.0, decay: float = 0.9):
    """One iteration of REINFORCE with the chosen baseline, as a ``step`` for ``rl.train_rl``:

    1. sample ``group_size`` responses per prompt from ``policy`` (``generation.rollout``,
       temperature 1), keeping their log-probs;
    2. score them: R = r_φ(x, y) - β Σ_t k1(t), the reward model reading the decoded text
       as it reads any text (``reward_model.score_responses``), the reference's
       log-probs from one forward pass;
    3. advantages (``advantages(R, method, group_size)``; for "moving_average" the
       baseline is ``state["baseline"]``, updated after the batch);
    4. one optimiser step on ``reinforce_loss``, the gradient's norm clipped.

    Returns ``step(prompts, optimizer, state, seed) -> metrics``: ``reward`` (r_φ),
    ``kl`` (mean Σ_t k1, the KL to the reference), ``kl_penalised_reward`` (R),
    ``length`` (response tokens), ``ended`` (share that ended), ``grad_norm``.
    The step's name records its settings, so a run's checkpoint records them too.
    """
    from .generation import decode, response_logprobs, rollout
    from .reward_model import score_responses
    from .rl import clip_and_step

    for name, model in (("policy", policy), ("reference", reference), ("reward_model", reward_model)):
        _checks.model("reinforce_step", name, model)
    if policy is reference:
        raise ValueError("reinforce_step: reference must be a frozen copy of the policy (copy.deepcopy), not the "
                         "policy itself: the KL would always be 0")
    _checks.tokenizer("reinforce_step", "tokenizer", tokenizer)
    _checks.choice("reinforce_step", "method", method, ADVANTAGES)
    _checks.integer("reinforce_step", "group_size", group_size, minimum=2 if method in ("leave_one_out",
                                                                                           "group_normalised") else 1)
    _checks.number("reinforce_step", "beta", beta, nonnegative=True)
    _checks.integer("reinforce_step", "max_new_tokens", max_new_tokens, minimum=1)
    _checks.number("reinforce_step", "max_grad_norm", max_grad_norm, positive=True)
    _checks.number("reinforce_step", "decay", decay)
    if not 0 <= decay < 1:
        raise ValueError(f"reinforce_step: decay must be in [0, 1), got {decay}")

    def step(prompts, optimizer, state, seed):
        prompts = [p for p in prompts for _ in range(group_size)]          # each prompt's group, consecutive
        out = rollout(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed)
        score = torch.tensor(score_responses(reward_model, tokenizer, prompts, decode(tokenizer, out)),
                             dtype=torch.float32, device=out.logprobs.device)
        with torch.no_grad():
            logp_ref = response_logprobs(reference, out)
        reward = kl_penalised_reward(score, out.logprobs, logp_ref, out.response_mask, beta)
        adv = advantages(reward, method, group_size, baseline=state.get("baseline", 0.0))
        loss = reinforce_loss(response_logprobs(policy, out), adv, out.response_mask)
        loss.backward()
        grad_norm = clip_and_step(optimizer, policy.parameters(), max_grad_norm)
        if method == "moving_average":
            state["baseline"] = update_baseline(state.get("baseline", 0.0), reward, decay)
        return {"reward": score.mean(), "kl": ((out.logprobs - logp_ref) * out.response_mask).sum(-1).mean(),
                "kl_penalised_reward": reward.mean(), "length": out.response_mask.sum(-1).float().mean(),
                "ended": out.finished.float().mean(), "grad_norm": grad_norm}

    step.__qualname__ = (f"reinforce_step(method={method}, group_size={group_size}, beta={beta}, "
                         f"max_new_tokens={max_new_tokens}, max_grad_norm={max_grad_norm}, decay={decay})")
    return step
