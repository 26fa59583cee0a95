"""The judge's linear domain model: it learns the domains' words, its probabilities are a
softmax over domains, the fit reaches the documented minimum, and the saved file reads
back and is verified on read."""

import numpy as np
import pytest
import torch

from course_utils.data import DOMAINS
from course_utils.judge import domain as dm
from course_utils.judge.domain import DomainLinear
from course_utils.judge.sentiment import SentimentRidge, _tfidf_matrix

TEXTS = ["a wonderful film", "the actors were dull", "the phone battery died", "great camera, easy to use",
         "happy friday everyone", "lol so tired today", "the council raised taxes", "the senate passed the bill"]
DOMAINS_OF = ["movie", "movie", "product", "product", "tweet", "tweet", "editorial", "editorial"]


@pytest.fixture(scope="module")
def model():
    idf = SentimentRidge.fit(TEXTS, DOMAINS_OF, [0.0] * len(TEXTS)).idf
    return DomainLinear.fit(TEXTS, DOMAINS_OF, idf, l2=1e-3)


def test_probabilities_are_a_distribution_over_the_domains(model):
    p = model.predict_proba(TEXTS + ["", "an unseen text entirely"])
    assert p.shape == (len(TEXTS) + 2, len(DOMAINS))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-9)
    assert model.predict_proba([]).shape == (0, len(DOMAINS))


def test_it_learns_each_domains_words(model):
    p = model.predict_proba(TEXTS)
    assert [DOMAINS[k] for k in p.argmax(1)] == DOMAINS_OF
    assert DOMAINS[model.predict_proba(["my new phone, the battery"]).argmax()] == "product"


def test_fit_reaches_the_minimum_of_its_objective(model):
    """At the minimum the gradient of mean cross-entropy + l2 ||W||^2 is (nearly) zero."""
    x = _tfidf_matrix(TEXTS, model.idf).float()
    weights, bias = model.weights.clone().requires_grad_(), model.bias.clone().requires_grad_()
    y = torch.tensor([DOMAINS.index(d) for d in DOMAINS_OF])
    loss = torch.nn.functional.cross_entropy(torch.sparse.mm(x, weights) + bias, y) + 1e-3 * weights.pow(2).sum()
    loss.backward()
    assert weights.grad.abs().max() < 1e-4 and bias.grad.abs().max() < 1e-4


def test_save_and_load(model, tmp_path):
    model.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [dm.FILE]  # no temporary file left
    back = DomainLinear.load(tmp_path)
    np.testing.assert_allclose(back.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-3)
    assert back.l2 == 1e-3


def test_load_refuses_a_damaged_file(model, tmp_path):
    model.save(tmp_path)
    file = tmp_path / dm.FILE
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable domain model"):
        DomainLinear.load(tmp_path)
