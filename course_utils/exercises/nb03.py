"""Notebook 03, best-of-n and rejection sampling: the exact best-of-n distribution, its KL, RAFT's filter."""

import numpy as np

from ..best_of_n import best_of_n_distribution, exact_kl
from ..raft import keep_top_k
from ._runner import Case, Exercise, Mistake

PROBS = np.array([0.4, 0.3, 0.2, 0.1])
REWARD = np.array([0.0, 1.0, 3.0, 2.0])


def _distribution_cases():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(7))
    return [Case((PROBS, REWARD, 4), label="the four responses of the notebook, n = 4"),
            Case((probs, rng.permutation(7).astype(float), 16), label="seven responses, n = 16"),
            Case((PROBS, REWARD, 1), label="n = 1: the base policy itself"),
            Case((np.array([0.5, 0.0, 0.5]), np.array([2.0, 5.0, -1.0]), 3),
                 label="the best response has probability 0"),
            Case((np.array([0.7, 0.3]), np.array([1.0, 0.0]), 1000), label="n = 1000: all mass on the best")]


def _sorted_order(probs, rewards, n):
    cdf = np.cumsum(np.asarray(probs)[np.argsort(rewards)])
    return cdf ** n - np.concatenate([[0.0], cdf[:-1]]) ** n


def _cdf_only(probs, rewards, n):
    order = np.argsort(rewards)
    out = np.empty(len(probs))
    out[order] = np.cumsum(np.asarray(probs)[order]) ** n
    return out


def _worst_of_n(probs, rewards, n):
    return best_of_n_distribution(probs, -np.asarray(rewards), n)


def _kl_cases():
    rng = np.random.default_rng(30)
    q = rng.dirichlet(np.ones(6))
    return [Case((best_of_n_distribution(PROBS, REWARD, 4), PROBS), label="best-of-4 against the base"),
            Case((rng.dirichlet(np.ones(6)), q), label="two random distributions"),
            Case((q, q), label="p = q: zero"),
            Case((np.array([0.0, 0.0, 1.0, 0.0]), PROBS),
                 label="p puts all its mass on one response: 0 log 0 counts as 0"),
            Case((np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.0, 0.5])), label="q is 0 where p is not: infinity")]


def _raft_cases():
    rewards = np.array([0.4, 1.7, -0.3, 0.9, 2.2, 0.1, 1.1, -1.0])
    finished = np.array([True, True, True, True, False, True, True, True])
    return [Case((rewards, finished, 4), label="two prompts × 4 samples, the best of each"),
            Case((rewards, finished, 4, 2), label="the top 2 of each prompt's 4"),
            Case((rewards, finished, 2, 1), label="four prompts × 2 samples; the highest reward is unfinished"),
            Case((rewards, np.zeros(8, dtype=bool), 4, 2), label="no sample finished: nothing kept"),
            Case((rewards[:6], np.ones(6, dtype=bool), 3, 3), label="k = samples_per_prompt: all kept")]


def _keeps_unfinished(rewards, finished, samples_per_prompt, k=1):
    return keep_top_k(rewards, np.ones(len(rewards), dtype=bool), samples_per_prompt, k)


def _over_the_batch(rewards, finished, samples_per_prompt, k=1):
    per_batch = k * (len(rewards) // samples_per_prompt)
    return keep_top_k(rewards, np.asarray(finished), len(rewards), per_batch)


def _bottom_k(rewards, finished, samples_per_prompt, k=1):
    return keep_top_k(-np.asarray(rewards), finished, samples_per_prompt, k)


def _top_k_then_finished(rewards, finished, samples_per_prompt, k=1):
    r = np.asarray(rewards).reshape(-1, samples_per_prompt)
    keep = np.zeros(r.shape, dtype=bool)
    np.put_along_axis(keep, np.argsort(-r, axis=-1)[:, :k], True, axis=-1)
    return keep.reshape(-1) & np.asarray(finished)


EXERCISES = [
    Exercise(
        name="best_of_n_distribution", notebook="03", reference=best_of_n_distribution, cases=_distribution_cases,
        mistakes=(Mistake(_cdf_only, "F(i)^n is the chance that the best of n is response i *or a worse one*: "
                          "subtract F(i-1)^n"),
                  Mistake(_sorted_order, "put the result back in the order of the responses: out[order] = ..."),
                  Mistake(_worst_of_n, "sort by increasing reward, so that F(i) is the mass of responses no "
                          "better than i: sorting by decreasing reward gives worst-of-n"))),
    Exercise(
        name="exact_kl", notebook="03", reference=exact_kl, cases=_kl_cases,
        mistakes=(Mistake(lambda p, q: float(np.sum(np.asarray(q) * np.log(np.asarray(q) / np.asarray(p)))),
                          "KL(p ‖ q) weights by p and divides by q: Σ p log(p / q), not the other way round"),
                  Mistake(lambda p, q: float(np.mean(np.log(np.asarray(p) / np.asarray(q)))),
                          "weight each log-ratio by p(y): a plain mean is not an expectation under p"),
                  Mistake(lambda p, q: float(np.sum(np.asarray(p) * np.log(np.asarray(p) / np.asarray(q)))),
                          "0 log 0 counts as 0: sum over the responses where p > 0 only"))),
    Exercise(
        name="keep_top_k", notebook="03", reference=keep_top_k, cases=_raft_cases,
        mistakes=(Mistake(_keeps_unfinished, "an unfinished response is never kept: rank the finished ones only"),
                  Mistake(_over_the_batch, "each prompt keeps its own top k (rewards.reshape(-1, samples_per_prompt)), "
                          "not the top of the whole batch"),
                  Mistake(_bottom_k, "keep the highest rewards: sort by -reward, or take the last k of an "
                          "increasing sort"),
                  Mistake(_top_k_then_finished, "take the top k among the finished samples: dropping unfinished "
                          "ones after the top k keeps fewer than k where a finished one was left out"))),
]
