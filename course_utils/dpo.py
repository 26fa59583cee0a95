"""Direct Preference Optimization (DPO) and its variants, as plain functions of sequence log-probabilities.

DPO (Rafailov et al. 2023) trains the policy on preference pairs ``(x, y_w, y_l)`` directly, with no reward
model and no sampling. Write the log-ratios of the policy π_θ to the frozen reference π_ref (the SFT policy),
each log-probability summed over the response's tokens (``logprobs.sequence_logprobs``):

    h_w = log π_θ(y_w | x) - log π_ref(y_w | x),      h_l = log π_θ(y_l | x) - log π_ref(y_l | x),
    Δ = h_w - h_l.

β·h is the *implicit reward*: the reward for which π_θ would be the optimum of the KL-regularised objective
(notebook 06 derives it). Every loss below is a function of Δ alone:

    DPO           -log σ(β Δ)                                              (Rafailov et al. 2023, eq. 7)
    conservative  -(1 - ε) log σ(β Δ) - ε log σ(-β Δ)                      (Mitchell 2023, "cDPO")
    robust        [-(1 - ε) log σ(β Δ) + ε log σ(-β Δ)] / (1 - 2ε)         (Chowdhury et al. 2024, "rDPO")
    IPO           (Δ - 1/(2τ))²                                             (Azar et al. 2023, eq. 17)

The conservative loss is Bradley–Terry with labels smoothed towards 1/2: it assumes a label is flipped with
probability ε and fits that belief, so it never pushes a pair's margin to infinity. The robust loss makes the
same assumption but corrects for it: it is an unbiased estimate of the loss on the clean labels, whose minimum
moves further out, not closer in. IPO regresses Δ onto a fixed target 1/(2τ) instead of pushing it up
forever. The IPO paper writes Δ with sums of log-probabilities; TRL's ``ipo`` (``DPOTrainer``, trl 1.16)
divides each log-ratio by its response's number of tokens first, and ``ipo_loss`` computes either.
TRL's ``sigmoid`` loss ignores ``label_smoothing``: the conservative loss is not in the pinned TRL.

Where these losses "equal TRL's", they do on identical token ids (tests/test_dpo.py feeds both the same batch).
From text, TRL's ``DPOTrainer`` encodes prompt + completion jointly and starts the completion where that
encoding leaves the prompt's; the course encodes the two apart (``batching.encode_preference``). The ids agree
when the prompt ends on a token boundary, as the course's prompts do ("...\nResponse:", completions starting
with a space). A prompt that ends in the middle of a token, e.g. with a trailing space, gives other ids: on the
course's tiny model, two pairs and a perturbed policy, TRL's loss read 0.854 and the course's 0.819.

Reference log-probabilities do not change while the policy trains: ``add_reference_logprobs`` computes them
once, before training, and ``collate_dpo`` puts them in the batch beside the token ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks, gpu
from .batching import _check_pad, _check_rows, collate_preference
from .logprobs import sequence_logprobs

LOSS_TYPES = ("sigmoid", "conservative", "robust", "ipo", "ipo_mean")
_LOGPS = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")


def _check_logps(where: str, *logps) -> None:
    """Four [B] floating tensors of one shape, B >= 1, finite."""
    for name, value in zip(_LOGPS, logps):
        _checks.finite(where, name, _checks.tensor(where, name, value, dims=1, floating=True))
    shapes = {tuple(v.shape) for v in logps}
    if len(shapes) != 1 or logps[0].numel() == 0:
        raise ValueError(f"{where}: {', '.join(_LOGPS)} must all be [B] with one B >= 1, got shapes "
                         f"{[tuple(v.shape) for v in logps]}")


def _margin(where, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps):
    _check_logps(where, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)


def _epsilon(where: str, epsilon) -> float:
    epsilon = _checks.number(where, "epsilon", epsilon, nonnegative=True)
    if epsilon >= 0.5:
        raise ValueError(f"{where}: epsilon (the assumed share of flipped labels) must be in [0, 0.5), got {epsilon}; "
                         "at 0.5 a label carries no information")
    return epsilon


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
             beta: float = 0.1) -> torch.Tensor:
    """The DPO loss of each pair (Rafailov et al. 2023, eq. 7):

        L = -log σ(β [(log π_θ(y_w|x) - log π_ref(y_w|x)) - (log π_θ(y_l|x) - log π_ref(y_l|x))])

    The four log-probabilities: [B] each, summed over response tokens. Returns [B] (take ``.mean()`` for the
    batch loss). ``logsigmoid`` keeps it finite for margins of any size. Equals TRL's ``loss_type="sigmoid"``
    on identical token ids (see the module's note on text).
    """
    beta = _checks.number("dpo_loss", "beta", beta, positive=True)
    delta = _margin("dpo_loss", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return -F.logsigmoid(beta * delta)


def conservative_dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                          beta: float = 0.1, epsilon: float = 0.1) -> torch.Tensor:
    """Conservative DPO (cDPO; Mitchell 2023): the DPO loss with labels smoothed by ε,

        L = -(1 - ε) log σ(β Δ) - ε log σ(-β Δ),

    the cross-entropy against a label that says "y_w wins with probability 1 - ε". Its minimum over Δ is at
    β Δ = log((1 - ε)/ε) (σ(βΔ) = 1 - ε), so confident pairs stop being pushed. [B] inputs -> [B].
    Not in the pinned TRL (its ``sigmoid`` loss ignores ``label_smoothing``); checked against this formula.
    """
    beta = _checks.number("conservative_dpo_loss", "beta", beta, positive=True)
    epsilon = _epsilon("conservative_dpo_loss", epsilon)
    delta = _margin("conservative_dpo_loss", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                    ref_rejected_logps)
    return -(1 - epsilon) * F.logsigmoid(beta * delta) - epsilon * F.logsigmoid(-beta * delta)


def robust_dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                    beta: float = 0.1, epsilon: float = 0.1) -> torch.Tensor:
    """Robust DPO (rDPO; Chowdhury et al. 2024, eq. 8): for labels flipped with probability ε,

        L = [-(1 - ε) log σ(β Δ) + ε log σ(-β Δ)] / (1 - 2ε).

    Averaged over the label noise it equals the DPO loss on the clean labels (an unbiased correction), unlike
    the conservative loss, which fits the noise. Its per-pair value is unbounded below as Δ grows.
    [B] inputs -> [B]. Equals TRL's ``loss_type="robust"`` with ``label_smoothing=ε``.
    """
    beta = _checks.number("robust_dpo_loss", "beta", beta, positive=True)
    epsilon = _epsilon("robust_dpo_loss", epsilon)
    delta = _margin("robust_dpo_loss", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                    ref_rejected_logps)
    return (-(1 - epsilon) * F.logsigmoid(beta * delta) + epsilon * F.logsigmoid(-beta * delta)) / (1 - 2 * epsilon)


def ipo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, tau: float = 0.1,
             chosen_lengths=None, rejected_lengths=None) -> torch.Tensor:
    """IPO (Azar et al. 2023, eq. 17): regress the log-ratio margin onto 1/(2τ),

        L = (Δ - 1/(2τ))²,   Δ = log [π_θ(y_w) π_ref(y_l) / (π_θ(y_l) π_ref(y_w))].

    Without lengths, Δ uses the summed log-probabilities (the paper's form). With ``chosen_lengths`` and
    ``rejected_lengths`` ([B], each response's number of tokens), each log-ratio is divided by its length
    first, Δ = h_w/|y_w| - h_l/|y_l| (TRL's ``loss_type="ipo"``, which does this). τ plays β's part: larger
    τ, a smaller target margin, a policy closer to the reference. [B] inputs -> [B].
    """
    tau = _checks.number("ipo_loss", "tau", tau, positive=True)
    _check_logps("ipo_loss", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    chosen = policy_chosen_logps - ref_chosen_logps
    rejected = policy_rejected_logps - ref_rejected_logps
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise ValueError("ipo_loss: pass chosen_lengths and rejected_lengths together (TRL's per-token form), "
                         "or neither (the paper's summed form)")
    if chosen_lengths is not None:
        for name, value in (("chosen_lengths", chosen_lengths), ("rejected_lengths", rejected_lengths)):
            _checks.tensor("ipo_loss", name, value, dims=1)
            if value.shape != chosen.shape or (value <= 0).any():
                raise ValueError(f"ipo_loss: {name} must be [B] positive token counts, one per pair, got "
                                 f"{value.tolist() if value.numel() <= 8 else tuple(value.shape)}")
        chosen, rejected = chosen / chosen_lengths, rejected / rejected_lengths
    return (chosen - rejected - 1 / (2 * tau)) ** 2


def preference_metrics(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                       beta: float = 0.1) -> dict:
    """What DPO trainers log, as 0-dim tensors (TRL's names):

    - ``rewards/chosen``, ``rewards/rejected``: mean implicit reward β (log π_θ(y|x) - log π_ref(y|x));
    - ``rewards/accuracies``: share of pairs whose chosen response has the higher implicit reward;
    - ``rewards/margins``: mean difference of the two implicit rewards;
    - ``logps/chosen``, ``logps/rejected``: mean log π_θ of each response (summed over its tokens).

    The rewards use summed log-probabilities whatever the loss (TRL's IPO too). [B] inputs.
    """
    beta = _checks.number("preference_metrics", "beta", beta, positive=True)
    _check_logps("preference_metrics", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                 ref_rejected_logps)
    with torch.no_grad():
        chosen = beta * (policy_chosen_logps - ref_chosen_logps)
        rejected = beta * (policy_rejected_logps - ref_rejected_logps)
        return {"rewards/chosen": chosen.mean(), "rewards/rejected": rejected.mean(),
                "rewards/accuracies": (chosen > rejected).float().mean(),
                "rewards/margins": (chosen - rejected).mean(),
                "logps/chosen": policy_chosen_logps.mean(), "logps/rejected": policy_rejected_logps.mean()}


# ---------------------------------------------------------------- the batch and the training step

def _pair_logps(model, batch: dict, chunked: bool | None = None,
                average: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(y_w|x), log π(y_l|x) of a ``collate_preference`` batch: chosen and rejected in one forward pass
    (``chunked`` as in ``sequence_logprobs``; with ``average=True``, the mean per-token log-probabilities
    instead, as ORPO uses)."""
    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    attention = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])
    completion = torch.cat([batch["chosen_completion_mask"], batch["rejected_completion_mask"]])
    return sequence_logprobs(model, ids, attention, completion, average=average, chunked=chunked).chunk(2)


def _check_batch(where: str, batch, keys) -> None:
    if not isinstance(batch, dict) or any(k not in batch for k in keys):
        missing = [k for k in keys if k not in batch] if isinstance(batch, dict) else keys
        hint = ("; compute the reference log-probs once with add_reference_logprobs and collate with collate_dpo"
                if any(k.startswith("ref_") for k in missing) else "")
        raise ValueError(f"{where}: batch must be a dict from collate_dpo with {list(keys)}; missing {missing}"
                         + hint)


_PAIR_KEYS = [f"{side}_{key}" for side in ("chosen", "rejected")
              for key in ("input_ids", "attention_mask", "completion_mask")]


@torch.no_grad()
def add_reference_logprobs(reference, rows, pad_token_id: int, batch_size: int = 64) -> list[dict]:
    """Each encoded pair (from ``encode_preference``) with ``ref_chosen_logps`` and ``ref_rejected_logps``
    added: log π_ref(y|x) summed over response tokens, as floats. The reference is frozen, so these are
    computed once, before training, instead of a second forward pass at every step (TRL's
    ``precompute_ref_log_probs``). Runs in eval mode (no dropout) and restores the model's mode; ``rows``
    is not changed (new dicts come back, in order)."""
    _checks.model("add_reference_logprobs", "reference", reference)
    _checks.sequence("add_reference_logprobs", "rows", rows, "encoded preference pairs")
    _checks.integer("add_reference_logprobs", "batch_size", batch_size, minimum=1)
    rows = list(rows)
    _check_rows("add_reference_logprobs", rows, ("chosen_", "rejected_"))  # every row, before any work
    _check_pad("add_reference_logprobs", pad_token_id)
    device = next(reference.parameters()).device
    was_training = reference.training
    reference.eval()
    out = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
            batch = {k: v.to(device) for k, v in collate_preference(chunk, pad_token_id).items()}
            with gpu.autocast(device):  # on CUDA as the policy's log-probs are computed in training (bf16)
                chosen, rejected = _pair_logps(reference, batch)
            out += [dict(row, ref_chosen_logps=float(c), ref_rejected_logps=float(r))
                    for row, c, r in zip(chunk, chosen.tolist(), rejected.tolist())]
    finally:
        reference.train(was_training)
    return out


def collate_dpo(rows: list[dict], pad_token_id: int) -> dict:
    """``collate_preference`` (chosen and rejected ids and masks, [B, T] each, right-padded to one T) plus
    ``ref_chosen_logps`` and ``ref_rejected_logps`` ([B] float32) from ``add_reference_logprobs``."""
    _check_rows("collate_dpo", rows, ("chosen_", "rejected_"))
    _check_pad("collate_dpo", pad_token_id)
    for key in ("ref_chosen_logps", "ref_rejected_logps"):
        if any(key not in row for row in rows):
            raise ValueError(f"collate_dpo: rows lack {key!r}; add the reference log-probs once with "
                             "add_reference_logprobs(reference, rows, pad_token_id) before training")
    batch = collate_preference(rows, pad_token_id)
    for key in ("ref_chosen_logps", "ref_rejected_logps"):
        batch[key] = torch.tensor([float(row[key]) for row in rows], dtype=torch.float32)
    return batch


def _check_settings(where: str, loss_type, beta, epsilon) -> tuple[str, float, float]:
    _checks.choice(where, "loss_type", loss_type, LOSS_TYPES)
    beta = _checks.number(where, "beta", beta, positive=True)
    if loss_type in ("conservative", "robust"):
        epsilon = _epsilon(where, epsilon)
    elif _checks.number(where, "epsilon", epsilon) != 0:
        raise ValueError(f"{where}: epsilon={epsilon} has no effect with loss_type={loss_type!r} (TRL's sigmoid "
                         "ignores it silently); use loss_type='conservative' or 'robust' for noisy labels")
    return loss_type, beta, float(epsilon)


def dpo_step(model, batch: dict, loss_type: str = "sigmoid", beta: float = 0.1, epsilon: float = 0.0,
             chunked: bool | None = None):
    """One DPO-family loss on a ``collate_dpo`` batch: ``(loss, metrics)``, the ``loss_fn`` contract of
    ``training.train`` (use ``dpo_objective`` to fix the settings).

    ``loss_type``: ``"sigmoid"`` (DPO), ``"conservative"`` (cDPO, label smoothing ``epsilon``), ``"robust"``
    (rDPO, flip rate ``epsilon``), ``"ipo"`` (IPO with summed log-ratios, the paper's form, τ = ``beta``) or
    ``"ipo_mean"`` (IPO with per-token mean log-ratios, TRL's form). The policy's log-probs come from one
    forward pass over chosen and rejected ([2B, T]); the reference's from the batch. Metrics: those of
    ``preference_metrics``. ``chunked``: as in ``logprobs.sequence_logprobs`` (None: chunked on CUDA)."""
    loss_type, beta, epsilon = _check_settings("dpo_step", loss_type, beta, epsilon)
    _check_batch("dpo_step", batch, _PAIR_KEYS + ["ref_chosen_logps", "ref_rejected_logps"])
    _checks.model("dpo_step", "model", model)
    chosen, rejected = _pair_logps(model, batch, chunked)
    logps = (chosen, rejected, batch["ref_chosen_logps"].to(chosen), batch["ref_rejected_logps"].to(chosen))
    if loss_type == "sigmoid":
        losses = dpo_loss(*logps, beta=beta)
    elif loss_type == "conservative":
        losses = conservative_dpo_loss(*logps, beta=beta, epsilon=epsilon)
    elif loss_type == "robust":
        losses = robust_dpo_loss(*logps, beta=beta, epsilon=epsilon)
    elif loss_type == "ipo":
        losses = ipo_loss(*logps, tau=beta)
    else:  # ipo_mean: each log-ratio divided by its response's number of tokens
        lengths = [batch[f"{side}_completion_mask"][:, 1:].sum(-1).to(chosen) for side in ("chosen", "rejected")]
        losses = ipo_loss(*logps, tau=beta, chosen_lengths=lengths[0], rejected_lengths=lengths[1])
    return losses.mean(), preference_metrics(*logps, beta=beta)


def dpo_objective(loss_type: str = "sigmoid", beta: float = 0.1, epsilon: float = 0.0):
    """``dpo_step`` with its settings fixed: the ``loss_fn`` to pass to ``training.train``. Its name carries
    the settings (``dpo_step(loss_type='sigmoid', beta=0.1, epsilon=0.0)``), so a checkpoint of one variant
    is never resumed, or loaded, as another."""
    loss_type, beta, epsilon = _check_settings("dpo_objective", loss_type, beta, epsilon)

    def objective(model, batch):
        return dpo_step(model, batch, loss_type, beta, epsilon)

    objective.__qualname__ = objective.__name__ = \
        f"dpo_step(loss_type={loss_type!r}, beta={beta!r}, epsilon={epsilon!r})"
    return objective


def without_dropout(model):
    """Set every dropout probability of ``model`` to 0, in place, and return it (TRL's DPOTrainer does the same,
    ``disable_dropout=True``). With dropout on, log π_θ in training mode is a noisy estimate, so the policy's
    log-ratio to the reference is not 0 even at step 0, before any update."""
    _checks.model("without_dropout", "model", model)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(model, "config", None)
    for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout"):
        if hasattr(config, name):
            setattr(config, name, 0.0)
    return model
