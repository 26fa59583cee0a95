"""GRPO pieces (notebook 10): group-normalised advantages and the groups with no signal, the
clipped loss and its three normalisations (also against TRL's GRPOTrainer on the same batch),
pass@k against brute force, and the training step on a tiny model."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from course_utils.data import format_prompt
from course_utils.grpo import (LOSS_TYPES, grpo_loss, grpo_step, group_advantages, pass_at_k, pass_at_k_curve,
                               pass_counts, zero_signal_groups)
from course_utils.rl import RLConfig, train_rl
from course_utils.verifiers import Constraint, Task, reward_function, verify


# ---------------------------------------------------------------- advantages and groups with no signal

def test_group_advantages_by_hand_and_all_pass_or_all_fail_groups_are_zero():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    adv = group_advantages(rewards, 4)
    std = torch.tensor([1.0, 0.0, 0.0, 0.0]).std().item()
    assert adv[:4].tolist() == pytest.approx([0.75 / (std + 1e-4), -0.25 / (std + 1e-4),
                                              -0.25 / (std + 1e-4), -0.25 / (std + 1e-4)], abs=1e-5)
    assert adv[4:].abs().max() == 0
    assert zero_signal_groups(rewards, 4).tolist() == [False, True, True]


def test_group_advantages_sum_to_zero_per_group_and_reject_bad_input():
    rewards = torch.rand(24, generator=torch.Generator().manual_seed(0))
    assert group_advantages(rewards, 6).view(4, 6).sum(-1).abs().max() < 1e-5
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(rewards, 5)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(rewards, 1)
    with pytest.raises(TypeError, match="rewards"):
        zero_signal_groups([1.0, 0.0], 2)


# ---------------------------------------------------------------- the loss

def batch(seed=0, b=4, t=6):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(b, t, generator=g) * 3
    old = logp + 0.4 * torch.randn(b, t, generator=g)           # ratios well outside [0.8, 1.2]: the clip acts
    adv = torch.tensor([1.0, -1.0, 0.5, -2.0])[:b]
    mask = torch.ones(b, t)
    mask[0, 2:] = 0
    mask[2, 4:] = 0
    return logp, old, adv, mask


def by_hand(logp, old, adv, mask, eps, beta=0.0, ref=None):
    """ℓ_it, written out token by token."""
    out = torch.zeros_like(logp)
    for i, t in itertools.product(range(logp.shape[0]), range(logp.shape[1])):
        r = math.exp(logp[i, t] - old[i, t])
        out[i, t] = -min(r * adv[i], min(max(r, 1 - eps), 1 + eps) * adv[i])
        if beta:
            d = float(ref[i, t] - logp[i, t])
            out[i, t] += beta * (math.exp(d) - d - 1)
    return out * mask


@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_the_three_normalisations_by_hand(beta):
    logp, old, adv, mask = batch()
    ref = logp - 0.2
    per_token = by_hand(logp, old, adv, mask, 0.2, beta, ref)
    expected = {"grpo": (per_token.sum(-1) / mask.sum(-1)).mean(), "dapo": per_token.sum() / mask.sum(),
                "dr_grpo": per_token.sum() / (4 * 10)}
    for loss_type in LOSS_TYPES:
        loss = grpo_loss(logp, old, adv, mask, loss_type, 0.2, beta=beta, ref_logp=ref, max_length=10)
        assert loss.item() == pytest.approx(expected[loss_type].item(), abs=1e-6), loss_type


def test_on_policy_gradient_is_the_advantage_weighted_score():
    """With ρ = 1 (one update per batch) the clip is inactive: the gradient of the token-mean is
    -Σ m A ∇log π / Σ m, whatever ε."""
    logp, _, adv, mask = batch()
    logp = logp.clone().requires_grad_(True)
    grpo_loss(logp, logp.detach(), adv, mask, "dapo", epsilon=1e-3).backward()
    assert torch.allclose(logp.grad, -adv[:, None] * mask / mask.sum(), atol=1e-6)


def test_grpo_normalisation_punishes_long_wrong_answers_less_and_dr_grpo_does_not():
    """Two wrong answers (A = -1), of 2 and 8 tokens: per token, the per-sequence mean pushes the
    long one down 4 times less; DAPO's and Dr. GRPO's normalisations push every token alike."""
    logp = torch.full((2, 8), -1.0, requires_grad=True)
    mask = torch.tensor([[1.0] * 2 + [0.0] * 6, [1.0] * 8])
    adv = torch.tensor([-1.0, -1.0])
    for loss_type, ratio in (("grpo", 4.0), ("dapo", 1.0), ("dr_grpo", 1.0)):
        logp.grad = None
        grpo_loss(logp, logp.detach(), adv, mask, loss_type, max_length=8).backward()
        assert (logp.grad[0, 0] / logp.grad[1, 0]).item() == pytest.approx(ratio), loss_type


def test_grpo_loss_rejects_bad_input():
    logp, old, adv, mask = batch()
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(logp, old, adv, mask, "ppo")
    with pytest.raises(ValueError, match="max_length"):
        grpo_loss(logp, old, adv, mask, "dr_grpo")
    with pytest.raises(ValueError, match="max_length must be an integer >= 6"):
        grpo_loss(logp, old, adv, mask, "dr_grpo", max_length=3)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, old, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match=r"\[B, T\], \[B, T\] and \[B\]"):
        grpo_loss(logp, old, adv[:2], mask)
    with pytest.raises(ValueError, match="mask"):
        grpo_loss(logp, old, adv, mask[:, :2])
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        grpo_loss(logp, old, adv, mask, epsilon=0.0)
    with pytest.raises(TypeError, match="logp"):
        grpo_loss(logp.tolist(), old, adv, mask)


# ---------------------------------------------------------------- against TRL's GRPOTrainer

PROMPTS = [format_prompt("Write a movie review."), format_prompt("Write a tweet.")]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_equals_trl_grpo_trainer(make_tiny_lm, course_tokenizer, tmp_path, loss_type, beta):
    """TRL's GRPOTrainer._compute_loss on a batch built by hand (prompt and completion ids, masks,
    advantages, π_old's and the reference's log-probs): the course's loss on the model's own
    log-probs of the same tokens equals it to 1e-5, with the clip active. TRL's KL term is the
    course's with ``use_bias_correction_kl=False``; its default multiplies it by ρ."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from course_utils.logprobs import token_logprobs

    model = make_tiny_lm(seed=1)
    model.save_pretrained(tmp_path / "policy")             # TRL loads its reference (beta > 0) from here
    model.config._name_or_path = str(tmp_path / "policy")
    max_length = 7
    args = GRPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, loss_type=loss_type,
                      beta=beta, epsilon=0.2, max_completion_length=max_length, num_generations=2,
                      per_device_train_batch_size=4, use_bias_correction_kl=False)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_function(), args=args,
                          train_dataset=Dataset.from_list([{"prompt": p} for p in PROMPTS]),
                          processing_class=course_tokenizer)
    ids = [course_tokenizer(p)["input_ids"] for p in PROMPTS]
    width = max(map(len, ids))
    prompt_ids = torch.tensor([[course_tokenizer.pad_token_id] * (width - len(r)) + r for r in ids for _ in "ab"])
    prompt_mask = (torch.arange(width) >= width - torch.tensor([len(r) for r in ids for _ in "ab"])[:, None]).long()
    g = torch.Generator().manual_seed(0)
    completion_ids = torch.randint(5, len(course_tokenizer) - 1, (4, 5), generator=g)
    completion_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0]])
    with torch.no_grad():   # TRL's forward: no position ids (see the next test)
        logits = model(input_ids=torch.cat([prompt_ids, completion_ids], 1),
                       attention_mask=torch.cat([prompt_mask, completion_mask], 1)).logits[:, width - 1:-1]
        logp = token_logprobs(logits, completion_ids) * completion_mask
    old = logp + 0.3 * torch.randn(logp.shape, generator=g)
    ref = logp - 0.5 * torch.rand(logp.shape, generator=g)
    adv = torch.tensor([0.7, -0.7, 1.2, -1.2])
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": adv, "old_per_token_logps": old,
              "ref_per_token_logps": ref, "num_items_in_batch": completion_mask.sum()}
    trainer.model.eval()
    with torch.no_grad():
        trl_loss = trainer._compute_loss(trainer.model, inputs).item()
    ours = grpo_loss(logp, old, adv, completion_mask, loss_type, 0.2, beta=beta, ref_logp=ref,
                     max_length=max_length).item()
    assert ours == pytest.approx(trl_loss, abs=1e-5)
    ratio = torch.exp(logp - old)[completion_mask.bool()]
    assert ((ratio < 0.8) | (ratio > 1.2)).any()   # the clip acts on this batch
    if beta:   # TRL's default weighs the KL term by the ratio ρ (equal on-policy, where ρ = 1): here it differs
        trainer.args.use_bias_correction_kl = True
        with torch.no_grad():
            assert abs(trainer._compute_loss(trainer.model, inputs).item() - trl_loss) > 1e-5   # past the tolerance


def test_trl_scores_left_padded_prompts_at_shifted_positions(make_tiny_lm, course_tokenizer, tmp_path):
    """The one difference in the log-probs: TRL's forward passes no position ids, so a prompt
    left-padded by k tokens is read at positions k, k+1, ... A row without padding gets the
    course's numbers (``generation.positions``) exactly; a padded row does not."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from course_utils.generation import positions
    from course_utils.logprobs import token_logprobs

    model = make_tiny_lm(seed=1)
    args = GRPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, max_completion_length=4,
                      num_generations=2, per_device_train_batch_size=2)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_function(), args=args,
                          train_dataset=Dataset.from_list([{"prompt": p} for p in PROMPTS]),
                          processing_class=course_tokenizer)
    ids = [course_tokenizer(p)["input_ids"] for p in PROMPTS]
    width = max(map(len, ids))
    input_ids = torch.tensor([[course_tokenizer.pad_token_id] * (width - len(r)) + r + [40, 41, 42] for r in ids])
    mask = (input_ids != course_tokenizer.pad_token_id).long()
    assert mask[0].all() and not mask[1].all()      # row 0 is the longer prompt, row 1 is padded
    with torch.no_grad():
        trl, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, mask, 3)
        ours = token_logprobs(model(input_ids=input_ids, attention_mask=mask,
                                    position_ids=positions(mask)).logits[:, -4:-1], input_ids[:, -3:])
    assert torch.allclose(trl[0], ours[0], atol=1e-5)
    assert (trl[1] - ours[1]).abs().max() > 1e-3


# ---------------------------------------------------------------- pass@k

def brute_force(n, c, k):
    """The share of k-subsets of n samples (c passing) that hold a pass, by enumeration."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_edges_and_large_n():
    assert pass_at_k(64, 0, 64) == 0.0
    assert pass_at_k(64, 1, 64) == 1.0
    assert pass_at_k(64, 16, 1) == pytest.approx(0.25)
    assert pass_at_k(1000, 3, 10) == pytest.approx(1 - math.comb(997, 10) / math.comb(1000, 10), rel=1e-9)
    curve = pass_at_k_curve([0, 3, 64], 64, [1, 8, 64])
    assert curve[0] == pytest.approx((0 + 3 / 64 + 1) / 3)
    assert np.all(np.diff(curve) >= 0) and curve[-1] == pytest.approx(2 / 3)


@pytest.mark.parametrize("n, c, k, error", [(4, 5, 1, ValueError), (4, 1, 5, ValueError), (4, 1, 0, ValueError),
                                            (0, 0, 1, ValueError), (4.0, 1, 1, TypeError), (4, True, 1, TypeError)])
def test_pass_at_k_rejects_bad_input(n, c, k, error):
    with pytest.raises(error, match="pass_at_k"):
        pass_at_k(n, c, k)


# ---------------------------------------------------------------- the step and the sampler of pass counts

TASKS = [Task("movie", (Constraint("max_words", 4),)), Task("tweet", (Constraint("include", "the"),))]


@pytest.mark.parametrize("loss_type, dynamic", [("grpo", False), ("dapo", True), ("dr_grpo", False)])
def test_grpo_step_trains_and_reports(make_tiny_lm, course_tokenizer, loss_type, dynamic):
    policy = make_tiny_lm(seed=2)
    reference = copy.deepcopy(policy)
    def odd_length(prompts, texts):   # a reward that splits every group of a random model's samples
        return [float(len(t) % 2) for t in texts]

    step = grpo_step(policy, reference, course_tokenizer, odd_length, group_size=4, loss_type=loss_type,
                     beta=0.1, dynamic_sampling=dynamic, max_new_tokens=6)
    prompts = [t.prompt for t in TASKS]
    history = train_rl({"policy": policy}, step, prompts, RLConfig(iterations=2, prompts_per_iteration=2, lr=1e-2),
                       frozen={"reference": reference})
    assert len(history) == 2
    row = history[-1]
    assert 0 <= row["pass"] <= 1 and 0 <= row["zero_signal"] <= 1 and 1 <= row["tokens"] <= 6
    assert history[0]["zero_signal"] < 1 and row["kl"] != 0   # it learned, so it moved away from the reference
    assert f"loss_type={loss_type}" in step.__qualname__


def test_grpo_step_rejects_bad_input(make_tiny_lm, course_tokenizer):
    policy = make_tiny_lm()
    with pytest.raises(ValueError, match="frozen copy"):
        grpo_step(policy, policy, course_tokenizer, reward_function())
    with pytest.raises(TypeError, match="reward must be a function"):
        grpo_step(policy, copy.deepcopy(policy), course_tokenizer, "verify")
    with pytest.raises(ValueError, match="group_size must be an integer >= 2"):
        grpo_step(policy, copy.deepcopy(policy), course_tokenizer, reward_function(), group_size=1)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_step(policy, copy.deepcopy(policy), course_tokenizer, reward_function(), loss_type="bnpo")


def test_pass_counts_agree_with_the_verifier_on_its_own_samples(make_tiny_lm, course_tokenizer):
    counts, texts = pass_counts(make_tiny_lm(seed=3), course_tokenizer, TASKS, verify, n=8, max_new_tokens=5)
    assert [len(g) for g in texts] == [8, 8]
    assert counts.tolist() == [sum(verify(t, y) for y in g) for t, g in zip(TASKS, texts)]
    with pytest.raises(TypeError, match="verifier"):
        pass_counts(make_tiny_lm(), course_tokenizer, TASKS, "verify")
    with pytest.raises(ValueError, match="tasks is empty"):
        pass_counts(make_tiny_lm(), course_tokenizer, [], verify)
