"""The judge: exact pairwise-agreement maths, the head reading the last real token,
and the shipped judge reaching the agreement its metrics.json states."""

import json
import math

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from course_utils.data import DOMAINS, load_corpus
from course_utils.judge import (DOMAIN_LABELS, SENTIMENT, Judge, agreement_by_domain, ceiling, ceiling_by_domain,
                                encode, pairwise_agreement, prefer_probability, same_domain_pairs, vader_scores)
from course_utils.models import JUDGE

# ---------------------------------------------------------------- exact pairwise maths


def test_prefer_probability_exact():
    assert prefer_probability([1], [0]) == 1.0
    assert prefer_probability([0], [1]) == 0.0
    assert prefer_probability([1, -1], [0]) == 0.5
    # A: {2, 0}, B: {1, 1}: A wins 1/2, loses 1/2
    assert prefer_probability([2, 0], [1, 1]) == 0.5
    # A: {1, 1, 0}, B: {0}: P(win) = 2/3, P(lose) = 0, one third ties -> 1.0 among decided draws
    assert prefer_probability([1, 1, 0], [0]) == 1.0
    # A: {2, 0, 0}, B: {1, 0}: 6 equally likely draws
    # (2,1)W (2,0)W (0,1)L (0,0)T (0,1)L (0,0)T -> 2 wins, 2 losses
    assert prefer_probability([2, 0, 0], [1, 0]) == pytest.approx(0.5)
    # A: {4, 3}, B: {3, -4}: draws (4,3)W (4,-4)W (3,3)T (3,-4)W -> 3 wins of 3 decided
    assert prefer_probability([4, 3], [3, -4]) == 1.0
    # A: {1, 0, 0, 0}, B: {0, 0, 0, -1}: wins when a=1 (4 draws) or a=0, b=-1 (3 draws),
    # the other 9 draws tie, none loses -> 1.0; and reversed -> 0.0
    assert prefer_probability([1, 0, 0, 0], [0, 0, 0, -1]) == 1.0
    assert prefer_probability([0, 0, 0, -1], [1, 0, 0, 0]) == 0.0
    # all draws tie: no label at all
    assert math.isnan(prefer_probability([0], [0]))
    assert math.isnan(prefer_probability([3, 3], [3]))
    with pytest.raises(ValueError):
        prefer_probability([5], [0])


def test_prefer_probability_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(-4, 5, size=rng.integers(1, 6)).tolist()
        b = rng.integers(-4, 5, size=rng.integers(1, 6)).tolist()
        win = sum(x > y for x in a for y in b)
        loss = sum(x < y for x in a for y in b)
        expected = win / (win + loss) if win + loss else float("nan")
        got = prefer_probability(a, b)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_pairwise_agreement_and_ceiling_on_small_examples():
    ratings = [[2, 1, 1], [0, 0, 1], [-2, -1, 0], [0], [0]]
    pairs = [[0, 1], [1, 2], [0, 2], [3, 4]]  # the last pair always ties: dropped
    p01, p12, p02 = prefer_probability(ratings[0], ratings[1]), prefer_probability(ratings[1], ratings[2]), \
        prefer_probability(ratings[0], ratings[2])
    expected_ceiling = np.mean([max(p, 1 - p) for p in (p01, p12, p02)])
    assert ceiling(ratings, pairs) == pytest.approx(expected_ceiling)
    means = [np.mean(r) for r in ratings]
    # the mean rating ranks every pair like the majority here: it reaches the ceiling
    assert pairwise_agreement(means, ratings, pairs) == pytest.approx(expected_ceiling)
    # the reversed predictor gets the complement; a constant predictor gets one half
    assert pairwise_agreement([-m for m in means], ratings, pairs) == pytest.approx(
        np.mean([1 - max(p, 1 - p) for p in (p01, p12, p02)]))
    assert pairwise_agreement([0.0] * 5, ratings, pairs) == 0.5
    assert math.isnan(pairwise_agreement([1.0, 0.0], [[0], [0]], [[0, 1]]))


def test_mean_rating_reaches_but_never_exceeds_the_ceiling():
    """The mean can disagree with the majority side (e.g. [4, -1, -1] vs [0]: mean prefers A,
    a single-rater label prefers B 2:1), so it can fall below the ceiling, never above it;
    and no predictor at all beats the ceiling."""
    assert pairwise_agreement([2 / 3, 0], [[4, -1, -1], [0]], [[0, 1]]) == pytest.approx(1 / 3)
    assert ceiling([[4, -1, -1], [0]], [[0, 1]]) == pytest.approx(2 / 3)
    rng = np.random.default_rng(1)
    for _ in range(20):
        ratings = [rng.integers(-4, 5, size=rng.integers(1, 8)).tolist() for _ in range(12)]
        pairs = same_domain_pairs(["x"] * 12, 40, seed=int(rng.integers(1000)))
        top = ceiling(ratings, pairs)
        assert pairwise_agreement([np.mean(r) for r in ratings], ratings, pairs) <= top + 1e-12
        assert pairwise_agreement(rng.normal(size=12), ratings, pairs) <= top + 1e-12


def test_same_domain_pairs():
    domains = ["movie"] * 5 + ["tweet"] * 2 + ["movie", "product", "product", "product"]
    pairs = same_domain_pairs(domains, 500, seed=3)
    assert pairs.shape == (3 * 500, 2)
    assert all(domains[a] == domains[b] and a != b for a, b in pairs)
    assert {domains[a] for a, _ in pairs} == {"movie", "tweet", "product"}
    assert len({tuple(sorted(p)) for p in pairs if domains[p[0]] == "movie"}) == 15  # all 6*5/2 pairs drawn
    np.testing.assert_array_equal(pairs, same_domain_pairs(domains, 500, seed=3))  # seeded
    assert not np.array_equal(pairs, same_domain_pairs(domains, 500, seed=4))
    with pytest.raises(ValueError):
        same_domain_pairs(["movie", "movie", "tweet"], 5)


def test_vader_scores():
    s = vader_scores(["I love this, it is wonderful!", "This is terrible and I hate it.", ""])
    assert s.shape == (3,) and s[0] > 0.5 and s[1] < -0.5 and s[2] == 0.0


# ---------------------------------------------------------------- the head reads the last real token


@pytest.fixture
def tiny_judge(course_tokenizer):
    torch.manual_seed(0)
    labels = (SENTIMENT,) + DOMAIN_LABELS
    config = GPT2Config(vocab_size=len(course_tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=5,
                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                        bos_token_id=course_tokenizer.bos_token_id, eos_token_id=course_tokenizer.eos_token_id,
                        pad_token_id=course_tokenizer.pad_token_id)
    return Judge(GPT2ForSequenceClassification(config), course_tokenizer)


def test_head_reads_the_last_real_token(tiny_judge):
    short, long = "the movie was fun", "the film was boring and the plot was awful today " * 3
    together = tiny_judge.logits([short, long], batch_size=2)  # the short one is padded on the right
    alone = torch.cat([tiny_judge.logits([short]), tiny_judge.logits([long])])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    # and it is the end token's output: read it by hand from the unpadded sequence
    ids = torch.tensor([encode(tiny_judge.tokenizer, short)])
    assert ids[0, -1] == tiny_judge.tokenizer.eos_token_id
    model = tiny_judge.model
    hidden = model.transformer(input_ids=ids).last_hidden_state
    torch.testing.assert_close(model.score(hidden[0, -1]), alone[0], rtol=1e-5, atol=1e-5)


def test_score_handles_empty_texts_and_keeps_order(tiny_judge):
    texts = ["", "the movie was fun", "   ", "a"]
    out = tiny_judge.score(texts)
    assert out["sentiment"].shape == (4,) and out["domain_probs"].shape == (4, 4)
    assert out["sentiment"][0] == pytest.approx(out["sentiment"][2], abs=1e-6)  # both are the end token alone
    assert set(out["domain"]) <= set(DOMAINS)
    np.testing.assert_allclose(out["domain_probs"].sum(1), 1.0, rtol=1e-5)
    reordered = tiny_judge.score(texts[::-1], batch_size=3)
    np.testing.assert_allclose(reordered["sentiment"][::-1], out["sentiment"], rtol=1e-5, atol=1e-5)
    assert tiny_judge.score([])["sentiment"].shape == (0,)


# ---------------------------------------------------------------- the shipped judge

needs_judge = pytest.mark.skipif(not (JUDGE / "model.safetensors").exists(),
                                 reason="no shipped judge yet: run `python -m course_utils.judge` to train it")


@pytest.fixture(scope="module")
def shipped():
    """The shipped judge on the whole test split, with the pairs metrics.json was measured on."""
    metrics = json.loads((JUDGE / "metrics.json").read_text())
    judge = Judge.load()
    test = load_corpus("test")
    pairs = same_domain_pairs(test["domain"], metrics["pairs"]["per_domain"], metrics["pairs"]["seed"])
    scores = judge.score(list(test["text"]))
    return metrics, judge, test, pairs, scores


@needs_judge
def test_shipped_judge_is_small_and_self_describing():
    assert (JUDGE / "model.safetensors").stat().st_size <= 10 * 1024 * 1024
    judge = Judge.load()
    assert isinstance(judge.model, GPT2ForSequenceClassification)
    assert judge.model.config.id2label[0] == SENTIMENT and judge.domains == DOMAINS
    assert judge.tokenizer.padding_side == "right"


@needs_judge
def test_shipped_judge_reaches_its_stated_agreement(shipped):
    """Recomputed exactly: the whole test split, the same seeded pairs as metrics.json.
    Only float summation order (thread count) can differ, which moves a score by ~1e-6
    and can flip at most a handful of near-tied pairs among 20,000: hence 1e-3."""
    metrics, _, test, pairs, scores = shipped
    agreement = agreement_by_domain(scores["sentiment"], list(test["ratings"]), test["domain"], pairs)
    stated = metrics["test"]
    for d in DOMAINS:
        assert agreement[d] == pytest.approx(stated["judge"][d], abs=1e-3), d


@needs_judge
def test_shipped_judge_against_the_ceiling_and_vader(shipped):
    """Measured when the shipped judge was trained (2-core CPU, 6 min), test split:

    |          | movie | tweet | product | editorial |
    | ceiling  | 0.880 | 0.875 | 0.910   | 0.846     |
    | judge    | 0.730 | 0.756 | 0.733   | 0.605     |
    | VADER    | 0.646 | 0.798 | 0.701   | 0.640     |

    The tiny backbone's judge is far from the ceiling (largest gap 0.241, editorials) and
    beats VADER on movie and product reviews only. The test pins those facts: it fails if a
    retrained judge falls back to chance, gets further from the ceiling, or loses its lead
    where it had one.
    """
    metrics, _, test, pairs, scores = shipped
    ratings, domains = list(test["ratings"]), test["domain"]
    judge = agreement_by_domain(scores["sentiment"], ratings, domains, pairs)
    top = ceiling_by_domain(ratings, domains, pairs)
    vader = agreement_by_domain(vader_scores(test["text"]), ratings, domains, pairs)
    for d in DOMAINS:
        assert top[d] - 0.25 < judge[d] <= top[d], d
        assert judge[d] > 0.58, d  # 0.5 is chance
        assert top[d] == pytest.approx(metrics["test"]["ceiling"][d], abs=1e-9)
        assert vader[d] == pytest.approx(metrics["test"]["vader"][d], abs=1e-9)
    for d in ("movie", "product"):
        assert judge[d] > vader[d] + 0.02, d


@needs_judge
def test_shipped_judge_knows_the_domain(shipped):
    """Domain accuracy on the test split, measured at 0.944 overall and 0.915 (editorial) to
    0.983 (product) per domain; the floors sit a little under those."""
    metrics, _, test, _, scores = shipped
    predicted, domains = np.asarray(scores["domain"]), np.asarray(test["domain"])
    accuracy = float((predicted == domains).mean())
    assert accuracy == pytest.approx(metrics["test"]["domain_accuracy"]["all"], abs=1e-3)
    assert accuracy > 0.90
    for d in DOMAINS:
        assert (predicted[domains == d] == d).mean() > 0.80, d
    # the course's instruction-following check: a human text of each domain is judged that domain
    assert Judge.load().score(["What a wonderful film, the actors were superb."])["domain"] == ["movie"]
