"""Comparing policies on the same prompts: log-probabilities of their samples, the KL
to a reference policy estimated from them, and bootstrap intervals.

KL(π ‖ π_ref) = E_{y~π}[log π(y|x) - log π_ref(y|x)], estimated by the mean of that
log-ratio over responses sampled from π (Schulman's "k1" estimator: unbiased, can be
negative on a small sample). Each response is scored as it was generated: with its
end token if the model ended it, without one if it ran out of tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _checks
from .batching import collate_sft
from .logprobs import sequence_logprobs


@torch.no_grad()
def sample_logprobs(model, tokenizer, prompts, responses, finished, max_length: int = 128,
                    batch_size: int = 64) -> np.ndarray:
    """log π(y | x) (summed over response tokens) of each sampled response, in eval mode
    (the model's mode is restored). ``finished[i]``: whether response i ended with the end
    token, which is then scored too. An empty finished response is the end token alone.

    The response is re-tokenised from its text, which can split it differently from the
    tokens the model sampled (rarely, for byte-level BPE); the rollouts of notebook 04 on
    keep the sampled tokens instead."""
    _checks.tokenizer("sample_logprobs", "tokenizer", tokenizer)
    _checks.integer("sample_logprobs", "batch_size", batch_size, minimum=1)
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("sample_logprobs: prompts and responses must be lists of strings, not one string")
    if not len(prompts) == len(responses) == len(finished):
        raise ValueError(f"sample_logprobs: prompts, responses and finished must have one length, got "
                         f"{len(prompts)}, {len(responses)}, {len(finished)}")
    rows = []
    for i, (p, r, done) in enumerate(zip(prompts, responses, finished)):
        if not isinstance(p, str) or not p.strip() or not isinstance(r, str):
            raise ValueError(f"sample_logprobs: prompt {i} must be a non-empty string and response {i} a string")
        prompt_ids = tokenizer(p, verbose=False)["input_ids"]
        response_ids = tokenizer(r, add_special_tokens=False, verbose=False)["input_ids"] if r else []
        response_ids += [tokenizer.eos_token_id] if done else []
        if not response_ids:
            raise ValueError(f"sample_logprobs: response {i} is empty and unfinished: nothing to score")
        if len(prompt_ids) >= max_length:
            raise ValueError(f"sample_logprobs: prompt {i} has {len(prompt_ids)} tokens, max_length={max_length}")
        rows.append({"input_ids": (prompt_ids + response_ids)[:max_length],
                     "completion_mask": ([0] * len(prompt_ids) + [1] * len(response_ids))[:max_length]})
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros(len(rows))
    try:
        for start in range(0, len(rows), batch_size):
            batch = collate_sft(rows[start:start + batch_size], tokenizer.pad_token_id)
            logps = sequence_logprobs(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                      batch["completion_mask"].to(device))
            out[start:start + len(logps)] = logps.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def bootstrap_ci(values, other=None, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """Mean of ``values``, or the difference of means ``values - other`` of two independent
    samples, with a percentile bootstrap interval (each sample resampled with
    replacement ``n_boot`` times): ``(estimate, low, high)``."""
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size < 2 or not np.isfinite(a).all():
        raise ValueError("bootstrap_ci: values must be a 1-D array of at least 2 finite numbers")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    if other is None:
        stats = a[rng.integers(a.size, size=(n_boot, a.size))].mean(-1)
        estimate = a.mean()
    else:
        b = np.asarray(other, dtype=float)
        if b.ndim != 1 or b.size < 2 or not np.isfinite(b).all():
            raise ValueError("bootstrap_ci: other must be a 1-D array of at least 2 finite numbers")
        stats = (a[rng.integers(a.size, size=(n_boot, a.size))].mean(-1)
                 - b[rng.integers(b.size, size=(n_boot, b.size))].mean(-1))
        estimate = a.mean() - b.mean()
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(estimate), float(low), float(high)
