"""KTO (Ethayarajh et al. 2024): the loss on hand-made cases, the reference point z0, the unpaired labels drawn
from single ratings and the pairs built from the same ratings, the batch and step, and agreement with TRL's
KTOTrainer on the same batch."""

import math

import pytest
import torch
from datasets import Dataset

from course_utils.data import format_prompt
from course_utils.kto import (add_kto_reference_logprobs, collate_kto, encode_unpaired, kto_loss, kto_objective,
                              kto_reference_point, kto_step, pairs_from_single_ratings, single_rater_labels)

PROMPT = format_prompt("Write a movie review.")
TEXTS = [(" The film was great fun.", True), (" The plot was boring.", False), (" A great movie.", True),
         (" The actors were awful and the film was boring today.", False), (" Fun fun fun.", True)]


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_kto_loss_by_hand():
    policy, ref = torch.tensor([-10.0, -20.0, -5.0, -8.0]), torch.tensor([-11.0, -19.0, -5.0, -10.0])
    desirable = torch.tensor([True, True, False, False])
    beta, z0, lam_d, lam_u = 0.5, 0.3, 1.5, 0.8
    h = [1.0, -1.0, 0.0, 2.0]
    expected = [lam_d * (1 - sigmoid(beta * (h[0] - z0))), lam_d * (1 - sigmoid(beta * (h[1] - z0))),
                lam_u * (1 - sigmoid(beta * (z0 - h[2]))), lam_u * (1 - sigmoid(beta * (z0 - h[3])))]
    got = kto_loss(policy, ref, desirable, torch.tensor(z0), beta, lam_d, lam_u)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    # a plain number for z0 gives the same
    assert kto_loss(policy, ref, desirable, z0, beta, lam_d, lam_u).tolist() == pytest.approx(expected, abs=1e-6)


def test_kto_loss_edge_cases():
    same = torch.tensor([-3.0, -40.0])
    both = torch.tensor([True, False])
    # at the reference with z0 = 0 every term is λ/2, whatever the log-probs
    assert kto_loss(same, same, both, 0.0, 0.1, 2.0, 1.0).tolist() == pytest.approx([1.0, 0.5])
    # it saturates: a far-raised desirable response costs nothing, a far-lowered undesirable one too
    far = kto_loss(torch.tensor([100.0, -100.0]), torch.zeros(2), both, 0.0, 1.0)
    assert far.tolist() == pytest.approx([0.0, 0.0], abs=1e-30)
    # and never exceeds λ
    worst = kto_loss(torch.tensor([-100.0, 100.0]), torch.zeros(2), both, 0.0, 1.0, 3.0, 2.0)
    assert worst.tolist() == pytest.approx([3.0, 2.0])


def test_kto_gradient_and_reference_point():
    """∂L/∂h = -λ_D β σ(β(h-z0))(1-σ(β(h-z0))) for a desirable example; z0 carries no gradient."""
    policy = torch.tensor([-2.0, -3.0], requires_grad=True)
    kl_policy = torch.tensor([-4.0, -6.0], requires_grad=True)
    ref, kl_ref = torch.tensor([-2.5, -2.0]), torch.tensor([-5.0, -5.5])
    z0 = kto_reference_point(kl_policy, kl_ref)
    assert z0.item() == pytest.approx(0.25) and not z0.requires_grad
    beta, lam_d, lam_u = 0.4, 1.0, 2.0
    kto_loss(policy, ref, torch.tensor([True, False]), z0, beta, lam_d, lam_u).sum().backward()
    s0, s1 = sigmoid(beta * (0.5 - 0.25)), sigmoid(beta * (0.25 + 1.0))
    assert policy.grad.tolist() == pytest.approx([-lam_d * beta * s0 * (1 - s0), lam_u * beta * s1 * (1 - s1)])
    assert kl_policy.grad is None
    # a negative mean log-ratio (possible on few samples) is clamped: KL >= 0
    assert kto_reference_point(torch.tensor([-5.0]), torch.tensor([-4.0])).item() == 0.0


def corpus():
    return Dataset.from_list([
        {"text": "good", "domain": "movie", "ratings": [3, 3, 3]},
        {"text": "bad", "domain": "movie", "ratings": [-2, -2]},
        {"text": "meh", "domain": "movie", "ratings": [0, 0, 0]},
        {"text": "fine", "domain": "movie", "ratings": [1, 1]},
        {"text": "hi", "domain": "tweet", "ratings": [2, -1]},
        {"text": "sad", "domain": "tweet", "ratings": [-3]},
    ])


def test_single_rater_labels_and_the_pairs_from_the_same_ratings():
    labels = single_rater_labels(corpus(), 6, seed=0)
    assert len(labels) == 5 and "meh" not in [c.strip() for c in labels["completion"]]  # a 0 carries no label
    by_text = {row["completion"].strip(): row for row in labels}
    assert by_text["good"]["label"] and not by_text["bad"]["label"] and by_text["fine"]["label"]
    assert by_text["good"]["prompt"] == PROMPT and by_text["good"]["p_desirable"] == 1.0
    assert by_text["hi"]["p_desirable"] == 0.5 and by_text["hi"]["label"] == (by_text["hi"]["rating"] > 0)
    assert labels.info.description == "6 texts drawn, 1 neutral ratings (0) dropped"
    pairs = pairs_from_single_ratings(labels)
    movie = [row for row in labels if row["domain"] == "movie"]
    expected = []
    for a, b in zip(movie[0::2], movie[1::2]):
        if a["rating"] != b["rating"]:
            win, lose = (a, b) if a["rating"] > b["rating"] else (b, a)
            expected.append((win["completion"], lose["completion"]))
    assert [(r["chosen"], r["rejected"]) for r in pairs if r["domain"] == "movie"] == expected
    tweet = [row for row in labels if row["domain"] == "tweet"]
    assert [r["chosen"] for r in pairs if r["domain"] == "tweet"] == [max(tweet, key=lambda r: r["rating"])["completion"]]


def rows(course_tokenizer, reference):
    raw = [{"prompt": PROMPT, "completion": c, "label": label} for c, label in TEXTS]
    return add_kto_reference_logprobs(reference, encode_unpaired(course_tokenizer, raw, 64),
                                      course_tokenizer.pad_token_id)


def test_encode_unpaired_pairs_each_prompt_with_the_previous_completion(course_tokenizer, make_tiny_lm):
    raw = [{"prompt": PROMPT, "completion": c, "label": label} for c, label in TEXTS]
    raw.insert(2, {"prompt": PROMPT, "completion": " great" * 60, "label": True})   # too long: left out
    encoded = encode_unpaired(course_tokenizer, raw, 64)
    assert [row["example"] for row in encoded] == [0, 1, 3, 4, 5]
    for i, row in enumerate(encoded):
        previous = encoded[i - 1]
        start = row["completion_mask"].index(1)
        assert row["KL_input_ids"][:start] == row["input_ids"][:start]
        assert row["KL_input_ids"][start:] == previous["input_ids"][previous["completion_mask"].index(1):]
    reference = make_tiny_lm(seed=5).train()
    with_ref = add_kto_reference_logprobs(reference, encoded, course_tokenizer.pad_token_id, batch_size=2)
    assert reference.training and "ref_logps" not in encoded[0]
    batch = collate_kto(with_ref, course_tokenizer.pad_token_id)
    assert batch["label"].tolist() == [row["label"] for row in encoded]
    assert set(batch) >= {"KL_input_ids", "KL_attention_mask", "KL_completion_mask", "ref_KL_logps"}
    # at the reference, every log-ratio is 0: z0 = 0 and each loss λ/2
    loss, metrics = kto_step(reference.eval(), batch, beta=0.3)
    assert loss.item() == pytest.approx(0.5, abs=1e-5) and metrics["kl"].item() == 0.0


def test_kto_step_trains(course_tokenizer, make_tiny_lm):
    from course_utils.training import TrainConfig, train

    reference = make_tiny_lm(seed=5)
    policy = make_tiny_lm(seed=5)
    data = rows(course_tokenizer, reference)
    objective = kto_objective(beta=0.5, desirable_weight=1.0, undesirable_weight=1.5)
    assert objective.__qualname__ == "kto_step(beta=0.5, desirable_weight=1.0, undesirable_weight=1.5)"
    history = train(policy, objective, data, lambda r: collate_kto(r, course_tokenizer.pad_token_id),
                    TrainConfig(steps=15, batch_size=5, lr=3e-3, log_every=1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["rewards/chosen"] > 0 > history[-1]["rewards/rejected"]


def test_kto_step_equals_trl_kto_trainer(course_tokenizer, make_tiny_lm, tmp_path):
    """The same policy, reference and token ids (each example's mismatched pair: the previous completion):
    TRL's loss (and its logged KL, rewards and log-probs) equals the course's to 1e-5."""
    import warnings

    from trl import KTOConfig, KTOTrainer
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    policy, reference = make_tiny_lm(seed=4).train(), make_tiny_lm(seed=5)
    beta, lam_d, lam_u = 0.7, 1.3, 0.9
    data = rows(course_tokenizer, reference)
    text = Dataset.from_list([{"prompt": PROMPT, "completion": c, "label": label} for c, label in TEXTS])
    args = KTOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, beta=beta,
                     desirable_weight=lam_d, undesirable_weight=lam_u, max_length=None,
                     per_device_train_batch_size=len(TEXTS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=text,
                             processing_class=course_tokenizer)
    examples = []
    for row in data:
        start = row["completion_mask"].index(1)
        examples.append({"prompt_ids": row["input_ids"][:start], "completion_ids": row["input_ids"][start:],
                         "KL_completion_ids": row["KL_input_ids"][start:], "label": row["label"]})
    trl_batch = DataCollatorForUnpairedPreference(pad_token_id=course_tokenizer.pad_token_id)(examples)
    trainer._metrics["train"].clear()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(policy, trl_batch).item()
        loss, metrics = kto_step(policy, collate_kto(data, course_tokenizer.pad_token_id), beta, lam_d, lam_u)
    trl = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert loss.item() == pytest.approx(trl_loss, abs=1e-5)
    for key in ("kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert metrics[key].item() == pytest.approx(trl[key], abs=1e-5), key
    assert trl["kl"] > 0.01   # z0 is not clamped to 0 here: the comparison covers it
    assert abs(trl["rewards/chosen"]) > 0.05
