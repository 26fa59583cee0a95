"""Notebook 07, DPO on the language model: sequence log-probs from logits, IPO, conservative DPO."""

import torch
import torch.nn.functional as F

from .. import _checks
from ..dpo import conservative_dpo_loss, ipo_loss
from ..logprobs import token_logprobs
from ._runner import Case, Exercise, Mistake


def sequence_logps(logits, input_ids, completion_mask):
    """log π(y | x) = Σ_t m_t log softmax(logits_{t-1})[x_t] of each sequence, the sum that
    ``logprobs.sequence_logprobs`` reads off a model (the logits at t - 1 predict token t).
    logits [B, T, V], input_ids and completion_mask [B, T] -> [B]."""
    _checks.tensor("sequence_logps", "logits", logits, dims=3, floating=True)
    _checks.tensor("sequence_logps", "input_ids", input_ids, dims=2, ids=True)
    _checks.tensor("sequence_logps", "completion_mask", completion_mask, dims=2)
    if not logits.shape[:2] == input_ids.shape == completion_mask.shape:
        raise ValueError(f"sequence_logps: logits [B, T, V], input_ids and completion_mask [B, T] must share B and T, "
                         f"got {tuple(logits.shape)}, {tuple(input_ids.shape)} and {tuple(completion_mask.shape)}")
    return (token_logprobs(logits[:, :-1], input_ids[:, 1:]) * completion_mask[:, 1:]).sum(-1)


# ---------------------------------------------------------------- sequence log-probs

def _sequence_cases():
    g = torch.Generator().manual_seed(70)

    def logits(b, t, v=7, dtype=torch.float32):
        return torch.randn(b, t, v, generator=g, dtype=dtype) * 2

    def ids(b, t, v=7):
        return torch.randint(0, v, (b, t), generator=g)

    padded = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 0]])
    return [Case((logits(2, 5), ids(2, 5), torch.tensor([[0, 0, 1, 1, 1], [0, 0, 1, 1, 1]])),
                 label="two sequences: a prompt of 2 tokens, a response of 3"),
            Case((logits(3, 6), ids(3, 6), padded), label="prompts of 2, 3 and 1 tokens, padding after the response"),
            Case((logits(2, 4, 11, torch.float64), ids(2, 4, 11), torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])),
                 label="float64 logits, 11 tokens in the vocabulary"),
            Case((logits(1, 3), ids(1, 3), torch.tensor([[0, 0, 1]])), label="a response of one token")]


def _no_shift(logits, input_ids, completion_mask):
    return (torch.log_softmax(logits, -1).gather(-1, input_ids[..., None])[..., 0] * completion_mask).sum(-1)


def _mask_not_shifted(logits, input_ids, completion_mask):
    return (token_logprobs(logits[:, :-1], input_ids[:, 1:]) * completion_mask[:, :-1]).sum(-1)


def _mean(logits, input_ids, completion_mask):
    return sequence_logps(logits, input_ids, completion_mask) / completion_mask[:, 1:].sum(-1)


def _raw_logits(logits, input_ids, completion_mask):
    return (logits[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0] * completion_mask[:, 1:]).sum(-1)


def _unmasked(logits, input_ids, completion_mask):
    return token_logprobs(logits[:, :-1], input_ids[:, 1:]).sum(-1)


# ---------------------------------------------------------------- IPO and conservative DPO

def _logps(g, n):
    return -torch.rand(n, generator=g, dtype=torch.float64) * 30


def _ipo_cases():
    g = torch.Generator().manual_seed(71)
    same = _logps(g, 3)
    return [Case((_logps(g, 4), _logps(g, 4), _logps(g, 4), _logps(g, 4), 0.1), label="four pairs, τ = 0.1"),
            Case((_logps(g, 3), _logps(g, 3), _logps(g, 3), _logps(g, 3), 0.5), label="τ = 0.5: a target margin of 1"),
            Case((same, same - 4, same, same - 4), label="the policy is the reference, τ left at 0.1: (1/(2τ))² = 25"),
            Case((torch.tensor([-10.0], dtype=torch.float64), torch.tensor([-20.0], dtype=torch.float64),
                  torch.tensor([-12.0], dtype=torch.float64), torch.tensor([-17.0], dtype=torch.float64), 0.1),
                 label="a pair exactly at its target margin of 5: loss 0")]


def _ipo_target_one_over_tau(pc, pr, rc, rr, tau=0.1):
    return ((pc - rc) - (pr - rr) - 1 / tau) ** 2


def _ipo_sign(pc, pr, rc, rr, tau=0.1):
    return ((pr - rr) - (pc - rc) - 1 / (2 * tau)) ** 2


def _ipo_no_reference(pc, pr, rc, rr, tau=0.1):
    return (pc - pr - 1 / (2 * tau)) ** 2


def _ipo_tau_times(pc, pr, rc, rr, tau=0.1):
    return ((pc - rc) - (pr - rr) - tau / 2) ** 2


def _cdpo_cases():
    g = torch.Generator().manual_seed(72)
    same = _logps(g, 3)
    return [Case((_logps(g, 4), _logps(g, 4), _logps(g, 4), _logps(g, 4), 0.1, 0.1), label="four pairs, β = 0.1, ε = 0.1"),
            Case((_logps(g, 3), _logps(g, 3), _logps(g, 3), _logps(g, 3), 0.5, 0.25), label="β = 0.5, ε = 0.25"),
            Case((_logps(g, 3), _logps(g, 3), _logps(g, 3), _logps(g, 3), 0.2, 0.0), label="ε = 0: plain DPO"),
            Case((same, same - 3, same, same - 3), label="the policy is the reference, β and ε at 0.1: log 2 each"),
            Case((torch.tensor([-1.0], dtype=torch.float64), torch.tensor([-2000.0], dtype=torch.float64),
                  torch.tensor([-1.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64), 1.0, 0.1),
                 label="one pair won by a huge margin: ε pulls it back")]


def _cdpo_swapped(pc, pr, rc, rr, beta=0.1, epsilon=0.1):
    delta = (pc - rc) - (pr - rr)
    return -epsilon * F.logsigmoid(beta * delta) - (1 - epsilon) * F.logsigmoid(-beta * delta)


def _cdpo_robust_sign(pc, pr, rc, rr, beta=0.1, epsilon=0.1):
    delta = (pc - rc) - (pr - rr)
    return -(1 - epsilon) * F.logsigmoid(beta * delta) + epsilon * F.logsigmoid(-beta * delta)


def _cdpo_no_beta(pc, pr, rc, rr, beta=0.1, epsilon=0.1):
    delta = (pc - rc) - (pr - rr)
    return -(1 - epsilon) * F.logsigmoid(delta) - epsilon * F.logsigmoid(-delta)


def _cdpo_underflow(pc, pr, rc, rr, beta=0.1, epsilon=0.1):
    p = torch.sigmoid(beta * ((pc - rc) - (pr - rr)))
    return -(1 - epsilon) * torch.log(p) - epsilon * torch.log(1 - p)


EXERCISES = [
    Exercise(
        name="sequence_logps", notebook="07", reference=sequence_logps, cases=_sequence_cases, grad=True,
        mistakes=(Mistake(_no_shift, "the shift: the logits at position t predict the token at t + 1, so score "
                                     "logits[:, :-1] against input_ids[:, 1:]"),
                  Mistake(_mask_not_shifted, "shift the mask with the targets: completion_mask[:, 1:]"),
                  Mistake(_mean, "log π(y|x) is the sum over the response's tokens, not their mean"),
                  Mistake(_raw_logits, "take log_softmax over the vocabulary first: logits are not log-probabilities"),
                  Mistake(_unmasked, "only response tokens count: multiply by the completion mask, which is 0 on "
                                     "the prompt and the padding"))),
    Exercise(
        name="ipo_loss", notebook="07", reference=ipo_loss, cases=_ipo_cases, grad=True,
        mistakes=(Mistake(_ipo_target_one_over_tau, "the target margin is 1/(2τ), not 1/τ"),
                  Mistake(_ipo_sign, "the sign: the chosen response's log-ratio comes first"),
                  Mistake(_ipo_no_reference, "subtract the reference's log-probabilities: Δ is a margin of "
                                             "log-ratios log π_θ/π_ref"),
                  Mistake(_ipo_tau_times, "τ divides: the target is 1/(2τ), larger τ, a smaller margin"))),
    Exercise(
        name="conservative_dpo_loss", notebook="07", reference=conservative_dpo_loss, cases=_cdpo_cases, grad=True,
        mistakes=(Mistake(_cdpo_swapped, "the label says y_w wins with probability 1 − ε: weigh −log σ(βΔ) by 1 − ε "
                                         "and −log σ(−βΔ) by ε"),
                  Mistake(_cdpo_robust_sign, "both terms are cross-entropies: minus ε log σ(−βΔ) (a plus sign there "
                                             "is rDPO's numerator)"),
                  Mistake(_cdpo_no_beta, "multiply the margin by β"),
                  Mistake(_cdpo_underflow, "log σ(x) underflows to log 0 for a large |x|: use F.logsigmoid(x) "
                                           "and F.logsigmoid(−x)"))),
]
