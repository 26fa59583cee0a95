"""Notebook 09's helpers: win rates with bootstrap intervals, distinct-n, evaluating a policy on fresh samples;
RAFT's round as an RL step (notebook 03's loop, exactly) and the recipes of the runs notebook 09 adds."""

import copy
import functools
from functools import partial

import numpy as np
import pytest
import torch

from course_utils.batching import collate_sft, encode_sft_dataset
from course_utils.data import DOMAINS, INSTRUCTIONS, format_prompt
from course_utils.evaluation import distinct_n, evaluate_policy, sample_logprobs, win_rate
from course_utils.generation import generate, response_logprobs, rollout
from course_utils.judge import Judge
from course_utils.losses import sft_step
from course_utils.models import load_policy
from course_utils.profiles import get_profile
from course_utils.raft import SAMPLING_SEED, raft_step
from course_utils.reward_model import reward_model_from_policy, score_responses
from course_utils.rl import RLConfig, train_rl
from course_utils.training import TrainConfig, train

PROMPTS = [format_prompt(INSTRUCTIONS[d]) for d in DOMAINS]


@functools.cache
def tiny():
    return load_policy("tiny")


@functools.cache
def judge():
    return Judge.load()


def test_win_rate_counts_ties_half():
    assert win_rate([2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0])[0] == 1.0
    assert win_rate([0.0, 0.0], [1.0, 1.0])[0] == 0.0
    assert win_rate([1.0, 2.0, 3.0, 0.0], [1.0, 1.0, 5.0, 0.0])[0] == pytest.approx((0.5 + 1 + 0 + 0.5) / 4)
    # identical policies draw exactly
    assert win_rate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.5, 0.5, 0.5)


def test_win_rate_interval_covers_the_truth_and_is_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 1, 400), rng.normal(0.0, 1, 400)   # P(a > b) = Φ(0.5 / √2) = 0.638
    estimate, low, high = win_rate(a, b)
    assert low < estimate < high and low < 0.638 < high and high - low < 0.15
    assert win_rate(a, b) == (estimate, low, high)
    assert win_rate(a, b, seed=1) != (estimate, low, high)
    assert win_rate(a, b, level=0.5)[2] - win_rate(a, b, level=0.5)[1] < high - low


def test_win_rate_is_paired_by_prompt():
    """Each response is compared with the baseline's response to the same prompt, not with any other."""
    a, b = np.arange(10.0), np.arange(10.0) - 0.5    # every paired comparison won, most unpaired ones lost
    assert win_rate(a, b)[0] == 1.0


def test_distinct_n():
    assert distinct_n(["a b c", "d e f"], 1) == 1.0
    assert distinct_n(["a a a a"], 1) == 0.25
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)            # ab, ba, ab
    assert distinct_n(["good film", "good film"], 2) == 0.5               # repeated across responses too
    assert distinct_n(["short", ""], 2) == 0.0                             # no bigram at all
    assert distinct_n(["a b", "c"], 2) == 1.0                              # a one-word response adds nothing


def test_evaluate_policy_measures_what_it_says():
    policy, tokenizer = tiny()
    other = copy.deepcopy(policy)
    with torch.no_grad():
        other.lm_head.weight.mul_(1.5)   # another policy (the head is tied to the embeddings)
    domains = ["movie", "tweet", "product", "editorial"] * 2
    out = evaluate_policy(other, policy, tokenizer, judge(), domains, seed=5, max_new_tokens=12)
    assert out["domains"] == domains and out["prompts"] == [format_prompt(INSTRUCTIONS[d]) for d in domains]
    sampled = generate(other, tokenizer, out["prompts"], max_new_tokens=12, seed=5)
    assert out["responses"] == sampled["responses"] and out["finished"] == sampled["finished"]
    np.testing.assert_allclose(out["judge"], judge().score(out["responses"], domains=domains)["score"])
    sampled = rollout(other, tokenizer, out["prompts"], max_new_tokens=12, seed=5)   # one batch: generate's seed
    with torch.no_grad():
        by_hand = ((response_logprobs(other, sampled) - response_logprobs(policy, sampled))
                   * sampled.response_mask).sum(-1)
    np.testing.assert_allclose(out["log_ratio"], by_hand.numpy(), atol=1e-4)
    assert np.abs(out["log_ratio"]).max() > 0.1
    # the same as scoring the decoded text again (notebooks 03 and 07), up to the rare re-tokenisation
    retokenised = (sample_logprobs(other, tokenizer, out["prompts"], out["responses"], out["finished"])
                   - sample_logprobs(policy, tokenizer, out["prompts"], out["responses"], out["finished"]))
    assert np.median(np.abs(out["log_ratio"] - retokenised)) < 1e-4
    assert out["words"].tolist() == [len(r.split()) for r in out["responses"]]
    assert "reward" not in out
    batched = evaluate_policy(other, policy, tokenizer, judge(), domains, seed=5, max_new_tokens=12, batch_size=3)
    assert batched["responses"] == generate(other, tokenizer, out["prompts"], max_new_tokens=12, seed=5,
                                            batch_size=3)["responses"]
    assert np.isfinite(batched["log_ratio"]).all() and len(batched["log_ratio"]) == len(domains)


def test_evaluate_policy_against_itself_and_with_a_reward_model():
    policy, tokenizer = tiny()
    proxy = reward_model_from_policy(policy)
    policy.train()
    out = evaluate_policy(policy, policy, tokenizer, judge(), ["movie", "tweet"], seed=3, max_new_tokens=8,
                          reward_model=proxy)
    assert policy.training   # handed back in the mode it came in
    policy.eval()
    assert out["responses"] == generate(policy, tokenizer, out["prompts"], max_new_tokens=8, seed=3)["responses"]
    assert out["log_ratio"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out["reward"], score_responses(proxy, tokenizer, out["prompts"], out["responses"]))


def notebook_03_round(model, reward_model, tokenizer, prompts, m, k, max_new_tokens, lr):
    """Notebook 03's RAFT round k, as its cells write it."""
    out = generate(model, tokenizer, [p for p in prompts for _ in range(m)], max_new_tokens=max_new_tokens,
                   temperature=1.0, seed=1000 + k)
    expanded = [p for p in prompts for _ in range(m)]
    out["reward"] = score_responses(reward_model, tokenizer, expanded, out["responses"])
    reward = np.where(out["finished"], out["reward"], -np.inf).reshape(-1, m)
    best = reward.argmax(-1) + m * np.arange(len(reward))
    kept = [{"prompt": expanded[i], "completion": out["responses"][i]} for i in best
            if out["finished"][i] and out["responses"][i].strip()]
    rows = encode_sft_dataset(tokenizer, kept, 96)
    config = TrainConfig(steps=max(10, len(rows) // 4), batch_size=min(32, len(rows)), lr=lr, warmup_steps=2,
                         log_every=5, seed=k, desc=f"RAFT round {k + 1}")
    train(model, sft_step, rows, lambda b: collate_sft(b, tokenizer.pad_token_id), config)


def test_raft_step_is_notebook_03s_round():
    """Two rounds of ``raft_step`` under ``train_rl`` leave exactly the weights of notebook 03's loop."""
    policy, tokenizer = tiny()
    proxy = reward_model_from_policy(policy, seed=1)
    prompts = PROMPTS
    by_hand = copy.deepcopy(policy)
    for k in range(2):
        notebook_03_round(by_hand, proxy, tokenizer, prompts, m=2, k=k, max_new_tokens=16, lr=1e-3)
    stepped = copy.deepcopy(policy)
    step = raft_step(stepped, proxy, tokenizer, prompts, samples_per_prompt=2, max_new_tokens=16, lr=1e-3)
    history = train_rl({"policy": stepped}, step, prompts, RLConfig(iterations=2, prompts_per_iteration=len(prompts)))
    for a, b in zip(by_hand.state_dict().values(), stepped.state_dict().values()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), stepped.state_dict().values()))
    assert all(1 <= h["kept"] <= len(prompts) for h in history) and len(history) == 2


def test_raft_step_refuses_other_prompts():
    policy, tokenizer = tiny()
    step = raft_step(copy.deepcopy(policy), reward_model_from_policy(policy), tokenizer, PROMPTS[:2])
    with pytest.raises(ValueError, match="prompts_per_iteration"):
        step(PROMPTS[1:3], None, {}, 0)


def test_raft_sampling_seed_is_notebook_03s():
    assert SAMPLING_SEED == 1000


def test_notebook_03_raft_recipe():
    from course_utils.runs import SFT_MAX_LENGTH, raft_recipe
    for name, rounds, per_domain in (("smoke", 1, 8), ("cpu", 3, 32)):   # smoke: the first of 03's two rounds
        profile = get_profile(name)
        prompts, config, settings = raft_recipe(profile)
        assert prompts == [format_prompt(INSTRUCTIONS[d]) for d in DOMAINS for _ in range(per_domain)]
        assert config.iterations == rounds and config.prompts_per_iteration == len(prompts) and config.seed == 0
        assert settings == dict(samples_per_prompt=8, max_new_tokens=profile.max_new_tokens, lr=profile.lr,
                                max_length=SFT_MAX_LENGTH)


def test_weaker_reward_recipes_learn_from_fewer_pairs():
    from course_utils.runs import RM_BATCH, RM_STEPS, reward_recipe
    profile, tokenizer = get_profile("smoke"), tiny()[1]
    examples, _, config = reward_recipe(profile, tokenizer)
    fewer, _, fewer_config = reward_recipe(profile, tokenizer, steps=10)
    assert config.steps == RM_STEPS["smoke"] and fewer_config.steps == 10 and fewer_config.warmup_steps == 1
    assert RM_BATCH * 10 <= len(fewer) < len(examples)        # every pair seen once, and fewer of them
    assert fewer_config.batch_size == config.batch_size and fewer_config.lr == config.lr


def test_ipo_recipe_is_dpos_with_the_ipo_loss():
    from course_utils.runs import DPO_BETA, dpo_recipe
    profile, tokenizer = get_profile("smoke"), tiny()[1]
    _, config, objective = dpo_recipe(profile, tokenizer)
    _, ipo_config, ipo_objective = dpo_recipe(profile, tokenizer, loss_type="ipo")
    assert objective.__qualname__ == f"dpo_step(loss_type='sigmoid', beta={DPO_BETA!r}, epsilon=0.0)"
    assert ipo_objective.__qualname__ == f"dpo_step(loss_type='ipo', beta={DPO_BETA!r}, epsilon=0.0)"
    assert {k: v for k, v in vars(config).items() if k != "desc"} == \
        {k: v for k, v in vars(ipo_config).items() if k != "desc"}
