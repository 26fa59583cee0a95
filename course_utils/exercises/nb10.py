"""Notebook 10, RL with verifiable rewards: group-normalised advantages, pass@k, the token-level loss."""

import math

import torch

from ..grpo import group_advantages, grpo_loss, pass_at_k
from ._runner import Case, Exercise, Mistake


def _advantage_cases():
    g = torch.Generator().manual_seed(10)
    return [Case((torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]), 4), label="pass/fail rewards, two groups of 4"),
            Case((torch.rand(12, generator=g), 3), label="graded rewards, four groups of 3"),
            Case((torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 3), label="all pass, then all fail: zero advantage"),
            Case((torch.tensor([0.2, 0.9]), 2), label="one group of 2")]


def _batch_normalised(rewards, group_size):
    return (rewards - rewards.mean()) / (rewards.std() + 1e-4)


def _pass_cases():
    return [Case((10, 3, 1), label="n = 10, c = 3, k = 1: the pass rate"),
            Case((64, 5, 8), label="n = 64, c = 5, k = 8"),
            Case((64, 0, 64), label="no pass at all"),
            Case((20, 15, 10), label="n - c < k: every draw of 10 holds a pass"),
            Case((200, 2, 100), label="n = 200: the binomials are huge")]


def _dapo_loss(logp, old_logp, advantages, mask, epsilon=0.2):
    return grpo_loss(logp, old_logp, advantages, mask, "dapo", epsilon)


def _loss_cases():
    g = torch.Generator().manual_seed(11)

    def logps(b, t):
        return -torch.rand(b, t, generator=g) * 3

    lp = logps(3, 5)
    mask = torch.tensor([[1.0, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    lp2 = logps(2, 4)
    return [Case((lp, lp.clone(), torch.tensor([1.0, -1.0, 0.5]), mask), label="on-policy: ratio 1"),
            Case((lp, lp + 0.5 * torch.randn(3, 5, generator=g), torch.tensor([1.0, -1.0, 0.5]), mask),
                 label="off-policy: some ratios outside [0.8, 1.2]"),
            Case((lp, lp - 0.3, torch.tensor([-2.0, 1.0, 1.0]), mask, 0.1), label="ε = 0.1"),
            Case((lp2, lp2 + 0.2, torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]])),
                 label="a row with no response token")]


def _per_sequence(logp, old_logp, advantages, mask, epsilon=0.2):
    return grpo_loss(logp, old_logp, advantages, mask, "grpo", epsilon)


def _unclipped(logp, old_logp, advantages, mask, epsilon=0.2):
    ratio = torch.exp(logp - old_logp.detach())
    return -(ratio * advantages.detach()[:, None] * mask).sum() / mask.sum()


def _max_not_min(logp, old_logp, advantages, mask, epsilon=0.2):
    ratio = torch.exp(logp - old_logp.detach())
    adv = advantages.detach()[:, None]
    per_token = -torch.max(ratio * adv, ratio.clamp(1 - epsilon, 1 + epsilon) * adv)
    return (per_token * mask).sum() / mask.sum()


EXERCISES = [
    Exercise(
        name="grpo_advantages", notebook="10", reference=group_advantages, cases=_advantage_cases,
        mistakes=(Mistake(lambda r, g: (r.view(-1, g) - r.view(-1, g).mean(-1, keepdim=True)).reshape(-1),
                          "divide by the group's standard deviation (plus 1e-4): GRPO rescales each prompt's "
                          "advantages to unit size"),
                  Mistake(_batch_normalised, "normalise within each group (rewards.view(-1, group_size)), "
                          "not over the whole batch: each prompt is its own baseline"),
                  Mistake(lambda r, g: ((r.view(-1, g) - r.view(-1, g).mean(-1, keepdim=True))
                                        / (r.view(-1, g).std(-1, keepdim=True, unbiased=False) + 1e-4)).reshape(-1),
                          "use the standard deviation with Bessel's correction (torch's default, as TRL)"))),
    Exercise(
        name="pass_at_k", notebook="10", reference=pass_at_k, cases=_pass_cases,
        mistakes=(Mistake(lambda n, c, k: 1 - (1 - c / n) ** k,
                          "1 - (1 - c/n)^k draws with replacement and is biased: draw k of the n samples "
                          "without replacement, 1 - C(n-c, k) / C(n, k)"),
                  Mistake(lambda n, c, k: math.comb(n - c, k) / math.comb(n, k),
                          "C(n-c, k) / C(n, k) is the chance that no draw passes: pass@k is one minus it"),
                  Mistake(lambda n, c, k: c / n, "k matters: more draws, more chances to pass"))),
    Exercise(
        name="dapo_loss", notebook="10", reference=_dapo_loss, cases=_loss_cases, grad=True,
        mistakes=(Mistake(_per_sequence, "average over all response tokens of the batch at once "
                          "(Σ m ℓ / Σ m), not per sequence first: that is GRPO's normalisation"),
                  Mistake(_unclipped, "clip the ratio to [1 - ε, 1 + ε] and take the smaller of the clipped and "
                          "unclipped terms"),
                  Mistake(_max_not_min, "the loss is minus the min of the two terms (the pessimistic one), "
                          "not the max"))),
]
