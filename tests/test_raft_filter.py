"""RAFT's filter (raft.keep_top_k): each prompt's k best finished samples, and misuse of it."""

import numpy as np
import pytest

from course_utils.raft import keep_top_k


def test_keeps_each_prompts_top_k_finished_samples():
    rewards = np.array([0.1, 0.9, 0.5, -1.0, 3.0, 2.0, 1.0, 0.0])
    finished = np.array([True, True, True, True, False, True, True, True])
    assert keep_top_k(rewards, finished, 4).tolist() == [False, True, False, False, False, True, False, False]
    assert keep_top_k(rewards, finished, 4, k=2).tolist() == [False, True, True, False, False, True, True, False]
    assert keep_top_k(rewards, finished, 8, k=3).tolist() == [False, True, False, False, False, True, True, False]


def test_unfinished_samples_are_never_kept_and_ties_go_to_the_earlier_sample():
    rewards = np.array([5.0, 4.0, 1.0, 1.0])
    finished = np.array([False, False, True, True])
    assert keep_top_k(rewards, finished, 2, k=2).tolist() == [False, False, True, True]
    assert keep_top_k(rewards, finished, 4, k=1).tolist() == [False, False, True, False]
    assert not keep_top_k(rewards, np.zeros(4, dtype=bool), 2, k=2).any()


@pytest.mark.parametrize("call, error, said", [
    (lambda: keep_top_k([1.0, np.nan], [True, True], 2), ValueError, "rewards"),
    (lambda: keep_top_k([1.0, 2.0], [1, 1], 2), ValueError, "bools"),
    (lambda: keep_top_k([1.0, 2.0], [True], 1), ValueError, "one length"),
    (lambda: keep_top_k([1.0, 2.0, 3.0], [True] * 3, 2), ValueError, "multiple of samples_per_prompt"),
    (lambda: keep_top_k([1.0, 2.0], [True] * 2, 2, k=3), ValueError, "k at most"),
    (lambda: keep_top_k([1.0, 2.0], [True] * 2, 0), ValueError, "samples_per_prompt"),
    (lambda: keep_top_k([1.0, 2.0], [True] * 2, 2, k=1.0), TypeError, r"\bk\b"),
])
def test_misuse(call, error, said):
    with pytest.raises(error, match=said):
        call()
