"""Notebook 09, comparing methods: the win rate with ties counted half, distinct-n, and a paired bootstrap of
the difference between two policies scored on the same prompts."""

import numpy as np

from ..evaluation import bootstrap_ci, distinct_n, paired_bootstrap_ci, win_rate
from ._runner import Case, Exercise, Mistake


def _scores(rng, n):
    return np.round(rng.normal(size=n), 1)   # rounded, so that some pairs tie


def _win_cases():
    rng = np.random.default_rng(9)
    a, b = _scores(rng, 40), _scores(rng, 40)
    return [Case((a, b), label="40 prompts, some ties"),
            Case((a, b), dict(n_boot=500, level=0.9, seed=3), label="500 resamples, a 90% interval, seed 3"),
            Case((_scores(rng, 200) + 0.5, _scores(rng, 200)), label="200 prompts, the policy better"),
            Case((np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])), label="every pair a tie: 0.5 exactly"),
            Case((np.array([-5.0, -5.0, 4.0, 1.0]), np.array([-5.0, 2.0, 1.0, 1.0])), label="floored scores tie too")]


def _wins_only(scores, baseline, n_boot=2000, level=0.95, seed=0):
    wins = (scores > baseline).astype(float)
    return _resampled(wins, n_boot, level, seed)


def _ties_as_wins(scores, baseline, n_boot=2000, level=0.95, seed=0):
    return _resampled((scores >= baseline).astype(float), n_boot, level, seed)


def _ties_dropped(scores, baseline, n_boot=2000, level=0.95, seed=0):
    kept = scores != baseline
    if not kept.any():
        return float("nan"), float("nan"), float("nan")
    return _resampled((scores[kept] > baseline[kept]).astype(float), n_boot, level, seed)


def _resampled(values, n_boot, level, seed):
    stats = values[np.random.default_rng(seed).integers(values.size, size=(n_boot, values.size))].mean(-1)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(low), float(high)


def _distinct_cases():
    return [Case((["a great film , a great cast", "great great great great", "the plot was thin"],),
                 label="notebook 09's three texts, n = 2"),
            Case((["the cast was great", "the cast was great", "a thin plot"], 1), label="a repeated response, n = 1"),
            Case((["one two three four", "two three four five", "three four"], 3), label="n = 3, one response too short"),
            Case((["ok", "fine"], 2), label="no response has two words: 0.0"),
            Case((["loved it loved it", "it loved it"], 2), label="n-grams that repeat across responses")]


def _per_response(responses, n=2):
    values = []
    for r in responses:
        words = r.split()
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        if grams:
            values.append(len(set(grams)) / len(grams))
    return float(np.mean(values)) if values else 0.0


def _joined(responses, n=2):
    words = " ".join(responses).split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _paired_cases():
    rng = np.random.default_rng(90)
    prompt = rng.normal(size=60)                     # what two policies' scores of one prompt share
    a, b = prompt + 0.3 + 0.2 * rng.normal(size=60), prompt + 0.2 * rng.normal(size=60)
    return [Case((a, b), label="60 prompts whose scores share a prompt effect"),
            Case((a, b), dict(n_boot=400, level=0.8, seed=5), label="400 resamples, an 80% interval, seed 5"),
            Case((rng.normal(size=300), rng.normal(size=300)), label="300 prompts, no shared effect"),
            Case((np.array([1.0, -2.0, 0.5]), np.array([1.0, -2.0, 0.5])), label="identical scores: (0, 0, 0)")]


def _independent(values, other, n_boot=2000, level=0.95, seed=0):
    return bootstrap_ci(values, other, n_boot=n_boot, level=level, seed=seed)


def _one_sided_level(values, other, n_boot=2000, level=0.95, seed=0):
    d = values - other
    stats = d[np.random.default_rng(seed).integers(d.size, size=(n_boot, d.size))].mean(-1)
    low, high = np.quantile(stats, [1 - level, level])
    return float(d.mean()), float(low), float(high)


def _normal_interval(values, other, n_boot=2000, level=0.95, seed=0):
    d = values - other
    stats = d[np.random.default_rng(seed).integers(d.size, size=(n_boot, d.size))].mean(-1)
    return float(d.mean()), float(d.mean() - 1.96 * stats.std()), float(d.mean() + 1.96 * stats.std())


EXERCISES = [
    Exercise(
        name="win_rate", notebook="09", reference=win_rate, cases=_win_cases,
        mistakes=(Mistake(_wins_only, "a tie counts half a win: add 0.5 · 1[s_i = b_i]"),
                  Mistake(_ties_as_wins, "a tie counts half a win, not a whole one: > for a win, == for a tie"),
                  Mistake(_ties_dropped, "keep the ties in the count: the win rate divides by all N prompts"))),
    Exercise(
        name="distinct_n", notebook="09", reference=distinct_n, cases=_distinct_cases,
        mistakes=(Mistake(_per_response, "pool the n-grams of all responses, then count: repeats across responses "
                                         "count too"),
                  Mistake(_joined, "take each response's n-grams on its own: an n-gram never spans two responses"))),
    Exercise(
        name="paired_bootstrap_ci", notebook="09", reference=paired_bootstrap_ci, cases=_paired_cases,
        mistakes=(Mistake(_independent, "resample the pairs together: one index i draws both values[i] and "
                                        "other[i] (use the differences d = values - other)"),
                  Mistake(_one_sided_level, "a 95% interval leaves 2.5% on each side: the quantiles (1 - level) / 2 "
                                            "and (1 + level) / 2"),
                  Mistake(_normal_interval, "a percentile bootstrap: the interval is the quantiles of the resampled "
                                            "means, not the mean ± 1.96 standard deviations"))),
]
