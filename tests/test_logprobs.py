"""Response log-probabilities: the shift, the masks and the padding."""

import pytest
import torch

from course_utils.batching import collate_sft, encode_prompt_completion
from course_utils.data import format_prompt
from course_utils.logprobs import response_nll, sequence_logprobs, token_logprobs

PAIRS = [(format_prompt("Write a movie review."), " The film was great."),
         (format_prompt("Write a tweet."), " Fun today!"),
         (format_prompt("Write a product review."), " The product broke. Awful.")]


@pytest.fixture
def batch(course_tokenizer):
    rows = [encode_prompt_completion(course_tokenizer, p, c, max_length=64) for p, c in PAIRS]
    return collate_sft(rows, pad_token_id=course_tokenizer.pad_token_id)


@pytest.fixture
def model(make_tiny_lm):
    return make_tiny_lm(seed=0).double()


def score(model, batch, **kw):
    return sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"], **kw)


@torch.no_grad()
def naive_logprobs(model, batch):
    """One forward pass per response token, each on the unpadded prefix alone."""
    out = []
    for ids, mask in zip(batch["input_ids"], batch["completion_mask"]):
        total = 0.0
        for t in range(len(ids)):
            if mask[t]:
                logits = model(input_ids=ids[None, :t]).logits[0, -1]
                total += torch.log_softmax(logits, dim=-1)[ids[t]].item()
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def test_sequence_logprobs_equals_a_loop_over_positions(model, batch):
    with torch.no_grad():
        fast = score(model, batch)
    assert fast.shape == (3,)
    torch.testing.assert_close(fast, naive_logprobs(model, batch), atol=1e-10, rtol=0)


def test_padding_and_prompt_do_not_change_the_result(model, batch, course_tokenizer):
    with torch.no_grad():
        ref = score(model, batch)
        extra = {k: torch.cat([v, torch.zeros_like(v[:, :5])], dim=1) for k, v in batch.items()}
        extra["input_ids"][:, -5:] = course_tokenizer.pad_token_id
        torch.testing.assert_close(score(model, extra), ref, atol=1e-12, rtol=0)  # five more padding columns
        other_pad = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 7)
        torch.testing.assert_close(score(model, {**batch, "input_ids": other_pad}), ref, atol=1e-12, rtol=0)


def test_prompt_tokens_are_not_scored(model, batch):
    """log π(prompt and response) - log π(prompt) = log π(response | prompt)."""
    every_token = batch["attention_mask"].clone()
    every_token[:, 0] = 0  # nothing predicts the first token
    prompt_only = every_token - batch["completion_mask"]
    with torch.no_grad():
        joint = score(model, {**batch, "completion_mask": every_token})
        prompt = score(model, {**batch, "completion_mask": prompt_only})
        torch.testing.assert_close(joint - prompt, score(model, batch), atol=1e-10, rtol=0)


def test_average_is_sum_over_response_tokens(model, batch):
    with torch.no_grad():
        n = batch["completion_mask"].sum(-1).double()
        torch.testing.assert_close(score(model, batch, average=True), score(model, batch) / n)


def test_the_shift_matters(model, batch):
    """Scoring logits[:, t] against token t (no shift) is a different, wrong number."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        unshifted = (token_logprobs(logits, batch["input_ids"]) * batch["completion_mask"]).sum(-1)
        assert (unshifted - score(model, batch)).abs().min() > 1e-3


def test_token_logprobs_upcasts_and_checks_targets():
    logits = torch.randn(2, 3, 5).to(torch.bfloat16)
    targets = torch.tensor([[0, 1, 2], [3, 4, 0]])
    out = token_logprobs(logits, targets)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.log_softmax(logits.float(), -1).gather(-1, targets[..., None])[..., 0])
    with pytest.raises(ValueError, match="-100"):
        token_logprobs(logits, targets.masked_fill(targets == 0, -100))
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        token_logprobs(logits[0], targets[0])


def test_sequence_logprobs_rejects_rows_without_response(model, batch):
    with pytest.raises(ValueError, match="no response tokens"):
        score(model, {**batch, "completion_mask": torch.zeros_like(batch["completion_mask"])})
    with pytest.raises(ValueError, match="first token"):
        score(model, {**batch, "completion_mask": torch.ones_like(batch["completion_mask"])})


def test_response_nll_sums_response_tokens(model, batch):
    model.train()
    total, n = response_nll(model, batch)
    assert model.training  # mode restored
    assert n == int(batch["completion_mask"].sum())
    with torch.no_grad():
        assert total == pytest.approx(-score(model, batch).sum().item(), abs=1e-12)
