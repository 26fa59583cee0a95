"""PPO's pieces against hand-computed cases: GAE, the clipped policy and value losses (clipping
active and not), whitening, token rewards, explained variance, the adaptive KL coefficient;
padding is masked out of every loss; values are the same for a prompt alone or left-padded."""

import copy

import pytest
import torch

from course_utils.generation import rollout
from course_utils.policy_gradient import kl_penalised_reward
from course_utils.ppo import (adaptive_kl_beta, clipped_policy_loss, clipped_value_loss, explained_variance, gae,
                              token_rewards, values, whiten)
from course_utils.reward_model import reward_model_from_policy

MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 7.0]])      # 7.0: padding, must not count
    vals = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    adv, ret = gae(rewards, vals, MASK, gamma=0.9, lam=0.8)
    # row 0: δ2 = 1 - 0.3 = 0.7; δ1 = 0.9·0.3 - 0.2 = 0.07; δ0 = 0.9·0.2 - 0.1 = 0.08; A_t = δ_t + 0.72 A_{t+1}
    # row 1 ends at t = 1: δ1 = 0 - 0.5 = -0.5; δ0 = 0.5 + 0.9·0.5 - 0.4 = 0.55
    expected = torch.tensor([[0.08 + 0.72 * (0.07 + 0.72 * 0.7), 0.07 + 0.72 * 0.7, 0.7],
                             [0.55 + 0.72 * -0.5, -0.5, 0.0]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, (expected + vals) * MASK)


def test_gae_with_lambda_1_is_the_monte_carlo_return_minus_the_value():
    torch.manual_seed(0)
    rewards, vals = torch.randn(2, 3), torch.randn(2, 3)
    adv, ret = gae(rewards, vals, MASK, gamma=1.0, lam=1.0)
    to_go = (rewards * MASK).flip(-1).cumsum(-1).flip(-1)
    torch.testing.assert_close(ret, to_go * MASK)
    torch.testing.assert_close(adv, (to_go - vals) * MASK)


def test_policy_loss_clipping_inactive_and_active():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.05, 1.5, 1.5, 0.5]])).requires_grad_()
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    loss, metrics = clipped_policy_loss(logp, old, adv, torch.ones(1, 4), clip=0.2)
    # token 0: ratio 1.05 inside the range: unclipped, -1.05
    # token 1: ratio 1.5, A > 0: clipped to 1.2, no gradient
    # token 2: ratio 1.5, A < 0: min(-1.5, -1.2) = -1.5, unclipped (the pessimistic side)
    # token 3: ratio 0.5, A < 0: clipped to 0.8 -> -0.8, no gradient
    assert loss.item() == pytest.approx(-(1.05 + 1.2 - 1.5 - 0.8) / 4, abs=1e-6)
    loss.backward()
    ratio = torch.tensor([1.05, 1.5, 1.5, 0.5])
    torch.testing.assert_close(logp.grad[0], torch.tensor([-1.0, 0.0, 1.0, 0.0]) * ratio / 4)
    assert metrics["clip_fraction"] == pytest.approx(0.5)


def test_policy_loss_at_ratio_1_is_the_policy_gradient():
    logp = torch.randn(2, 3).requires_grad_()
    adv = torch.randn(2, 3)
    loss, metrics = clipped_policy_loss(logp, logp.detach(), adv, MASK)
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv * MASK / MASK.sum())
    assert metrics == {"clip_fraction": 0.0, "approx_kl": 0.0}


def test_value_loss_clipping():
    old = torch.zeros(1, 3)
    v = torch.tensor([[0.1, 0.5, -0.5]], requires_grad=True)
    ret = torch.tensor([[0.0, 1.0, 1.0]])
    loss, metrics = clipped_value_loss(v, old, ret, torch.ones(1, 3), clip=0.2)
    # token 0: inside: (0.1)^2; token 1: moved 0.5 towards 1.0, clipped to 0.2: max(0.25, 0.64) = 0.64 (clipped)
    # token 2: moved away: max((−1.5)^2, (−1.2)^2) = 2.25 (unclipped)
    assert loss.item() == pytest.approx(0.5 * (0.01 + 0.64 + 2.25) / 3)
    loss.backward()
    torch.testing.assert_close(v.grad, torch.tensor([[0.1, 0.0, -1.5]]) / 3)
    assert metrics["value_clip_fraction"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("which", ["policy", "value"])
def test_padding_is_masked_out_of_every_loss(which):
    torch.manual_seed(0)
    a, b, c = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    fn = clipped_policy_loss if which == "policy" else clipped_value_loss
    x = a.clone().requires_grad_()
    loss, _ = fn(x, b, c, MASK)
    loss.backward()
    assert x.grad[1, 2] == 0
    bad = [t.clone() for t in (a, b, c)]
    for t in bad:
        t[1, 2] = 1e4
    assert fn(*bad, MASK)[0].item() == pytest.approx(loss.item())


def test_whiten_uses_only_the_masked_in_entries():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 1e6]])
    out = whiten(x, MASK)
    real = out[MASK.bool()]
    assert real.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert real.pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)
    assert out[1, 2] == 0
    assert whiten(x, MASK, shift_mean=False)[MASK.bool()].mean().item() == pytest.approx(3.0, abs=1e-5)


def test_token_rewards_put_the_score_on_the_last_token_and_sum_to_the_sequence_reward():
    score = torch.tensor([1.0, 2.0])
    logp, ref = torch.randn(2, 3), torch.randn(2, 3)
    r = token_rewards(score, logp, ref, MASK, beta=0.1)
    torch.testing.assert_close(r.sum(-1), kl_penalised_reward(score, logp, ref, MASK, beta=0.1))
    torch.testing.assert_close(r[0, :2], -0.1 * (logp - ref)[0, :2])
    torch.testing.assert_close(r[1, 1], 2.0 - 0.1 * (logp - ref)[1, 1])
    assert r[1, 2] == 0


def test_explained_variance():
    ret = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    assert explained_variance(ret, ret, MASK) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(ret, 3.0), ret, MASK) == pytest.approx(0.0, abs=1e-6)


def test_adaptive_kl_beta():
    assert adaptive_kl_beta(0.1, kl=12.0, target=6.0, horizon=100, n_samples=50) == pytest.approx(0.1 * 1.1)
    assert adaptive_kl_beta(0.1, kl=5.4, target=6.0, horizon=100, n_samples=50) == pytest.approx(0.1 * 0.95)
    assert adaptive_kl_beta(0.1, kl=6.0, target=6.0, horizon=100, n_samples=50) == pytest.approx(0.1)


def test_values_of_a_prompt_alone_and_left_padded_agree(make_tiny_lm, course_tokenizer):
    policy = make_tiny_lm()
    critic = reward_model_from_policy(policy)
    prompts = ["Instruction: Write a movie.\nResponse:", "The film"]
    both = rollout(policy, course_tokenizer, prompts, max_new_tokens=5, seed=0)
    with torch.no_grad():
        v_both = values(critic, both)
        one = copy.copy(both)
        p = both.prompt_length - int(both.attention_mask[1, :both.prompt_length].sum())
        one.input_ids, one.attention_mask = both.input_ids[1:, p:], both.attention_mask[1:, p:]
        one.response_mask, one.prompt_length = both.response_mask[1:], both.prompt_length - p
        v_one = values(critic, one)
    assert v_both.shape == both.response_mask.shape
    torch.testing.assert_close(v_both[1:], v_one, atol=1e-5, rtol=1e-5)
    assert (v_both[both.response_mask == 0] == 0).all()


def test_a_ppo_iteration_runs_its_updates_and_the_first_is_on_policy(make_tiny_lm, course_tokenizer):
    """One iteration of ppo_step on a tiny random model: the metrics are finite, the policy and the value
    model move, the reference and reward model do not; with one epoch of one minibatch the update is
    on-policy (ratio 1: nothing clipped, approx. KL 0)."""
    from course_utils.ppo import ppo_step
    from course_utils.rl import RLConfig, train_rl

    policy, critic_from = make_tiny_lm(0), make_tiny_lm(1)
    reference, reward = copy.deepcopy(policy), reward_model_from_policy(critic_from)
    critic = copy.deepcopy(reward)
    frozen_before = [p.clone() for p in list(reference.parameters()) + list(reward.parameters())]
    policy_before = [p.clone() for p in policy.parameters()]
    step = ppo_step(policy, critic, reference, reward, course_tokenizer, samples_per_prompt=4, epochs=1,
                    minibatches=1, max_new_tokens=6, kl_target=1.0, horizon=10)
    prompts = ["Instruction: Write a movie.\nResponse:", "Instruction: Write a tweet.\nResponse:"]
    state = {"beta": 0.1}
    history = train_rl({"policy": policy, "value": critic}, step, prompts, RLConfig(1, 2, lr=1e-3), state=state)
    h = history[0]
    assert h["clip_fraction"] == 0.0 and h["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert all(map(lambda v: v == v, h.values()))   # no NaN
    assert state["beta"] != 0.1 and h["beta"] == state["beta"]
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, policy.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, list(reference.parameters()) + list(reward.parameters())))


def test_rollout_select():
    from course_utils.generation import Rollout
    ro = Rollout(torch.arange(12).view(3, 4), torch.ones(3, 4), torch.ones(3, 2), torch.zeros(3, 2),
                 torch.tensor([True, False, True]), 2)
    sub = ro.select([2, 0])
    assert sub.input_ids[:, 0].tolist() == [8, 0] and sub.finished.tolist() == [True, True] and sub.prompt_length == 2
