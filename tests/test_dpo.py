"""The DPO family of losses (DPO, conservative, robust, IPO in both forms), their metrics, the reference
log-probs computed once, the training step, and their agreement with TRL's DPOTrainer on the same batch (identical
token ids: from text, TRL encodes prompt + completion jointly, which gives the course's ids only when the prompt
ends on a token boundary, as the course's do)."""

import copy
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from course_utils.batching import encode_preference
from course_utils.data import format_prompt
from course_utils.dpo import (add_reference_logprobs, collate_dpo, conservative_dpo_loss, dpo_loss, dpo_objective,
                              dpo_step, ipo_loss, preference_metrics, robust_dpo_loss, without_dropout)
from course_utils.logprobs import sequence_logprobs
from course_utils.training import TrainConfig, finished_run, train

PROMPT = format_prompt("Write a movie review.")
PAIRS = [(" The film was great fun.", " The plot was boring."),
         (" A great movie.", " The actors were awful and the film was boring today."),
         (" Boring.", " Fun fun fun, the movie was great."),
         (" The actors were great.", " Awful.")]

# policy chosen, policy rejected, reference chosen, reference rejected: Δ = [1, -2, 0.5]
LOGPS = (torch.tensor([-10.0, -20.0, -5.0]), torch.tensor([-12.0, -15.0, -6.0]),
         torch.tensor([-11.0, -19.0, -5.5]), torch.tensor([-14.0, -16.0, -7.0]))
DELTA = torch.tensor([1.0 - (2.0), -1.0 - 1.0, 0.5 - 1.0])  # (pc - rc) - (pr - rr)


def test_the_margin_used_by_the_tests():
    pc, pr, rc, rr = LOGPS
    torch.testing.assert_close((pc - rc) - (pr - rr), DELTA)


def test_dpo_loss_by_hand():
    beta = 0.5
    expected = torch.tensor([math.log(1 + math.exp(-beta * d)) for d in DELTA.tolist()])
    torch.testing.assert_close(dpo_loss(*LOGPS, beta=beta), expected)
    # equal log-ratios: log 2, whatever the log-probs; huge margins stay finite
    same = torch.tensor([-3.0, -50.0])
    assert dpo_loss(same, same, same, same).tolist() == pytest.approx([math.log(2)] * 2)
    big = dpo_loss(torch.tensor([0.0]), torch.tensor([-1e4]), torch.tensor([0.0]), torch.tensor([0.0]), beta=1.0)
    assert big.item() == pytest.approx(0.0, abs=1e-30)
    small = dpo_loss(torch.tensor([-1e4]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), beta=1.0)
    assert small.item() == pytest.approx(1e4)


def test_dpo_loss_depends_on_the_log_ratios_only():
    shifted = (LOGPS[0] + 3, LOGPS[1] - 2, LOGPS[2] + 3, LOGPS[3] - 2)
    torch.testing.assert_close(dpo_loss(*LOGPS), dpo_loss(*shifted))


def test_dpo_gradient_is_the_weighted_unlikelihood_gradient():
    """∂L/∂log π(y_w) = -β σ(-βΔ) = -β σ(r̂_l - r̂_w), and the opposite for y_l."""
    beta = 0.3
    pc, pr = LOGPS[0].clone().requires_grad_(), LOGPS[1].clone().requires_grad_()
    dpo_loss(pc, pr, LOGPS[2], LOGPS[3], beta=beta).sum().backward()
    weight = torch.sigmoid(-beta * DELTA)
    torch.testing.assert_close(pc.grad, -beta * weight)
    torch.testing.assert_close(pr.grad, beta * weight)


def test_conservative_loss_formula_limits_and_minimum():
    beta, eps = 0.5, 0.2
    expected = -(1 - eps) * F.logsigmoid(beta * DELTA) - eps * F.logsigmoid(-beta * DELTA)
    torch.testing.assert_close(conservative_dpo_loss(*LOGPS, beta=beta, epsilon=eps), expected)
    torch.testing.assert_close(conservative_dpo_loss(*LOGPS, beta=beta, epsilon=0.0), dpo_loss(*LOGPS, beta=beta))
    # the minimum over Δ: σ(βΔ) = 1 - ε
    best = math.log((1 - eps) / eps) / beta
    delta = torch.tensor([best], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    conservative_dpo_loss(delta, zero, zero, zero, beta=beta, epsilon=eps).sum().backward()
    assert delta.grad.item() == pytest.approx(0.0, abs=1e-12)


def test_robust_loss_formula_and_unbiasedness():
    beta, eps = 0.5, 0.2
    expected = (-(1 - eps) * F.logsigmoid(beta * DELTA) + eps * F.logsigmoid(-beta * DELTA)) / (1 - 2 * eps)
    torch.testing.assert_close(robust_dpo_loss(*LOGPS, beta=beta, epsilon=eps), expected)
    torch.testing.assert_close(robust_dpo_loss(*LOGPS, beta=beta, epsilon=0.0), dpo_loss(*LOGPS, beta=beta))
    # a label flipped with probability ε swaps chosen and rejected (Δ -> -Δ); on average the clean DPO loss
    flipped = (LOGPS[1], LOGPS[0], LOGPS[3], LOGPS[2])
    averaged = (1 - eps) * robust_dpo_loss(*LOGPS, beta=beta, epsilon=eps) \
        + eps * robust_dpo_loss(*flipped, beta=beta, epsilon=eps)
    torch.testing.assert_close(averaged, dpo_loss(*LOGPS, beta=beta))


def test_ipo_loss_both_forms():
    tau = 0.25
    torch.testing.assert_close(ipo_loss(*LOGPS, tau=tau), (DELTA - 2.0) ** 2)
    pc, pr, rc, rr = LOGPS
    lc, lr = torch.tensor([2, 4, 5]), torch.tensor([1, 2, 10])
    per_token = (pc - rc) / lc - (pr - rr) / lr
    torch.testing.assert_close(ipo_loss(*LOGPS, tau=tau, chosen_lengths=lc, rejected_lengths=lr),
                               (per_token - 2.0) ** 2)
    # the target: zero loss at Δ = 1/(2τ)
    zero = torch.zeros(1)
    assert ipo_loss(torch.tensor([2.0]), zero, zero, zero, tau=tau).item() == 0.0
    with pytest.raises(ValueError, match="together"):
        ipo_loss(*LOGPS, chosen_lengths=lc)
    with pytest.raises(ValueError, match="rejected_lengths"):
        ipo_loss(*LOGPS, chosen_lengths=lc, rejected_lengths=torch.tensor([1, 0, 2]))


def test_losses_reject_mismatched_or_bad_log_probs():
    with pytest.raises(ValueError, match="ref_rejected_logps"):
        dpo_loss(*LOGPS[:3], torch.zeros(2))
    with pytest.raises(TypeError, match="policy_chosen_logps"):
        dpo_loss([1.0], *LOGPS[1:])
    with pytest.raises(ValueError, match="NaN"):
        ipo_loss(torch.tensor([float("nan"), 0, 0]), *LOGPS[1:])
    with pytest.raises(ValueError, match="epsilon"):
        robust_dpo_loss(*LOGPS, epsilon=0.5)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*LOGPS, beta=0.0)


def test_preference_metrics_by_hand():
    beta = 0.5
    m = preference_metrics(*LOGPS, beta=beta)
    pc, pr, rc, rr = LOGPS
    assert m["rewards/chosen"].item() == pytest.approx((beta * (pc - rc)).mean().item())
    assert m["rewards/rejected"].item() == pytest.approx((beta * (pr - rr)).mean().item())
    assert m["rewards/margins"].item() == pytest.approx((beta * DELTA).mean().item())
    assert m["rewards/accuracies"].item() == pytest.approx(0.0)  # Δ = -1, -2, -0.5: all three ranked wrong
    assert m["logps/chosen"].item() == pytest.approx(pc.mean().item())
    assert m["logps/rejected"].item() == pytest.approx(pr.mean().item())


# ---------------------------------------------------------------- on a model

def encoded(tokenizer):
    return [encode_preference(tokenizer, PROMPT, c, r, max_length=64) for c, r in PAIRS]


def test_reference_logprobs_are_each_sequence_alone(make_tiny_lm, course_tokenizer):
    model = make_tiny_lm(seed=1).train()
    rows = encoded(course_tokenizer)
    before = copy.deepcopy(rows)
    out = add_reference_logprobs(model, rows, course_tokenizer.pad_token_id, batch_size=3)
    assert model.training and rows == before  # mode restored, input untouched
    assert [{k: v for k, v in r.items() if not k.startswith("ref_")} for r in out] == rows
    with torch.no_grad():
        for row, got in zip(rows, out):
            for side in ("chosen", "rejected"):
                ids = torch.tensor([row[f"{side}_input_ids"]])
                alone = sequence_logprobs(model.eval(), ids, torch.ones_like(ids),
                                          torch.tensor([row[f"{side}_completion_mask"]]))
                assert got[f"ref_{side}_logps"] == pytest.approx(alone.item(), abs=1e-4)
    again = add_reference_logprobs(model, rows, course_tokenizer.pad_token_id, batch_size=64)
    assert [r["ref_chosen_logps"] for r in again] == pytest.approx([r["ref_chosen_logps"] for r in out], abs=1e-4)


def test_collate_dpo_adds_the_reference_log_probs(make_tiny_lm, course_tokenizer):
    rows = add_reference_logprobs(make_tiny_lm(), encoded(course_tokenizer), course_tokenizer.pad_token_id)
    batch = collate_dpo(rows, course_tokenizer.pad_token_id)
    assert batch["ref_chosen_logps"].shape == (4,) and batch["ref_chosen_logps"].dtype == torch.float32
    assert batch["ref_rejected_logps"].tolist() == pytest.approx([r["ref_rejected_logps"] for r in rows])
    assert batch["chosen_input_ids"].shape == batch["rejected_input_ids"].shape
    with pytest.raises(ValueError, match="add_reference_logprobs"):
        collate_dpo(encoded(course_tokenizer), course_tokenizer.pad_token_id)


@pytest.mark.parametrize("loss_type", ["sigmoid", "conservative", "robust", "ipo", "ipo_mean"])
def test_dpo_step_at_the_reference(make_tiny_lm, course_tokenizer, loss_type):
    """Before any update the policy is the reference: every log-ratio is 0, so Δ = 0."""
    model = make_tiny_lm(seed=2)
    rows = add_reference_logprobs(model, encoded(course_tokenizer), course_tokenizer.pad_token_id)
    eps = 0.1 if loss_type in ("conservative", "robust") else 0.0
    loss, metrics = dpo_step(model, collate_dpo(rows, course_tokenizer.pad_token_id), loss_type, 0.2, eps)
    expected = {"sigmoid": math.log(2), "conservative": math.log(2), "robust": math.log(2),
                "ipo": (1 / 0.4) ** 2, "ipo_mean": (1 / 0.4) ** 2}[loss_type]
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    assert metrics["rewards/margins"].item() == pytest.approx(0.0, abs=1e-5)
    assert metrics["logps/chosen"].item() == pytest.approx(sum(r["ref_chosen_logps"] for r in rows) / 4, abs=1e-4)


def test_dpo_step_refuses_settings_that_do_nothing(make_tiny_lm, course_tokenizer):
    model = make_tiny_lm()
    batch = collate_dpo(add_reference_logprobs(model, encoded(course_tokenizer), course_tokenizer.pad_token_id),
                        course_tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="epsilon.*conservative"):
        dpo_step(model, batch, "sigmoid", 0.1, 0.1)
    with pytest.raises(ValueError, match="loss_type"):
        dpo_step(model, batch, "hinge")
    with pytest.raises(ValueError, match="add_reference_logprobs"):
        dpo_step(model, {k: v for k, v in batch.items() if not k.startswith("ref_")})


def test_training_raises_the_margin_and_names_the_variant(make_tiny_lm, course_tokenizer, tmp_path):
    model = without_dropout(make_tiny_lm(seed=3))
    rows = add_reference_logprobs(model, encoded(course_tokenizer), course_tokenizer.pad_token_id)
    collate = partial(collate_dpo, pad_token_id=course_tokenizer.pad_token_id)
    objective = dpo_objective("sigmoid", beta=0.5)
    assert objective.__qualname__ == "dpo_step(loss_type='sigmoid', beta=0.5, epsilon=0.0)"
    config = TrainConfig(steps=15, batch_size=4, lr=3e-3, log_every=1, checkpoint_dir=str(tmp_path))
    start = copy.deepcopy(model)
    history = train(model, objective, rows, collate, config)
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert history[-1]["rewards/margins"] > 0.5 and history[-1]["rewards/accuracies"] == 1.0
    assert finished_run(start, dpo_objective("sigmoid", beta=0.5), rows, collate, config)
    assert not finished_run(start, dpo_objective("sigmoid", beta=0.1), rows, collate, config)
    assert not finished_run(start, dpo_objective("ipo", beta=0.5), rows, collate, config)


def test_without_dropout(make_tiny_lm):
    from transformers import GPT2Config, GPT2LMHeadModel
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16)).train()
    ids = torch.randint(0, 50, (2, 8))
    assert not torch.equal(model(ids).logits, model(ids).logits)  # dropout on: two passes differ
    without_dropout(model)
    assert torch.equal(model(ids).logits, model(ids).logits)
    assert model.config.resid_pdrop == 0.0


# ---------------------------------------------------------------- against TRL's DPOTrainer

def trl_metrics(trainer, model, rows, tokenizer):
    """TRL's loss and logged metrics on the very token ids of ``rows`` (TRL's own collator)."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    examples = []
    for row in rows:
        start = row["chosen_completion_mask"].index(1)
        assert row["rejected_input_ids"][:start] == row["chosen_input_ids"][:start]
        examples.append({"prompt_ids": row["chosen_input_ids"][:start], "chosen_ids": row["chosen_input_ids"][start:],
                         "rejected_ids": row["rejected_input_ids"][start:]})
    batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    trainer._metrics["train"].clear()
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
    return loss.item(), {k: v[-1] for k, v in trainer._metrics["train"].items()}


@pytest.mark.parametrize("ours, trl_loss_type, epsilon", [("sigmoid", "sigmoid", 0.0), ("ipo_mean", "ipo", 0.0),
                                                          ("robust", "robust", 0.2)])
def test_dpo_step_equals_trl_dpo_trainer(make_tiny_lm, course_tokenizer, tmp_path, ours, trl_loss_type, epsilon):
    """The same policy, reference and token ids: loss, implicit rewards, margins, accuracy and log-probs."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, reference = make_tiny_lm(seed=4).train(), make_tiny_lm(seed=5)  # different: Δ is not 0
    beta = 0.7
    text = Dataset.from_list([{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS])
    # bf16=False: TRL's default (True) runs the reference under bf16 autocast, on the CPU too
    args = DPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, beta=beta,
                     loss_type=[trl_loss_type], label_smoothing=epsilon, max_length=None,
                     per_device_train_batch_size=len(PAIRS))
    rows = add_reference_logprobs(reference, encoded(course_tokenizer), course_tokenizer.pad_token_id)
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=text,
                         processing_class=course_tokenizer)
    trl_loss, trl = trl_metrics(trainer, policy, rows, course_tokenizer)
    with torch.no_grad():
        loss, metrics = dpo_step(policy, collate_dpo(rows, course_tokenizer.pad_token_id), ours, beta, epsilon)
    assert loss.item() == pytest.approx(trl_loss, abs=1e-5)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                "logps/rejected"):
        assert metrics[key].item() == pytest.approx(trl[key], abs=1e-5), key
    assert abs(trl["rewards/margins"]) > 0.05  # the models differ: the comparison could fail
    assert 0 < trl["rewards/accuracies"] < 1 or trl_loss_type != "sigmoid"


def test_trl_sigmoid_ignores_label_smoothing_and_ipo_is_per_token(make_tiny_lm, course_tokenizer, tmp_path):
    """What the pinned TRL computes: its sigmoid loss with label_smoothing=0.2 is plain DPO (not the
    conservative loss), and its ipo loss is not the paper's summed form."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, reference = make_tiny_lm(seed=4).train(), make_tiny_lm(seed=5)
    rows = add_reference_logprobs(reference, encoded(course_tokenizer), course_tokenizer.pad_token_id)
    batch = collate_dpo(rows, course_tokenizer.pad_token_id)
    text = Dataset.from_list([{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS])
    losses = {}
    for loss_type, eps in (("sigmoid", 0.2), ("ipo", 0.0)):
        args = DPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, beta=0.7,
                         loss_type=[loss_type], label_smoothing=eps, max_length=None)
        trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=text,
                             processing_class=course_tokenizer)
        losses[loss_type] = trl_metrics(trainer, policy, rows, course_tokenizer)[0]
    with torch.no_grad():
        assert losses["sigmoid"] == pytest.approx(dpo_step(policy, batch, "sigmoid", 0.7)[0].item(), abs=1e-5)
        conservative = dpo_step(policy, batch, "conservative", 0.7, 0.2)[0].item()
        paper_ipo = dpo_step(policy, batch, "ipo", 0.7)[0].item()
    assert abs(losses["sigmoid"] - conservative) > 1e-3
    assert abs(losses["ipo"] - paper_ipo) > 1e-3


def test_notebook_07_recipe_and_pairs(make_tiny_lm, course_tokenizer):
    from course_utils.profiles import get_profile
    from course_utils.runs import DPO_BETA, DPO_MAX_LENGTH, dpo_pairs, dpo_recipe

    profile = get_profile("smoke")
    pairs = [{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS]
    pairs.insert(1, {"prompt": PROMPT, "chosen": " great" * 100, "rejected": " boring"})  # too long: left out
    rows = dpo_pairs(profile, course_tokenizer, make_tiny_lm(), pairs=pairs)
    assert [row["pair"] for row in rows] == [0, 2, 3, 4]
    assert all(len(row["chosen_input_ids"]) <= DPO_MAX_LENGTH and "ref_rejected_logps" in row for row in rows)
    collate, config, objective = dpo_recipe(profile, course_tokenizer)
    assert objective.__qualname__ == f"dpo_step(loss_type='sigmoid', beta={DPO_BETA!r}, epsilon=0.0)"
    assert set(collate(rows[:2])) >= {"chosen_input_ids", "ref_chosen_logps"} and config.steps >= 1
