"""Notebook 04, REINFORCE, RLOO and GRPO: the k3 KL estimator, leave-one-out and group-normalised advantages.

The references are the course's tested helpers (``policy_gradient.kl_estimate`` and ``advantages``) with the
estimator or the baseline fixed, so that each exercise is one function of its own."""

import torch

from ..policy_gradient import advantages, kl_estimate
from ._runner import Case, Exercise, Mistake


def k3(logp, logp_ref):
    """k3 = (e^{-ℓ} - 1) + ℓ with ℓ = logp - logp_ref, elementwise (``kl_estimate(..., "k3")``)."""
    return kl_estimate(logp, logp_ref, "k3")


def leave_one_out(rewards, group_size):
    """RLOO's advantages (``advantages(rewards, "leave_one_out", group_size)``)."""
    return advantages(rewards, "leave_one_out", group_size)


def group_normalised(rewards, group_size, eps=1e-6):
    """GRPO's advantages (``advantages(rewards, "group_normalised", group_size, eps=eps)``)."""
    return advantages(rewards, "group_normalised", group_size, eps=eps)


def _k3_cases():
    g = torch.Generator().manual_seed(4)
    logp = -torch.rand(3, 5, generator=g) * 4
    return [Case((logp, logp - 0.3 * torch.randn(3, 5, generator=g)), label="per-token log-probs [3, 5], close"),
            Case((logp, logp - 2.0 * torch.randn(3, 5, generator=g)), label="far apart"),
            Case((logp[0], logp[0].clone()), label="the same policy: zero"),
            Case((torch.tensor([-1.0, -8.0], dtype=torch.float64), torch.tensor([-9.0, -0.5], dtype=torch.float64)),
                 label="float64, log-ratios of +8 and -7.5")]


def _advantage_cases():
    g = torch.Generator().manual_seed(40)
    return [Case((torch.tensor([1.0, 2.0, 3.0, 6.0]), 4), label="the notebook's group of 4"),
            Case((torch.randn(12, generator=g), 4), label="three prompts × 4 samples"),
            Case((torch.randn(6, generator=g) * 5, 2), label="groups of 2"),
            Case((torch.tensor([0.5, 0.5, 0.5, 1.0, 2.0, 4.0]), 3), label="a group whose rewards are all equal")]


def _grpo_cases():
    return _advantage_cases() + [Case((torch.tensor([0.0, 2.0, 1.0, 5.0]), 2, 0.5), label="eps = 0.5")]


def _centred(rewards, group_size):
    groups = rewards.view(-1, group_size)
    return groups - groups.mean(-1, keepdim=True)


def _loo_over_k(rewards, group_size):
    groups = rewards.view(-1, group_size)
    return (groups - (groups.sum(-1, keepdim=True) - groups) / group_size).reshape(-1)


def _loo_batch(rewards, group_size):
    n = rewards.numel()
    return rewards - (rewards.sum() - rewards) / (n - 1)


def _grpo_no_eps(rewards, group_size, eps=1e-6):
    groups = rewards.view(-1, group_size)
    return (_centred(rewards, group_size) / groups.std(-1, keepdim=True)).reshape(-1)


def _grpo_population_std(rewards, group_size, eps=1e-6):
    groups = rewards.view(-1, group_size)
    return (_centred(rewards, group_size) / (groups.std(-1, keepdim=True, unbiased=False) + eps)).reshape(-1)


def _grpo_batch(rewards, group_size, eps=1e-6):
    return (rewards - rewards.mean()) / (rewards.std() + eps)


def _grpo_eps_in_sqrt(rewards, group_size, eps=1e-6):
    groups = rewards.view(-1, group_size)
    return (_centred(rewards, group_size) / (groups.var(-1, keepdim=True) + eps).sqrt()).reshape(-1)


EXERCISES = [
    Exercise(
        name="k3", notebook="04", reference=k3, cases=_k3_cases, grad=True,
        mistakes=(Mistake(lambda logp, logp_ref: torch.exp(logp - logp_ref) - 1 - (logp - logp_ref),
                          "the ratio in k3 is π_ref/π = e^{-ℓ}: k3 = (e^{-ℓ} - 1) + ℓ"),
                  Mistake(lambda logp, logp_ref: torch.exp(logp_ref - logp) + (logp - logp_ref),
                          "subtract 1 from e^{-ℓ}: its mean under π is 1, and the -1 is what makes k3 unbiased"),
                  Mistake(lambda logp, logp_ref: 0.5 * (logp - logp_ref) ** 2,
                          "that is k2 = ℓ²/2, which is biased: k3 = (e^{-ℓ} - 1) + ℓ"),
                  Mistake(lambda logp, logp_ref: torch.exp(logp_ref - logp) - 1 - (logp - logp_ref),
                          "add ℓ, not subtract it: (e^{-ℓ} - 1) + ℓ is never negative"))),
    Exercise(
        name="leave_one_out", notebook="04", reference=leave_one_out, cases=_advantage_cases,
        mistakes=(Mistake(lambda r, k: _centred(r, k).reshape(-1),
                          "leave the sample itself out of its baseline: the mean of the k - 1 *other* rewards "
                          "(this is the group mean, k/(k-1) times too small)"),
                  Mistake(_loo_over_k, "the other samples are k - 1: divide their sum by group_size - 1"),
                  Mistake(_loo_batch, "each prompt is its own baseline: reshape to rewards.view(-1, group_size) "
                          "and leave one out within each group, not within the whole batch"))),
    Exercise(
        name="group_normalised", notebook="04", reference=group_normalised, cases=_grpo_cases,
        mistakes=(Mistake(lambda r, k, eps=1e-6: _centred(r, k).reshape(-1),
                          "divide by the group's standard deviation plus eps: GRPO rescales each prompt's "
                          "advantages to unit size"),
                  Mistake(_grpo_population_std, "use the standard deviation with Bessel's correction "
                          "(torch's .std(), as TRL): divide by k - 1"),
                  Mistake(_grpo_batch, "normalise within each group (rewards.view(-1, group_size)), not over the "
                          "whole batch: each prompt is its own baseline"),
                  Mistake(_grpo_no_eps, "add eps to the std: a group whose rewards are all equal divides 0 by 0"),
                  Mistake(_grpo_eps_in_sqrt, "add eps to the standard deviation, not to the variance under "
                          "the square root"))),
]
