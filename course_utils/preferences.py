"""Preferences from human ratings, measured exactly.

Every text in the corpus carries the individual ratings (-4..+4) of its raters. A
preference label for a pair of texts (A, B) is made as notebook 00 describes: draw
one random rater of A and one of B, and prefer the text rated higher; a tie gives no
label and is dropped. For one pair, with ``win = P(r_A > r_B)`` and
``loss = P(r_A < r_B)`` (raters drawn independently):

    P(A > B | labelled) = win / (win + loss)                                     (1)

A set of pairs labelled this way yields a label for pair k with probability
``win_k + loss_k``, so a pair counts in proportion to its chance of being labelled
at all. A predictor with scores s then agrees with the labels, in expectation over
the raters (ratio of expected counts, the limit of many labels), in

    agreement = sum_k [win_k 1(s_a > s_b) + loss_k 1(s_a < s_b) + (win_k + loss_k)/2 1(s_a = s_b)]
                / sum_k (win_k + loss_k)                                          (2)

of them (a predictor tie counts one half), and no predictor beats the majority side:

    ceiling = sum_k max(win_k, loss_k) / sum_k (win_k + loss_k)                   (3)

Equations (2) and (3) are what ``tests/test_preferences.py`` checks against a
simulation of the procedure itself.
"""

from __future__ import annotations

import numpy as np

RATING_VALUES = np.arange(-4, 5)  # the rating scale: integers -4..+4
PAIR_SEED = 0


def _histograms(ratings, where: str, name: str = "ratings") -> np.ndarray:
    """Rating lists -> ``[N, 9]`` histograms; histograms (a float ``[N, 9]`` array) pass
    through. Errors name ``where`` (the public function called) and ``name``."""
    if isinstance(ratings, (str, bytes)) or not hasattr(ratings, "__len__"):
        raise TypeError(f"{where}: {name} must be a list of rating lists (one per text), got {type(ratings).__name__}")
    if isinstance(ratings, np.ndarray) and ratings.dtype.kind == "f" and ratings.ndim == 2 \
            and ratings.shape[1] == len(RATING_VALUES):
        return ratings
    hist = np.zeros((len(ratings), len(RATING_VALUES)))
    for i, rs in enumerate(ratings):
        if isinstance(rs, (str, bytes)) or np.ndim(rs) != 1:
            raise TypeError(f"{where}: {name}[{i}] must be a list of integer ratings, got {rs!r}")
        rs = np.asarray(rs)
        if rs.size == 0 or rs.dtype.kind not in "iuf" or (rs != np.round(rs)).any() or rs.min() < -4 or rs.max() > 4:
            raise ValueError(f"{where}: {name}[{i}] must be a non-empty list of integers in -4..4, got {rs.tolist()}")
        hist[i] = np.bincount(rs.astype(int) + 4, minlength=len(RATING_VALUES)) / rs.size
    return hist


def rating_histograms(ratings) -> np.ndarray:
    """``[N, 9]`` array: the share of each text's raters who gave -4, -3, ..., +4.
    ``ratings``: one list of integer ratings in -4..+4 per text."""
    return _histograms(ratings, "rating_histograms")


def _as_pairs(pairs, n: int, where: str) -> np.ndarray:
    if isinstance(pairs, (str, bytes)):
        raise TypeError(f"{where}: pairs must be an [M, 2] array of text indices, got str")
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return np.zeros((0, 2), dtype=int)
    if pairs.dtype.kind not in "iu" or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"{where}: pairs must be an [M, 2] array of integer text indices, got shape {pairs.shape}")
    if pairs.min() < 0 or pairs.max() >= n:
        raise ValueError(f"{where}: pairs index texts 0..{n - 1}, got indices {pairs.min()}..{pairs.max()}")
    return pairs


def pair_probabilities(ratings, pairs) -> np.ndarray:
    """``[M, 2]`` array: for each pair ``(a, b)``, ``win = P(r_a > r_b)`` and
    ``loss = P(r_a < r_b)`` for one random rater per text; ``1 - win - loss`` is the
    chance of a tie, i.e. of no label."""
    hist = _histograms(ratings, "pair_probabilities")
    pairs = _as_pairs(pairs, len(hist), "pair_probabilities")
    hist_a, hist_b = hist[pairs[:, 0]], hist[pairs[:, 1]]
    at_most = np.cumsum(hist_a, axis=-1)                    # P(r_a <= j)
    below = np.concatenate([np.zeros_like(at_most[:, :1]), at_most[:, :-1]], axis=-1)  # P(r_a < j)
    win = ((1.0 - at_most) * hist_b).sum(-1)                # sum_j P(r_a > j) P(r_b = j)
    loss = (below * hist_b).sum(-1)                         # sum_j P(r_a < j) P(r_b = j)
    return np.stack([win, loss], axis=1)


def prefer_probability(ratings_a, ratings_b) -> float:
    """Equation (1): the probability that one random rater of A and one random rater of B
    give A the higher rating, among draws that do not tie. ``nan`` when every draw ties
    (e.g. ``[0]`` vs ``[0]``): such a pair has no label."""
    hist = np.concatenate([_histograms([r], "prefer_probability", name)
                           for name, r in (("ratings_a", ratings_a), ("ratings_b", ratings_b))])
    win, loss = pair_probabilities(hist, [[0, 1]])[0]
    return float(win / (win + loss)) if win + loss > 1e-12 else float("nan")


def pairwise_agreement(scores, ratings, pairs) -> float:
    """Equation (2): a predictor's expected agreement with single-rater labels, ties in
    the label dropped (a pair weighs its chance of being labelled), a tie in the
    predictor counting one half. ``scores``: one number per text (higher = preferred);
    ``ratings``: one list of individual ratings per text (or their ``rating_histograms``);
    ``pairs``: ``[M, 2]`` indices into both. ``nan`` if no pair can be labelled."""
    if isinstance(scores, (str, bytes)) or np.ndim(scores) != 1:
        raise TypeError(f"pairwise_agreement: scores must be a 1-d sequence of numbers, got {type(scores).__name__}")
    scores = np.asarray(scores, dtype=float)
    hist = _histograms(ratings, "pairwise_agreement")
    if len(scores) != len(hist):
        raise ValueError(f"pairwise_agreement: scores has {len(scores)} entries but ratings has {len(hist)}")
    pairs = _as_pairs(pairs, len(hist), "pairwise_agreement")
    win, loss = pair_probabilities(hist, pairs).T
    sa, sb = scores[pairs[:, 0]], scores[pairs[:, 1]]
    agree = np.where(sa > sb, win, np.where(sa < sb, loss, 0.5 * (win + loss)))
    labelled = (win + loss).sum()
    return float(agree.sum() / labelled) if labelled > 1e-12 else float("nan")


def ceiling(ratings, pairs) -> float:
    """Equation (3): the best achievable ``pairwise_agreement``, reached by always siding
    with the majority of raters. ``nan`` if no pair can be labelled."""
    hist = _histograms(ratings, "ceiling")
    win, loss = pair_probabilities(hist, _as_pairs(pairs, len(hist), "ceiling")).T
    labelled = (win + loss).sum()
    return float(np.maximum(win, loss).sum() / labelled) if labelled > 1e-12 else float("nan")


def same_domain_pairs(domains, n_pairs: int, seed: int = PAIR_SEED) -> np.ndarray:
    """``n_pairs`` random pairs of distinct texts per domain (drawn with replacement),
    as an ``[n_domains * n_pairs, 2]`` array of indices into ``domains``. Domains come
    in order of first appearance; each has its own seeded stream, so one domain's pairs
    do not depend on the others."""
    if isinstance(domains, str) or not hasattr(domains, "__len__"):
        raise TypeError(f"same_domain_pairs: domains must be a list of domain names, got {type(domains).__name__}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 0:
        raise ValueError(f"same_domain_pairs: n_pairs must be a non-negative integer, got {n_pairs!r}")
    domains = np.asarray(domains)
    out = []
    for k, d in enumerate(dict.fromkeys(domains.tolist())):
        idx = np.flatnonzero(domains == d)
        if len(idx) < 2:
            raise ValueError(f"same_domain_pairs: domain {d!r} in domains has {len(idx)} text(s); a pair needs two")
        rng = np.random.default_rng([seed, k])
        a = rng.integers(len(idx), size=n_pairs)
        b = (a + 1 + rng.integers(len(idx) - 1, size=n_pairs)) % len(idx)  # uniform over the others
        out.append(np.stack([idx[a], idx[b]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=int)


def _by_domain(domains, pairs, n: int, where: str):
    """(domain name, that domain's pairs) for each domain present, in order of first appearance."""
    if isinstance(domains, str) or not hasattr(domains, "__len__"):
        raise TypeError(f"{where}: domains must be a list of domain names, got {type(domains).__name__}")
    domains = np.asarray(domains)
    if len(domains) != n:
        raise ValueError(f"{where}: domains has {len(domains)} entries but ratings has {n}")
    pairs = _as_pairs(pairs, n, where)
    if (domains[pairs[:, 0]] != domains[pairs[:, 1]]).any():
        raise ValueError(f"{where}: pairs must join texts of the same domain")
    return [(d, pairs[domains[pairs[:, 0]] == d]) for d in dict.fromkeys(domains.tolist())]


def agreement_by_domain(scores, ratings, domains, pairs) -> dict:
    """``pairwise_agreement`` (equation 2) per domain: ``{domain: agreement}``, in
    order of first appearance in ``domains``; ``pairs`` join texts of one domain."""
    hist = _histograms(ratings, "agreement_by_domain")
    return {d: pairwise_agreement(scores, hist, p)
            for d, p in _by_domain(domains, pairs, len(hist), "agreement_by_domain")}


def ceiling_by_domain(ratings, domains, pairs) -> dict:
    """``ceiling`` (equation 3) per domain: ``{domain: ceiling}``."""
    hist = _histograms(ratings, "ceiling_by_domain")
    return {d: ceiling(hist, p) for d, p in _by_domain(domains, pairs, len(hist), "ceiling_by_domain")}
