"""From text to token tensors: encoding prompt/response pairs and padding batches.

One example becomes ``input_ids`` (prompt tokens, response tokens, end token) and
``completion_mask`` (0 on the prompt, 1 on the response and its end token):

    tokens           Instruction: Write a tweet.\\nResponse: | Good morning! | <|endoftext|>
    completion_mask  0 .......................... 0 | 1 ......... 1 | 1

The end token belongs to the response, so the model learns where to stop.
Prompt and response are tokenised separately and concatenated, so the boundary is
exact: the prompt's tokens are the ones the model sees when it is asked to
generate from that prompt. (Tokenising ``prompt + response`` in one go could merge
tokens across the boundary.)

Batches are padded on the RIGHT: real tokens keep positions 0, 1, 2, ... and
padding only ever follows them, so with causal attention it changes nothing that
comes before it. (Generation pads on the left instead; see ``generation.py``.)
"""

from __future__ import annotations

import numbers

import torch

from . import _checks
from .data import check_preference, check_prompt_completion

IGNORE_INDEX = -100  # label of a token that is not trained on (PyTorch's and Hugging Face's convention)


def encode_prompt_completion(tokenizer, prompt: str, completion: str, max_length: int,
                             where: str = "record") -> dict:
    """Token ids of ``prompt + completion + <eos>``, cut to ``max_length`` from the right.

    Returns ``dict(input_ids=list[int], completion_mask=list[int])``, both of the
    same length L <= max_length; ``completion_mask[t]`` is 1 where token t belongs to
    the response (its end token included). A response cut by truncation loses its
    end token: that example then teaches no stopping, which is the honest outcome.

    The prompt is tokenised as the tokenizer would for generation (with its special
    tokens, if it adds any; the course's tokenizer and GPT-2's add none); the
    completion without special tokens. Raises ``ValueError`` for an empty prompt or
    completion and for a prompt so long that no response token fits.
    """
    _checks.tokenizer("encode_prompt_completion", "tokenizer", tokenizer)
    check_prompt_completion({"prompt": prompt, "completion": completion}, where)
    _check_max_length("encode_prompt_completion", tokenizer, max_length)
    prompt_ids = tokenizer(prompt, verbose=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False, verbose=False)["input_ids"]
    if len(prompt_ids) >= max_length:
        raise ValueError(f"{where}: the prompt is {len(prompt_ids)} tokens, so with max_length={max_length} "
                         "the response is truncated away entirely; shorten the prompt or raise max_length")
    response_ids = completion_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_length]
    completion_mask = ([0] * len(prompt_ids) + [1] * len(response_ids))[:max_length]
    return {"input_ids": input_ids, "completion_mask": completion_mask}


def _check_max_length(where: str, tokenizer, max_length):
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"{where}: max_length must be an integer >= 2 (a prompt token and a response token), "
                         f"got {max_length!r}")
    if max_length > tokenizer.model_max_length:
        raise ValueError(f"{where}: max_length={max_length} exceeds the model's context of "
                         f"{tokenizer.model_max_length} tokens (tokenizer.model_max_length); "
                         f"use max_length <= {tokenizer.model_max_length}")


def encode_preference(tokenizer, prompt: str, chosen: str, rejected: str, max_length: int,
                      where: str = "record") -> dict:
    """Encode both responses of a preference pair with ``encode_prompt_completion``.

    Returns ``dict(chosen_input_ids, chosen_completion_mask, rejected_input_ids,
    rejected_completion_mask)`` (lists of ints). Raises ``ValueError`` for a record
    ``check_preference`` rejects, and for a pair that becomes identical once cut to
    ``max_length`` (the responses differ only after the cut): such a pair has no
    preference signal left.
    """
    _checks.tokenizer("encode_preference", "tokenizer", tokenizer)
    check_preference({"prompt": prompt, "chosen": chosen, "rejected": rejected}, where)
    _check_max_length("encode_preference", tokenizer, max_length)
    c = encode_prompt_completion(tokenizer, prompt, chosen, max_length, where)
    r = encode_prompt_completion(tokenizer, prompt, rejected, max_length, where)
    if c["input_ids"] == r["input_ids"]:
        raise ValueError(f"{where}: chosen and rejected are identical after truncation to {max_length} tokens "
                         "(they differ only beyond it); raise max_length or drop the pair")
    return {"chosen_input_ids": c["input_ids"], "chosen_completion_mask": c["completion_mask"],
            "rejected_input_ids": r["input_ids"], "rejected_completion_mask": r["completion_mask"]}


def encode_sft_dataset(tokenizer, rows, max_length: int) -> list[dict]:
    """``encode_prompt_completion`` on every row (a dict with ``prompt`` and ``completion``,
    e.g. a ``datasets.Dataset``); errors name the row."""
    _checks.tokenizer("encode_sft_dataset", "tokenizer", tokenizer)
    _checks.sequence("encode_sft_dataset", "rows", rows, "prompt/completion rows")
    _check_max_length("encode_sft_dataset", tokenizer, max_length)
    out = []
    for i, row in enumerate(rows):
        check_prompt_completion(row, where=f"row {i}")
        out.append(encode_prompt_completion(tokenizer, row["prompt"], row["completion"], max_length, f"row {i}"))
    return out


def encode_preference_dataset(tokenizer, rows, max_length: int) -> list[dict]:
    """``encode_preference`` on every row (``prompt``, ``chosen``, ``rejected``); errors name the row."""
    _checks.tokenizer("encode_preference_dataset", "tokenizer", tokenizer)
    _checks.sequence("encode_preference_dataset", "rows", rows, "preference rows")
    _check_max_length("encode_preference_dataset", tokenizer, max_length)
    out = []
    for i, row in enumerate(rows):
        check_preference(row, where=f"row {i}")
        out.append(encode_preference(tokenizer, row["prompt"], row["chosen"], row["rejected"], max_length,
                                     f"row {i}"))
    return out


def _pad_right(sequences: list[list[int]], value: int, length: int) -> torch.Tensor:
    return torch.tensor([list(s) + [value] * (length - len(s)) for s in sequences], dtype=torch.long)


def _check_rows(where: str, rows, prefixes=("",)):
    """Each row needs ``{prefix}input_ids`` (token ids >= 0) and ``{prefix}completion_mask``
    (0s and 1s) of one non-zero length."""
    if isinstance(rows, dict) or not isinstance(rows, (list, tuple)):
        raise TypeError(f"{where}: rows must be a list of encoded examples (dicts), got {type(rows).__name__}"
                        + ("; wrap a single example in a list" if isinstance(rows, dict) else ""))
    if len(rows) == 0:
        raise ValueError(f"{where}: cannot collate an empty list of examples (rows)")
    for i, row in enumerate(rows):
        for ids, mask in [(p + "input_ids", p + "completion_mask") for p in prefixes]:
            if not isinstance(row, dict) or ids not in row or mask not in row:
                raise ValueError(f"{where}: rows, example {i} has no {ids!r} or {mask!r}; encode it first "
                                 "(encode_prompt_completion / encode_preference)")
            if len(row[ids]) == 0 or len(row[ids]) != len(row[mask]):
                raise ValueError(f"{where}: rows, example {i}: {ids} is empty or differs in length from {mask}")
            if not all(isinstance(t, numbers.Integral) or (torch.is_tensor(t) and not t.is_floating_point())
                       for t in row[ids]):
                raise TypeError(f"{where}: rows, example {i}: {ids} must be a list of int token ids")
            if min(row[ids]) < 0:
                raise ValueError(f"{where}: rows, example {i}: {ids} holds {int(min(row[ids]))}, not a token id; "
                                 "input_ids must be >= 0 (-100 belongs in labels, which collate makes)")
            if not set(int(m) for m in row[mask]) <= {0, 1}:
                raise ValueError(f"{where}: rows, example {i}: {mask} must hold only 0 and 1")


def _check_pad(where: str, pad_token_id):
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0:
        raise ValueError(f"{where}: pad_token_id must be a token id (a non-negative int), got {pad_token_id!r}; "
                         "a tokenizer without a pad token can pad with its end token")


def collate_sft(rows: list[dict], pad_token_id: int, mask_prompt: bool = True) -> dict:
    """Right-pad encoded examples into a batch for SFT.

    ``rows``: dicts with ``input_ids`` and ``completion_mask`` (from ``encode_prompt_completion``).
    Returns, each a LongTensor of shape [B, T] with T the longest example:

    - ``input_ids``: padded with ``pad_token_id``;
    - ``attention_mask``: 1 on real tokens, 0 on padding;
    - ``completion_mask``: 1 on response tokens, 0 on prompt and padding;
    - ``labels``: ``input_ids`` with -100 on padding and, when ``mask_prompt``, on
      the prompt, so the loss counts response tokens only.

    Padding is told apart by the attention mask, never by its id, so padding with
    the end token (as GPT-2 does) keeps the real end token in the labels.
    """
    _check_rows("collate_sft", rows)
    _check_pad("collate_sft", pad_token_id)
    if not isinstance(mask_prompt, bool):
        raise TypeError(f"collate_sft: mask_prompt must be True or False, got {mask_prompt!r}")
    length = max(len(r["input_ids"]) for r in rows)
    input_ids = _pad_right([r["input_ids"] for r in rows], pad_token_id, length)
    attention_mask = _pad_right([[1] * len(r["input_ids"]) for r in rows], 0, length)
    completion_mask = _pad_right([r["completion_mask"] for r in rows], 0, length)
    trained = completion_mask if mask_prompt else attention_mask
    labels = input_ids.masked_fill(trained == 0, IGNORE_INDEX)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask,
            "labels": labels}


def collate_preference(rows: list[dict], pad_token_id: int) -> dict:
    """Right-pad encoded preference pairs into a batch.

    ``rows``: dicts from ``encode_preference``. Returns ``chosen_input_ids``,
    ``chosen_attention_mask``, ``chosen_completion_mask`` and the same three for
    ``rejected``, each a LongTensor [B, T]. Chosen and rejected are padded to ONE
    common length T (the longest of either), so a loss can run both through the
    model in a single forward pass with ``torch.cat([chosen, rejected])`` ([2B, T]).
    """
    _check_rows("collate_preference", rows, ("chosen_", "rejected_"))
    _check_pad("collate_preference", pad_token_id)
    length = max(len(r[f"{s}_input_ids"]) for r in rows for s in ("chosen", "rejected"))
    batch = {}
    for side in ("chosen", "rejected"):
        ids = [r[f"{side}_input_ids"] for r in rows]
        batch[f"{side}_input_ids"] = _pad_right(ids, pad_token_id, length)
        batch[f"{side}_attention_mask"] = _pad_right([[1] * len(s) for s in ids], 0, length)
        batch[f"{side}_completion_mask"] = _pad_right([r[f"{side}_completion_mask"] for r in rows], 0, length)
    return batch
