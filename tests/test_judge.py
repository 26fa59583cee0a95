"""The judge: the head reads the last real token, the score combines the columns as
documented, and the shipped judge reaches what its metrics.json states, on real texts
and on the held-out degenerate battery."""

import json

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from course_utils.data import DOMAINS, load_corpus
from course_utils.judge.degenerate import HELDOUT_FAMILIES, TRAIN_FAMILIES, corrupt
from course_utils.judge import (DOMAIN_POWERS, ECHO_ALLOWANCE, FLOOR, JUDGE_DIR, LABELS, ON_DOMAIN_GATE,
                                REPETITION_WIDTH, STUTTER_ALLOWANCE, WELL_FORMED_GATE, Judge, encode, vader_scores)
from course_utils.judge.domain import FILE as DOMAIN_FILE
from course_utils.judge.domain import DomainLinear
from course_utils.preferences import agreement_by_domain, ceiling_by_domain, same_domain_pairs
from course_utils.judge.sentiment import FILE as SENTIMENT_FILE
from course_utils.judge.sentiment import SentimentRidge
from course_utils.judge.train import _battery_results

# ---------------------------------------------------------------- a tiny random judge


@pytest.fixture
def tiny_judge(course_tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(course_tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                        bos_token_id=course_tokenizer.bos_token_id, eos_token_id=course_tokenizer.eos_token_id,
                        pad_token_id=course_tokenizer.pad_token_id)
    texts, domains = ["the movie was fun", "the product broke", "so happy today", "a dull film"], \
        ["movie", "product", "tweet", "movie"]
    ridge = SentimentRidge.fit(texts, domains, [2.0, -3.0, 3.0, -1.0])
    return Judge(GPT2ForSequenceClassification(config), course_tokenizer, ridge,
                 DomainLinear.fit(texts, domains, ridge.idf, max_iter=20))


def test_head_reads_the_last_real_token(tiny_judge):
    short, long = "the movie was fun", "the film was boring and the plot was awful today " * 3
    together = tiny_judge.logits([short, long], batch_size=2)  # the short one is padded on the right
    alone = torch.cat([tiny_judge.logits([short]), tiny_judge.logits([long])])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    ids = torch.tensor([encode(tiny_judge.tokenizer, short)])
    assert ids[0, -1] == tiny_judge.tokenizer.eos_token_id
    model = tiny_judge.model
    hidden = model.transformer(input_ids=ids).last_hidden_state
    torch.testing.assert_close(model.score(hidden[0, -1]), alone[0], rtol=1e-5, atol=1e-5)


def _q(out, well_formed, on_domain, domains, gates):
    """The score's factor q, from the module docstring's equation."""
    q = np.minimum(1, well_formed / [gates[0][d] for d in domains])
    for share, allowance in (("stutter_share", STUTTER_ALLOWANCE), ("echo_share", ECHO_ALLOWANCE)):
        q = q * np.clip(1 - (out[share] - [allowance[d] for d in domains]) / REPETITION_WIDTH, 0, 1)
    return q if on_domain is None else q * np.minimum(1, on_domain / gates[1])


@pytest.mark.parametrize("gates", [(WELL_FORMED_GATE, ON_DOMAIN_GATE), (dict.fromkeys(DOMAINS, 0.9), 0.5)])
def test_score_combines_the_columns_as_documented(tiny_judge, gates, monkeypatch):
    """With the shipped gates, and with gates high enough that a random judge's texts fall under them;
    the third text stutters (stutter share 0.5, collapsed to "the plot was thin" before judging), the
    fourth echoes a run of four words further on (echo share 4/9: the second run)."""
    monkeypatch.setattr("course_utils.judge.WELL_FORMED_GATE", gates[0])
    monkeypatch.setattr("course_utils.judge.ON_DOMAIN_GATE", gates[1])
    texts = ["the movie was fun", "the product broke", "the plot was thin the plot was thin",
             "the plot was thin , the plot was thin"]
    domains = ["movie", "product", "tweet", "tweet"]
    judged = texts[:2] + ["the plot was thin", texts[3]]
    logits = tiny_judge.logits(judged).double()
    out = tiny_judge.score(texts, domains=domains)
    expected_sentiment = np.clip(tiny_judge.sentiment.predict(judged, domains), -4, 4)
    transformer = torch.softmax(logits[:, 9:13], -1).numpy()
    domain_probs = transformer ** DOMAIN_POWERS[0] * tiny_judge.domain.predict_proba(judged) ** DOMAIN_POWERS[1]
    domain_probs /= domain_probs.sum(1, keepdims=True)
    well_formed = torch.sigmoid(logits[:, 13]).numpy()
    on_domain = domain_probs[np.arange(4), [DOMAINS.index(d) for d in domains]]
    np.testing.assert_allclose(out["sentiment"], expected_sentiment, rtol=1e-6)
    np.testing.assert_allclose(out["domain_probs"], domain_probs, rtol=1e-6)
    np.testing.assert_allclose(out["on_domain"], on_domain, rtol=1e-6)
    np.testing.assert_allclose(out["well_formed"], well_formed, rtol=1e-6)
    np.testing.assert_allclose(out["stutter_share"], [0, 0, 0.5, 0])
    np.testing.assert_allclose(out["echo_share"], [0, 0, 0.5, 4 / 9])
    q = _q(out, well_formed, on_domain, domains, gates)
    assert (q[2:] == 0).all()
    np.testing.assert_allclose(out["score"], FLOOR + q * (expected_sentiment - FLOOR), rtol=1e-6)
    assert out["domain"] == [DOMAINS[k] for k in domain_probs.argmax(-1)]
    assert (out["score"] <= out["sentiment"] + 1e-9).all()
    without = tiny_judge.score(texts)  # no requested domain: the likeliest domain's sentiment, no domain gate
    assert "on_domain" not in without
    as_likeliest = np.clip(tiny_judge.sentiment.predict(judged, without["domain"]), -4, 4)
    np.testing.assert_allclose(without["sentiment"], as_likeliest, rtol=1e-6)
    likeliest_q = _q(without, well_formed, None, without["domain"], gates)
    np.testing.assert_allclose(without["score"], FLOOR + likeliest_q * (as_likeliest - FLOOR), rtol=1e-6)


def test_sentiment_stays_on_the_rating_scale(tiny_judge):
    """However far the ridge extrapolates, the sentiment is a mean rating: within -4..+4,
    so that FLOOR (-5) stays below every text the judge takes for real writing."""
    texts = ["so happy today " * 40, "the product broke " * 40]
    raw = tiny_judge.sentiment.predict(texts, ["tweet", "product"])
    assert raw[0] > 4 and raw[1] < -4
    sentiment, tiny_judge.sentiment = tiny_judge.sentiment, type("Far", (), {"predict": lambda self, t, d: raw})()
    try:
        out = tiny_judge.score(texts, domains=["tweet", "product"])
    finally:
        tiny_judge.sentiment = sentiment
    assert out["sentiment"].tolist() == [4.0, -4.0]


def test_score_handles_empty_texts_and_keeps_order(tiny_judge):
    texts = ["", "the movie was fun", "   ", "a"]
    out = tiny_judge.score(texts)
    assert out["sentiment"].shape == (4,) and out["domain_probs"].shape == (4, 4) and out["score"].shape == (4,)
    assert out["sentiment"][0] == pytest.approx(out["sentiment"][2], abs=1e-6)  # both are the end token alone
    reordered = tiny_judge.score(texts[::-1], batch_size=3)
    np.testing.assert_allclose(reordered["score"][::-1], out["score"], rtol=1e-5, atol=1e-5)
    empty = tiny_judge.score([], domains=[])
    assert empty["score"].shape == (0,) and empty["domain_probs"].shape == (0, 4) and empty["domain"] == []


def test_vader_scores():
    s = vader_scores(["I love this, it is wonderful!", "This is terrible and I hate it.", ""])
    assert s.shape == (3,) and s[0] > 0.5 and s[1] < -0.5 and s[2] == 0.0


def test_training_negatives_use_training_families_only():
    assert not set(TRAIN_FAMILIES) & set(HELDOUT_FAMILIES)
    texts = ["the film was great.", "awful plot, boring actors!", "the city council met today."]
    made = corrupt(texts, TRAIN_FAMILIES, 200, seed=0)
    assert {m["family"] for m in made} == set(TRAIN_FAMILIES)
    assert made == corrupt(texts, TRAIN_FAMILIES, 200, seed=0)  # seeded
    assert all(m["text"] != texts[m["source"]] for m in made if m["family"] != "shuffle_words")


def test_sentiment_salad_floods_the_text_with_sentiment_words_of_either_sign():
    from course_utils.judge.degenerate import sentiment_salad
    from course_utils.judge.sentiment import _lexicons
    valence = _lexicons()[0][0]
    pool = ["the film was great and the cast superb!", "awful plot, boring actors, a terrible waste."]
    text = "the city council met today to discuss the new budget for the schools"
    rng, signs = np.random.default_rng(0), set()
    for _ in range(40):
        salad = sentiment_salad(text, rng, pool)
        words = [w.strip("!.:)(") for w in salad.split() if w not in (":)", ":(")]
        rated = [valence[w] for w in words if valence.get(w, 0) != 0]
        assert len(words) == len(text.split())
        assert len(rated) >= 2 and (all(v > 0 for v in rated) or all(v < 0 for v in rated))
        signs.add(rated[0] > 0)
    assert signs == {True, False}
    assert len(sentiment_salad("so good", rng, pool).split()) >= 8  # a short text borrows a pool text's words


# ---------------------------------------------------------------- the shipped judge

needs_judge = pytest.mark.skipif(not (JUDGE_DIR / "model.safetensors").exists(),
                                 reason="no shipped judge: run `python -m course_utils.judge.train`")


@pytest.fixture(scope="module")
def shipped():
    """The shipped judge on the whole test split (each text requested as its own domain),
    with the seeded pairs metrics.json was measured on."""
    metrics = json.loads((JUDGE_DIR / "metrics.json").read_text())
    judge = Judge.load()
    test = load_corpus("test")
    pairs = same_domain_pairs(test["domain"], metrics["pairs"]["per_domain"], metrics["pairs"]["seed"])
    scores = judge.score(list(test["text"]), domains=list(test["domain"]))
    return metrics, judge, test, pairs, scores


@needs_judge
def test_shipped_judge_is_small_and_self_describing(shipped):
    metrics, judge, *_ = shipped
    size = (JUDGE_DIR / "model.safetensors").stat().st_size
    assert size <= 30 * 1024 * 1024 and size == metrics["checkpoint_bytes"]
    assert (JUDGE_DIR / SENTIMENT_FILE).stat().st_size == metrics["sentiment_bytes"]
    assert (JUDGE_DIR / DOMAIN_FILE).stat().st_size == metrics["domain_linear_bytes"]
    assert isinstance(judge.sentiment, SentimentRidge) and isinstance(judge.domain, DomainLinear)
    assert isinstance(judge.model, GPT2ForSequenceClassification)
    assert judge.tokenizer.padding_side == "right"
    assert metrics["rebuild"].startswith("python -m course_utils.judge.train") and metrics["train_seconds"] > 0


@needs_judge
def test_shipped_judge_reaches_its_stated_agreement(shipped):
    """Recomputed exactly on the same seeded pairs; only float summation order (thread
    count) can differ, which can flip a handful of near-tied pairs among 20,000: hence 1e-3."""
    metrics, _, test, pairs, scores = shipped
    ratings, domains = list(test["ratings"]), test["domain"]
    stated = metrics["test"]
    for key, values in (("judge", scores["score"]), ("judge_without_penalty", scores["sentiment"])):
        got = agreement_by_domain(values, ratings, domains, pairs)
        for d in DOMAINS:
            assert got[d] == pytest.approx(stated[key][d], abs=1e-3), (key, d)
    top = ceiling_by_domain(ratings, domains, pairs)
    vader = agreement_by_domain(vader_scores(list(test["text"])), ratings, domains, pairs)
    for d in DOMAINS:
        assert top[d] == pytest.approx(stated["ceiling"][d], abs=1e-9)
        assert vader[d] == pytest.approx(stated["vader"][d], abs=1e-9)


@needs_judge
def test_shipped_judge_against_vader_and_the_ceiling(shipped):
    """Test split, stated in metrics.json and recomputed above: the judge score stays below
    the ceiling and beats VADER on movie reviews (by 0.098), product reviews (0.065) and
    editorials (0.027); the stated leads over VADER are these differences, inside their
    bootstrap intervals, which exclude zero for movies and products."""
    stated = shipped[0]["test"]
    for d in DOMAINS:
        assert 0.6 < stated["judge"][d] <= stated["ceiling"][d], d
    assert stated["judge"]["movie"] > stated["vader"]["movie"] + 0.05
    assert stated["judge"]["product"] > stated["vader"]["product"] + 0.05
    assert stated["judge"]["editorial"] > stated["vader"]["editorial"]
    lead = stated["judge_lead_over_vader"]   # with its 95 % bootstrap interval over test texts
    for d in DOMAINS:
        assert lead[d]["lead"] == pytest.approx(stated["judge"][d] - stated["vader"][d], abs=1e-12), d
        assert lead[d]["low"] < lead[d]["lead"] < lead[d]["high"], d
    assert lead["movie"]["low"] > 0 and lead["product"]["low"] > 0


@needs_judge
@pytest.mark.xfail(strict=True, reason="issue 8 target missed on the 444 test tweets: the judge score reaches 0.816 "
                                       "against VADER's 0.824 (lead -0.008, 95% bootstrap interval -0.019..+0.007; "
                                       "its sentiment alone 0.821); five-fold cross-validation over 3,756 training and "
                                       "validation tweets puts the sentiment ahead")
def test_shipped_judge_beats_vader_on_test_tweets(shipped):
    stated = shipped[0]["test"]
    assert stated["judge"]["tweet"] > stated["vader"]["tweet"]


@needs_judge
def test_degeneracy_penalty_costs_at_most_a_hundredth(shipped):
    """The penalty (score against the same judge's sentiment) costs at most 0.01 agreement in
    every domain, on the validation split, where its gates were chosen, and on the test split."""
    metrics = shipped[0]
    for split in ("validation", "test"):
        for d in DOMAINS:
            assert metrics[split]["judge"][d] >= metrics[split]["judge_without_penalty"][d] - 0.01, (split, d)


@needs_judge
def test_shipped_judge_scores_degenerate_text_low(shipped):
    """The held-out battery (made from test-split texts), recomputed: at least 95% of
    degenerate texts score below the median score of their domain's real positive texts,
    overall and within the rule families never used to make training negatives."""
    metrics, judge, test, *_ = shipped
    result = _battery_results(judge, test)
    assert result["all"] >= 0.95 and result["heldout_families"] >= 0.95 and result["repetition_families"] >= 0.95
    for key in ("all", "heldout_families", "repetition_families", "lowest_family"):
        assert result[key] == pytest.approx(metrics["test_battery"][key], abs=0.01), key
    # the issues' examples: once higher than every real positive review of the held-out set; a sentence said
    # three times; a glowing phone review, once and said three times, asked for as a movie review
    once, phone = "A gorgeous, witty, seductive movie.", "I love this phone, works great."
    scores = judge.score(["great great great great great", once, " ".join([once] * 3), " ".join([phone] * 3), phone],
                         domains=["movie"] * 5)["score"]
    assert (scores[[0, 3, 4]] < result["positive_median"]["movie"]).all()
    assert scores[2] <= scores[1] + 0.01


@needs_judge
@pytest.mark.parametrize("split", ["test", pytest.param("validation", marks=pytest.mark.xfail(
    strict=True, reason="on the validation split, where the gates were chosen, one training family stays under "
                        "95 %: 0.945 of shuffled texts (11 of 200), mostly tweets that the well-formedness column "
                        "takes for real (0.13 to 0.9) at a tweet gate of 0.02; the test split's battery holds"))])
def test_every_family_of_the_battery_mostly_below_the_median(shipped, split):
    """The issue's bar, family by family, as metrics.json states it: at least 95 % of every
    family, held-out and repetition families included, below the real positive median."""
    families = shipped[0][f"{split}_battery"]["per_family"]
    assert {f: r["below_median"] for f, r in families.items() if r["below_median"] < 0.95} == {}


@needs_judge
def test_shipped_judge_knows_the_domain(shipped):
    metrics, judge, test, _, scores = shipped
    predicted, domains = np.asarray(scores["domain"]), np.asarray(test["domain"])
    accuracy = float((predicted == domains).mean())
    assert accuracy == pytest.approx(metrics["test"]["domain_accuracy"]["all"], abs=1e-3)
    assert accuracy > 0.90
    assert judge.score(["What a wonderful film, the actors were superb."])["domain"] == ["movie"]


@needs_judge
@pytest.mark.parametrize("asked", ["own domain", "another domain"])
def test_repetition_never_pays(shipped, asked):
    """Every test-split text said two, three and four times scores no higher than the text
    said once (ties within 0.01), asked for as its own domain and as another."""
    _, judge, test, _, scores = shipped
    texts, n = list(test["text"]), len(test["text"])
    domains = list(test["domain"]) if asked == "own domain" else \
        [DOMAINS[(DOMAINS.index(d) + 1) % len(DOMAINS)] for d in test["domain"]]
    said = [" ".join([t] * k) for k in (1, 2, 3, 4) for t in texts]
    judged = judge.score(said, domains=domains * 4)["score"].reshape(4, n)
    if asked == "own domain":
        np.testing.assert_allclose(judged[0], scores["score"], rtol=1e-5, atol=1e-5)
    excess = judged[1:] - judged[0]
    k, worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[k, worst] <= 0.01, (k + 2, texts[worst], judged[0, worst], judged[k + 1, worst])
