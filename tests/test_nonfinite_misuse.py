"""NaN, infinity and malformed numbers at the door (issue 29).

A walk over the public functions of the modules that take scores, rewards, log-probs,
advantages or probabilities: every parameter whose name says it holds such numbers gets a
NaN, and the function must refuse it with a ValueError that names itself, the argument and
(for arrays) where the first bad entry is, or be listed in ``ACCEPTS_NAN`` with the reason
(and a test of what it does). Then the other malformed inputs of the issue: probabilities that
are not a distribution, a response mask with holes, token ids beyond the vocabulary, a device
this machine does not have, zero bootstrap resamples."""

import functools
import importlib
import inspect
import re

import numpy as np
import pytest
import torch

from course_utils import (bandit, best_of_n, dpo, evaluation, generation, grpo, judge, kto, logprobs, losses, orpo,
                          plots, policy_gradient, ppo, preferences, reward_model, simpo)
from course_utils.judge import degenerate
from course_utils.judge import sentiment as sentiment_ridge
from misuse import Case, lm, model_state, tiny

NAN = float("nan")

# The modules walked. A new module whose functions take such numbers joins this list.
MODULES = ("bandit", "best_of_n", "judge.degenerate", "dpo", "evaluation", "grpo", "kto", "logprobs", "losses", "orpo",
           "plots", "policy_gradient", "ppo", "preferences", "reward_model", "judge.sentiment", "simpo")

# Parameter names that hold scores, rewards, log-probs, logits, advantages, values or probabilities.
NUMBERS = re.compile(r"^(p|q|x|pi|pi_ref|kl|baseline|proxy|target|other|values|old_values|returns|logits|advantages"
                     r"|.*(score|reward|logp|prob|rating|r_chosen|r_rejected).*)$")
NOT_NUMBERS = re.compile(r"(_model|_file)$")     # reward_model, value_model, ratings_file
NOT_NUMBER_DOORS = {("grpo.grpo_step", "reward")}   # a reward function (the verifier), not numbers

# Functions that take such numbers and deliberately let NaN through, with the reason.
ACCEPTS_NAN = {
    "plots.smooth": "a plotting helper: a NaN in a history (a metric a step did not log) leaves a gap in the curve",
}


# ---------------------------------------------------------------- valid calls, one per door

def _logp():
    return torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -1.0, -2.0]])


def _mask():
    return torch.tensor([[1, 1, 1], [1, 1, 0]])


def _pair():
    return torch.tensor([-1.0, -2.0])


RATINGS = [[1, 2, 3], [-1, 0], [4, 4, 3], [-2, -3]]
PAIRS = [[0, 1], [2, 3]]
DOMAINS = ["movie", "movie", "tweet", "tweet"]
LOGPS4 = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")

VALID = {   # target -> (function, keyword arguments of a valid call)
    "bandit.log_partition": (bandit.log_partition, dict(pi_ref=[0.5, 0.5], reward=[0.0, 1.0], beta=1.0)),
    "bandit.optimal_policy": (bandit.optimal_policy, dict(pi_ref=[0.5, 0.5], reward=[0.0, 1.0], beta=1.0)),
    "bandit.objective": (bandit.objective, dict(pi=[0.3, 0.7], pi_ref=[0.5, 0.5], reward=[0.0, 1.0], beta=1.0)),
    "bandit.implicit_reward": (bandit.implicit_reward, dict(pi=[0.3, 0.7], pi_ref=[0.5, 0.5], beta=1.0)),
    "bandit.sample_preferences": (bandit.sample_preferences, dict(policy=[0.5, 0.5], reward=[0.0, 1.0], n=4)),
    "bandit.train_tabular_policy": (bandit.train_tabular_policy, dict(pairs=[[0, 1]], pi_ref=[0.5, 0.5], beta=1.0,
                                                                      steps=1)),
    "best_of_n.best_of_n_distribution": (best_of_n.best_of_n_distribution,
                                         dict(probs=[0.5, 0.3, 0.2], rewards=[0.0, 2.0, 1.0], n=2)),
    "best_of_n.exact_kl": (best_of_n.exact_kl, dict(p=[0.5, 0.5], q=[0.25, 0.75])),
    "best_of_n.best_of_n_scores": (best_of_n.best_of_n_scores, dict(proxy=[[0.0, 1.0]], target=[[1.0, 0.0]], n=2)),
    "judge.degenerate.battery": (degenerate.battery, dict(texts=["a fine film", "a dull day"], domains=["movie", "tweet"],
                                                    mean_ratings=[2.0, -1.0], per_family=1)),
    **{f"dpo.{name}": (getattr(dpo, name), {k: _pair() for k in LOGPS4})
       for name in ("dpo_loss", "conservative_dpo_loss", "robust_dpo_loss", "ipo_loss", "preference_metrics")},
    "evaluation.bootstrap_ci": (evaluation.bootstrap_ci, dict(values=[1.0, 2.0, 3.0], other=[0.0, 1.0], n_boot=10)),
    "evaluation.win_rate": (evaluation.win_rate, dict(scores=[1.0, 2.0, 3.0], baseline=[0.0, 2.0, 4.0], n_boot=10)),
    "evaluation.paired_bootstrap_ci": (evaluation.paired_bootstrap_ci,
                                       dict(values=[1.0, 2.0, 3.0], other=[0.0, 2.0, 4.0], n_boot=10)),
    "grpo.group_advantages": (grpo.group_advantages, dict(rewards=torch.tensor([1.0, 0.0, 0.0, 1.0]), group_size=2)),
    "grpo.zero_signal_groups": (grpo.zero_signal_groups, dict(rewards=torch.tensor([1.0, 1.0, 0.0, 1.0]),
                                                              group_size=2)),
    "grpo.grpo_loss": (grpo.grpo_loss, dict(logp=_logp(), old_logp=_logp(), advantages=_pair(), mask=_mask(),
                                            beta=0.1, ref_logp=_logp())),
    "kto.kto_reference_point": (kto.kto_reference_point, dict(policy_kl_logps=_pair(), ref_kl_logps=_pair())),
    "kto.kto_loss": (kto.kto_loss, dict(policy_logps=_pair(), ref_logps=_pair(), desirable=torch.tensor([True, False]),
                                        z0=0.1)),
    "logprobs.token_logprobs": (logprobs.token_logprobs, dict(logits=torch.zeros(1, 2, 5),
                                                              targets=torch.tensor([[1, 2]]))),
    "losses.sft_loss": (losses.sft_loss, dict(logits=torch.zeros(1, 3, 5), labels=torch.tensor([[-100, 1, 2]]))),
    "losses.bradley_terry_loss": (losses.bradley_terry_loss, dict(r_chosen=_pair(), r_rejected=_pair())),
    "orpo.log1mexp": (orpo.log1mexp, dict(x=_pair())),
    "orpo.log_odds": (orpo.log_odds, dict(logps=_pair())),
    **{f"orpo.{name}": (getattr(orpo, name), dict(chosen_logps=_pair(), rejected_logps=_pair()))
       for name in ("log_odds_ratio", "odds_ratio_loss", "orpo_loss", "orpo_metrics")},
    "policy_gradient.masked_mean": (policy_gradient.masked_mean, dict(values=_logp(), mask=_mask())),
    "policy_gradient.kl_estimate": (policy_gradient.kl_estimate, dict(logp=_logp(), logp_ref=_logp() - 0.1)),
    "policy_gradient.kl_penalised_reward": (policy_gradient.kl_penalised_reward,
                                            dict(score=_pair(), logp=_logp(), logp_ref=_logp(), mask=_mask(),
                                                 beta=0.1)),
    "policy_gradient.advantages": (policy_gradient.advantages, dict(rewards=torch.tensor([1.0, 2.0, 0.0, 1.0]),
                                                                    method="leave_one_out", group_size=2,
                                                                    baseline=0.0)),
    "policy_gradient.update_baseline": (policy_gradient.update_baseline, dict(baseline=0.0, rewards=_pair())),
    "policy_gradient.reinforce_loss": (policy_gradient.reinforce_loss, dict(logp=_logp(), advantages=_pair(),
                                                                            mask=_mask())),
    "ppo.token_rewards": (ppo.token_rewards, dict(score=_pair(), logp=_logp(), logp_ref=_logp(), mask=_mask(),
                                                  beta=0.1)),
    "ppo.gae": (ppo.gae, dict(rewards=_logp(), values=_logp(), mask=_mask())),
    "ppo.whiten": (ppo.whiten, dict(values=_logp(), mask=_mask())),
    "ppo.clipped_policy_loss": (ppo.clipped_policy_loss, dict(logp=_logp(), old_logp=_logp(), advantages=_logp(),
                                                              mask=_mask())),
    "ppo.clipped_value_loss": (ppo.clipped_value_loss, dict(values=_logp(), old_values=_logp(), returns=_logp(),
                                                            mask=_mask())),
    "ppo.explained_variance": (ppo.explained_variance, dict(values=_logp(), returns=_logp() * 2, mask=_mask())),
    "ppo.adaptive_kl_beta": (ppo.adaptive_kl_beta, dict(beta=0.1, kl=1.0, target=2.0, horizon=100.0, n_samples=4)),
    "ppo.ptx_loss": (ppo.ptx_loss, dict(logits=torch.zeros(1, 3, 5), input_ids=torch.tensor([[0, 1, 2]]))),
    "preferences.rating_histograms": (preferences.rating_histograms, dict(ratings=RATINGS)),
    "preferences.pair_probabilities": (preferences.pair_probabilities, dict(ratings=RATINGS, pairs=PAIRS)),
    "preferences.prefer_probability": (preferences.prefer_probability, dict(ratings_a=[1, 2], ratings_b=[0, 3])),
    "preferences.pairwise_agreement": (preferences.pairwise_agreement, dict(scores=[1.0, 0.0, 2.0, -1.0],
                                                                            ratings=RATINGS, pairs=PAIRS)),
    "preferences.ceiling": (preferences.ceiling, dict(ratings=RATINGS, pairs=PAIRS)),
    "preferences.agreement_by_domain": (preferences.agreement_by_domain,
                                        dict(scores=[1.0, 0.0, 2.0, -1.0], ratings=RATINGS, domains=DOMAINS,
                                             pairs=PAIRS)),
    "preferences.ceiling_by_domain": (preferences.ceiling_by_domain, dict(ratings=RATINGS, domains=DOMAINS,
                                                                          pairs=PAIRS)),
    "preferences.simulate_labels": (preferences.simulate_labels, dict(ratings=RATINGS, pairs=PAIRS)),
    "preferences.preference_pairs_from_scores": (preferences.preference_pairs_from_scores,
                                                 dict(prompts=["p"], responses_a=["a"], responses_b=["b"],
                                                      scores_a=[1.0], scores_b=[0.0])),
    "simpo.simpo_loss": (simpo.simpo_loss, dict(policy_chosen_logps=_pair(), policy_rejected_logps=_pair(),
                                                chosen_lengths=torch.tensor([2, 3]),
                                                rejected_lengths=torch.tensor([1, 4]))),
    "judge.sentiment.SentimentRidge.fit": (sentiment_ridge.SentimentRidge.fit,
                                           dict(texts=["good", "bad"], domains=["movie", "movie"],
                                                ratings=[2.0, -2.0])),
}


def with_nan(value):
    """``value`` with its first number NaN (the last rating of the last text for rating lists): a tensor
    stays a tensor."""
    if torch.is_tensor(value):
        value = value.clone()
        value.view(-1)[0] = NAN
        return value
    if isinstance(value, (int, float)):
        return NAN
    if isinstance(value, list) and value and isinstance(value[0], list) and isinstance(value[0][0], int):
        return value[:-1] + [value[-1][:-1] + [NAN]]      # rating lists: the last rating of the last text
    array = np.array(value, dtype=float)
    array.reshape(-1)[0] = NAN
    return array


def numeric_parameters(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if NUMBERS.match(p) and not NOT_NUMBERS.search(p)]


def walked_doors() -> set[tuple[str, str]]:
    """(target, parameter) of every public function of ``MODULES`` with a parameter in ``NUMBERS``."""
    found = set()
    for name in MODULES:
        module = importlib.import_module(f"course_utils.{name}")
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [(attr, obj)] if inspect.isfunction(obj) else \
                [(f"{attr}.{k}", getattr(v, "__func__", v)) for k, v in vars(obj).items()
                 if not k.startswith("_") and inspect.isfunction(getattr(v, "__func__", v))] \
                if inspect.isclass(obj) else []
            for target, fn in members:
                found |= {(f"{name}.{target}", p) for p in numeric_parameters(fn)}
    return found - NOT_NUMBER_DOORS


def nan_case(target: str, param: str) -> Case:
    fn, kwargs = VALID[target]
    where = target.removeprefix("judge.").split(".", 1)[1]
    if target in ("losses.sft_loss", "logprobs.token_logprobs"):
        names = r"token_logprobs: logits contain NaN"     # checked on the log-probs, not on the [B, T, V] logits
    elif target.startswith("preferences.") and "rating" in param:
        names = rf"{where}: {param}\[\d+\] must be a non-empty list of integers"
    elif isinstance(kwargs[param], (int, float)):
        names = rf"{where}: {param} must be a finite number"
    else:
        names = rf"{where}: {param}(\[\d+\])+ is nan"   # the argument and where its first bad entry is
    return Case(target, lambda: fn(**{**kwargs, param: with_nan(kwargs[param])}), ValueError, names,
                id=f"{target}: NaN in {param}")


NAN_CASES = [nan_case(t, p) for t, p in sorted(walked_doors()) if t not in ACCEPTS_NAN] \
    + [nan_case("bandit.sample_preferences", "policy")]   # a probability vector, whose name elsewhere is a model's


def test_the_walk_finds_every_door_and_has_a_valid_call_for_each():
    doors = walked_doors()
    assert {("ppo.token_rewards", "score"), ("best_of_n.exact_kl", "p"), ("dpo.dpo_loss", "ref_rejected_logps"),
            ("preferences.pairwise_agreement", "scores")} <= doors
    missing = sorted({t for t, _ in doors} - set(VALID) - set(ACCEPTS_NAN))
    assert not missing, f"functions that take numbers with no valid call in VALID (add one): {missing}"
    assert len(NAN_CASES) >= 80


@pytest.mark.parametrize("target", sorted(VALID))
def test_the_valid_calls_are_valid(target):
    """Each NaN case differs from a call that works in one entry only."""
    fn, kwargs = VALID[target]
    fn(**kwargs)


def test_smooth_lets_a_nan_leave_a_gap():
    out = plots.smooth([1.0, NAN, 3.0, 5.0, 7.0], window=2)
    assert np.isnan(out[1:3]).all() and out[0] == 1.0 and out[3:].tolist() == [4.0, 6.0]


def test_token_logprobs_accepts_minus_infinity_logits():
    logits = torch.tensor([[[0.0, 0.0, -float("inf")]]])
    assert torch.allclose(logprobs.token_logprobs(logits, torch.tensor([[0]])), -torch.log(torch.tensor([[2.0]])))


# ---------------------------------------------------------------- the other malformed inputs

def holes():
    return torch.tensor([[1, 0, 1, 0]])


def token_rewards_with_holes():
    logp = torch.full((1, 4), -1.0)
    ppo.token_rewards(torch.tensor([5.0]), logp, logp, holes(), beta=0.1)


def test_token_rewards_puts_the_score_on_the_last_token_of_a_contiguous_response():
    logp = torch.full((2, 4), -1.0)
    out = ppo.token_rewards(torch.tensor([5.0, 7.0]), logp, logp - 0.5, torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]),
                            beta=0.1)
    assert torch.allclose(out, torch.tensor([[-0.05, -0.05, 4.95, 0.0], [-0.05, -0.05, -0.05, 6.95]]))


def rollout_beyond_vocabulary():
    size = tiny()[0].get_input_embeddings().num_embeddings
    ids = torch.tensor([[3, 4, size + 7]])
    return generation.Rollout(ids, torch.ones_like(ids), torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 2),
                              torch.tensor([False]), 1)


def ids_beyond_vocabulary():
    return torch.tensor([[3, tiny()[0].get_input_embeddings().num_embeddings]])


@functools.cache
def reward_net():
    return reward_model.reward_model_from_policy(tiny()[0])


def unavailable_device() -> str:
    return "cuda" if not torch.cuda.is_available() else "cuda:99"


OTHER_CASES = [
    Case("best_of_n.exact_kl", lambda: best_of_n.exact_kl([0.9, 0.3], [0.5, 0.5]), ValueError,
         r"exact_kl: p sums to 1\.2, not 1 \(within 1e-06\)", id="exact_kl: p is not a distribution"),
    Case("best_of_n.exact_kl", lambda: best_of_n.exact_kl([0.5, 0.5], [1.5, -0.5]), ValueError,
         r"exact_kl: q\[1\] is -0\.5", id="exact_kl: q has a negative entry"),
    Case("best_of_n.best_of_n_distribution", lambda: best_of_n.best_of_n_distribution([0.9, 0.3], [0.0, 1.0], 2),
         ValueError, r"probs sums to 1\.2", id="best_of_n_distribution: probs is not a distribution"),
    Case("best_of_n.best_of_n_distribution",
         lambda: best_of_n.best_of_n_distribution([[0.5, 0.5]], [[0.0, 1.0]], 2), ValueError,
         r"probs and rewards must have one entry per response", id="best_of_n_distribution: rows of probs"),
    Case("preferences.pairwise_agreement",
         lambda: preferences.pairwise_agreement([0.0, 1.0], np.array([[0.5] * 9, [1 / 9] * 9]), [[0, 1]]),
         ValueError, r"pairwise_agreement: ratings\[0\] sums to 4\.5", id="pairwise_agreement: a bad histogram"),
    Case("judge.degenerate.battery", lambda: degenerate.battery(["a fine film", "a dull film"], ["movie", "movie"],
                                                          [2.0, -1.0], per_family=1),
         ValueError, r"battery: the off_domain items need texts of at least two domains", id="battery: one domain"),
    Case("ppo.token_rewards", token_rewards_with_holes, ValueError, r"token_rewards: mask row 0 is \[1, 0, 1, 0\]",
         id="token_rewards: a mask with holes"),
    Case("ppo.gae", lambda: ppo.gae(torch.zeros(1, 4), torch.zeros(1, 4), holes()), ValueError,
         r"gae: mask row 0 is \[1, 0, 1, 0\]", id="gae: a mask with holes"),
    Case("generation.response_logprobs", lambda: generation.response_logprobs(lm(), rollout_beyond_vocabulary()),
         ValueError, r"response_logprobs: rollout\.input_ids holds token id \d+, but the model knows \d+ tokens",
         unchanged=lambda: model_state(lm()), id="response_logprobs: ids beyond the vocabulary"),
    Case("ppo.values", lambda: ppo.values(reward_net(), rollout_beyond_vocabulary()), ValueError,
         r"values: rollout\.input_ids holds token id", id="values: ids beyond the vocabulary"),
    Case("reward_model.rewards", lambda: reward_model.rewards(reward_net(), ids_beyond_vocabulary(),
                                                              torch.ones(1, 2, dtype=torch.long)),
         ValueError, r"rewards: input_ids holds token id", id="rewards: ids beyond the vocabulary"),
    Case("losses.sft_step", lambda: losses.sft_step(lm(), {"input_ids": ids_beyond_vocabulary(),
                                                           "attention_mask": torch.ones(1, 2, dtype=torch.long),
                                                           "labels": torch.tensor([[-100, 3]])}),
         ValueError, r"sft_step: input_ids holds token id", unchanged=lambda: model_state(lm()),
         id="sft_step: ids beyond the vocabulary"),
    Case("judge.Judge.load", lambda: judge.Judge.load(device=unavailable_device()), ValueError,
         r"Judge\.load: device='cuda(:99)?' is not available on this machine", id="Judge.load: no such device"),
    Case("evaluation.bootstrap_ci", lambda: evaluation.bootstrap_ci([1.0, 2.0], n_boot=0), ValueError,
         r"bootstrap_ci: n_boot must be an integer >= 1, got 0", id="bootstrap_ci: zero resamples"),
    Case("evaluation.win_rate", lambda: evaluation.win_rate([1.0, 2.0], [0.0, 3.0], n_boot=0), ValueError,
         r"win_rate: n_boot must be an integer >= 1, got 0", id="win_rate: zero resamples"),
]

CASES = NAN_CASES + OTHER_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id or c.target)
def test_misuse(case):
    case.run()
