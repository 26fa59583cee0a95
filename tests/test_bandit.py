"""The toy bandit of notebook 06: the KL-regularised optimum, its value, the implicit reward, Bradley–Terry
sampling and the tabular policy trained with the DPO loss (and the unlikelihood objective)."""

import numpy as np
import pytest
import torch

from course_utils.bandit import (implicit_reward, log_partition, objective, optimal_policy, sample_preferences,
                                 train_tabular_policy)
from course_utils.best_of_n import exact_kl

PI_REF = np.array([0.4, 0.3, 0.2, 0.1])
REWARD = np.array([0.0, 1.0, -1.0, 2.0])


def test_optimal_policy_by_hand_and_its_value():
    beta = 0.5
    unnormalised = PI_REF * np.exp(REWARD / beta)
    z = unnormalised.sum()
    assert optimal_policy(PI_REF, REWARD, beta) == pytest.approx(unnormalised / z, rel=1e-12)
    assert log_partition(PI_REF, REWARD, beta) == pytest.approx(np.log(z), rel=1e-12)
    best = optimal_policy(PI_REF, REWARD, beta)
    assert objective(best, PI_REF, REWARD, beta) == pytest.approx(beta * np.log(z), rel=1e-12)
    # stable for tiny β: all mass on the best response, no overflow
    assert optimal_policy(PI_REF, REWARD, 1e-3) == pytest.approx([0, 0, 0, 1], abs=1e-12)


def test_the_optimum_beats_perturbations_and_gradient_ascent_finds_it():
    beta = 0.7
    best = optimal_policy(PI_REF, REWARD, beta)
    rng = np.random.default_rng(0)
    top = objective(best, PI_REF, REWARD, beta)
    for eps in (1e-3, 1e-2, 0.1, 1.0):
        for q in rng.dirichlet(np.ones(4), size=50):
            assert objective((1 - eps) * best + eps * q, PI_REF, REWARD, beta) < top
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    ref, r = torch.tensor(PI_REF), torch.tensor(REWARD)
    optimiser = torch.optim.SGD([theta], lr=1.0)
    for _ in range(3000):
        p = torch.softmax(theta, 0)
        loss = -(p @ r - beta * (p * (p / ref).log()).sum())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert torch.softmax(theta, 0).detach().numpy() == pytest.approx(best, abs=1e-8)


def test_implicit_reward_is_the_reward_up_to_log_z():
    beta = 0.3
    best = optimal_policy(PI_REF, REWARD, beta)
    assert implicit_reward(best, PI_REF, beta) + beta * log_partition(PI_REF, REWARD, beta) == \
        pytest.approx(REWARD, abs=1e-12)
    assert implicit_reward(PI_REF, PI_REF, beta) == pytest.approx(np.zeros(4))


def test_sample_preferences_follows_bradley_terry():
    pairs = sample_preferences(PI_REF, REWARD, 40_000, seed=1)
    assert pairs.shape == (40_000, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    one_three = pairs[((pairs == [1, 3]) | (pairs == [3, 1])).all(1)]
    share = np.mean(one_three[:, 0] == 3)
    expected = 1 / (1 + np.exp(-(REWARD[3] - REWARD[1])))
    assert share == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / len(one_three)))
    assert (sample_preferences(PI_REF, REWARD, 10, seed=1) == sample_preferences(PI_REF, REWARD, 10, seed=1)).all()


def test_dpo_on_a_tabular_policy_recovers_the_optimum():
    beta = 0.5
    pairs = sample_preferences(PI_REF, REWARD, 50_000, seed=0)
    history = train_tabular_policy(pairs, PI_REF, beta, steps=2000, lr=2.0)
    assert history["loss"][0] == pytest.approx(np.log(2)) and history["weight"][0] == pytest.approx(0.5)
    assert history["grad_norm"][-1] < 1e-9  # converged
    learned = history["policy"][-1]
    assert 0.5 * np.abs(learned - optimal_policy(PI_REF, REWARD, beta)).sum() < 0.02
    gap = implicit_reward(learned, PI_REF, beta) - REWARD
    assert np.ptp(gap) < 0.1  # the reward up to a constant


def test_unlikelihood_collapses_while_dpo_stops():
    beta = 0.5
    pairs = sample_preferences(PI_REF, REWARD, 5_000, seed=0)
    ul = train_tabular_policy(pairs, PI_REF, beta, "unlikelihood", steps=400, lr=2.0)
    dpo = train_tabular_policy(pairs, PI_REF, beta, "dpo", steps=400, lr=2.0)
    assert ul["policy"][-1].max() > 0.999 and ul["loss"][-1] < -50 and (ul["weight"] == 1).all()
    assert dpo["loss"][-1] > 0.4 and dpo["weight"][-1] < dpo["weight"][0]
    assert exact_kl(ul["policy"][-1], PI_REF) > exact_kl(dpo["policy"][-1], PI_REF)
