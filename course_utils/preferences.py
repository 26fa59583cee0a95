"""Preference data from human ratings.

(SECTION TO BE MERGED with the exact pairwise measures that the judge branch moves here.)
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from datasets import Dataset

from .data import DOMAINS, INSTRUCTIONS, check_preference, format_prompt
from .judge import (agreement_by_domain, ceiling_by_domain, pair_probabilities, pairwise_agreement,  # noqa: F401 TEMP
                    prefer_probability, rating_histograms, same_domain_pairs)

# ---------------------------------------------------------------- simulated labelers


def _check_ratings(ratings, where: str) -> list[list[int]]:
    if isinstance(ratings, (str, bytes)) or not hasattr(ratings, "__len__"):
        raise TypeError(f"{where}: ratings must be a list of rating lists, got {type(ratings).__name__}")
    rating_histograms(ratings)  # raises ValueError naming the text with a bad list
    return [list(map(int, r)) for r in ratings]


def _check_pairs(pairs, n: int, where: str) -> np.ndarray:
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
        raise ValueError(f"{where}: pairs must be an [M, 2] array of integer indices, got shape {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"{where}: pairs index texts 0..{n - 1}, got indices {pairs.min()}..{pairs.max()}")
    if (pairs[:, 0] == pairs[:, 1]).any():
        raise ValueError(f"{where}: pairs must compare two different texts (a pair (i, i) has no preference)")
    return pairs


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
    rater prefers the first text, ties dropped: ``pair_probabilities``) and
    ``by_length`` (True where the careless labeler decided).
    """
    ratings = _check_ratings(ratings, "simulate_labels")
    pairs = _check_pairs(pairs, len(ratings), "simulate_labels")
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
    return {"label": label, "p_first": pair_probabilities(ratings, pairs), "by_length": by_length}


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
    from .judge import same_domain_pairs
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
    if not (np.isfinite(scores_a).all() and np.isfinite(scores_b).all()):
        raise ValueError("preference_pairs_from_scores: scores_a and scores_b must be finite numbers (no NaN or inf)")
    rows = []
    for prompt, ra, rb, sa, sb in zip(prompts, responses_a, responses_b, scores_a, scores_b):
        if sa == sb or ra.strip() == rb.strip() or not ra.strip() or not rb.strip():
            continue
        (c, sc), (r, sr) = ((ra, sa), (rb, sb)) if sa > sb else ((rb, sb), (ra, sa))
        rows.append({"prompt": prompt, "chosen": c, "rejected": r, "score_chosen": float(sc),
                     "score_rejected": float(sr)})
    return Dataset.from_list(rows)


__all__ = ["DOMAINS", "simulate_labels", "ranking_to_pairs", "human_preference_pairs",
           "preference_pairs_from_scores"]
