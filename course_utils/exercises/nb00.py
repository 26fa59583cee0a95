"""Notebook 00, the data: how likely one random rater of A is to rate it above one of B."""

import numpy as np

from ..preferences import prefer_probability
from ._runner import Case, Exercise, Mistake


def _cases():
    rng = np.random.default_rng(0)
    return [Case(([2, 3, 1], [0, 0, 2]), label="mostly A"),
            Case(([1, -1], [0]), label="a coin flip"),
            Case(([4], [-4]), label="one rater each, A above"),
            Case(([0, 0], [0]), label="every draw ties: no label, nan"),
            Case((rng.integers(-4, 5, 20).tolist(), rng.integers(-4, 5, 35).tolist()), label="20 and 35 raters")]


def _counts(a, b):
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return (a > b).mean(), (a < b).mean()


def _ties_halved(a, b):
    above, below = _counts(a, b)
    return above + 0.5 * (1 - above - below)


def _ties_kept(a, b):
    return _counts(a, b)[0]


def _means(a, b):
    return float(np.mean(a) > np.mean(b))


EXERCISES = [
    Exercise(
        name="prefer_probability", notebook="00", reference=prefer_probability, cases=_cases,
        mistakes=(Mistake(_ties_halved, "a tie gives no label: drop ties instead of counting them as half a win"),
                  Mistake(_ties_kept, "drop the ties: divide P(r_A > r_B) by P(r_A > r_B) + P(r_A < r_B)"),
                  Mistake(_means, "draw one rater of each text: compare single ratings, not the texts' means"))),
]
