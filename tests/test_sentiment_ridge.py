"""The judge's sentiment: its features are the documented n-grams and lexicon counts, the
fit minimises the ridge objective, each domain has its own copy of the weights, and the
saved file reads back and is verified on read."""

import numpy as np
import pytest
import torch

from course_utils.judge import sentiment as sr
from course_utils.data import DOMAINS
from course_utils.judge.sentiment import HASH_BITS, N_LEXICON, SentimentRidge
from course_utils.judge.sentiment import _features as features
from course_utils.judge.sentiment import _lexicon_features as lexicon_features

TEXTS = ["a wonderful film", "a dull film", "sick tune, love it", "this is sick", "what a great day",
         "the plot was bad", "the council met", "prices rose again"]
DOMAINS_OF = ["movie", "movie", "tweet", "movie", "tweet", "movie", "editorial", "product"]
RATINGS = [3.0, -2.0, 2.5, -2.5, 3.0, -2.0, 0.0, -0.5]


@pytest.fixture(scope="module")
def model():
    return SentimentRidge.fit(TEXTS, DOMAINS_OF, RATINGS, alpha=0.5, tol=1e-10)


def test_ngrams_are_words_bigrams_and_padded_character_grams():
    words, chars = sr._ngrams("Not BAD!")
    assert words == ["not", "bad", "not bad"]
    assert " n" in chars and "not " in chars and " not " in chars and "bad!" in chars and "ad! " in chars
    assert sr._ngrams("a") == ([], [" a", "a ", " a "])  # one-letter words: no word gram, whole padded word


def test_lexicon_features_flip_after_a_negation():
    good, not_good = lexicon_features("a good film"), lexicon_features("not a good film")
    assert len(good) == N_LEXICON == 8  # four per lexicon: AFINN, then the opinion lexicon
    for lex in (slice(0, 4), slice(4, 8)):
        assert good[lex][0] > 0 and good[lex][1] == 1 and good[lex][2] == 0
        assert not_good[lex][0] == pytest.approx(-good[lex][0]) and not_good[lex][1] == 0 and not_good[lex][2] == 1
    assert lexicon_features("the council met").tolist() == [0] * 8
    assert lexicon_features("great :)")[1] == 2  # AFINN rates emoticons too


def test_the_opinion_lexicon_rates_words_afinn_lacks():
    admirable = lexicon_features("an admirable effort")
    assert admirable[:4].tolist() == [0, 0, 0, 0] and admirable[4] == 1 and admirable[5] == 1
    assert lexicon_features("an admirable, admirable effort")[4] == 2


def test_features_have_a_shared_and_a_domain_copy():
    idf = torch.ones(1 << HASH_BITS, dtype=torch.float64)
    width = 1 << HASH_BITS
    phi = features(["a good film"], ["tweet"], idf).to_dense()[0]
    k = DOMAINS.index("tweet")
    shared, own = phi[:width], phi[(1 + k) * width:(2 + k) * width]
    torch.testing.assert_close(shared, own)
    assert phi[width:(1 + k) * width].abs().sum() == 0  # other domains' copies empty
    # two blocks (words, characters), each L2-normalised, share the hash space
    assert shared.pow(2).sum().item() == pytest.approx(2.0, abs=0.05)
    lex = phi[5 * width:]
    torch.testing.assert_close(lex[:N_LEXICON], torch.from_numpy(lexicon_features("a good film")))
    assert lex[-4:].tolist() == [float(d == "tweet") for d in DOMAINS]  # the domain's intercept


def test_fit_minimises_the_ridge_objective(model):
    """At the minimum the gradient of sum (w.phi - y)^2 + alpha ||w||^2 (intercepts unpenalised) is zero."""
    phi = features(TEXTS, DOMAINS_OF, model.idf)
    y = torch.tensor(RATINGS, dtype=torch.float64)
    penalty = torch.full((phi.shape[1],), 0.5, dtype=torch.float64)
    penalty[-4:] = 0
    gradient = phi.t() @ (phi @ model.weights - y) + penalty * model.weights
    assert gradient.abs().max() < 1e-6
    assert np.allclose(model.predict(TEXTS, DOMAINS_OF), (phi @ model.weights).numpy())


def test_each_domain_has_its_own_words(model):
    """"sick" was rated up in a tweet and down in a movie review: each domain keeps its sign."""
    as_tweet, as_movie = model.predict(["sick", "sick"], ["tweet", "movie"])
    assert as_tweet > as_movie


def test_save_and_load(model, tmp_path):
    model.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [sr.FILE]  # no temporary file left
    back = SentimentRidge.load(tmp_path)
    np.testing.assert_allclose(back.predict(TEXTS, DOMAINS_OF), model.predict(TEXTS, DOMAINS_OF), atol=1e-2)
    assert back.alpha == 0.5


def test_load_refuses_a_damaged_file(model, tmp_path):
    model.save(tmp_path)
    file = tmp_path / sr.FILE
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable sentiment model"):
        SentimentRidge.load(tmp_path)
