"""SimPO (Meng et al. 2024): preference tuning with no reference model, a length-normalised reward and a margin.

DPO's implicit reward is β log π_θ(y|x)/π_ref(y|x), summed over the response's tokens. SimPO replaces it with the
policy's *average* log-probability per token, and asks the chosen response to win by a margin γ:

    r(x, y) = (β / |y|) log π_θ(y|x),        L = -log σ(r(x, y_w) - r(x, y_l) - γ)      (Meng et al. 2024, eq. 6)

No reference model: nothing to load, nothing to precompute, and nothing that holds the policy near the SFT model
except the data and the number of steps. The average is also what the policy's generation ranks by (likelihood per
token), so the reward no longer favours a response for being long or short. γ > 0 keeps pushing a pair until its
rewards are γ apart, and then less and less.

TRL 1.16 implements SimPO inside ``CPOTrainer`` (``trl.experimental.cpo``) as ``loss_type="simpo"``, with
``cpo_alpha=0`` (its default, 1.0, adds CPO's NLL term on the chosen responses); tests/test_simpo.py checks the
loss against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks
from .dpo import _PAIR_KEYS, _check_batch, _pair_logps


def simpo_loss(policy_chosen_logps, policy_rejected_logps, chosen_lengths, rejected_lengths, beta: float = 2.0,
               gamma: float = 1.0) -> torch.Tensor:
    """The SimPO loss of each pair (Meng et al. 2024, eq. 6):

        L = -log σ( (β/|y_w|) log π_θ(y_w|x) - (β/|y_l|) log π_θ(y_l|x) - γ )

    policy_chosen_logps, policy_rejected_logps: [B], summed over response tokens (the course's convention);
    chosen_lengths, rejected_lengths: [B], each response's number of tokens |y| (its end token included). Returns
    [B]. β scales the average log-probability (the paper uses 2 to 2.5), γ >= 0 is the target margin; at γ = 0
    and lengths of 1 it is DPO's loss with the reference's log-probs set to 0."""
    names = ("policy_chosen_logps", "policy_rejected_logps", "chosen_lengths", "rejected_lengths")
    _checks.vectors("simpo_loss", names, policy_chosen_logps, policy_rejected_logps,
                 chosen_lengths.to(policy_chosen_logps) if torch.is_tensor(chosen_lengths) else chosen_lengths,
                 rejected_lengths.to(policy_chosen_logps) if torch.is_tensor(rejected_lengths) else rejected_lengths)
    for name, value in (("chosen_lengths", chosen_lengths), ("rejected_lengths", rejected_lengths)):
        if (value <= 0).any():
            raise ValueError(f"simpo_loss: {name} must be positive token counts, got "
                             f"{value.tolist() if value.numel() <= 8 else tuple(value.shape)}")
    beta = _checks.number("simpo_loss", "beta", beta, positive=True)
    gamma = _checks.number("simpo_loss", "gamma", gamma, nonnegative=True)
    chosen = beta * policy_chosen_logps / chosen_lengths.to(policy_chosen_logps)
    rejected = beta * policy_rejected_logps / rejected_lengths.to(policy_chosen_logps)
    return -F.logsigmoid(chosen - rejected - gamma)


def simpo_step(model, batch: dict, beta: float = 2.0, gamma: float = 1.0, chunked: bool | None = None):
    """The SimPO loss of a ``collate_preference`` batch (no reference log-probs needed): ``(loss, metrics)``, the
    ``loss_fn`` contract of ``training.train``. Metrics: ``rewards/chosen``, ``rewards/rejected`` (mean SimPO
    reward (β/|y|) log π_θ(y|x)), ``rewards/accuracies``, ``rewards/margins`` and ``logps/chosen``, ``logps/rejected``
    (mean log-probability per token, as TRL's CPOTrainer logs them for SimPO)."""
    _check_batch("simpo_step", batch, _PAIR_KEYS)
    _checks.model("simpo_step", "model", model)
    beta = _checks.number("simpo_step", "beta", beta, positive=True)
    gamma = _checks.number("simpo_step", "gamma", gamma, nonnegative=True)
    chosen, rejected = _pair_logps(model, batch, chunked)
    lengths = [batch[f"{side}_completion_mask"][:, 1:].sum(-1).to(chosen) for side in ("chosen", "rejected")]
    losses = simpo_loss(chosen, rejected, *lengths, beta=beta, gamma=gamma)
    with torch.no_grad():
        avg_c, avg_r = chosen / lengths[0], rejected / lengths[1]
        metrics = {"rewards/chosen": beta * avg_c.mean(), "rewards/rejected": beta * avg_r.mean(),
                   "rewards/accuracies": (avg_c > avg_r).float().mean(),
                   "rewards/margins": beta * (avg_c - avg_r).mean(),
                   "logps/chosen": avg_c.mean(), "logps/rejected": avg_r.mean()}
    return losses.mean(), metrics


def simpo_objective(beta: float = 2.0, gamma: float = 1.0):
    """``simpo_step`` with its settings fixed: the ``loss_fn`` for ``training.train``, named after them."""
    beta = _checks.number("simpo_objective", "beta", beta, positive=True)
    gamma = _checks.number("simpo_objective", "gamma", gamma, nonnegative=True)

    def objective(model, batch):
        return simpo_step(model, batch, beta, gamma)

    objective.__qualname__ = objective.__name__ = f"simpo_step(beta={beta!r}, gamma={gamma!r})"
    return objective
