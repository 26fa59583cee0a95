"""Best-of-n: the exact distribution, the KL bound (Beirami et al. 2024) and the selection;
the sample log-probs and bootstrap intervals that notebooks compare policies with."""

import math

import numpy as np
import pytest
import torch

from course_utils.best_of_n import best_of_n_distribution, best_of_n_scores, exact_kl, kl_bound
from course_utils.data import format_prompt
from course_utils.evaluation import bootstrap_ci, sample_logprobs
from course_utils.generation import generate


def test_kl_bound_values():
    assert kl_bound(1) == 0.0
    assert kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bound([4, 64]) == pytest.approx([math.log(4) - 0.75, math.log(64) - 63 / 64])
    with pytest.raises(ValueError, match="n"):
        kl_bound(0)


def test_best_of_n_distribution_by_brute_force():
    probs, rewards = np.array([0.5, 0.3, 0.2]), np.array([0.0, 2.0, 1.0])
    # best of 2 by enumerating all 9 ordered draws
    brute = np.zeros(3)
    for i in range(3):
        for j in range(3):
            brute[i if rewards[i] >= rewards[j] else j] += probs[i] * probs[j]
    np.testing.assert_allclose(best_of_n_distribution(probs, rewards, 2), brute)
    np.testing.assert_allclose(best_of_n_distribution(probs, rewards, 1), probs)
    assert best_of_n_distribution(probs, rewards, 500)[1] == pytest.approx(1.0)


def test_exact_kl_never_exceeds_the_bound_and_meets_it_when_responses_are_rare():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 30))
        probs, rewards = rng.dirichlet(np.ones(k) * 0.3), rng.permutation(k).astype(float)
        for n in (2, 4, 16, 64):
            assert exact_kl(best_of_n_distribution(probs, rewards, n), probs) <= kl_bound(n) + 1e-12
    uniform = np.full(100_000, 1e-5)
    for n in (2, 8, 64):
        exact = exact_kl(best_of_n_distribution(uniform, np.arange(100_000.0), n), uniform)
        assert exact == pytest.approx(kl_bound(n), abs=1e-3)


def test_exact_kl():
    assert exact_kl([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert exact_kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert exact_kl([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_best_of_n_scores_picks_by_the_proxy():
    proxy = np.array([[1.0, 3.0, 2.0, 0.0], [0.0, 1.0, 5.0, 4.0]])
    target = -proxy  # a target that disagrees with the proxy
    p, t = best_of_n_scores(proxy, target, 2)
    assert p.tolist() == [3.0, 2.0, 1.0, 5.0] and t.tolist() == [-3.0, -2.0, -1.0, -5.0]
    p, t = best_of_n_scores(proxy, target, 1)
    assert p.tolist() == proxy.ravel().tolist()
    for bad in (0, 5, 2.0):
        with pytest.raises(ValueError, match="n must"):
            best_of_n_scores(proxy, target, bad)
    with pytest.raises(ValueError, match="proxy"):
        best_of_n_scores(proxy, target[:1], 2)


def test_bootstrap_ci_covers_the_truth_and_separates_real_gaps():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    est, low, high = bootstrap_ci(a, b)
    assert low < 1.0 < high and low > 0.5 and est == pytest.approx(a.mean() - b.mean())
    est, low, high = bootstrap_ci(b)
    assert low < 0.0 < high
    with pytest.raises(ValueError, match="values"):
        bootstrap_ci([1.0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0, 2.0], level=95)


def test_sample_logprobs_score_what_was_generated(make_tiny_lm, course_tokenizer):
    """log π(y|x) of a sampled response, recomputed token by token on the unpadded text."""
    model = make_tiny_lm(seed=3)
    prompts = [format_prompt("Write a tweet."), format_prompt("Write a movie review.")] * 2
    out = generate(model, course_tokenizer, prompts, max_new_tokens=6, seed=0)
    got = sample_logprobs(model, course_tokenizer, prompts, out["responses"], out["finished"], batch_size=3)
    for p, r, done, value in zip(prompts, out["responses"], out["finished"], got):
        ids = course_tokenizer(p)["input_ids"]
        target = course_tokenizer(r, add_special_tokens=False)["input_ids"] + ([course_tokenizer.eos_token_id]
                                                                             if done else [])
        total = 0.0
        with torch.no_grad():
            for tok in target:
                total += torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1], -1)[tok].item()
                ids = ids + [tok]
        assert value == pytest.approx(total, abs=1e-4)
    with pytest.raises(ValueError, match="one length"):
        sample_logprobs(model, course_tokenizer, prompts, out["responses"][:1], out["finished"])
    with pytest.raises(ValueError, match="empty and unfinished"):
        sample_logprobs(model, course_tokenizer, prompts[:1], [""], [False])
