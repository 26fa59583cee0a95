"""Bad input to the exact pairwise measures, the judge and the degenerate-text rules is
rejected at the door, with a message naming the argument."""

import functools

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from course_utils import judge, preferences
from course_utils.judge import degenerate, repetition
from course_utils.judge import train as train_judge
from course_utils.models import load_tokenizer
from course_utils.judge.domain import DomainLinear
from course_utils.judge.sentiment import SentimentRidge
from misuse import Case


@functools.cache
def tokenizer():
    tok = load_tokenizer("tiny")
    tok.padding_side = "right"
    return tok


fit = SentimentRidge.fit


@functools.cache
def tiny_ridge() -> SentimentRidge:
    return SentimentRidge.fit(["a good film", "a bad film"], ["movie", "movie"], [2.0, -2.0])


@functools.cache
def tiny_domain() -> DomainLinear:
    return DomainLinear.fit(["a good film", "a bad phone"], ["movie", "product"], tiny_ridge().idf, max_iter=5)


def fit_domain(texts=("a good film", "a bad phone"), domains=("movie", "product"), idf=None, **kwargs):
    return DomainLinear.fit(list(texts) if isinstance(texts, tuple) else texts,
                            list(domains) if isinstance(domains, tuple) else domains,
                            tiny_ridge().idf if idf is None else idf, max_iter=5, **kwargs)


@functools.cache
def tiny_judge(labels=judge.LABELS) -> judge.Judge:
    tok = tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=16, n_layer=1, n_head=2,
                        num_labels=len(labels), id2label=dict(enumerate(labels)),
                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(config)
    return judge.Judge(model, tok, tiny_ridge(), tiny_domain()) if labels == judge.LABELS else model


RATINGS = [[1, 2], [0], [-1, 3]]

# every rule family, given something that is not a text
RULE_CASES = [Case(f"judge.degenerate.{name}", lambda rule=rule: rule(None, np.random.default_rng(0), ["a text"]), TypeError,
                   "text") for name, rule in {**degenerate.TRAIN_FAMILIES, **degenerate.HELDOUT_FAMILIES, **degenerate.REPETITION_FAMILIES}.items()]

CASES = [
    Case("judge.train.main", lambda: train_judge.main(["--steps", "0", "--out", "/nonexistent/judge",
                                                        "--checkpoint-dir", "/nonexistent/ckpt"]), ValueError, "steps"),
    Case("judge.repetition.collapse", lambda: repetition.collapse(["a", "list"]), TypeError, "text"),
    Case("judge.repetition.stutter_share", lambda: repetition.stutter_share(None), TypeError, "text"),
    Case("judge.repetition.echo_share", lambda: repetition.echo_share(b"bytes"), TypeError, "text"),
    Case("judge.repetition.measure", lambda: repetition.measure(3), TypeError, "text"),
    Case("judge.degenerate.word_repeat", lambda: degenerate.word_repeat("good film", 0, ["a text"]), TypeError, "rng"),
    Case("judge.degenerate.word_salad", lambda: degenerate.word_salad("good film", np.random.default_rng(0),
                                                                "a text"), ValueError, "pool"),
    # preferences
    Case("preferences.rating_histograms", lambda: preferences.rating_histograms("1 2 3"), TypeError, "ratings"),
    Case("preferences.rating_histograms", lambda: preferences.rating_histograms([[5]]), ValueError, "ratings"),
    Case("preferences.rating_histograms", lambda: preferences.rating_histograms([[]]), ValueError, "ratings"),
    Case("preferences.pair_probabilities", lambda: preferences.pair_probabilities(RATINGS, [[0, 3]]), ValueError,
         "pairs"),
    Case("preferences.pair_probabilities", lambda: preferences.pair_probabilities(RATINGS, [0, 1]), ValueError,
         "pairs"),
    Case("preferences.prefer_probability", lambda: preferences.prefer_probability("12", [0]), TypeError,
         "ratings_a"),
    Case("preferences.prefer_probability", lambda: preferences.prefer_probability([1], [9]), ValueError,
         "ratings_b"),
    Case("preferences.pairwise_agreement", lambda: preferences.pairwise_agreement("abc", RATINGS, [[0, 1]]),
         TypeError, "scores"),
    Case("preferences.pairwise_agreement", lambda: preferences.pairwise_agreement([1, 2], RATINGS, [[0, 1]]),
         ValueError, "scores"),
    Case("preferences.ceiling", lambda: preferences.ceiling(RATINGS, [[0, -1]]), ValueError, "pairs"),
    Case("preferences.ceiling", lambda: preferences.ceiling(3, [[0, 1]]), TypeError, "ratings"),
    Case("preferences.same_domain_pairs", lambda: preferences.same_domain_pairs("movie", 3), TypeError, "domains"),
    Case("preferences.same_domain_pairs", lambda: preferences.same_domain_pairs(["a", "a"], -1), ValueError,
         "n_pairs"),
    Case("preferences.same_domain_pairs", lambda: preferences.same_domain_pairs(["a", "a", "b"], 2), ValueError,
         "domains"),
    Case("preferences.agreement_by_domain",
         lambda: preferences.agreement_by_domain([0, 1, 2], RATINGS, ["a", "a"], [[0, 1]]), ValueError, "domains"),
    Case("preferences.agreement_by_domain",
         lambda: preferences.agreement_by_domain([0, 1, 2], RATINGS, ["a", "b", "b"], [[0, 1]]), ValueError, "pairs"),
    Case("preferences.ceiling_by_domain", lambda: preferences.ceiling_by_domain(RATINGS, "aab", [[0, 1]]),
         TypeError, "domains"),
    # judge
    Case("judge.vader_scores", lambda: judge.vader_scores("a text"), TypeError, "texts"),
    Case("judge.vader_scores", lambda: judge.vader_scores(["ok", None]), TypeError, "texts"),
    Case("judge.encode", lambda: judge.encode(tokenizer(), ["a text"]), TypeError, "text"),
    Case("judge.encode", lambda: judge.encode(tokenizer(), "a text", max_length=0), ValueError, "max_length"),
    Case("judge.pad_right", lambda: judge.pad_right([], 1), ValueError, "seqs"),
    Case("judge.Judge.__init__", lambda: judge.Judge(tiny_judge(("sentiment",)), tokenizer(), tiny_ridge(),
                                                      tiny_domain()), ValueError, "model"),
    Case("judge.Judge.__init__", lambda: judge.Judge(tiny_judge().model, tokenizer(), tiny_ridge(), tiny_ridge()),
         TypeError, "domain"),
    # the judge's second opinion on the domain
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(texts="a text"), TypeError, "texts"),
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(domains=["movie"]), ValueError, "domains"),
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(domains=["movie", "poem"]), ValueError, "domains"),
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(domains=["movie", "movie"]), ValueError,
         "two different domains"),
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(idf=torch.ones(3)), ValueError, "idf"),
    Case("judge.domain.DomainLinear.fit", lambda: fit_domain(l2=0), ValueError, "l2"),
    Case("judge.domain.DomainLinear.predict_proba", lambda: tiny_domain().predict_proba("a text"), TypeError,
         "texts"),
    Case("judge.domain.DomainLinear.__init__", lambda: DomainLinear(torch.zeros(3, 4), torch.zeros(4),
                                                                    torch.zeros(3), 1e-5), ValueError, "weights"),
    Case("judge.domain.DomainLinear.save", lambda: tiny_domain().save("/nonexistent/judge"), FileNotFoundError,
         "folder"),
    Case("judge.domain.DomainLinear.load", lambda: DomainLinear.load("/nonexistent/judge"), FileNotFoundError,
         "does not exist"),
    # the judge's sentiment
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit("a text", ["movie"], [1.0]), TypeError, "texts"),
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit(["a", "b"], ["movie"], [1.0, 2.0]), ValueError,
         "domains"),
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit(["a"], ["poem"], [1.0]), ValueError, "domains"),
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit(["a"], ["movie"], [1.0, 2.0]), ValueError, "ratings"),
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit(["a"], ["movie"], [float("nan")]), ValueError,
         "ratings"),
    Case("judge.sentiment.SentimentRidge.fit", lambda: fit(["a"], ["movie"], [1.0], alpha=0), ValueError, "alpha"),
    Case("judge.sentiment.SentimentRidge.predict", lambda: tiny_ridge().predict(["a", 3], ["movie"] * 2),
         TypeError, "texts"),
    Case("judge.sentiment.SentimentRidge.predict", lambda: tiny_ridge().predict(["a"], ["poem"]), ValueError,
         "domains"),
    Case("judge.sentiment.SentimentRidge.load", lambda: SentimentRidge.load("/nonexistent/judge"),
         FileNotFoundError, "does not exist"),
    Case("judge.sentiment.SentimentRidge.__init__", lambda: SentimentRidge(torch.zeros(3), torch.zeros(3), 1.0),
         ValueError, "weights"),
    Case("judge.sentiment.SentimentRidge.save", lambda: tiny_ridge().save("/nonexistent/judge"), FileNotFoundError,
         "folder"),
    Case("judge.Judge.__init__", lambda: judge.Judge(tiny_judge().model, tokenizer(), None, tiny_domain()), TypeError,
         "sentiment"),
    Case("judge.Judge.load", lambda: judge.Judge.load(path="/nonexistent/judge"), FileNotFoundError, "path"),
    Case("judge.Judge.logits", lambda: tiny_judge().logits("a text"), TypeError, r"Judge\.logits: texts"),
    Case("judge.Judge.logits", lambda: tiny_judge().logits(["a"], batch_size=0), ValueError, "batch_size"),
    Case("judge.Judge.score", lambda: tiny_judge().score("a text"), TypeError, r"Judge\.score: texts"),
    Case("judge.Judge.score", lambda: tiny_judge().score(["a", 3]), TypeError, r"Judge\.score: texts"),
    Case("judge.Judge.score", lambda: tiny_judge().score(["a", "b"], domains=["movie"]), ValueError,
         r"Judge\.score: domains"),
    Case("judge.Judge.score", lambda: tiny_judge().score(["a"], domains=["poem"]), ValueError,
         r"Judge\.score: domains"),
    Case("judge.Judge.score", lambda: tiny_judge().score(["a"], domains="movie"), TypeError,
         r"Judge\.score: domains"),
    # degenerate
    Case("judge.degenerate.corrupt", lambda: degenerate.corrupt("a text", degenerate.TRAIN_FAMILIES, 3, 0), ValueError,
         "texts"),
    Case("judge.degenerate.corrupt", lambda: degenerate.corrupt(["a text"], {}, 3, 0), ValueError, "families"),
    Case("judge.degenerate.battery", lambda: degenerate.battery(["a"], ["movie", "tweet"], [1.0]), ValueError,
         "mean_ratings"),
] + RULE_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id or c.target)
def test_misuse(case):
    case.run()
