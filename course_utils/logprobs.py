"""Log-probabilities of responses under a causal language model.

Every objective after SFT scores whole responses: the reward for PPO's KL term,
DPO's and ORPO's log-ratios. They all reduce to one quantity,

    log π(y | x) = Σ_{t ∈ response} log π(y_t | x, y_<t),

read off one forward pass over ``prompt + response``. The shift is the part that
is easy to get wrong: the logits at position t are the model's prediction for the
token at position t + 1, so ``logits[:, :-1]`` are scored against
``input_ids[:, 1:]``, and the response mask is shifted with the targets
(``completion_mask[:, 1:]``).
"""

from __future__ import annotations

import torch

from . import _checks


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] at every position.

    logits [B, T, V], targets [B, T] (token ids) -> [B, T], in float32 (float64 if
    the logits are float64).

    Computed one batch element at a time: the full-precision log-softmax of a
    whole batch is a [B, T, V] float32 tensor, e.g. 32 x 512 x 50257 x 4 bytes =
    3.3 GB for GPT-2, on top of the (bf16) logits themselves; one row at a time it
    is B times smaller. Low-precision logits are upcast first, because bf16 cannot
    resolve the small differences between log-probabilities.
    """
    _checks.tensor("token_logprobs", "logits", logits, floating=True)
    _checks.tensor("token_logprobs", "targets", targets, ids=True)
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"token_logprobs: expected logits [B, T, V] and targets [B, T], got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    vocab = logits.shape[-1]
    if targets.numel() and (targets.min() < 0 or targets.max() >= vocab):
        raise ValueError(f"token_logprobs: targets must be token ids in [0, {vocab}); "
                         "replace ignored labels (-100) before scoring")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    rows = [torch.log_softmax(row.to(dtype), dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            for row, tgt in zip(logits, targets)]
    out = torch.stack(rows)
    if torch.isnan(out).any():  # checked on the [B, T] result: a check on the [B, T, V] logits would copy them
        raise ValueError("token_logprobs: logits contain NaN or +infinity (a diverged model or a bad mask); "
                         "log-probabilities of such logits are NaN")
    return out


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      completion_mask: torch.Tensor, average: bool = False) -> torch.Tensor:
    """log π(y | x) of each response in a right-padded batch.

    input_ids, attention_mask, completion_mask: [B, T] (as from ``collate_sft`` or
    one side of ``collate_preference``; completion_mask is 1 on response tokens,
    0 on prompt and padding). Returns [B]:

        average=False:  log π(y | x) = Σ_t m_t · log π(x_t | x_<t)
        average=True:   the mean variant, (1 / Σ_t m_t) · Σ_t m_t · log π(x_t | x_<t)

    with m = completion_mask and t over positions 1..T-1 (logits at t-1 predict
    token t). Gradients flow; wrap in ``torch.no_grad()`` for a frozen reference.
    """
    _checks.model("sequence_logprobs", "model", model)
    for name, value in [("input_ids", input_ids), ("attention_mask", attention_mask),
                        ("completion_mask", completion_mask)]:
        _checks.tensor("sequence_logprobs", name, value, ids=True)
    if not (input_ids.shape == attention_mask.shape == completion_mask.shape) or input_ids.dim() != 2:
        raise ValueError(f"sequence_logprobs: input_ids, attention_mask and completion_mask must share one "
                         f"[B, T] shape, got {tuple(input_ids.shape)}, {tuple(attention_mask.shape)}, "
                         f"{tuple(completion_mask.shape)}")
    _checks.vocabulary("sequence_logprobs", "input_ids", input_ids, model)
    _checks.within_context("sequence_logprobs", input_ids.shape[1], model,
                           f"input_ids has {input_ids.shape[1]} tokens per sequence, more than", "encode with max_length")
    if completion_mask[:, 0].any():
        raise ValueError("sequence_logprobs: the first token of a sequence cannot be scored (nothing precedes it): "
                         "every sequence needs at least one prompt token (completion_mask[:, 0] must be 0)")
    mask = completion_mask[:, 1:]
    if (mask.sum(-1) == 0).any():
        raise ValueError("sequence_logprobs: a sequence has no response tokens (completion_mask is all zero)")
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logps = token_logprobs(logits[:, :-1], input_ids[:, 1:])   # [B, T-1]: log π(x_t | x_<t), t = 1..T-1
    total = (logps * mask).sum(-1)
    return total / mask.sum(-1) if average else total


@torch.no_grad()
def response_nll(model, batch: dict) -> tuple[float, int]:
    """Summed negative log-likelihood of the response tokens in ``batch`` and their count.

    ``batch`` as from ``collate_sft``. Returns ``(Σ_i -log π(y_i | x_i), N)`` with N
    the number of response tokens (end tokens included), so a held-out set's
    per-token NLL is Σ total / Σ N over its batches, and its perplexity exp of that.
    Runs in eval mode (no dropout) and restores the model's mode.
    """
    if not isinstance(batch, dict) or not {"input_ids", "attention_mask", "completion_mask"} <= set(batch):
        raise ValueError("response_nll: batch must be a dict with input_ids, attention_mask and completion_mask "
                         f"(as from collate_sft), got {sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
    _checks.model("response_nll", "model", model)
    was_training = model.training
    model.eval()
    try:
        logps = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    finally:
        model.train(was_training)
    return float(-logps.sum()), int(batch["completion_mask"][:, 1:].sum())
