"""Log-probabilities of responses under a causal language model.

Every objective after SFT scores whole responses: the reward for PPO's KL term,
DPO's and ORPO's log-ratios. They all reduce to one quantity,

    log π(y | x) = Σ_{t ∈ response} log π(y_t | x, y_<t),

read off one forward pass over ``prompt + response``. The shift is the part that
is easy to get wrong: the logits at position t are the model's prediction for the
token at position t + 1, so ``logits[:, :-1]`` are scored against
``input_ids[:, 1:]``, and the response mask is shifted with the targets
(``completion_mask[:, 1:]``).

The plain way to get there holds the logits of every position, [B, T, V], and a
float32 log-softmax of the same size: for GPT-2 (V = 50,257) at 8 x 1,024 tokens,
1.6 GB each. The chunked way (``chunked=True``, the default on CUDA) never forms
them: it runs the model's body to its last hidden states, picks the response
positions only, and applies the output layer a chunk of positions at a time (at most
``CHUNK_LOGITS`` logits, 64 MB in float32: 333 positions for GPT-2, 4,096 for the tiny model);
with gradients, a chunk's logits are recomputed in the backward pass instead of
kept (activation checkpointing). Same numbers to float rounding (tests/test_fast_paths.py).
On the CPU the plain way stays the default: the course's committed CPU results
were computed with it, and chunking changes their last bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from . import _checks

CHUNK_LOGITS = 2**24  # logits the chunked path forms at once: [CHUNK_LOGITS // V, V], 64 MB in float32


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] at every position.

    logits [B, T, V], targets [B, T] (token ids) -> [B, T], in float32 (float64 if
    the logits are float64).

    Computed one batch element at a time: the full-precision log-softmax of a
    whole batch is a [B, T, V] float32 tensor, e.g. 32 x 512 x 50257 x 4 bytes =
    3.3 GB for GPT-2, on top of the (bf16) logits themselves; one row at a time it
    is B times smaller. Low-precision logits are upcast first, because bf16 cannot
    resolve the small differences between log-probabilities.

    -inf logits are accepted on purpose (a token masked out of the vocabulary, as top-k
    sampling does); NaN or +inf logits are refused, checked on the [B, T] result.
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


def _chunk_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(hidden W^T + b)[target] of each row: [C, H] -> [C], the logits upcast to float32 (at least)."""
    logits = F.linear(hidden, weight, bias)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits.log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)


def selected_logprobs(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor,
                      chunk_tokens: int | None = None) -> torch.Tensor:
    """log softmax(head(hidden))[target] of each row, ``chunk_tokens`` rows at a time, without the full logits.

    hidden [N, H] (hidden states of the positions to score), head the output layer (H -> V),
    targets [N] (token ids) -> [N] float32 (float64 for a float64 model). At most one chunk's
    [chunk_tokens, V] logits exist at a time (default: ``CHUNK_LOGITS // V`` positions). With
    gradients and more than one chunk, each chunk is checkpointed: its logits are recomputed in the
    backward pass rather than kept (one more product with the output layer, the price of memory
    that no longer grows with N).
    """
    _checks.tensor("selected_logprobs", "hidden", hidden, dims=2, floating=True)
    _checks.tensor("selected_logprobs", "targets", targets, dims=1, ids=True)
    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"selected_logprobs: head must be a torch.nn.Linear (the model's output layer), "
                        f"got {type(head).__name__}")
    if chunk_tokens is None:
        chunk_tokens = max(1, CHUNK_LOGITS // head.out_features)
    _checks.integer("selected_logprobs", "chunk_tokens", chunk_tokens, minimum=1)
    if len(targets) != len(hidden) or hidden.shape[1] != head.in_features:
        raise ValueError(f"selected_logprobs: expected hidden [N, {head.in_features}] and targets [N], got "
                         f"{tuple(hidden.shape)} and {tuple(targets.shape)}")
    if targets.numel() and (targets.min() < 0 or targets.max() >= head.out_features):
        raise ValueError(f"selected_logprobs: targets must be token ids in [0, {head.out_features})")
    keep_graph = torch.is_grad_enabled() and len(hidden) > chunk_tokens
    parts = []
    for start in range(0, len(hidden), chunk_tokens):
        args = (hidden[start:start + chunk_tokens], head.weight, head.bias, targets[start:start + chunk_tokens])
        parts.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False) if keep_graph
                     else _chunk_logprobs(*args))
    out = torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.promote_types(hidden.dtype, torch.float32))
    if torch.isnan(out).any():
        raise ValueError("selected_logprobs: the logits contain NaN or +infinity (a diverged model?); "
                         "log-probabilities of such logits are NaN")
    return out


def _body_and_head(model):
    """(body, output layer) of a model whose logits are ``head(body(...).last_hidden_state)``, else None.
    GPT-2's language model is (``transformer``, ``lm_head``); other architectures may scale or cap
    their logits, so they keep the plain path."""
    from transformers import GPT2LMHeadModel

    return (model.transformer, model.lm_head) if isinstance(model, GPT2LMHeadModel) else None


def _chunked_by_default(device_type: str) -> bool:
    """Chunked log-probs by default on CUDA only (on the CPU the course's results were computed plain)."""
    return device_type == "cuda"


def _use_chunked(where: str, model, chunked) -> bool:
    """``chunked`` as given (True/False), or None: the device's default. Models without a known output layer: False."""
    if chunked is not None and not isinstance(chunked, bool):
        raise TypeError(f"{where}: chunked must be True, False or None (chunked on CUDA), got {chunked!r}")
    if chunked is None:
        chunked = _chunked_by_default(next(model.parameters()).device.type)
    return chunked and _body_and_head(model) is not None


def _scored_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, targets: torch.Tensor,
                     score_mask: torch.Tensor, chunked: bool) -> torch.Tensor:
    """log π(targets_t | x_<=t) where ``score_mask`` is 1, 0 elsewhere: [B, T-1] (float32 or wider), with targets and
    score_mask [B, T-1] (the logits at t predict targets[:, t], usually ``input_ids[:, 1:]``).

    One forward pass; ``chunked`` scores the masked positions only, from the last hidden states
    (``selected_logprobs``), the plain path takes the log-softmax of the full logits. Arguments are
    the caller's to check (``sequence_logprobs`` and ``losses.sft_step`` do)."""
    if not chunked:  # use_cache=False: no KV cache (for generation) built and thrown away
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return token_logprobs(logits[:, :-1], targets) * score_mask
    body, head = _body_and_head(model)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    where = score_mask.bool()
    logps = selected_logprobs(hidden[:, :-1][where], head, targets[where])
    return torch.zeros(where.shape, dtype=logps.dtype, device=logps.device).masked_scatter(where, logps)


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_mask: torch.Tensor,
                      average: bool = False, chunked: bool | None = None) -> torch.Tensor:
    """log π(y | x) of each response in a right-padded batch.

    input_ids, attention_mask, completion_mask: [B, T] (as from ``collate_sft`` or
    one side of ``collate_preference``; completion_mask is 1 on response tokens,
    0 on prompt and padding). Returns [B]:

        average=False:  log π(y | x) = Σ_t m_t · log π(x_t | x_<t)
        average=True:   the mean variant, (1 / Σ_t m_t) · Σ_t m_t · log π(x_t | x_<t)

    with m = completion_mask and t over positions 1..T-1 (logits at t-1 predict
    token t). Gradients flow; wrap in ``torch.no_grad()`` for a frozen reference.
    ``chunked``: score the response positions only, without the full logits (see the module's
    docstring); None: chunked on CUDA, plain on the CPU.
    """
    _checks.model("sequence_logprobs", "model", model)
    if not isinstance(average, bool):
        raise TypeError(f"sequence_logprobs: average must be True or False, got {average!r}")
    chunked = _use_chunked("sequence_logprobs", model, chunked)
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
    logps = _scored_logprobs(model, input_ids, attention_mask, input_ids[:, 1:], mask, chunked)  # m_t log π(x_t|x_<t)
    total = logps.sum(-1)
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
