"""PPO for language models (notebook 05): the token-level MDP, a value function, GAE,
the clipped surrogate, value clipping, whitening and an adaptive KL coefficient.

The token-level view: the state s_t is the prompt and the response so far (x, y_<t),
the action is the next token y_t, and the episode ends at the end token. The reward
is the KL penalty at every token and the reward model's score at the last one,

    r_t = -β · k(t) + [t = last] · r_φ(x, y)        (k(t): a per-token KL estimate, k1 by default)

(Ziegler et al. 2019; Ouyang et al. 2022). PPO-ptx (Ouyang et al. 2022, eq. 2) adds to the
objective γ · E_{x ~ D_pretrain}[log π(x)]: a pretraining mix that limits the "alignment tax"
(``ptx_loss``, ``ppo_step(ptx_coef=γ, ptx_blocks=...)``). Every tensor here is [B, T] over response
tokens, with a mask that is 1 on the response (its end token included) and 0 on the
padding after it; every loss is a mean over the masked-in tokens of the batch.
"""

from __future__ import annotations

import torch

from . import _checks
from .generation import Rollout, positions
from .logprobs import token_logprobs
from .policy_gradient import (_check_contiguous, _check_mask, _check_reward_inputs, _check_same_shape, kl_estimate,
                              masked_mean)


def values(value_model, rollout: Rollout) -> torch.Tensor:
    """V(s_t) for every response position of ``rollout``: [B, T] (0 on padding).

    ``value_model`` is a reward-model-shaped network (a backbone ``base_model`` and a
    scalar head ``score``, as from ``reward_model.reward_model_from_policy``; the
    course starts it as a copy of the reward model, as InstructGPT does). V(s_t)
    reads the hidden state at column P - 1 + t, the last token of (x, y_<t): the
    same column whose logits choose y_t. Positions as in ``generation.positions``."""
    if not hasattr(value_model, "base_model") or not hasattr(value_model, "score"):
        raise TypeError(f"values: value_model must have a backbone (base_model) and a scalar head (score), like "
                        f"a reward model; got {type(value_model).__name__}")
    if not isinstance(rollout, Rollout):
        raise TypeError(f"values: rollout must be a Rollout (from generation.rollout), got {type(rollout).__name__}")
    _checks.vocabulary("values", "rollout.input_ids", rollout.input_ids, value_model)
    p = rollout.prompt_length
    hidden = value_model.base_model(input_ids=rollout.input_ids, attention_mask=rollout.attention_mask,
                                    position_ids=positions(rollout.attention_mask)).last_hidden_state
    return value_model.score(hidden[:, p - 1:-1]).squeeze(-1).float() * rollout.response_mask


def token_rewards(score: torch.Tensor, logp: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor,
                  beta: float, kind: str = "k1") -> torch.Tensor:
    """r_t = -β · k(t) on every response token, plus r_φ(x, y) on the last one.

    score [B], logp and logp_ref [B, T], mask [B, T] (each row's 1s first, then 0s)
    -> [B, T], 0 on padding. Summed over t it is ``kl_penalised_reward``. A mask with holes
    (1, 0, 1, 0) is refused: the score goes on the last response token, which a hole would misplace."""
    m = _check_reward_inputs("token_rewards", score, logp, logp_ref, mask, beta)
    _check_contiguous("token_rewards", m)
    lengths = m.sum(-1).long()
    if (lengths == 0).any():
        raise ValueError("token_rewards: a row of mask is all 0 (a response with no token)")
    rewards = -beta * kl_estimate(logp, logp_ref, kind) * m
    rows = torch.arange(len(score), device=score.device)
    return rewards.index_put((rows, lengths - 1), score.to(rewards.dtype), accumulate=True)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016):

        δ_t = r_t + γ V(s_{t+1}) - V(s_t)        (V after the last token = 0: the episode ended)
        A_t = δ_t + γλ A_{t+1} = Σ_l (γλ)^l δ_{t+l}
        returns_t = A_t + V(s_t)                  (the value function's regression target)

    rewards, values, mask: [B, T], each mask row 1s then 0s -> (advantages, returns),
    [B, T] each, 0 on padding. λ = 1 gives Monte-Carlo returns minus V (unbiased, noisy);
    λ = 0 the one-step TD error (low variance, biased by V's errors). Computed without
    gradients: both are targets."""
    _checks.finite("gae", "rewards", _checks.tensor("gae", "rewards", rewards, dims=2, floating=True))
    _checks.finite("gae", "values", _checks.tensor("gae", "values", values, floating=True))
    _check_same_shape("gae", rewards=rewards, values=values)
    m = _check_mask("gae", mask, rewards)
    _check_contiguous("gae", m)   # a hole would end the episode early: its 0 resets the sum
    for name, value in (("gamma", gamma), ("lam", lam)):
        _checks.number("gae", name, value)
        if not 0 <= value <= 1:
            raise ValueError(f"gae: {name} must be in [0, 1], got {value}")
    rewards, values = rewards.detach(), values.detach()
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * m[:, t]   # padding: 0, and resets the sum
        next_value = values[:, t] * m[:, t]
        advantages[:, t] = next_advantage
    return advantages, (advantages + values) * m


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over the masked-in entries (0 on padding); with ``shift_mean=False``
    the mean is added back (only the scale changes). Advantages are whitened per batch so
    that the step size does not depend on the reward's scale."""
    _checks.finite("whiten", "values", _checks.tensor("whiten", "values", values, floating=True))
    m = _check_mask("whiten", mask, values)
    if not isinstance(shift_mean, bool):
        raise TypeError(f"whiten: shift_mean must be True or False, got {shift_mean!r}")
    if m.sum() < 2:
        raise ValueError("whiten: mask selects fewer than 2 entries; a std needs at least 2")
    mean = masked_mean(values, m)
    std = masked_mean((values - mean) ** 2, m).sqrt()
    out = (values - mean) / (std + 1e-8)
    return (out if shift_mean else out + mean) * m


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                        clip: float = 0.2) -> tuple[torch.Tensor, dict]:
    """PPO's clipped surrogate (Schulman et al. 2017), per token, as a loss:

        ρ_t = π_θ(y_t | s_t) / π_old(y_t | s_t) = exp(logp - old_logp)
        L = -mean_t min(ρ_t A_t, clip(ρ_t, 1 - ε, 1 + ε) A_t)

    logp [B, T] (with gradients), old_logp and advantages [B, T] (constants: the rollout's
    log-probs and GAE's advantages), mask [B, T] -> (scalar loss, metrics). Where the ratio
    has left [1 - ε, 1 + ε] in the direction the advantage pushes, the min picks the clipped
    term, whose gradient is 0: a token is not pushed further once it has moved ε.

    Metrics (floats): ``clip_fraction``, the share of tokens where the clipped term is the
    one taken (no gradient); ``approx_kl``, mean of k3 = (ρ - 1) - log ρ, an estimate of
    KL(π_old ‖ π_θ), how far this update has moved the policy."""
    for name, value in (("logp", logp), ("old_logp", old_logp), ("advantages", advantages)):
        _checks.finite("clipped_policy_loss", name, _checks.tensor("clipped_policy_loss", name, value, floating=True))
    _check_same_shape("clipped_policy_loss", logp=logp, old_logp=old_logp, advantages=advantages)
    m = _check_mask("clipped_policy_loss", mask, logp)
    _checks.number("clipped_policy_loss", "clip", clip, positive=True)
    log_ratio = logp - old_logp.detach()
    ratio = log_ratio.exp()
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantages
    loss = -masked_mean(torch.minimum(unclipped, clipped), m)
    with torch.no_grad():
        metrics = {"clip_fraction": float(masked_mean((clipped < unclipped).float(), m)),
                   "approx_kl": float(masked_mean(torch.expm1(-log_ratio) + log_ratio, m))}
    return loss, metrics


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       clip: float = 0.2) -> tuple[torch.Tensor, dict]:
    """The value function's loss with PPO's value clipping:

        V_clip = V_old + clip(V - V_old, -ε, ε)
        L_V = ½ · mean_t max((V - G)², (V_clip - G)²)         (G: GAE's returns)

    values [B, T] (with gradients), old_values and returns [B, T] (constants), mask [B, T]
    -> (scalar loss, metrics). The max makes the clipped error count whenever it is the
    larger, so a value cannot move more than ε from the rollout's in one epoch.
    Metrics: ``value_clip_fraction``, the share of tokens where the clipped error is taken."""
    for name, value in (("values", values), ("old_values", old_values), ("returns", returns)):
        _checks.finite("clipped_value_loss", name, _checks.tensor("clipped_value_loss", name, value, floating=True))
    _check_same_shape("clipped_value_loss", values=values, old_values=old_values, returns=returns)
    m = _check_mask("clipped_value_loss", mask, values)
    _checks.number("clipped_value_loss", "clip", clip, positive=True)
    old_values, returns = old_values.detach(), returns.detach()
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    error, clipped_error = (values - returns) ** 2, (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(error, clipped_error), m)
    with torch.no_grad():
        metrics = {"value_clip_fraction": float(masked_mean((clipped_error > error).float(), m))}
    return loss, metrics


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(G - V) / Var(G) over masked-in tokens: 1 when the value function predicts the
    returns exactly, 0 when it does no better than their mean, negative when worse."""
    _checks.finite("explained_variance", "values", _checks.tensor("explained_variance", "values", values,
                                                                  floating=True))
    _checks.finite("explained_variance", "returns", _checks.tensor("explained_variance", "returns", returns,
                                                                   floating=True))
    _check_same_shape("explained_variance", values=values, returns=returns)
    m = _check_mask("explained_variance", mask, values)
    if m.sum() < 2:
        raise ValueError("explained_variance: mask selects fewer than 2 entries")
    values, returns = values.detach(), returns.detach()
    var_returns = masked_mean((returns - masked_mean(returns, m)) ** 2, m)
    residual = returns - values
    var_residual = masked_mean((residual - masked_mean(residual, m)) ** 2, m)
    return float(1 - var_residual / var_returns) if var_returns > 0 else float("nan")


def ptx_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """PPO-ptx's pretraining term as a loss (Ouyang et al. 2022, eq. 2, whose objective adds
    γ · E_{x ~ D_pretrain}[log π_RL(x)]): the mean next-token negative log-likelihood of pretraining text,

        L_ptx = -(1/N) Σ_i Σ_{t ≥ 1} log π(x_t | x_<t)        (N: the predicted tokens, B · (T - 1))

    logits [B, T, V] of the policy on ``input_ids`` [B, T] (packed blocks of text, no padding, as from
    ``pretrain.pack``) -> scalar. ``ppo_step`` adds γ · L_ptx to every update's loss."""
    _checks.finite("ptx_loss", "logits", _checks.tensor("ptx_loss", "logits", logits, floating=True), allow_inf=True)
    _checks.tensor("ptx_loss", "input_ids", input_ids, dims=2, ids=True)
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(f"ptx_loss: expected logits [B, T, V] and input_ids [B, T], got {tuple(logits.shape)} "
                         f"and {tuple(input_ids.shape)}")
    if input_ids.shape[1] < 2:
        raise ValueError(f"ptx_loss: input_ids must hold at least 2 tokens a row (one to predict), got "
                         f"{input_ids.shape[1]}")
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= logits.shape[-1]:
        raise ValueError(f"ptx_loss: input_ids must be token ids in [0, {logits.shape[-1]}) (the logits' last "
                         f"dimension), got {int(input_ids.min())}..{int(input_ids.max())}")
    return -token_logprobs(logits[:, :-1], input_ids[:, 1:]).mean()


def adaptive_kl_beta(beta: float, kl: float, target: float, horizon: float, n_samples: int) -> float:
    """The adaptive KL coefficient of Ziegler et al. (2019), after a batch of ``n_samples``:

        e = clip(KL / KL_target - 1, -0.2, 0.2)
        β ← β · (1 + e · n_samples / horizon)

    KL above the target raises β (a stronger pull back to the reference), below lowers it;
    the clip and the horizon (in samples) keep each change small."""
    _checks.number("adaptive_kl_beta", "beta", beta, positive=True)
    _checks.number("adaptive_kl_beta", "kl", kl)
    _checks.number("adaptive_kl_beta", "target", target, positive=True)
    _checks.number("adaptive_kl_beta", "horizon", horizon, positive=True)
    _checks.integer("adaptive_kl_beta", "n_samples", n_samples, minimum=1)
    error = min(max(kl / target - 1, -0.2), 0.2)
    return float(beta * (1 + error * n_samples / horizon))


def ppo_step(policy, value_model, reference, reward_model, tokenizer, samples_per_prompt: int = 16,
             kl_target: float | None = None, horizon: float = 10_000, gamma: float = 1.0, lam: float = 0.95,
             clip: float = 0.2, value_clip: float = 0.2, value_coef: float = 0.1, entropy_coef: float = 0.0,
             epochs: int = 4, minibatches: int = 4, max_new_tokens: int = 48, max_grad_norm: float = 1.0,
             ptx_coef: float = 0.0, ptx_blocks: torch.Tensor | None = None, ptx_batch_size: int = 8):
    """One PPO iteration (rollout, then ``epochs`` passes of ``minibatches`` updates), as a ``step`` for
    ``rl.train_rl`` with ``models={"policy": policy, "value": value_model}`` and ``state={"beta": β}``:

    1. sample ``samples_per_prompt`` responses per prompt (``generation.rollout``), keeping π_old's log-probs;
    2. per-token rewards (``token_rewards``, β = ``state["beta"]``), values V_old, GAE, whitened advantages;
    3. for each epoch, a fresh seeded split into minibatches; per minibatch one optimiser step on
       ``clipped_policy_loss + value_coef · clipped_value_loss - entropy_coef · entropy``;
    4. with ``kl_target`` set, β adapts (``adaptive_kl_beta``) to the rollout's KL.

    PPO-ptx: with ``ptx_coef`` = γ > 0, every update adds γ · ``ptx_loss`` on ``ptx_batch_size`` rows drawn
    (seeded) from ``ptx_blocks`` ([N, T] token ids of pretraining text, ``pretrain.pack``), and the metrics gain
    ``ptx_loss``. γ = 0 (the default) is plain PPO, bit for bit: nothing is drawn or computed.

    Metrics: ``reward``, ``kl`` (mean Σ k1 of the rollout), ``entropy``, ``clip_fraction``,
    ``approx_kl``, ``value_loss``, ``value_clip_fraction`` (means over the updates), ``explained_variance``
    (V_old against the returns), ``length``, ``ended``. The step's name records its settings."""
    from .generation import decode, response_logprobs, rollout
    from .reward_model import score_responses
    from .rl import clip_and_step

    for name, model in (("policy", policy), ("value_model", value_model), ("reference", reference),
                        ("reward_model", reward_model)):
        _checks.model("ppo_step", name, model)
    if policy is reference:
        raise ValueError("ppo_step: reference must be a frozen copy of the policy (copy.deepcopy), not the policy")
    if value_model is reward_model:
        raise ValueError("ppo_step: value_model must be a copy of the reward model (copy.deepcopy): it is trained")
    _checks.tokenizer("ppo_step", "tokenizer", tokenizer)
    for name, value, minimum in (("samples_per_prompt", samples_per_prompt, 1), ("epochs", epochs, 1),
                                 ("minibatches", minibatches, 1), ("max_new_tokens", max_new_tokens, 1)):
        _checks.integer("ppo_step", name, value, minimum)
    if kl_target is not None:
        _checks.number("ppo_step", "kl_target", kl_target, positive=True)
    for name, value in (("horizon", horizon), ("clip", clip), ("value_clip", value_clip),
                        ("max_grad_norm", max_grad_norm)):
        _checks.number("ppo_step", name, value, positive=True)
    for name, value in (("value_coef", value_coef), ("entropy_coef", entropy_coef), ("ptx_coef", ptx_coef)):
        _checks.number("ppo_step", name, value, nonnegative=True)
    _checks.integer("ppo_step", "ptx_batch_size", ptx_batch_size, minimum=1)
    if ptx_coef > 0:
        if ptx_blocks is None:
            raise ValueError("ppo_step: ptx_coef > 0 needs ptx_blocks, the pretraining text as [N, T] token ids "
                             "(pretrain.pack)")
        _checks.tensor("ppo_step", "ptx_blocks", ptx_blocks, dims=2, ids=True)
        if ptx_blocks.shape[0] == 0 or ptx_blocks.shape[1] < 2:
            raise ValueError(f"ppo_step: ptx_blocks must hold at least one block of >= 2 tokens, got shape "
                             f"{tuple(ptx_blocks.shape)}")
        _checks.vocabulary("ppo_step", "ptx_blocks", ptx_blocks, policy)
        _checks.within_context("ppo_step", ptx_blocks.shape[1], model=policy,
                               said=f"ptx_blocks of {ptx_blocks.shape[1]} tokens exceed", fix="pack them with block")
    elif ptx_blocks is not None:
        raise ValueError("ppo_step: ptx_blocks given but ptx_coef is 0, so they would not be used; "
                         "set ptx_coef > 0 (InstructGPT's γ) or leave ptx_blocks out")
    for name, value in (("gamma", gamma), ("lam", lam)):
        _checks.number("ppo_step", name, value)
        if not 0 <= value <= 1:
            raise ValueError(f"ppo_step: {name} must be in [0, 1], got {value}")
    parameters = list(policy.parameters()) + list(value_model.parameters())

    def step(prompts, optimizer, state, seed):
        if "beta" not in state:
            raise ValueError("ppo_step: state must hold the KL coefficient, state={'beta': 0.1} for example")
        prompts = [p for p in prompts for _ in range(samples_per_prompt)]
        out = rollout(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed)
        mask = out.response_mask
        if len(prompts) < minibatches:
            raise ValueError(f"ppo_step: {len(prompts)} samples cannot make {minibatches} minibatches")
        with torch.no_grad():
            score = torch.tensor(score_responses(reward_model, tokenizer, prompts, decode(tokenizer, out)),
                                 dtype=torch.float32, device=mask.device)
            logp_ref = response_logprobs(reference, out)
            old_values = values(value_model, out)
        rewards = token_rewards(score, out.logprobs, logp_ref, mask, state["beta"])
        adv, returns = gae(rewards, old_values, mask, gamma, lam)
        adv = whiten(adv, mask)
        generator = torch.Generator().manual_seed(seed)
        ptx_generator = torch.Generator().manual_seed(seed + 1) if ptx_coef > 0 else None
        totals, updates = {}, 0
        for _ in range(epochs):
            for rows in torch.randperm(len(prompts), generator=generator).chunk(minibatches):
                mb, m = out.select(rows), mask[rows]
                logp, entropy = response_logprobs(policy, mb, entropy=True)
                policy_loss, pm = clipped_policy_loss(logp, out.logprobs[rows], adv[rows], m, clip)
                value_loss, vm = clipped_value_loss(values(value_model, mb), old_values[rows], returns[rows], m,
                                                    value_clip)
                mean_entropy = masked_mean(entropy, m)
                loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
                if ptx_coef > 0:
                    drawn = torch.randint(len(ptx_blocks), (ptx_batch_size,), generator=ptx_generator)
                    ids = ptx_blocks[drawn].to(mask.device)
                    pretraining = ptx_loss(policy(input_ids=ids).logits, ids)
                    loss = loss + ptx_coef * pretraining
                    pm = {**pm, "ptx_loss": float(pretraining.detach())}
                loss.backward()
                clip_and_step(optimizer, parameters, max_grad_norm)
                for key, v in {**pm, **vm, "value_loss": float(value_loss.detach()), "entropy": float(mean_entropy.detach())}.items():
                    totals[key] = totals.get(key, 0.0) + v
                updates += 1
        kl = float(((out.logprobs - logp_ref) * mask).sum(-1).mean())
        if kl_target is not None:
            state["beta"] = adaptive_kl_beta(state["beta"], kl, kl_target, horizon, len(prompts))
        return {"reward": float(score.mean()), "kl": kl, **{k: v / updates for k, v in totals.items()},
                "explained_variance": explained_variance(old_values, returns, mask),
                "length": float(mask.sum(-1).float().mean()), "ended": float(out.finished.float().mean())}

    step.__qualname__ = (f"ppo_step(samples_per_prompt={samples_per_prompt}, kl_target={kl_target}, "
                         f"horizon={horizon}, gamma={gamma}, lam={lam}, clip={clip}, value_clip={value_clip}, "
                         f"value_coef={value_coef}, entropy_coef={entropy_coef}, epochs={epochs}, "
                         f"minibatches={minibatches}, max_new_tokens={max_new_tokens}, max_grad_norm={max_grad_norm}"
                         + (f", ptx_coef={ptx_coef}, ptx_blocks={list(ptx_blocks.shape)}, ptx_batch_size={ptx_batch_size}"
                            if ptx_coef > 0 else "") + ")")
    return step
