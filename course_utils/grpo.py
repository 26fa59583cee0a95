"""GRPO with a verifier as the reward (notebook 10): group-normalised advantages, the clipped
per-token loss and its three normalisations, dynamic sampling, and pass@k.

For each prompt x, sample a group of G responses y_1..y_G from the policy that sampled
(π_old), score each with the verifier (r_i), and give every token of y_i the advantage

    A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)                (Shao et al. 2024, eq. 3)

A group whose responses all pass, or all fail, has A_i = 0 for every i: it teaches nothing.
DAPO's dynamic sampling (Yu et al. 2025) leaves such groups out of the batch.

The per-token loss is PPO's clipped surrogate with ratio ρ_it = π_θ(y_it | x, y_i,<t) / π_old(...),

    ℓ_it = -min(ρ_it A_i, clip(ρ_it, 1 - ε, 1 + ε_high) A_i) + β k3_it    (k3: see policy_gradient.kl_estimate)

and the three ``loss_type``s differ only in how they average ℓ over the tokens (m: the response mask):

    "grpo"     1/B Σ_i (1/|y_i|) Σ_t m_it ℓ_it      per-sequence mean (GRPO, eq. 3): a long response's
                                                      tokens weigh less, so long wrong answers are punished less
    "dapo"     Σ_it m_it ℓ_it / Σ_it m_it             token-level mean (DAPO, eq. 8): every token weighs the same
    "dr_grpo"  Σ_it m_it ℓ_it / (B · L)               a constant, L = the longest a response may be
                                                      (Dr. GRPO, Liu et al. 2025): no length bias

These are the ``loss_type`` options of TRL's ``GRPOTrainer`` (pinned 1.16), equal on the same batch; TRL's
KL term is this one with ``use_bias_correction_kl=False`` (its default multiplies it by ρ, which is 1 on-policy).
"""

from __future__ import annotations

import numpy as np
import torch

from . import _checks
from .policy_gradient import _check_mask, _check_rewards, advantages as _advantages

LOSS_TYPES = ("grpo", "dapo", "dr_grpo")


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """A_i = (r_i - mean_g r) / (std_g r + eps), the std with Bessel's correction (as TRL, whose
    eps is 1e-4). rewards [N] (N = prompts × group_size, each prompt's samples consecutive) -> [N].
    A group whose rewards are all equal gets 0 (not 0/0)."""
    _check_rewards("group_advantages", rewards, group_size)
    return _advantages(rewards, "group_normalised", group_size, eps=eps)


def zero_signal_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[N / group_size] bool: which groups hold one reward only (all pass or all fail), so that
    every advantage in them is 0. rewards [N], each prompt's samples consecutive."""
    _check_rewards("zero_signal_groups", rewards, group_size)
    groups = rewards.view(-1, group_size)
    return (groups == groups[:, :1]).all(-1)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              loss_type: str = "grpo", epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.0,
              ref_logp: torch.Tensor | None = None, max_length: int | None = None) -> torch.Tensor:
    """The clipped per-token GRPO loss, averaged as ``loss_type`` says (see the module's docstring).

    logp [B, T] (the policy's log-probs of the sampled tokens, with gradients), old_logp [B, T]
    (of the policy that sampled: constants), advantages [B] (constants), mask [B, T] (1 on
    response tokens) -> scalar. ``epsilon_high`` defaults to ``epsilon`` (DAPO's clip-higher sets
    it larger). ``beta`` > 0 adds β·k3 per token, with ``ref_logp`` [B, T] the reference's log-probs.
    ``max_length``: L of ``"dr_grpo"`` (required there; ``T`` if the batch is as long as a response
    may be). A row of ``mask`` with no 1 adds nothing (as TRL: its length counts as 1)."""
    where = "grpo_loss"
    _checks.finite(where, "logp", _checks.tensor(where, "logp", logp, dims=2, floating=True))
    _checks.finite(where, "old_logp", _checks.tensor(where, "old_logp", old_logp, dims=2, floating=True))
    _checks.finite(where, "advantages", _checks.tensor(where, "advantages", advantages, dims=1, floating=True))
    if old_logp.shape != logp.shape or advantages.shape[0] != logp.shape[0]:
        raise ValueError(f"{where}: logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and advantages "
                         f"{tuple(advantages.shape)} must be [B, T], [B, T] and [B]")
    m = _check_mask(where, mask, logp)
    _checks.choice(where, "loss_type", loss_type, LOSS_TYPES)
    _checks.number(where, "epsilon", epsilon, positive=True)
    epsilon_high = epsilon if epsilon_high is None else _checks.number(where, "epsilon_high", epsilon_high,
                                                                       positive=True)
    _checks.number(where, "beta", beta, nonnegative=True)
    if beta and (ref_logp is None or not torch.is_tensor(ref_logp) or ref_logp.shape != logp.shape):
        raise ValueError(f"{where}: beta={beta} needs ref_logp, the reference's log-probs of shape {tuple(logp.shape)}")
    if beta:
        _checks.finite(where, "ref_logp", ref_logp)
    if loss_type == "dr_grpo":
        if max_length is None:
            raise ValueError(f"{where}: loss_type='dr_grpo' divides by B · max_length; pass max_length (the most "
                             "tokens a response may have)")
        _checks.integer(where, "max_length", max_length, minimum=logp.shape[1])
    ratio = torch.exp(logp - old_logp.detach())
    adv = advantages.detach()[:, None]
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - epsilon, 1 + epsilon_high) * adv)
    if beta:
        delta = ref_logp.detach() - logp
        per_token = per_token + beta * (torch.exp(delta) - delta - 1)
    if loss_type == "grpo":
        return ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()
    if loss_type == "dapo":
        return (per_token * m).sum() / m.sum().clamp(min=1)
    return (per_token * m).sum() / (logp.shape[0] * max_length)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c pass (Chen et al. 2021, eq. 1):

        pass@k = 1 - C(n - c, k) / C(n, k),

    the chance that k of the n samples drawn without replacement hold at least one pass. Computed
    as 1 - Π_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials. 0 <= c <= n, 1 <= k <= n."""
    n = _checks.integer("pass_at_k", "n", n, minimum=1)
    c = _checks.integer("pass_at_k", "c", c, minimum=0)
    k = _checks.integer("pass_at_k", "k", k, minimum=1)
    if c > n or k > n:
        raise ValueError(f"pass_at_k: need c <= n and k <= n (c passes and k draws among n samples), got n={n}, "
                         f"c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_curve(counts, n: int, ks) -> np.ndarray:
    """The mean over tasks of ``pass_at_k(n, c, k)`` for each k in ``ks``: counts [tasks] (passes of
    each task among its n samples) -> [len(ks)]."""
    _checks.sequence("pass_at_k_curve", "counts", counts, "pass counts")
    _checks.sequence("pass_at_k_curve", "ks", ks, "values of k")
    return np.array([np.mean([pass_at_k(n, int(c), int(k)) for c in counts]) for k in ks])


def grpo_step(policy, reference, tokenizer, reward, group_size: int = 8, loss_type: str = "grpo",
              beta: float = 0.0, epsilon: float = 0.2, dynamic_sampling: bool = False, max_new_tokens: int = 48,
              max_grad_norm: float = 1.0):
    """One iteration of GRPO, as a ``step`` for ``rl.train_rl``:

    1. sample ``group_size`` responses per prompt from ``policy`` (``generation.rollout``,
       temperature 1), keeping their log-probs (π_old);
    2. score them with ``reward(prompts, responses) -> list of floats`` (e.g.
       ``verifiers.reward_function()``);
    3. group-normalised advantages; with ``dynamic_sampling``, the groups with no signal
       (``zero_signal_groups``) are left out of the loss (DAPO resamples to refill the batch;
       here the batch is smaller);
    4. one optimiser step on ``grpo_loss(loss_type)``, with β·k3 to ``reference`` if ``beta`` > 0,
       and L = ``max_new_tokens`` for ``"dr_grpo"``.

    One update per batch, so the ratio is 1 and the clip never acts (TRL's default,
    ``num_iterations=1``). Returns ``step(prompts, optimizer, state, seed) -> metrics``: ``pass``
    (mean reward), ``zero_signal`` (share of groups with no signal), ``tokens`` (response tokens,
    the end token included), ``kl`` (mean Σ_t log π/π_ref), ``ended``, ``grad_norm``."""
    from .generation import decode, response_logprobs, rollout
    from .rl import clip_and_step

    for name, model in (("policy", policy), ("reference", reference)):
        _checks.model("grpo_step", name, model)
    if policy is reference:
        raise ValueError("grpo_step: reference must be a frozen copy of the policy (copy.deepcopy), not the policy")
    _checks.tokenizer("grpo_step", "tokenizer", tokenizer)
    if not callable(reward):
        raise TypeError(f"grpo_step: reward must be a function (prompts, responses) -> rewards, got "
                        f"{type(reward).__name__}")
    _checks.integer("grpo_step", "group_size", group_size, minimum=2)
    _checks.choice("grpo_step", "loss_type", loss_type, LOSS_TYPES)
    _checks.number("grpo_step", "beta", beta, nonnegative=True)
    _checks.number("grpo_step", "epsilon", epsilon, positive=True)
    if not isinstance(dynamic_sampling, bool):
        raise TypeError(f"grpo_step: dynamic_sampling must be True or False, got {dynamic_sampling!r}")
    _checks.integer("grpo_step", "max_new_tokens", max_new_tokens, minimum=1)
    _checks.number("grpo_step", "max_grad_norm", max_grad_norm, positive=True)

    def step(prompts, optimizer, state, seed):
        prompts = [p for p in prompts for _ in range(group_size)]
        out = rollout(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed)
        rewards = torch.tensor(reward(prompts, decode(tokenizer, out)), dtype=torch.float32)
        adv = group_advantages(rewards, group_size)
        empty = zero_signal_groups(rewards, group_size)
        with torch.no_grad():
            logp_ref = response_logprobs(reference, out)
        kl = ((out.logprobs - logp_ref) * out.response_mask).sum(-1).mean()
        keep = ~empty.repeat_interleave(group_size) if dynamic_sampling else torch.ones_like(rewards, dtype=bool)
        grad_norm = 0.0
        if keep.any():
            rows = out.select(keep.nonzero().squeeze(-1))
            loss = grpo_loss(response_logprobs(policy, rows), rows.logprobs, adv[keep], rows.response_mask,
                             loss_type, epsilon, beta=beta, ref_logp=logp_ref[keep], max_length=max_new_tokens)
            loss.backward()
            grad_norm = clip_and_step(optimizer, policy.parameters(), max_grad_norm)
        return {"pass": rewards.mean(), "zero_signal": empty.float().mean(),
                "tokens": out.response_mask.sum(-1).float().mean(), "kl": kl, "ended": out.finished.float().mean(),
                "grad_norm": grad_norm}

    step.__qualname__ = (f"grpo_step(reward={getattr(reward, '__qualname__', reward)}, group_size={group_size}, "
                         f"loss_type={loss_type}, beta={beta}, epsilon={epsilon}, dynamic_sampling={dynamic_sampling}, "
                         f"max_new_tokens={max_new_tokens}, max_grad_norm={max_grad_norm})")
    return step


@torch.no_grad()
def pass_counts(policy, tokenizer, tasks, verifier, n: int = 64, max_new_tokens: int = 48, seed: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, list[list[str]]]:
    """Sample ``n`` responses to each task's prompt and count those that ``verifier(task, text)``
    passes: ``(counts [tasks], responses: one list of n texts per task)``."""
    from .generation import generate

    _checks.sequence("pass_counts", "tasks", tasks, "tasks (verifiers.Task)")
    if not callable(verifier):
        raise TypeError(f"pass_counts: verifier must be a function (task, text) -> bool, got {type(verifier).__name__}")
    _checks.integer("pass_counts", "n", n, minimum=1)
    prompts = [t.prompt for t in tasks for _ in range(n)]
    texts = generate(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                     seed=seed)["responses"]
    groups = [texts[i * n:(i + 1) * n] for i in range(len(tasks))]
    return np.array([sum(bool(verifier(t, y)) for y in g) for t, g in zip(tasks, groups)]), groups

