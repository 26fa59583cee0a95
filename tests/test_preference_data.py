"""Preference data: simulated labelers drawing real ratings, rankings to pairs, and the
datasets notebooks 02 on train with (TRL's prompt/chosen/rejected columns)."""

import numpy as np
import pytest

from course_utils.data import INSTRUCTIONS, format_prompt, load_corpus
from course_utils.preferences import (human_preference_pairs, preference_pairs_from_scores, prefer_probability,
                                      ranking_to_pairs, simulate_labels)


def test_simulated_labels_follow_the_raters():
    """Over many labelers, the share preferring A among non-ties is the exact probability,
    and ties come as often as two drawn ratings are equal."""
    ratings = [[2, 1, 1, -1], [0, 1], [3, 3], [3]]
    pairs = np.array([[0, 1]] * 20000 + [[2, 3]] * 10)
    out = simulate_labels(ratings, pairs, seed=1)
    first = out["label"][:20000]
    decided = first[first >= 0]
    assert decided.mean() == pytest.approx(prefer_probability([2, 1, 1, -1], [0, 1]), abs=0.015)
    p_tie = sum(a == b for a in [2, 1, 1, -1] for b in [0, 1]) / 8
    assert (first == -1).mean() == pytest.approx(p_tie, abs=0.015)
    assert (out["label"][20000:] == -1).all()           # [3, 3] against [3] always ties: reported, not hidden
    assert np.isnan(out["p_first"][20000:]).all()
    assert out["p_first"][0] == pytest.approx(prefer_probability([2, 1, 1, -1], [0, 1]))
    np.testing.assert_array_equal(out["label"], simulate_labels(ratings, pairs, seed=1)["label"])  # seeded


def test_length_bias_prefers_the_longer_text():
    ratings = [[4], [-4]]  # every rater prefers text 0, the shorter one
    pairs = np.array([[0, 1]] * 4000)
    out = simulate_labels(ratings, pairs, seed=0, length_bias=0.3, lengths=[5, 20])
    assert out["by_length"].mean() == pytest.approx(0.3, abs=0.03)
    assert (out["label"][out["by_length"]] == 0).all() and (out["label"][~out["by_length"]] == 1).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(ratings="abc", pairs=[[0, 1]]), "ratings"),
    (dict(ratings=[[1], [9]], pairs=[[0, 1]]), "-4..4"),
    (dict(ratings=[[1], [2]], pairs=[[0, 2]]), "pairs"),
    (dict(ratings=[[1], [2]], pairs=[[0, 0]]), "pairs"),
    (dict(ratings=[[1], [2]], pairs=[0, 1]), "pairs"),
    (dict(ratings=[[1], [2]], pairs=[[0, 1]], length_bias=1.5), "length_bias"),
    (dict(ratings=[[1], [2]], pairs=[[0, 1]], length_bias=0.5), "lengths"),
])
def test_simulate_labels_rejects_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        simulate_labels(**kwargs)


def test_ranking_to_pairs():
    assert ranking_to_pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert len(ranking_to_pairs(list(range(6)))) == 15  # K choose 2
    assert ranking_to_pairs(["a", ("b", "c"), "d"]) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]
    assert ranking_to_pairs([("a", "b")]) == []  # one tie group: nothing to prefer
    with pytest.raises(ValueError, match="twice"):
        ranking_to_pairs(["a", "b", "a"])
    with pytest.raises(TypeError, match="ranking"):
        ranking_to_pairs("abc")


def test_human_preference_pairs():
    corpus = load_corpus("validation")
    data = human_preference_pairs(corpus, 400, seed=3)
    assert {"prompt", "chosen", "rejected", "domain", "p_chosen", "by_length"} <= set(data.column_names)
    assert 300 < len(data) <= 400  # ties dropped, and said so
    assert f"{400 - len(data)} ties dropped" in data.info.description
    for row in data.select(range(50)):
        assert row["chosen"] != row["rejected"] and row["chosen"].startswith(" ")
        assert row["prompt"] == format_prompt(INSTRUCTIONS[row["domain"]])
    # labels follow the raters: chosen texts are mostly the ones raters prefer
    assert np.mean(data["p_chosen"]) > 0.6
    assert human_preference_pairs(corpus, 400, seed=3)["chosen"] == data["chosen"]  # seeded
    with pytest.raises(ValueError, match="n_pairs"):
        human_preference_pairs(corpus, 0)
    with pytest.raises(ValueError, match="corpus"):
        human_preference_pairs([{"text": "a"}], 10)


def test_preference_pairs_from_scores():
    data = preference_pairs_from_scores(["p1", "p2", "p3"], [" a", " b", " c"], [" x", " b", " z"],
                                        [1.0, 0.0, 2.0], [0.5, 1.0, 2.0])
    assert data["chosen"] == [" a"] and data["rejected"] == [" x"]  # p2: same text, p3: tied scores
    with pytest.raises(ValueError, match="scores"):
        preference_pairs_from_scores(["p"], [" a"], [" b"], [float("nan")], [0.0])
    with pytest.raises(ValueError, match="one entry per prompt"):
        preference_pairs_from_scores(["p", "q"], [" a"], [" b"], [1.0], [0.0])
