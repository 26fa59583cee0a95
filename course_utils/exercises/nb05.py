"""Notebook 05, PPO: GAE, the clipped surrogate, the clipped value loss, the adaptive KL controller."""

import torch

from ..policy_gradient import masked_mean
from ..ppo import adaptive_kl_beta, clipped_policy_loss, clipped_value_loss, gae
from ._runner import Case, Exercise, Mistake


def clipped_surrogate(logp, old_logp, advantages, mask, clip=0.2):
    """The loss of ``ppo.clipped_policy_loss`` without its metrics: -mean_t min(ρ A, clip(ρ, 1 ± ε) A)
    (Schulman et al. 2017, eq. 7). logp, old_logp, advantages, mask: [B, T] -> scalar."""
    return clipped_policy_loss(logp, old_logp, advantages, mask, clip)[0]


def value_loss(values, old_values, returns, mask, clip=0.2):
    """The loss of ``ppo.clipped_value_loss`` without its metrics: ½ mean_t max((V - G)², (V_clip - G)²).
    values, old_values, returns, mask: [B, T] -> scalar."""
    return clipped_value_loss(values, old_values, returns, mask, clip)[0]


# ---------------------------------------------------------------- GAE

def _gae_cases():
    g = torch.Generator().manual_seed(5)
    rewards = torch.randn(3, 6, generator=g)
    values = torch.randn(3, 6, generator=g)   # padding holds numbers too: only the mask says where a response ends
    ragged = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    return [Case((torch.tensor([[0.0, -0.1, 1.0], [0.5, 0.2, 0.0]]), torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.0]]),
                  torch.tensor([[1, 1, 1], [1, 1, 0]]), 0.9, 0.8), label="the notebook's two responses, γ = 0.9, λ = 0.8"),
            Case((rewards, values, ragged), label="three responses of 6, 3 and 5 tokens, γ and λ left at 1 and 0.95"),
            Case((rewards, values, ragged, 1.0, 1.0), label="λ = 1: the Monte-Carlo return minus V"),
            Case((rewards, values, ragged, 0.95, 0.0), label="λ = 0: the one-step TD error"),
            Case((torch.tensor([[2.0, 7.0]]), torch.tensor([[0.5, 3.0]]), torch.tensor([[1, 0]]), 0.9, 0.8),
                 label="a one-token response: A = r - V")]


def _gae_unmasked(rewards, values, mask, gamma=1.0, lam=0.95):
    advantages = torch.zeros_like(rewards)
    next_value, next_advantage = torch.zeros_like(rewards[:, 0]), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_advantage = rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * next_advantage
        next_value = values[:, t]
        advantages[:, t] = next_advantage
    return advantages * mask, (advantages + values) * mask


def _gae_forwards(rewards, values, mask, gamma=1.0, lam=0.95):
    m = mask.to(rewards.dtype)
    next_values = torch.cat([values[:, 1:] * m[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    deltas = (rewards + gamma * next_values - values) * m
    advantages, previous = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1]):
        previous = deltas[:, t] + gamma * lam * previous
        advantages[:, t] = previous * m[:, t]
    return advantages, (advantages + values) * m


def _gae_returns_are_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    advantages, _ = gae(rewards, values, mask, gamma, lam)
    return advantages, advantages


def _gae_lambda_only(rewards, values, mask, gamma=1.0, lam=0.95):
    m = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    next_value, next_advantage = torch.zeros_like(rewards[:, 0]), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_advantage = (rewards[:, t] + gamma * next_value - values[:, t] + lam * next_advantage) * m[:, t]
        next_value = values[:, t] * m[:, t]
        advantages[:, t] = next_advantage
    return advantages, (advantages + values) * m


# ---------------------------------------------------------------- the clipped surrogate

def _logps(g, b, t):
    return -torch.rand(b, t, generator=g) * 3


def _surrogate_cases():
    g = torch.Generator().manual_seed(50)
    lp = _logps(g, 3, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    advantages = torch.randn(3, 5, generator=g)
    return [Case((lp, lp.clone(), advantages, mask), label="on-policy: every ratio is 1"),
            Case((lp, lp + 0.4 * torch.randn(3, 5, generator=g), advantages, mask),
                 label="after some steps: ratios on both sides of [0.8, 1.2]"),
            Case((lp, lp - 0.3 * torch.randn(3, 5, generator=g), advantages, mask, 0.1), label="ε = 0.1"),
            Case((torch.log(torch.tensor([[1.3, 0.7, 1.3, 0.7]])), torch.zeros(1, 4), torch.tensor([[1.0, 1.0, -1.0, -1.0]]),
                  torch.ones(1, 4, dtype=torch.long)), label="the notebook's table: ratios 1.3 and 0.7, A = ±1"),
            Case((lp[:1, :1], lp[:1, :1] + 0.5, torch.tensor([[-2.0]]), torch.ones(1, 1, dtype=torch.long)),
                 label="a single token, made less likely with A < 0: clipped")]


def _surrogate_unclipped(logp, old_logp, advantages, mask, clip=0.2):
    return -masked_mean(torch.exp(logp - old_logp.detach()) * advantages.detach(), mask)


def _surrogate_max(logp, old_logp, advantages, mask, clip=0.2):
    ratio, a = torch.exp(logp - old_logp.detach()), advantages.detach()
    return -masked_mean(torch.maximum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a), mask)


def _surrogate_objective(logp, old_logp, advantages, mask, clip=0.2):
    return -clipped_surrogate(logp, old_logp, advantages, mask, clip)


def _surrogate_unmasked(logp, old_logp, advantages, mask, clip=0.2):
    ratio, a = torch.exp(logp - old_logp.detach()), advantages.detach()
    return -(torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a) * mask).mean()


def _surrogate_log_ratio(logp, old_logp, advantages, mask, clip=0.2):
    ratio, a = logp - old_logp.detach(), advantages.detach()
    return -masked_mean(torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a), mask)


# ---------------------------------------------------------------- the clipped value loss

def _value_cases():
    g = torch.Generator().manual_seed(51)
    old = torch.randn(3, 5, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    returns = old + torch.randn(3, 5, generator=g)
    return [Case((old.clone(), old, returns, mask), label="before the first update: V = V_old"),
            Case((old + 0.5 * torch.randn(3, 5, generator=g), old, returns, mask),
                 label="after some updates: some values moved past ±0.2"),
            Case((old + 0.3 * torch.randn(3, 5, generator=g), old, returns, mask, 0.5), label="ε_V = 0.5"),
            Case((torch.tensor([[0.1, 0.5, -0.5, 0.5]]), torch.zeros(1, 4), torch.tensor([[1.0, 1.0, 1.0, -1.0]]),
                  torch.ones(1, 4, dtype=torch.long)), label="the notebook's four tokens"),
            Case((torch.tensor([[0.9]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.ones(1, 1, dtype=torch.long)),
                 label="one token that moved 0.9 toward its target: clipped, no gradient")]


def _value_min(values, old_values, returns, mask, clip=0.2):
    old_values, returns = old_values.detach(), returns.detach()
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.minimum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def _value_clamps_value(values, old_values, returns, mask, clip=0.2):
    returns = returns.detach()
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (values.clamp(-clip, clip) - returns) ** 2), mask)


def _value_no_half(values, old_values, returns, mask, clip=0.2):
    return 2 * value_loss(values, old_values, returns, mask, clip)


def _value_unclipped(values, old_values, returns, mask, clip=0.2):
    return 0.5 * masked_mean((values - returns.detach()) ** 2, mask)


# ---------------------------------------------------------------- the adaptive KL controller

def _controller_cases():
    return [Case((0.3, 2.0, 1.0, 1000.0, 64), label="KL twice the target: e is clipped at +0.2"),
            Case((0.3, 0.9, 1.0, 1000.0, 64), label="KL a little under the target"),
            Case((0.1, 6.5, 6.0, 10000.0, 512), label="Ziegler et al.'s target of 6 nats"),
            Case((0.3, 1.0, 1.0, 1000.0, 64), label="KL on target: β stays"),
            Case((0.05, 0.0, 1.0, 100.0, 100), label="KL 0 and n = H: β falls by a fifth")]


def _controller_unclipped(beta, kl, target, horizon, n_samples):
    return beta * (1 + (kl / target - 1) * n_samples / horizon)


def _controller_sign(beta, kl, target, horizon, n_samples):
    return beta * (1 - min(max(kl / target - 1, -0.2), 0.2) * n_samples / horizon)


def _controller_no_rate(beta, kl, target, horizon, n_samples):
    return beta * (1 + min(max(kl / target - 1, -0.2), 0.2))


EXERCISES = [
    Exercise(
        name="gae", notebook="05", reference=gae, cases=_gae_cases,
        mistakes=(Mistake(_gae_unmasked, "the mask ends each response: after its last token V = 0 and A = 0, so "
                                         "zero the padding inside the loop (multiply by mask[:, t]), not only at the end"),
                  Mistake(_gae_forwards, "GAE runs backwards, from the last token to the first: "
                                         "A_t = δ_t + γλ A_{t+1} needs A_{t+1} first"),
                  Mistake(_gae_lambda_only, "the recursion discounts by γλ, not by λ alone: A_t = δ_t + γλ A_{t+1}"),
                  Mistake(_gae_returns_are_advantages, "the returns are G_t = A_t + V(s_t), the value model's "
                                                       "regression target"))),
    Exercise(
        name="clipped_surrogate", notebook="05", reference=clipped_surrogate, cases=_surrogate_cases, grad=True,
        mistakes=(Mistake(_surrogate_unclipped, "clip the ratio to [1 − ε, 1 + ε] and take the smaller of the "
                                                "clipped and unclipped terms"),
                  Mistake(_surrogate_max, "take the min of the two terms (the pessimistic one), not the max"),
                  Mistake(_surrogate_objective, "return the loss, minus the objective: the optimiser minimises"),
                  Mistake(_surrogate_unmasked, "average over the response tokens only: Σ m·x / Σ m, not a mean "
                                               "over padding too"),
                  Mistake(_surrogate_log_ratio, "the ratio is ρ = exp(logp − old_logp), not the log-ratio"))),
    Exercise(
        name="value_loss", notebook="05", reference=value_loss, cases=_value_cases, grad=True,
        mistakes=(Mistake(_value_min, "take the max of the two squared errors (the pessimistic one), not the min"),
                  Mistake(_value_clamps_value, "clip the change V − V_old to [−ε, ε] and add it to V_old; "
                                               "do not clip the value itself"),
                  Mistake(_value_no_half, "the loss is ½ times the mean of the larger squared error"),
                  Mistake(_value_unclipped, "the clipped error is missing: max((V − G)², (V_clip − G)²)"))),
    Exercise(
        name="adaptive_kl_beta", notebook="05", reference=adaptive_kl_beta, cases=_controller_cases,
        mistakes=(Mistake(_controller_unclipped, "clip the error KL/KL_target − 1 to [−0.2, 0.2]"),
                  Mistake(_controller_sign, "a KL above the target must raise β (a stronger pull back): β (1 + e n/H)"),
                  Mistake(_controller_no_rate, "scale the error by n / H, the batch's share of the horizon"))),
]
