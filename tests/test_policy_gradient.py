"""Policy-gradient pieces against hand-computed cases: KL estimators, the KL-penalised reward,
advantages (moving average, leave-one-out, group-normalised) and the REINFORCE loss."""

import math

import pytest
import torch

from course_utils.policy_gradient import (advantages, kl_estimate, kl_penalised_reward, masked_mean, reinforce_loss,
                                          update_baseline)


def exact_expectations(p, q):
    """E_{y~p}[k(y)] for each estimator, exactly (weights p), and KL(p ‖ q)."""
    logp, logq = p.log(), q.log()
    out = {kind: float((p * kl_estimate(logp, logq, kind)).sum()) for kind in ("k1", "k2", "k3")}
    return out, float((p * (logp - logq)).sum())


def test_k1_and_k3_are_unbiased_and_k2_is_not():
    p = torch.tensor([0.5, 0.2, 0.2, 0.1], dtype=torch.float64)
    q = torch.tensor([0.1, 0.3, 0.3, 0.3], dtype=torch.float64)
    means, kl = exact_expectations(p, q)
    assert means["k1"] == pytest.approx(kl, abs=1e-12)
    assert means["k3"] == pytest.approx(kl, abs=1e-12)
    assert abs(means["k2"] - kl) > 0.05


def test_k2_is_exact_to_second_order_and_k3_has_the_lowest_variance_when_close():
    p = torch.tensor([0.26, 0.24, 0.25, 0.25], dtype=torch.float64)
    q = torch.full((4,), 0.25, dtype=torch.float64)
    means, kl = exact_expectations(p, q)
    assert means["k2"] == pytest.approx(kl, rel=0.01)
    var = {k: float((p * (kl_estimate(p.log(), q.log(), k) - means[k]) ** 2).sum()) for k in ("k1", "k3")}
    assert var["k3"] < var["k1"] / 100


def test_estimators_by_hand():
    logp, logq = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])   # ℓ = log 2
    assert kl_estimate(logp, logq, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, logq, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_estimate(logp, logq, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    assert (kl_estimate(torch.randn(100), torch.randn(100), "k3") >= 0).all()


def test_kl_penalised_reward_by_hand_and_padding_counts_for_nothing():
    score = torch.tensor([1.0, 2.0])
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 50.0]])
    ref = torch.tensor([[-1.5, -2.5, -2.0], [-0.5, -1.0, -9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = kl_penalised_reward(score, logp, ref, mask, beta=0.1)
    torch.testing.assert_close(out, torch.tensor([1.0 - 0.1 * (0.5 + 0.5 - 1.0), 2.0 - 0.1 * (-0.5)]))


def test_leave_one_out_baseline_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 1.0, 1.0])
    a = advantages(rewards, "leave_one_out", group_size=4)
    expected = [1 - 11 / 3, 2 - 10 / 3, 3 - 9 / 3, 6 - 6 / 3, 0 - 2 / 3, 0 - 2 / 3, 1 - 1 / 3, 1 - 1 / 3]
    torch.testing.assert_close(a, torch.tensor(expected))
    # the same as k/(k-1) times the distance to the group mean
    torch.testing.assert_close(a[:4], 4 / 3 * (rewards[:4] - 3.0))


def test_group_normalised_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 5.0, 5.0])
    a = advantages(rewards, "group_normalised", group_size=4)
    std = math.sqrt((4 + 1 + 0 + 9) / 3)   # Bessel's correction, as TRL
    torch.testing.assert_close(a[:4], torch.tensor([-2.0, -1.0, 0.0, 3.0]) / (std + 1e-6))
    assert (a[4:] == 0).all()   # a group that all scored alike teaches nothing


def test_no_baseline_and_moving_average():
    rewards = torch.tensor([1.0, 3.0])
    assert advantages(rewards, "none").tolist() == [1.0, 3.0]
    assert advantages(rewards, "moving_average", baseline=2.5).tolist() == [-1.5, 0.5]
    assert update_baseline(0.0, rewards, decay=0.75) == pytest.approx(0.5)
    assert update_baseline(2.0, rewards, decay=0.0) == pytest.approx(2.0)


def test_reinforce_loss_gradient_is_minus_the_policy_gradient_and_ignores_padding():
    torch.manual_seed(0)
    logp = torch.randn(3, 4, requires_grad=True)
    adv = torch.tensor([1.0, -2.0, 0.5])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    loss = reinforce_loss(logp, adv, mask)
    loss.backward()
    expected = -(adv[:, None] * mask) / 3
    torch.testing.assert_close(logp.grad, expected)
    torch.testing.assert_close(loss, -(adv * (logp * mask).sum(-1)).mean())
    garbage = logp.detach().clone()
    garbage[mask == 0] = 1e6
    assert reinforce_loss(garbage, adv, mask).item() == pytest.approx(loss.item())


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert masked_mean(x, m).item() == pytest.approx(2.0)
    assert masked_mean(x, m.bool(), dim=1).tolist() == [1.5, 3.0]
