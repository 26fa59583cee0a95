"""Training objectives. Each ``*_step(model, batch) -> (loss, metrics)`` plugs into
``training.train`` as its ``loss_fn``.

SFT: maximise the likelihood of the human-written responses, token by token,
given the prompt. Only response tokens are trained on (the prompt is given, not
predicted), and the end token counts as a response token.
"""

from __future__ import annotations

import torch

from . import _checks
from .batching import IGNORE_INDEX
from .logprobs import _scored_logprobs, _use_chunked, token_logprobs


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over the labelled tokens.

    logits [B, T, V], labels [B, T] (token ids, -100 where not trained on) -> scalar:

        L = -(1/N) Σ_i Σ_{t ∈ response_i} log π(y_t | x, y_<t)

    with N the number of response tokens in the whole batch (a token mean, not a
    mean of per-sequence means: long responses weigh more). The shift is explicit:
    ``logits[:, t]`` predicts ``labels[:, t + 1]``.
    """
    _checks.tensor("sft_loss", "logits", logits, floating=True)
    _checks.tensor("sft_loss", "labels", labels, ids=True)
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"sft_loss: expected logits [B, T, V] and labels [B, T], got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    n = mask.sum()
    if n == 0:
        raise ValueError("sft_loss: no labelled tokens in the batch (every label after the first is -100)")
    logps = token_logprobs(logits[:, :-1], targets.masked_fill(~mask, 0))  # [B, T-1]
    return -(logps * mask).sum() / n


def sft_step(model, batch: dict, chunked: bool | None = None):
    """``loss_fn`` for SFT: ``batch`` from ``collate_sft``; metrics: ``tokens``, the
    number of response tokens the loss averaged over.

    ``chunked``: the same loss from the labelled positions only, without the full logits
    (``logprobs.selected_logprobs``); None: chunked on CUDA, ``sft_loss`` on the full logits elsewhere."""
    if not isinstance(batch, dict) or not {"input_ids", "attention_mask", "labels"} <= set(batch):
        raise ValueError("sft_step: batch must be a dict with input_ids, attention_mask and labels "
                         f"(as from collate_sft), got {sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
    _checks.model("sft_step", "model", model)
    _checks.tensor("sft_step", "input_ids", batch["input_ids"], ids=True)
    _checks.vocabulary("sft_step", "input_ids", batch["input_ids"], model)
    labels = batch["labels"]
    if not _use_chunked("sft_step", model, chunked):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        return sft_loss(logits, labels), {"tokens": int((labels[:, 1:] != IGNORE_INDEX).sum())}
    _checks.tensor("sft_step", "labels", labels, dims=2, ids=True)
    if labels.shape != batch["input_ids"].shape:
        raise ValueError(f"sft_step: labels {tuple(labels.shape)} and input_ids {tuple(batch['input_ids'].shape)} "
                         "must have one shape")
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    n = int(mask.sum())
    if n == 0:
        raise ValueError("sft_step: no labelled tokens in the batch (every label after the first is -100)")
    logps = _scored_logprobs(model, batch["input_ids"], batch["attention_mask"], targets.masked_fill(~mask, 0),
                             mask, chunked=True)
    return -logps.sum() / n, {"tokens": n}


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor):
    """The reward model's loss on preference pairs (Bradley & Terry, 1952; InstructGPT eq. 1):

        P(y_w ≻ y_l | x) = σ(r(x, y_w) - r(x, y_l))
        L = -(1/B) Σ_i log σ(r_w,i - r_l,i)

    r_chosen, r_rejected: [B] rewards of the preferred and the other response ->
    ``(loss, metrics)`` with ``accuracy`` (share of pairs with r_w > r_l) and ``margin``
    (mean r_w - r_l). ``logsigmoid`` keeps it finite for large margins of either sign.
    TRL's ``RewardTrainer`` computes the same loss (tests/test_reward_model.py).
    """
    for name, value in (("r_chosen", r_chosen), ("r_rejected", r_rejected)):
        _checks.finite("bradley_terry_loss", name, _checks.tensor("bradley_terry_loss", name, value, dims=1,
                                                                  floating=True))
    if r_chosen.shape != r_rejected.shape or r_chosen.numel() == 0:
        raise ValueError(f"bradley_terry_loss: r_chosen and r_rejected must both be [B] with B >= 1, got "
                         f"{tuple(r_chosen.shape)} and {tuple(r_rejected.shape)}")
    margin = r_chosen - r_rejected
    loss = -torch.nn.functional.logsigmoid(margin).mean()
    return loss, {"accuracy": (margin > 0).float().mean().detach(), "margin": margin.mean().detach()}
