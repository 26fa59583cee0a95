"""Notebook 02, preferences and the reward model: the ceiling of one pair, the Bradley–Terry loss, the agreement
of a predictor with single-rater labels."""

import numpy as np
import torch
import torch.nn.functional as F

from ..losses import bradley_terry_loss
from ..preferences import _histograms, ceiling, pairwise_agreement
from ._runner import Case, Exercise, Mistake


def pair_ceiling(ratings_a, ratings_b):
    """The ceiling of one pair (``preferences.ceiling``, equation 3): the agreement with a single-rater label
    that siding with the raters' majority reaches, ties dropped; ``nan`` when every draw ties."""
    return ceiling(np.concatenate([_histograms([ratings], "pair_ceiling", name)
                                   for name, ratings in (("ratings_a", ratings_a), ("ratings_b", ratings_b))]),
                   [[0, 1]])


def bradley_terry(r_chosen, r_rejected):
    """The Bradley–Terry loss of ``losses.bradley_terry_loss`` without its metrics: [B], [B] -> scalar."""
    return bradley_terry_loss(r_chosen, r_rejected)[0]


def _ceiling_cases():
    rng = np.random.default_rng(2)
    return [Case(([1, 1, 2, 2], [-1, 0, 1, 2]), label="A mostly above B"),
            Case(([-1, 0, 1, -2], [1, 1, 2, 2]), label="B mostly above A"),
            Case(([4, -1, -1], [0]), label="A has the higher mean, but most draws put B above"),
            Case(([-2, 0, 3], [1, 1, 2, -3]), label="a close pair with ties"),
            Case((rng.integers(-4, 5, 25).tolist(), rng.integers(-4, 5, 40).tolist()), label="25 and 40 raters"),
            Case(([1, 1], [1]), label="every draw ties: no label, nan")]


def _draws(a, b):
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return (a > b).mean(), (a < b).mean()


def _ceiling_ties_kept(a, b):
    return max(_draws(a, b))


def _ceiling_ties_half(a, b):
    win, loss = _draws(a, b)
    return max(win, loss) + 0.5 * (1 - win - loss)


def _ceiling_of_a(a, b):
    win, loss = _draws(a, b)
    return win / (win + loss)


def _ceiling_by_means(a, b):
    win, loss = _draws(a, b)
    return (win if np.mean(a) >= np.mean(b) else loss) / (win + loss)


def _bt_cases():
    g = torch.Generator().manual_seed(2)
    return [Case((torch.tensor([1.2, 0.3, -0.5, 4.0]), torch.tensor([0.2, 0.9, -0.5, 3.0])),
                 label="the four pairs of the cell above"),
            Case((torch.randn(16, generator=g), torch.randn(16, generator=g)), label="16 random pairs"),
            Case((torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)),
                 label="equal rewards: log 2, float64"),
            Case((torch.tensor([2.0]), torch.tensor([-1.0])), label="one pair"),
            Case((torch.tensor([-60.0, 1.0]), torch.tensor([60.0, 0.0])),
                 label="a pair ranked wrong by a margin of 120")]


def _agreement_cases():
    rng = np.random.default_rng(3)
    ratings = [[2, 3, 1], [0, 0, 2], [-1, -2], [4, 3, 3, 2], [0, 1, -1, 0]]
    many = [rng.integers(-4, 5, rng.integers(3, 12)).tolist() for _ in range(12)]
    many_pairs = np.stack([np.arange(12), (np.arange(12) + 1 + rng.integers(0, 11, 12)) % 12], 1)
    return [Case(([0.9, 0.1, -0.7, 1.5, 0.0], ratings, np.array([[0, 1], [2, 3], [4, 1], [3, 0]])),
                 label="five texts, four pairs"),
            Case(([0.5, 0.5, -0.7, 1.5, 0.0], ratings, np.array([[0, 1], [1, 2], [4, 3]])),
                 label="the predictor ties on the first pair: it counts one half"),
            Case((rng.normal(size=12).tolist(), many, many_pairs), label="12 texts, 12 pairs"),
            Case(([1.0, 0.0, 2.0], [[1], [1], [0, 2]], np.array([[0, 1], [2, 0]])),
                 label="a pair that always ties has no label and no weight"),
            Case(([3.0, -1.0], [[4], [-4]], np.array([[0, 1]])), label="one pair, one rater each")]


def _agreement_parts(scores, ratings, pairs):
    scores = np.asarray(scores, dtype=float)
    draws = np.array([_draws(ratings[a], ratings[b]) for a, b in pairs])
    return scores[pairs[:, 0]], scores[pairs[:, 1]], draws[:, 0], draws[:, 1]


def _agreement_ties_lost(scores, ratings, pairs):
    sa, sb, win, loss = _agreement_parts(scores, ratings, pairs)
    return float((np.where(sa > sb, win, 0) + np.where(sa < sb, loss, 0)).sum() / (win + loss).sum())


def _agreement_per_pair_mean(scores, ratings, pairs):
    sa, sb, win, loss = _agreement_parts(scores, ratings, pairs)
    agree = np.where(sa > sb, win, np.where(sa < sb, loss, 0.5 * (win + loss)))
    labelled = win + loss > 0
    return float(np.mean(agree[labelled] / (win + loss)[labelled]))


def _agreement_ties_in_label(scores, ratings, pairs):
    sa, sb, win, loss = _agreement_parts(scores, ratings, pairs)
    agree = np.where(sa > sb, win, np.where(sa < sb, loss, 0.5 * (win + loss)))
    return float(agree.mean())


EXERCISES = [
    Exercise(
        name="pair_ceiling", notebook="02", reference=pair_ceiling, cases=_ceiling_cases,
        mistakes=(Mistake(_ceiling_ties_kept, "a tie gives no label: divide by P(r_A > r_B) + P(r_A < r_B)"),
                  Mistake(_ceiling_ties_half, "drop the ties instead of counting them as half a win"),
                  Mistake(_ceiling_by_means, "the majority side is the one most pairs of single ratings favour, "
                                             "not the one with the higher mean rating"),
                  Mistake(_ceiling_of_a, "the majority may prefer B: take the larger of P(A ≻ B) and P(B ≻ A)"))),
    Exercise(
        name="bradley_terry", notebook="02", reference=bradley_terry, cases=_bt_cases, grad=True,
        mistakes=(Mistake(lambda w, l: -F.logsigmoid(l - w).mean(), "the sign: the chosen reward comes first, "
                                                                    "σ(r_w − r_l)"),
                  Mistake(lambda w, l: -F.logsigmoid(w - l).sum(), "the mean over pairs, not the sum"),
                  Mistake(lambda w, l: F.logsigmoid(w - l).mean(), "the loss is minus the log-likelihood: "
                                                                   "−log σ(r_w − r_l)"),
                  Mistake(lambda w, l: -torch.log(torch.sigmoid(w - l)).mean(),
                          "log(sigmoid(x)) underflows to log 0 for a large negative x: use F.logsigmoid"))),
    Exercise(
        name="pairwise_agreement", notebook="02", reference=pairwise_agreement, cases=_agreement_cases,
        mistakes=(Mistake(_agreement_ties_lost, "a tie in the scores counts one half of the pair's labels: "
                                                "(win + loss) / 2"),
                  Mistake(_agreement_per_pair_mean, "weigh each pair by its chance of a label: divide the sum "
                                                    "of agreements by the sum of (win + loss), not pair by pair"),
                  Mistake(_agreement_ties_in_label, "a tie in the ratings gives no label: divide by the sum "
                                                    "of (win + loss), not by the number of pairs"))),
]
