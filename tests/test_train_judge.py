"""The judge's training objective: each part of the loss sees only the rows it is for."""

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from course_utils.judge import LABELS, encode
from course_utils.judge.train import _lead_interval, _length_batches, _make_collate, _make_loss


def test_loss_parts_use_only_their_rows(course_tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(course_tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=len(LABELS),
                        pad_token_id=course_tokenizer.pad_token_id, eos_token_id=course_tokenizer.eos_token_id)
    model = GPT2ForSequenceClassification(config).eval()
    hist = np.zeros(9)
    hist[[5, 7]] = 0.5  # half the raters said +1, half +3
    rows = [{"input_ids": encode(course_tokenizer, "the movie was fun"), "hist": hist, "domain": 0, "ok": 1.0},
            {"input_ids": encode(course_tokenizer, "fun fun fun fun"), "hist": None, "domain": -100, "ok": 0.0},
            {"input_ids": encode(course_tokenizer, "great"), "hist": hist, "domain": -100, "ok": -1.0}]
    batch = _make_collate(course_tokenizer.pad_token_id)([rows])
    loss, parts = _make_loss(domain_weight=2.0, well_formed_weight=3.0)(model, batch)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :9], -1)
    rating = -(torch.tensor(hist, dtype=torch.float32) * logp[[0, 2]]).sum(-1).mean()  # rated rows only
    domain = torch.nn.functional.cross_entropy(logits[:1, 9:13], torch.tensor([0]))   # the real text only
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:2, 13], torch.tensor([1.0, 0.0]))
    assert parts["rating"] == pytest.approx(rating.item(), rel=1e-5)
    assert parts["domain_ce"] == pytest.approx(domain.item(), rel=1e-5)
    assert parts["well_formed_bce"] == pytest.approx(bce.item(), rel=1e-5)
    assert loss.item() == pytest.approx((rating + 2 * domain + 3 * bce).item(), rel=1e-5)
    # length batching can make a batch of degenerate texts only: no ratings, no domains, a finite loss
    only_degenerate = _make_collate(course_tokenizer.pad_token_id)([rows[1:2]])
    loss, parts = _make_loss()(model, only_degenerate)
    assert torch.isfinite(loss) and parts["rating"] == 0 and parts["domain_ce"] == 0 and parts["well_formed_bce"] > 0


def test_length_batches_cover_every_example_once_per_epoch():
    examples = [{"input_ids": [0] * (i % 7 + 1), "id": i} for i in range(100)]
    batches = _length_batches(examples, batch_size=10, epochs=2, window=3)
    assert len(batches) == 20 and all(len(b) == 10 for b in batches)
    for epoch in (batches[:10], batches[10:]):
        assert sorted(r["id"] for b in epoch for r in b) == list(range(100))


def test_lead_interval_is_a_paired_bootstrap_over_texts():
    """The lead of one predictor over another, with a 95 % interval from resampling texts:
    zero with no width for identical predictors; a perfect predictor (the ratings
    themselves) leads a random one with an interval above zero that holds its point;
    and fewer texts give a wider interval."""
    rng = np.random.default_rng(0)
    n = 200
    hist = np.zeros((n, 9))
    for i in range(n):
        hist[i] = np.bincount(rng.integers(0, 9, 15), minlength=9) / 15
    mean = hist @ np.arange(-4.0, 5.0)
    noise = rng.normal(size=n)
    pairs = np.stack([rng.integers(0, n, 4000), rng.integers(0, n, 4000)], axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    same = _lead_interval(mean, mean, hist, pairs, n_boot=100)
    assert same == {"lead": 0.0, "low": 0.0, "high": 0.0}
    full = _lead_interval(mean, noise, hist, pairs, n_boot=200)
    assert 0 < full["low"] < full["lead"] < full["high"]
    few = _lead_interval(mean, noise, hist, pairs[np.isin(pairs, np.arange(40)).all(axis=1)], n_boot=200)
    assert few["high"] - few["low"] > full["high"] - full["low"]
