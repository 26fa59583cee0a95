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

Simulated labelers (notebook 02) draw such labels from the same rating lists:
``simulate_labels`` draws them (ties reported, never hidden), ``human_preference_pairs``
turns them into TRL's ``prompt``/``chosen``/``rejected`` columns, ``ranking_to_pairs``
turns a ranking of K responses into its K-choose-2 pairs, and
``preference_pairs_from_scores`` labels pairs of sampled responses by a score.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from datasets import Dataset

from . import _checks
from .data import INSTRUCTIONS, check_preference, format_prompt

RATING_VALUES = np.arange(-4, 5)  # the rating scale: integers -4..+4
PAIR_SEED = 0


def _histograms(ratings, where: str, name: str = "ratings") -> np.ndarray:
    """Rating lists -> ``[N, 9]`` histograms; histograms (a float ``[N, 9]`` array, each row
    a distribution) pass through. Errors name ``where`` (the public function called) and ``name``."""
    if isinstance(ratings, (str, bytes)) or not hasattr(ratings, "__len__"):
        raise TypeError(f"{where}: {name} must be a list of rating lists (one per text), got {type(ratings).__name__}")
    if isinstance(ratings, np.ndarray) and ratings.dtype.kind == "f" and ratings.ndim == 2 \
            and ratings.shape[1] == len(RATING_VALUES):
        return _checks.distribution(where, name, ratings)
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


def _scores(scores, where: str) -> np.ndarray:
    if isinstance(scores, (str, bytes)) or np.ndim(scores) != 1:
        raise TypeError(f"{where}: scores must be a 1-d sequence of numbers, got {type(scores).__name__}")
    return _checks.finite(where, "scores", np.asarray(scores, dtype=float))


def pairwise_agreement(scores, ratings, pairs) -> float:
    """Equation (2): a predictor's expected agreement with single-rater labels, ties in
    the label dropped (a pair weighs its chance of being labelled), a tie in the
    predictor counting one half. ``scores``: one number per text (higher = preferred);
    ``ratings``: one list of individual ratings per text (or their ``rating_histograms``);
    ``pairs``: ``[M, 2]`` indices into both. ``nan`` if no pair can be labelled."""
    scores = _scores(scores, "pairwise_agreement")
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
    scores = _scores(scores, "agreement_by_domain")
    hist = _histograms(ratings, "agreement_by_domain")
    return {d: pairwise_agreement(scores, hist, p)
            for d, p in _by_domain(domains, pairs, len(hist), "agreement_by_domain")}


def ceiling_by_domain(ratings, domains, pairs) -> dict:
    """``ceiling`` (equation 3) per domain: ``{domain: ceiling}``."""
    hist = _histograms(ratings, "ceiling_by_domain")
    return {d: ceiling(hist, p) for d, p in _by_domain(domains, pairs, len(hist), "ceiling_by_domain")}


# ---------------------------------------------------------------- simulated labelers


def _rating_lists(ratings, where: str) -> list[list[int]]:
    if isinstance(ratings, (str, bytes)) or not hasattr(ratings, "__len__"):
        raise TypeError(f"{where}: ratings must be a list of rating lists, got {type(ratings).__name__}")
    _histograms(ratings, where)  # raises ValueError naming the text with a bad list
    return [list(map(int, r)) for r in ratings]


def simulate_labels(ratings, pairs, seed: int = 0, length_bias: float = 0.0, lengths=None) -> dict:
    """One simulated labeler per pair, drawing real individual ratings.

    For a pair ``(a, b)`` the labeler draws one of A's raters and one of B's raters
    (uniformly, with the seeded generator) and prefers the text that rater rated
    higher; equal ratings are a **tie**, reported as such. The label is exactly as
    noisy, and as divided, as the people who rated the texts.

    With ``length_bias = q > 0`` (and ``lengths``, e.g. word counts), each labeler is,
    with probability q, a careless one who picks the longer text whatever it says
    (the shorter one never wins; equal lengths fall back to the ratings): a shortcut
    that a reward model can learn from the labels.

    Returns arrays of length M: ``label`` (1 if the first text is preferred, 0 if
    the second, -1 for a tie), ``p_first`` (the exact probability that a random
    rater prefers the first text, ties dropped: equation (1)) and
    ``by_length`` (True where the careless labeler decided).
    """
    ratings = _rating_lists(ratings, "simulate_labels")
    pairs = _as_pairs(pairs, len(ratings), "simulate_labels")
    if (pairs[:, 0] == pairs[:, 1]).any():
        raise ValueError("simulate_labels: pairs must compare two different texts (a pair (i, i) has no preference)")
    if not 0.0 <= float(length_bias) <= 1.0:
        raise ValueError(f"simulate_labels: length_bias must be in [0, 1], got {length_bias!r}")
    if length_bias and (lengths is None or len(lengths) != len(ratings)):
        raise ValueError("simulate_labels: length_bias > 0 needs lengths, one per text")
    rng = np.random.default_rng(seed)
    a = np.array([ratings[i][rng.integers(len(ratings[i]))] for i in pairs[:, 0]], dtype=int)
    b = np.array([ratings[j][rng.integers(len(ratings[j]))] for j in pairs[:, 1]], dtype=int)
    label = np.where(a > b, 1, np.where(a < b, 0, -1))
    by_length = np.zeros(len(pairs), dtype=bool)
    if length_bias:
        lengths = np.asarray(lengths)
        careless = rng.random(len(pairs)) < length_bias
        la, lb = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
        by_length = careless & (la != lb)
        label = np.where(by_length, (la > lb).astype(int), label)
    win, loss = pair_probabilities(ratings, pairs).T
    with np.errstate(invalid="ignore", divide="ignore"):
        p_first = np.where(win + loss > 0, win / (win + loss), np.nan)
    return {"label": label, "p_first": p_first, "by_length": by_length}


def ranking_to_pairs(ranking) -> list[tuple]:
    """A ranking of K responses, best first, as its K-choose-2 preference pairs
    ``(better, worse)``. A tie is a group (a list or tuple) at one rank: members of a
    group are not compared with each other. ``["a", ("b", "c"), "d"]`` gives
    (a, b), (a, c), (a, d), (b, d), (c, d)."""
    if isinstance(ranking, (str, bytes)) or not hasattr(ranking, "__iter__"):
        raise TypeError(f"ranking_to_pairs: ranking must be a list (best first), got {type(ranking).__name__}")
    groups = [list(g) if isinstance(g, (list, tuple)) else [g] for g in ranking]
    if any(not g for g in groups):
        raise ValueError("ranking_to_pairs: ranking has an empty tie group")
    items = [x for g in groups for x in g]
    if len(set(map(repr, items))) != len(items):
        raise ValueError("ranking_to_pairs: ranking names a response twice")
    return [(x, y) for hi, lo in combinations(range(len(groups)), 2) for x in groups[hi] for y in groups[lo]]


def human_preference_pairs(corpus, n_pairs: int, seed: int = 0, length_bias: float = 0.0) -> Dataset:
    """Offline preference data from the corpus: ``n_pairs`` random same-domain pairs
    of human-written texts, labelled by ``simulate_labels``; ties are dropped (and
    counted in the result's ``info``), so fewer than ``n_pairs`` rows may come back.

    Columns: TRL's ``prompt`` (the domain's instruction), ``chosen``, ``rejected``
    (the texts with a leading space, as SFT completions), plus ``domain``,
    ``p_chosen`` (the exact probability that a random rater prefers the chosen text)
    and ``by_length`` (the careless labeler decided). Lengths for ``length_bias``
    are word counts.
    """
    for column in ("text", "domain", "ratings"):
        if column not in getattr(corpus, "column_names", []):
            raise ValueError(f"human_preference_pairs: corpus must be a load_corpus() Dataset with a {column!r} "
                             f"column, got columns {getattr(corpus, 'column_names', None)}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"human_preference_pairs: n_pairs must be a positive int, got {n_pairs!r}")
    domains = np.asarray(corpus["domain"])
    texts, ratings = list(corpus["text"]), list(corpus["ratings"])
    per_domain = -(-n_pairs // len(set(domains)))
    pairs = same_domain_pairs(domains, per_domain, seed)
    pairs = pairs[np.random.default_rng(seed).permutation(len(pairs))[:n_pairs]]
    labels = simulate_labels(ratings, pairs, seed, length_bias, lengths=[len(t.split()) for t in texts])
    rows = []
    for (i, j), label, p, by_length in zip(pairs, labels["label"], labels["p_first"], labels["by_length"]):
        if label < 0:
            continue
        win, lose = (i, j) if label == 1 else (j, i)
        row = {"prompt": format_prompt(INSTRUCTIONS[domains[i]]), "chosen": " " + texts[win],
               "rejected": " " + texts[lose], "domain": str(domains[i]),
               "p_chosen": float(p if label == 1 else 1 - p), "by_length": bool(by_length)}
        check_preference(row)
        rows.append(row)
    dataset = Dataset.from_list(rows)
    dataset.info.description = f"{n_pairs} pairs drawn, {n_pairs - len(rows)} ties dropped"
    return dataset


def preference_pairs_from_scores(prompts, responses_a, responses_b, scores_a, scores_b) -> Dataset:
    """On-policy AI feedback: two sampled responses per prompt, the higher-scored one
    chosen (e.g. by the judge). Pairs whose scores tie, or whose responses are the same
    text, carry no preference and are dropped. Columns ``prompt, chosen, rejected,
    score_chosen, score_rejected``."""
    n = len(prompts)
    if any(len(x) != n for x in (responses_a, responses_b, scores_a, scores_b)):
        raise ValueError("preference_pairs_from_scores: prompts, responses_a, responses_b, scores_a and scores_b "
                         "must have one entry per prompt")
    scores_a, scores_b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    _checks.finite("preference_pairs_from_scores", "scores_a", scores_a)
    _checks.finite("preference_pairs_from_scores", "scores_b", scores_b)
    rows = []
    for prompt, ra, rb, sa, sb in zip(prompts, responses_a, responses_b, scores_a, scores_b):
        if sa == sb or ra.strip() == rb.strip() or not ra.strip() or not rb.strip():
            continue
        (c, sc), (r, sr) = ((ra, sa), (rb, sb)) if sa > sb else ((rb, sb), (ra, sa))
        rows.append({"prompt": prompt, "chosen": c, "rejected": r, "score_chosen": float(sc),
                     "score_rejected": float(sr)})
    return Dataset.from_list(rows)

