"""Notebook 08's λ widget: the toy's exact ORPO optimum, at its two known limits and in between, and its misuse."""

import numpy as np
import pytest
import torch

from course_utils.widgets import nb08


def test_lambda_zero_is_sft_on_the_chosen_responses():
    assert np.allclose(nb08.toy_optimum(0.0), nb08.CHOSEN_SHARE, atol=1e-9)
    assert np.isclose(nb08.CHOSEN_SHARE.sum(), 1.0)


def test_a_large_lambda_fits_the_log_odds_to_the_rewards():
    optimum = nb08.toy_optimum(1e5)
    assert np.allclose(optimum, nb08.LIMIT, atol=1e-4), (optimum, nb08.LIMIT)
    log_odds = np.log(nb08.LIMIT / (1 - nb08.LIMIT))
    assert np.isclose(nb08.LIMIT.sum(), 1.0) and np.allclose(log_odds - nb08.REWARD, (log_odds - nb08.REWARD)[0])


@pytest.mark.parametrize("lam", [0.1, 1.0, 5.0, 50.0])
def test_the_optimum_is_a_stationary_point(lam):
    optimum = nb08.toy_optimum(lam)
    theta = torch.tensor(np.log(optimum), requires_grad=True)
    (grad,) = torch.autograd.grad(nb08._loss(theta, lam), theta)
    assert np.isclose(optimum.sum(), 1.0) and grad.abs().max() < 1e-8 * (1 + lam), grad


def test_lambda_moves_mass_from_the_losers_to_the_winners():
    expected_reward = [nb08.toy_optimum(lam) @ nb08.REWARD for lam in (0.0, 1.0, 5.0, 50.0)]
    assert np.all(np.diff(expected_reward) > 0), expected_reward
    assert expected_reward[-1] < nb08.LIMIT @ nb08.REWARD
    worst = np.argmin(nb08.REWARD)
    assert nb08.toy_optimum(5.0)[worst] < nb08.CHOSEN_SHARE[worst]


@pytest.mark.parametrize("lam, error", [(-0.5, ValueError), (float("nan"), ValueError), ("1", TypeError),
                                        (None, TypeError)])
def test_misuse(lam, error):
    with pytest.raises(error, match="lam"):
        nb08.toy_optimum(lam)
