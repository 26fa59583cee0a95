"""Bad input to rollouts, the policy-gradient and PPO pieces and the RL loop is rejected at the
door, naming the argument, with nothing changed."""

import functools
import hashlib

import pytest
import torch

from course_utils import generation, policy_gradient, ppo, rl, runs
from course_utils.profiles import get_profile
from course_utils.data import format_prompt
from course_utils.models import load_policy
from misuse import Case

PROMPT = format_prompt("Write a movie review.")


@functools.cache
def tiny():
    return load_policy("tiny")


def lm():
    return tiny()[0].train()   # train mode, so that a call that leaves it in eval mode is caught


def tok():
    return tiny()[1]


def state():
    h = hashlib.sha256()
    for p in lm().state_dict().values():
        h.update(p.detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return lm().training, h.hexdigest()


@functools.cache
def sampled():
    return generation.rollout(tiny()[0], tok(), [PROMPT] * 2, max_new_tokens=4)


def t(*shape):
    return torch.zeros(*shape)


ONES = torch.ones(2, 3)


def ro(**kwargs):
    return generation.rollout(lm(), tok(), **{"prompts": [PROMPT], "max_new_tokens": 4, **kwargs})


def rl_run(**kwargs):
    args = dict(models={"policy": torch.nn.Linear(2, 1)}, step=lambda *a: {}, prompts=[PROMPT] * 4,
                config=rl.RLConfig(iterations=1, prompts_per_iteration=2))
    return rl.train_rl(**{**args, **kwargs})


def adam():
    return torch.optim.AdamW(torch.nn.Linear(2, 1).parameters())


CASES = [
    # generation
    Case("generation.positions", lambda: generation.positions(torch.ones(3)), ValueError, "attention_mask"),
    Case("generation.rollout", lambda: ro(top_p=1.5), ValueError, "top_p", unchanged=state),
    Case("generation.rollout", lambda: ro(top_k=0), ValueError, "top_k", unchanged=state),
    Case("generation.rollout", lambda: ro(max_new_tokens=200), ValueError, "max_new_tokens=200", unchanged=state),
    Case("generation.rollout", lambda: ro(prompts=PROMPT), TypeError, "prompts", unchanged=state),
    Case("generation.rollout", lambda: ro(seed=-1), ValueError, "seed", unchanged=state),
    Case("generation.generate", lambda: generation.generate(lm(), tok(), [PROMPT], top_p=0.0), ValueError, "top_p",
         unchanged=state),
    Case("generation.response_logprobs", lambda: generation.response_logprobs(lm(), {"input_ids": t(1, 2)}),
         TypeError, "rollout", unchanged=state),
    Case("generation.response_logprobs", lambda: generation.response_logprobs(lm(), sampled(), entropy="yes"),
         TypeError, "entropy", unchanged=state),
    Case("generation.decode", lambda: generation.decode(tok(), ["a"]), TypeError, "rollout"),
    Case("generation.decode", lambda: generation.decode("tokenizer", sampled()), TypeError, "tokenizer"),
    # policy gradient
    Case("policy_gradient.masked_mean", lambda: policy_gradient.masked_mean(ONES, torch.ones(2, 2)), ValueError,
         "mask"),
    Case("policy_gradient.masked_mean", lambda: policy_gradient.masked_mean(ONES, torch.zeros(2, 3)), ValueError,
         "mask selects no entry"),
    Case("policy_gradient.masked_mean", lambda: policy_gradient.masked_mean(ONES, 2 * torch.ones(2, 3)), ValueError,
         "mask must hold 0 and 1"),
    Case("policy_gradient.kl_estimate", lambda: policy_gradient.kl_estimate(ONES, ONES, "k4"), ValueError, "kind"),
    Case("policy_gradient.kl_estimate", lambda: policy_gradient.kl_estimate(ONES, t(3, 2)), ValueError,
         "logp, logp_ref"),
    Case("policy_gradient.kl_penalised_reward",
         lambda: policy_gradient.kl_penalised_reward(t(2), ONES, ONES, ONES, beta=-0.1), ValueError, "beta"),
    Case("policy_gradient.kl_penalised_reward",
         lambda: policy_gradient.kl_penalised_reward(t(3), ONES, ONES, ONES, beta=0.1), ValueError, "score"),
    Case("policy_gradient.advantages", lambda: policy_gradient.advantages(t(6), "leave_one_out", group_size=4),
         ValueError, "group_size=4"),
    Case("policy_gradient.advantages", lambda: policy_gradient.advantages(t(6), "leave_one_out"), ValueError,
         "group_size must be >= 2"),
    Case("policy_gradient.advantages", lambda: policy_gradient.advantages(t(6), "rloo", group_size=2), ValueError,
         "method"),
    Case("policy_gradient.update_baseline", lambda: policy_gradient.update_baseline(0.0, t(3), decay=1.0),
         ValueError, "decay"),
    Case("policy_gradient.reinforce_loss", lambda: policy_gradient.reinforce_loss(ONES, t(3), ONES), ValueError,
         "advantages"),
    Case("policy_gradient.reinforce_loss", lambda: policy_gradient.reinforce_loss(ONES, t(2), ONES[0]), ValueError,
         "mask"),
    # ppo
    Case("ppo.values", lambda: ppo.values(lm(), sampled()), TypeError, "value_model", unchanged=state),
    Case("ppo.values", lambda: ppo.values(rl_value_model(), "rollout"), TypeError, "rollout"),
    Case("ppo.token_rewards", lambda: ppo.token_rewards(t(2), ONES, ONES, torch.tensor([[1, 1, 1], [0, 0, 0]]), 0.1),
         ValueError, "mask"),
    Case("ppo.token_rewards", lambda: ppo.token_rewards(t(2), ONES, ONES, ONES, beta="0.1"), TypeError, "beta"),
    Case("ppo.gae", lambda: ppo.gae(ONES, ONES, ONES, gamma=1.5), ValueError, "gamma"),
    Case("ppo.gae", lambda: ppo.gae(ONES, t(2, 2), ONES), ValueError, "rewards, values"),
    Case("ppo.whiten", lambda: ppo.whiten(ONES, torch.tensor([[1, 0, 0], [0, 0, 0]])), ValueError, "mask"),
    Case("ppo.clipped_policy_loss", lambda: ppo.clipped_policy_loss(ONES, ONES, ONES, ONES, clip=0), ValueError,
         "clip"),
    Case("ppo.clipped_policy_loss", lambda: ppo.clipped_policy_loss(ONES, ONES, t(2), ONES), ValueError,
         "advantages"),
    Case("ppo.clipped_value_loss", lambda: ppo.clipped_value_loss(ONES, ONES, ONES.long(), ONES), TypeError,
         "returns"),
    Case("ppo.explained_variance", lambda: ppo.explained_variance(ONES, ONES, t(2, 3)), ValueError, "mask"),
    Case("ppo.adaptive_kl_beta", lambda: ppo.adaptive_kl_beta(0.1, 1.0, target=0.0, horizon=10, n_samples=1),
         ValueError, "target"),
    Case("ppo.adaptive_kl_beta", lambda: ppo.adaptive_kl_beta(0.1, 1.0, 1.0, 10, n_samples=0), ValueError,
         "n_samples"),
    Case("ppo.ppo_step", lambda: ppo.ppo_step(lm(), rl_value_model(), lm(), rl_value_model(), tok()), ValueError,
         "reference", unchanged=state),
    Case("ppo.ppo_step", lambda: ppo.ppo_step(lm(), rl_value_model(), tiny()[0].__class__(tiny()[0].config),
                                              rl_value_model(), tok()), ValueError, "value_model", unchanged=state),
    Case("ppo.ppo_step", lambda: ppo.ppo_step(lm(), rl_value_model(), tiny()[0].__class__(tiny()[0].config),
                                              ppo_reward(), tok(), lam=2.0), ValueError, "lam", unchanged=state),
    Case("generation.Rollout.select", lambda: sampled().select([5]), ValueError, "rows"),
    Case("generation.Rollout.select", lambda: sampled().select([]), ValueError, "rows"),
    # the loop
    Case("rl.RLConfig", lambda: rl.RLConfig(iterations=0, prompts_per_iteration=2), ValueError, "iterations"),
    Case("rl.RLConfig", lambda: rl.RLConfig(iterations=2, prompts_per_iteration=2, lr=0), ValueError, "lr"),
    Case("rl.iteration_seed", lambda: rl.iteration_seed({"seed": 0}, 1), TypeError, "config"),
    Case("rl.iteration_seed", lambda: rl.iteration_seed(rl.RLConfig(1, 1), -1), ValueError, "iteration"),
    Case("rl.clip_and_step", lambda: rl.clip_and_step("adam", [], 1.0), TypeError, "optimizer"),
    Case("rl.clip_and_step", lambda: rl.clip_and_step(adam(), [], 0.0), ValueError, "max_grad_norm"),
    Case("rl.train_rl", lambda: rl_run(models=torch.nn.Linear(2, 1)), TypeError, "models"),
    Case("rl.train_rl", lambda: rl_run(step="reinforce"), TypeError, "step"),
    Case("rl.train_rl", lambda: rl_run(prompts=[PROMPT]), ValueError, "prompts_per_iteration"),
    Case("rl.train_rl", lambda: rl_run(state={"beta": "0.1"}), TypeError, "state"),
    Case("rl.train_rl", lambda: rl_run(config={"iterations": 1}), TypeError, "config"),
    Case("rl.train_rl", lambda: rl_run(frozen={"ref": "model"}), TypeError, r"frozen\['ref'\]"),
    Case("rl.finished_rl_run", lambda: rl.finished_rl_run({"policy": torch.nn.Linear(2, 1)}, lambda *a: {},
                                                          [PROMPT] * 4, rl.RLConfig(1, 2)), ValueError,
         "checkpoint_dir"),
    Case("policy_gradient.reinforce_step",
         lambda: policy_gradient.reinforce_step(lm(), lm(), rl_value_model(), tok()), ValueError, "reference",
         unchanged=state),
    Case("policy_gradient.reinforce_step",
         lambda: policy_gradient.reinforce_step(lm(), tiny()[0].__class__(tiny()[0].config), rl_value_model(), tok(),
                                                method="leave_one_out", group_size=1), ValueError, "group_size",
         unchanged=state),
    Case("runs.policy_gradient_recipe", lambda: runs.policy_gradient_recipe(get_profile("smoke"), "ppo"), ValueError,
         "method"),
    Case("runs.policy_gradient_recipe", lambda: runs.policy_gradient_recipe("smoke", "leave_one_out"), TypeError,
         "profile"),
    Case("runs.policy_gradient_policy", lambda: runs.policy_gradient_policy(get_profile("smoke"), "05", "rloo"),
         ValueError, "method"),
    Case("runs.policy_gradient_policy",
         lambda: runs.policy_gradient_policy(get_profile("smoke"), "05", "leave_one_out", policy=lm()), ValueError,
         "together", unchanged=state),
    Case("runs.policy_gradient_policy",
         lambda: runs.policy_gradient_policy(get_profile("smoke"), "05", "leave_one_out", history="yes"), TypeError,
         "history"),
    Case("runs.ppo_recipe", lambda: runs.ppo_recipe("cpu"), TypeError, "profile"),
    Case("runs.ppo_policy", lambda: runs.ppo_policy(get_profile("smoke"), "09", policy=lm(), tokenizer=tok()),
         ValueError, "together", unchanged=state),
    Case("runs.ppo_policy", lambda: runs.ppo_policy(get_profile("smoke"), "notebook 9"), ValueError, "notebook"),
]


@functools.cache
def ppo_reward():
    from course_utils.reward_model import reward_model_from_policy
    return reward_model_from_policy(tiny()[0], seed=1)


@functools.cache
def rl_value_model():
    from course_utils.reward_model import reward_model_from_policy
    return reward_model_from_policy(tiny()[0])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id or c.target)
def test_misuse(case):
    case.run()
