"""The sliders of notebooks 05 (ε in PPO's clip) and 07 (ε in cDPO) draw exact quantities: checked here
against autograd through the course's losses, and bad settings are refused."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.dpo import conservative_dpo_loss  # noqa: E402
from course_utils.ppo import clipped_policy_loss  # noqa: E402
from course_utils.widgets import nb05, nb07  # noqa: E402


@pytest.mark.parametrize("advantage", [1.0, -1.0])
@pytest.mark.parametrize("epsilon", [0.1, 0.3])
def test_the_clip_widget_draws_the_surrogate_and_its_gradient(advantage, epsilon):
    ratio = np.array([0.5, 0.75, 0.95, 1.05, 1.25, 1.5])
    objective, gradient = nb05.clipped_objective(ratio, advantage, epsilon)
    for r, o, g in zip(ratio, objective, gradient):
        r_t = torch.tensor([[r]], dtype=torch.float64, requires_grad=True)
        loss, _ = clipped_policy_loss(torch.log(r_t), torch.zeros(1, 1, dtype=torch.float64),
                                      torch.tensor([[advantage]], dtype=torch.float64), torch.ones(1, 1), epsilon)
        (d_ratio,) = torch.autograd.grad(-loss, r_t)
        assert math.isclose(o, -loss.item(), abs_tol=1e-12) and math.isclose(g, d_ratio.item(), abs_tol=1e-12)
    assert (gradient == 0).any() and (gradient != 0).any()   # the grid crosses the clip on each side


@pytest.mark.parametrize("epsilon", [0.02, 0.1, 0.4])
def test_the_cdpo_widget_draws_the_loss_its_push_and_the_optimum(epsilon):
    loss, push = nb07.cdpo_loss_and_push(epsilon)
    margin = nb07.MARGIN.clone().requires_grad_(True)
    zero = torch.zeros_like(margin)
    expected = conservative_dpo_loss(margin, zero, zero, zero, beta=nb07.BETA, epsilon=epsilon)
    (slope,) = torch.autograd.grad(expected.sum(), margin)
    assert np.allclose(loss, expected.detach().numpy()) and np.allclose(push, -slope.numpy())
    optimum = math.log((1 - epsilon) / epsilon) / nb07.BETA
    lowest = float(nb07.MARGIN[int(np.argmin(loss))])
    assert abs(lowest - optimum) <= float(nb07.MARGIN[1] - nb07.MARGIN[0])   # the grid's minimum is the optimum
    assert np.all(push[nb07.MARGIN.numpy() < optimum] > 0) and np.all(push[nb07.MARGIN.numpy() > optimum] < 0)


@pytest.mark.parametrize("update, bad", [(nb05.ppo_clip, 0.0), (nb05.ppo_clip, 1.0),
                                         (nb07.cdpo_noise, 0.0), (nb07.cdpo_noise, 0.5)])
def test_a_setting_outside_the_range_is_refused(update, bad):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="epsilon must be in"):
        update(bad, ax)
    plt.close(fig)

