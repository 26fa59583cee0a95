"""Verifiable tasks (notebook 10): every constraint family, the held-out split, the tight and the
loose verifier, partial credit, prompts read back into tasks, and bad input."""

import pytest

from course_utils.data import DOMAINS, format_prompt
from course_utils.verifiers import (FAMILIES, HELD_OUT_FAMILIES, HELD_OUT_WORDS, TRAIN_WORDS, Constraint, Task, meets,
                                    make_tasks, partial_credit, reward_function, task_from_prompt, verify,
                                    verify_loose, words)


def task(*constraints, domain="movie"):
    return Task(domain, tuple(Constraint(f, v) for f, v in constraints))


def test_words_are_letters_and_digits_in_lower_case():
    assert words("Don't miss it -- 10/10 !!!") == ["don't", "miss", "it", "10", "10"]
    assert words("!!! ... :)") == [] and words("") == []


@pytest.mark.parametrize("family, value, passing, failing", [
    ("max_words", 3, "Great fun film!", "A great fun film."),
    ("min_words", 4, "A great fun film.", "Great fun film!"),
    ("include", "love", "I love it.", "Lovely, lovely film."),
    ("exclude", "the", "Theatre at its best.", "The best."),
    ("ending", "!", "What a film!  ", "What a film."),
    ("ending", "?", "Who made this?", "Who made this?!"),
])
def test_every_family_passes_and_fails(family, value, passing, failing):
    t = task((family, value))
    assert verify(t, passing) and meets(t.constraints[0], passing)
    assert not verify(t, failing) and not meets(t.constraints[0], failing)
    assert family in FAMILIES


def test_a_task_passes_only_when_every_constraint_holds():
    t = task(("max_words", 5), ("include", "love"), ("ending", "!"))
    assert verify(t, "I love this film!")
    assert not verify(t, "I love this film.")
    assert not verify(t, "I really really love this film!")
    assert partial_credit(t, "I love this film.") == pytest.approx(2 / 3)
    assert partial_credit(t, "I love this film!") == 1.0


def test_partial_credit_grades_the_lengths():
    assert partial_credit(task(("max_words", 4)), "one two three four five six seven eight") == 0.5
    assert partial_credit(task(("min_words", 10)), "one two three four five") == 0.5
    assert partial_credit(task(("include", "love")), "I like it") == 0.0
    assert partial_credit(task(("max_words", 4)), "!!!") == 0.0


def test_empty_or_punctuation_only_responses_pass_no_task_but_the_loose_max_words():
    for t in (task(("max_words", 8)), task(("exclude", "the")), task(("ending", "!"))):
        assert not verify(t, "") and not verify(t, "!!!")
    assert verify_loose(task(("max_words", 8)), "") and verify_loose(task(("max_words", 8)), "! ! !")
    assert verify_loose(task(("exclude", "the")), "")


def test_the_loose_verifier_has_its_holes_and_agrees_elsewhere():
    assert verify_loose(task(("include", "love")), "A lovely film.")          # substring
    assert not verify(task(("include", "love")), "A lovely film.")
    assert verify_loose(task(("min_words", 5)), "Good film ! ! !")            # punctuation counted
    assert not verify(task(("min_words", 5)), "Good film ! ! !")
    for t, text in ((task(("max_words", 3)), "Great fun film!"), (task(("include", "love")), "I love it"),
                    (task(("ending", "!")), "Wow!"), (task(("exclude", "the")), "The end")):
        assert verify_loose(t, text) == verify(t, text)


def test_held_out_split():
    train, held = make_tasks(40, seed=0), make_tasks(40, held_out=True, seed=0)
    assert not any(t.held_out for t in train) and all(t.held_out for t in held)
    assert {t.constraints[0].family for t in train} == set(FAMILIES) - set(HELD_OUT_FAMILIES)
    assert {t.constraints[0].family for t in held} == set(FAMILIES)
    train_words = {t.constraints[0].value for t in train if t.constraints[0].family in ("include", "exclude")}
    held_words = {t.constraints[0].value for t in held if t.constraints[0].family in ("include", "exclude")}
    assert train_words <= set(TRAIN_WORDS) and held_words <= set(HELD_OUT_WORDS)
    assert all(t.constraints[0].value % 2 == 0 for t in train if "words" in t.constraints[0].family)
    assert len(set(train)) == 40 and {t.domain for t in train} == set(DOMAINS)
    assert make_tasks(10, seed=3) == make_tasks(10, seed=3) != make_tasks(10, seed=4)
    assert Constraint("include", "people").held_out and not Constraint("include", "love").held_out


def test_prompts_in_the_course_format_read_back_into_their_tasks():
    t = task(("max_words", 8), ("include", "love"), domain="tweet")
    assert t.prompt == format_prompt("Write a tweet in at most 8 words, mentioning 'love'.")
    for t in make_tasks(40) + make_tasks(40, held_out=True) + [t]:
        assert task_from_prompt(t.prompt) == t
    with pytest.raises(ValueError, match="not the prompt of a Task"):
        task_from_prompt(format_prompt("Write a poem in at most 8 words."))
    with pytest.raises(ValueError, match="not a constraint"):
        task_from_prompt(format_prompt("Write a tweet in at most eight words."))


def test_reward_function_reads_the_task_from_the_prompt():
    t = task(("include", "love"))
    for name, expected in (("verify", [1.0, 0.0]), ("verify_loose", [1.0, 1.0]), ("partial_credit", [1.0, 0.0])):
        assert reward_function(name)([t.prompt, t.prompt], ["I love it", "lovely"]) == expected
    with pytest.raises(ValueError, match="verifier"):
        reward_function("judge")
    with pytest.raises(ValueError, match="one length"):
        reward_function()([t.prompt], ["a", "b"])


@pytest.mark.parametrize("fn", [verify, verify_loose, partial_credit])
def test_bad_text_and_task(fn):
    with pytest.raises(TypeError, match="text must be a string"):
        fn(task(("max_words", 8)), None)
    with pytest.raises(TypeError, match="text must be a string"):
        fn(task(("max_words", 8)), ["I", "love"])
    with pytest.raises(TypeError, match="task must be a Task"):
        fn("Write a tweet.", "hello")
    assert fn(task(("max_words", 8)), "") in (0.0, False, True)


@pytest.mark.parametrize("family, value, error, match", [
    ("max_words", 0, ValueError, ">= 1"),
    ("min_words", 2.5, TypeError, "integer"),
    ("include", "plot twist", ValueError, "one lower-case word"),
    ("include", "Plot", ValueError, "one lower-case word"),
    ("exclude", "", ValueError, "non-empty"),
    ("ending", ";", ValueError, "ending"),
    ("rhyme", "love", ValueError, "family"),
])
def test_constraints_that_cannot_be_met_are_refused(family, value, error, match):
    with pytest.raises(error, match=match):
        Constraint(family, value)


def test_tasks_that_cannot_be_met_are_refused():
    with pytest.raises(ValueError, match="cannot both hold"):
        task(("max_words", 5), ("min_words", 8))
    with pytest.raises(ValueError, match="both required and forbidden"):
        task(("include", "love"), ("exclude", "love"))
    with pytest.raises(ValueError, match="more words to mention"):
        task(("max_words", 1), ("include", "love"), ("include", "film"))
    with pytest.raises(ValueError, match="two max_words"):
        task(("max_words", 5), ("max_words", 8))
    with pytest.raises(TypeError, match="non-empty tuple"):
        Task("movie", ())
    with pytest.raises(ValueError, match="domain"):
        Task("poem", (Constraint("max_words", 5),))


def test_make_tasks_rejects_bad_input():
    with pytest.raises(ValueError, match="only .* distinct tasks"):
        make_tasks(10_000)
    with pytest.raises(ValueError, match="families"):
        make_tasks(4, families=["ending"])        # a held-out family, asked of the training split
    with pytest.raises(TypeError, match="held_out"):
        make_tasks(4, held_out="yes")
    with pytest.raises(ValueError, match="n must be"):
        make_tasks(0)
