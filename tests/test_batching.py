"""Encoding prompt/response pairs and padding them into batches."""

import pytest
import torch

from course_utils.batching import (collate_preference, collate_sft, encode_preference, encode_preference_dataset,
                                   encode_prompt_completion, encode_sft_dataset)
from course_utils.data import format_prompt

PROMPT = format_prompt("Write a movie review.")
GOOD = " The film was great."
BAD = " The film was awful."


def ids(tok, text, special=False):
    return tok(text, add_special_tokens=special)["input_ids"]


# ---------------------------------------------------------------- encode_prompt_completion

def test_encoding_is_prompt_then_completion_then_eos(course_tokenizer):
    tok = course_tokenizer
    enc = encode_prompt_completion(tok, PROMPT, GOOD, max_length=64)
    p, c = ids(tok, PROMPT, special=True), ids(tok, GOOD)
    assert enc["input_ids"] == p + c + [tok.eos_token_id]
    assert enc["completion_mask"] == [0] * len(p) + [1] * (len(c) + 1)  # the end token is part of the response


def test_boundary_is_where_the_prompt_alone_ends(course_tokenizer):
    """A prompt ending in a space: tokenised jointly, the space would merge into the response's first token."""
    tok = course_tokenizer
    prompt, completion = "Response: ", "The film"
    enc = encode_prompt_completion(tok, prompt, completion, max_length=64)
    n_prompt = enc["completion_mask"].index(1)
    assert enc["input_ids"][:n_prompt] == ids(tok, prompt)
    assert ids(tok, prompt + completion) != enc["input_ids"][:-1]  # what joint tokenisation would have given


def test_truncation_cuts_the_response_from_the_right(course_tokenizer):
    tok = course_tokenizer
    full = encode_prompt_completion(tok, PROMPT, GOOD, max_length=64)
    n_prompt = full["completion_mask"].index(1)
    enc = encode_prompt_completion(tok, PROMPT, GOOD, max_length=n_prompt + 2)
    assert enc["input_ids"] == full["input_ids"][:n_prompt + 2]
    assert enc["completion_mask"] == [0] * n_prompt + [1, 1]
    assert tok.eos_token_id not in enc["input_ids"]  # a cut response does not end


@pytest.mark.parametrize("prompt, completion, message", [
    ("", GOOD, "'prompt' is empty"),
    ("   \n", GOOD, "'prompt' is empty"),
    (PROMPT, "", "'completion' is empty"),
    (PROMPT, "  ", "'completion' is empty"),
])
def test_empty_prompt_or_response_is_rejected(course_tokenizer, prompt, completion, message):
    with pytest.raises(ValueError, match=message):
        encode_prompt_completion(course_tokenizer, prompt, completion, max_length=64)


def test_response_truncated_away_is_rejected(course_tokenizer):
    n_prompt = len(ids(course_tokenizer, PROMPT, special=True))
    with pytest.raises(ValueError, match="truncated away"):
        encode_prompt_completion(course_tokenizer, PROMPT, GOOD, max_length=n_prompt)
    encode_prompt_completion(course_tokenizer, PROMPT, GOOD, max_length=n_prompt + 1)  # one response token fits


def test_missing_column_is_rejected(course_tokenizer):
    rows = [{"prompt": PROMPT, "completion": GOOD}, {"prompt": PROMPT, "response": GOOD}]
    with pytest.raises(ValueError, match=r"row 1: missing column\(s\) \['completion'\]"):
        encode_sft_dataset(course_tokenizer, rows, max_length=64)
    with pytest.raises(ValueError, match=r"row 0: missing column\(s\) \['rejected'\]"):
        encode_preference_dataset(course_tokenizer, [{"prompt": PROMPT, "chosen": GOOD}], max_length=64)


def test_dataset_errors_name_the_row(course_tokenizer):
    rows = [{"prompt": PROMPT, "completion": GOOD}, {"prompt": "a " * 80, "completion": GOOD}]
    with pytest.raises(ValueError, match="row 1: the prompt is"):
        encode_sft_dataset(course_tokenizer, rows, max_length=64)


# ---------------------------------------------------------------- encode_preference

def test_preference_encodes_both_sides(course_tokenizer):
    enc = encode_preference(course_tokenizer, PROMPT, GOOD, BAD, max_length=64)
    for side, text in (("chosen", GOOD), ("rejected", BAD)):
        single = encode_prompt_completion(course_tokenizer, PROMPT, text, max_length=64)
        assert enc[f"{side}_input_ids"] == single["input_ids"]
        assert enc[f"{side}_completion_mask"] == single["completion_mask"]


def test_chosen_equal_to_rejected_is_rejected(course_tokenizer):
    with pytest.raises(ValueError, match="chosen and rejected are the same text"):
        encode_preference(course_tokenizer, PROMPT, GOOD, GOOD, max_length=64)


def test_chosen_equal_to_rejected_after_truncation_is_rejected(course_tokenizer):
    n_prompt = len(ids(course_tokenizer, PROMPT, special=True))
    common = " The film was"  # GOOD and BAD share these tokens, then differ
    max_length = n_prompt + len(ids(course_tokenizer, common))
    with pytest.raises(ValueError, match="identical after truncation"):
        encode_preference(course_tokenizer, PROMPT, GOOD, BAD, max_length=max_length)
    encode_preference(course_tokenizer, PROMPT, GOOD, BAD, max_length=max_length + 1)


def test_preference_with_empty_side_is_rejected(course_tokenizer):
    with pytest.raises(ValueError, match="'rejected' is empty"):
        encode_preference(course_tokenizer, PROMPT, GOOD, " ", max_length=64)


# ---------------------------------------------------------------- collate

ROWS = [{"input_ids": [5, 6, 7, 8], "completion_mask": [0, 0, 1, 1]},
        {"input_ids": [5, 9], "completion_mask": [0, 1]}]


def test_collate_sft_pads_right_and_masks_prompt_and_padding():
    batch = collate_sft(ROWS, pad_token_id=1)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [5, 9, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["completion_mask"].tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 9, -100, -100]]
    assert all(v.dtype == torch.long for v in batch.values())


def test_collate_sft_without_prompt_masking_labels_every_real_token():
    batch = collate_sft(ROWS, pad_token_id=1, mask_prompt=False)
    assert batch["labels"].tolist() == [[5, 6, 7, 8], [5, 9, -100, -100]]


def test_padding_with_the_end_token_keeps_the_real_end_token_labelled():
    rows = [{"input_ids": [5, 6, 0], "completion_mask": [0, 1, 1]}, {"input_ids": [5, 0], "completion_mask": [0, 1]}]
    batch = collate_sft(rows, pad_token_id=0)  # GPT-2 style: pad id == eos id == 0
    assert batch["labels"].tolist() == [[-100, 6, 0], [-100, 0, -100]]


def test_collate_rejects_bad_input():
    with pytest.raises(ValueError, match="empty list"):
        collate_sft([], pad_token_id=1)
    with pytest.raises(ValueError, match="encode it first"):
        collate_sft([{"prompt": PROMPT, "completion": GOOD}], pad_token_id=1)
    with pytest.raises(ValueError, match="differs in length"):
        collate_sft([{"input_ids": [5, 6], "completion_mask": [0]}], pad_token_id=1)
    with pytest.raises(ValueError, match="pad_token_id"):
        collate_sft(ROWS, pad_token_id=None)


def test_collate_preference_pads_both_sides_to_one_length(course_tokenizer):
    tok = course_tokenizer
    rows = [encode_preference(tok, PROMPT, GOOD, " Awful.", max_length=64),
            encode_preference(tok, PROMPT, " Fun!", BAD + " Boring plot.", max_length=64)]
    batch = collate_preference(rows, pad_token_id=tok.pad_token_id)
    longest = max(len(r[f"{s}_input_ids"]) for r in rows for s in ("chosen", "rejected"))
    assert {tuple(v.shape) for v in batch.values()} == {(2, longest)}
    for side in ("chosen", "rejected"):
        one_side = collate_sft([{"input_ids": r[f"{side}_input_ids"], "completion_mask": r[f"{side}_completion_mask"]}
                                for r in rows], pad_token_id=tok.pad_token_id)
        for key in ("input_ids", "attention_mask", "completion_mask"):
            t = one_side[key].shape[1]
            assert torch.equal(batch[f"{side}_{key}"][:, :t], one_side[key])
            assert (batch[f"{side}_{key}"][:, t:] == (tok.pad_token_id if key == "input_ids" else 0)).all()
    with pytest.raises(ValueError, match="chosen_input_ids"):
        collate_preference(ROWS, pad_token_id=1)
