"""The judge's repetition measure: what ``collapse`` keeps and what ``repeated_share`` counts."""

import pytest

from course_utils.judge.repetition import NGRAM, collapse, measure, repeated_share

ONCE = "A gorgeous, witty, seductive movie."


@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_text_said_k_times_collapses_to_the_text_once(k):
    assert collapse(" ".join([ONCE] * k)) == ONCE
    assert collapse("\n".join([ONCE] * k)) == ONCE


def test_repeats_inside_a_text_collapse_and_the_rest_stays():
    assert collapse("I love it. I love it. I love it. Buy it.") == "I love it. Buy it."
    assert collapse("so so so good") == "so good"
    assert collapse("great great GREAT! movie") == "great movie"   # words compared by their letters
    assert collapse("a b c a b c a b") == "a b c a b"               # not a whole period: the adjacent copy goes
    assert collapse("no repeats here at all") == "no repeats here at all"
    assert collapse("  spaced\tout  ") == "spaced out"
    assert collapse("") == ""


def test_the_share_grows_with_every_copy_and_is_zero_without_repeats():
    assert repeated_share("no repeats here at all") == 0.0
    assert repeated_share("") == 0.0
    shares = [repeated_share(" ".join([ONCE] * k)) for k in (1, 2, 3, 4)]
    assert shares == sorted(shares) and shares[0] == 0.0
    assert shares[1] == pytest.approx(0.5) and shares[3] == pytest.approx(0.75)


def test_a_sentence_said_again_further_on_counts():
    text = "the plot is thin but the cast is wonderful . the plot is thin"
    words = text.split()
    assert repeated_share(text) == pytest.approx(4 / len(words))
    assert NGRAM == 4 and repeated_share("the cast is good and the cast is bad") == 0.0  # 3 words: no run of 4


@pytest.mark.parametrize("fn", [collapse, repeated_share])
def test_misuse(fn):
    with pytest.raises(TypeError, match="text must be a string"):
        fn(["a list"])
    with pytest.raises(TypeError, match="text must be a string"):
        fn(None)


def test_measure_is_collapse_and_share_in_one_pass():
    text = "I love it. I love it. Buy it."
    assert measure(text) == (collapse(text), repeated_share(text))
    with pytest.raises(TypeError, match="measure: text must be a string"):
        measure(3)
