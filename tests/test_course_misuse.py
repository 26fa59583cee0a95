"""Bad input to the helpers of notebooks 02 and 03 (preference data, reward model, best-of-n,
evaluation, runs) and to the display and training additions: a clear error at the door,
naming the argument, nothing changed. ``test_misuse.py`` checks that every public function
has a case here or there."""

import functools

import numpy as np
import pytest
import torch

from course_utils import best_of_n, display, evaluation, losses, preferences, reward_model, runs, training
from course_utils.data import format_prompt
from course_utils.models import load_policy
from course_utils.profiles import get_profile
from misuse import Case

PROMPT = format_prompt("Write a movie review.")


@functools.cache
def tiny():
    return load_policy("tiny")


@functools.cache
def rm():
    return reward_model.reward_model_from_policy(tiny()[0])


def state(model):
    return model.training, float(sum(p.double().sum() for p in model.parameters()))


def trained_rm():
    return rm().train()


CASES = [
    Case("preferences.simulate_labels", lambda: preferences.simulate_labels("4 3", [[0, 1]]), TypeError, "ratings"),
    Case("preferences.simulate_labels", lambda: preferences.simulate_labels([[1], [2]], [[0, 5]]), ValueError,
         "pairs"),
    Case("preferences.simulate_labels", lambda: preferences.simulate_labels([[1], [2]], [[0, 1]], length_bias=2),
         ValueError, "length_bias"),
    Case("preferences.ranking_to_pairs", lambda: preferences.ranking_to_pairs("abc"), TypeError, "ranking"),
    Case("preferences.ranking_to_pairs", lambda: preferences.ranking_to_pairs(["a", ()]), ValueError, "ranking"),
    Case("preferences.human_preference_pairs", lambda: preferences.human_preference_pairs([], 10), ValueError,
         "corpus"),
    Case("preferences.preference_pairs_from_scores",
         lambda: preferences.preference_pairs_from_scores(["p"], [" a"], [" b"], [np.inf], [0.0]), ValueError,
         "scores_a"),
    Case("display.text_table", lambda: display.text_table([["a"]]), TypeError, "df"),
    Case("display.text_table", lambda: display.text_table(__import__("pandas").DataFrame({"a": [1]}), 2),
         ValueError, "max_colwidth"),
    Case("losses.bradley_terry_loss", lambda: losses.bradley_terry_loss([1.0], [0.0]), TypeError, "r_chosen"),
    Case("losses.bradley_terry_loss", lambda: losses.bradley_terry_loss(torch.zeros(3), torch.zeros(2)),
         ValueError, "r_chosen"),
    Case("losses.bradley_terry_loss", lambda: losses.bradley_terry_loss(torch.tensor([float("nan")]),
                                                                        torch.zeros(1)), ValueError, "r_chosen.*NaN"),
    Case("reward_model.reward_model_from_policy", lambda: reward_model.reward_model_from_policy("gpt2"),
         TypeError, "policy"),
    Case("reward_model.rewards", lambda: reward_model.rewards(rm(), torch.ones(2, 3), torch.ones(2, 3)),
         TypeError, "input_ids"),
    Case("reward_model.rewards", lambda: reward_model.rewards(rm(), torch.ones(2, 3, dtype=torch.long),
                                                              torch.zeros(2, 3, dtype=torch.long)),
         ValueError, "attention_mask", unchanged=lambda: state(trained_rm())),
    Case("reward_model.reward_step", lambda: reward_model.reward_step(trained_rm(), {"input_ids": torch.ones(1, 2)}),
         ValueError, "batch", unchanged=lambda: state(trained_rm())),
    Case("reward_model.score_responses", lambda: reward_model.score_responses(trained_rm(), tiny()[1], PROMPT,
                                                                             " fine"),
         TypeError, "prompts", unchanged=lambda: state(trained_rm())),
    Case("reward_model.score_responses", lambda: reward_model.score_responses(trained_rm(), tiny()[1], [PROMPT],
                                                                             [" a", " b"]),
         ValueError, "same length", unchanged=lambda: state(trained_rm())),
    Case("reward_model.score_responses", lambda: reward_model.score_responses(trained_rm(), "tok", [PROMPT], [" a"]),
         TypeError, "tokenizer"),
    Case("best_of_n.kl_bound", lambda: best_of_n.kl_bound(0.5), ValueError, "n"),
    Case("best_of_n.best_of_n_distribution", lambda: best_of_n.best_of_n_distribution([0.5, 0.6], [0, 1], 2),
         ValueError, "probs"),
    Case("best_of_n.best_of_n_distribution", lambda: best_of_n.best_of_n_distribution([0.5, 0.5], [1, 1], 2),
         ValueError, "rewards"),
    Case("best_of_n.best_of_n_distribution", lambda: best_of_n.best_of_n_distribution([0.5, 0.5], [0, 1], 0),
         ValueError, "n must"),
    Case("best_of_n.exact_kl", lambda: best_of_n.exact_kl([0.5, 0.5], [1.0]), ValueError, "p and q"),
    Case("best_of_n.best_of_n_scores", lambda: best_of_n.best_of_n_scores(np.zeros((2, 4)), np.zeros((2, 4)), 8),
         ValueError, "n must"),
    Case("best_of_n.best_of_n_scores", lambda: best_of_n.best_of_n_scores(np.full((1, 2), np.nan), np.zeros((1, 2)),
                                                                         1), ValueError, "proxy"),
    Case("evaluation.sample_logprobs", lambda: evaluation.sample_logprobs(tiny()[0].train(), tiny()[1], [PROMPT],
                                                                         [" a", " b"], [True]),
         ValueError, "one length", unchanged=lambda: state(tiny()[0].train())),
    Case("evaluation.sample_logprobs", lambda: evaluation.sample_logprobs(tiny()[0], tiny()[1], PROMPT, " a", [True]),
         TypeError, "prompts"),
    Case("evaluation.bootstrap_ci", lambda: evaluation.bootstrap_ci([1.0, float("inf")]), ValueError, "values"),
    Case("evaluation.bootstrap_ci", lambda: evaluation.bootstrap_ci([1.0, 2.0], [3.0]), ValueError, "other"),
    Case("runs.run_dir", lambda: runs.run_dir("02", "reward", "cpu"), TypeError, "profile"),
    Case("runs.run_dir", lambda: runs.run_dir("02", "../elsewhere", get_profile("smoke")), ValueError, "name"),
    Case("runs.sft_recipe", lambda: runs.sft_recipe(get_profile("smoke"), None), TypeError, "tokenizer"),
    Case("runs.sft_policy", lambda: runs.sft_policy(get_profile("smoke"), ""), ValueError, "notebook"),
    Case("runs.reward_recipe", lambda: runs.reward_recipe(get_profile("smoke"), tiny()[1], length_bias=-1),
         ValueError, "length_bias"),
    Case("runs.reward_model", lambda: runs.reward_model(get_profile("smoke"), "03", policy=tiny()[0]),
         ValueError, "policy and tokenizer"),
    Case("training.finished_run", lambda: training.finished_run(tiny()[0], lambda m, b: None, [1], list,
                                                                training.TrainConfig(steps=1, batch_size=1)),
         ValueError, "checkpoint_dir"),
    Case("training.finished_run", lambda: training.finished_run(tiny()[0], None, [1], list, {"steps": 1}),
         TypeError, "config"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
