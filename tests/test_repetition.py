"""The judge's repetition measure: what ``collapse`` keeps, and what ``stutter_share`` and
``echo_share`` count."""

import pytest

from course_utils.judge.repetition import NGRAM, collapse, echo_share, measure, stutter_share

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


@pytest.mark.parametrize("share", [stutter_share, echo_share])
def test_both_shares_grow_with_every_copy_and_are_zero_without_repeats(share):
    assert share("no repeats here at all") == 0.0
    assert share("") == 0.0
    shares = [share(" ".join([ONCE] * k)) for k in (1, 2, 3, 4)]
    assert shares == sorted(shares) and shares[0] == 0.0
    assert shares[1] == pytest.approx(0.5) and shares[3] == pytest.approx(0.75)


def test_a_stutter_is_a_phrase_said_again_directly():
    text = "this camera has a great feel great feel and weight to it"     # 12 words, 2 of them a copy
    assert stutter_share(text) == pytest.approx(2 / 12)
    assert echo_share(text) == 0.0                                        # the copy runs for 2 words, not NGRAM
    assert stutter_share("so so good, yay yay yay :) :)") == 0.0           # one word said again: people write that


def test_an_echo_is_a_run_of_words_said_again_further_on():
    text = "the plot is thin but the cast is wonderful . the plot is thin"
    assert echo_share(text) == pytest.approx(4 / len(text.split()))
    assert stutter_share(text) == 0.0                                     # not directly after itself
    assert NGRAM == 4 and echo_share("the cast is good and the cast is bad") == 0.0  # 3 words: no run of 4


@pytest.mark.parametrize("fn", [collapse, stutter_share, echo_share, measure])
def test_misuse(fn):
    with pytest.raises(TypeError, match="text must be a string"):
        fn(["a list"])
    with pytest.raises(TypeError, match="text must be a string"):
        fn(None)


def test_measure_is_collapse_and_both_shares_in_one_pass():
    for text in ("I love it. I love it. Buy it.", "the plot is thin but the cast is wonderful . the plot is thin", ""):
        assert measure(text) == (collapse(text), stutter_share(text), echo_share(text))
