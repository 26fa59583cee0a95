"""The helpers behind notebooks 01 and 02's exercises that are not course functions already: each agrees with
the course code it stands for, and refuses bad input at its door, naming the argument."""

import numpy as np
import pytest
import torch

from course_utils.batching import collate_sft
from course_utils.exercises.nb01 import sampling_probs, sft_labels
from course_utils.exercises.nb02 import bradley_terry, pair_ceiling
from course_utils.generation import rollout
from course_utils.losses import bradley_terry_loss
from course_utils.preferences import prefer_probability


def test_sft_labels_are_collate_sfts_labels():
    rows = [{"input_ids": [7, 8, 9, 10, 2], "completion_mask": [0, 0, 1, 1, 1]},
            {"input_ids": [7, 8, 2], "completion_mask": [0, 1, 1]},
            {"input_ids": [7, 8, 9, 2], "completion_mask": [0, 0, 0, 1]}]
    batch = collate_sft(rows, pad_token_id=2)
    prompts = (batch["attention_mask"] - batch["completion_mask"]).sum(1)
    assert torch.equal(sft_labels(batch["input_ids"], batch["attention_mask"], prompts), batch["labels"])
    # the padding is -100 whatever its id; the real end token after it keeps its id
    assert sft_labels(batch["input_ids"], batch["attention_mask"], prompts)[1].tolist() == [-100, 8, 2, -100, -100]


def test_sampling_probs_is_what_rollout_samples_from():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])
    assert torch.allclose(sampling_probs(logits, 1.0, 1.0), logits.softmax(-1))
    probs = sampling_probs(logits, 0.5, 0.9)
    assert torch.allclose(probs.sum(-1), torch.ones(1)) and (probs[0, 2:] == 0).all() and (probs[0, :2] > 0).all()
    # the highest temperature flattens, and top-p keeps the most likely token however small p is
    assert (sampling_probs(logits, 100.0, 1.0) - 0.2).abs().max() < 0.02
    assert sampling_probs(logits, 1.0, 1e-6).tolist() == [[1.0, 0.0, 0.0, 0.0, 0.0]]


def test_sampling_probs_matches_the_sampler():
    """Tokens that sampling_probs gives zero are never drawn by rollout with the same settings."""
    from course_utils.models import load_policy

    model, tokenizer = load_policy("tiny", "cpu")
    prompt = "This movie is"
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokenizer(prompt)["input_ids"]])).logits[0, -1]
    kept = sampling_probs(logits, 1.0, 0.3) > 0
    out = rollout(model, tokenizer, [prompt] * 64, max_new_tokens=1, top_p=0.3, seed=0)
    assert kept[out.responses[:, 0]].all() and 1 < int(kept.sum()) < len(logits)


def test_pair_ceiling_is_the_majoritys_side_of_prefer_probability():
    for a, b in (([1, 1, 2], [0, 2]), ([-3, 0], [2, 2, 4]), ([4, -1, -1], [0])):
        p = prefer_probability(a, b)
        assert pair_ceiling(a, b) == pytest.approx(max(p, 1 - p))
    assert np.isnan(pair_ceiling([1, 1], [1]))


def test_bradley_terry_is_the_loss_of_bradley_terry_loss():
    r_w, r_l = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    assert torch.equal(bradley_terry(r_w, r_l), bradley_terry_loss(r_w, r_l)[0])


@pytest.mark.parametrize("call, error, named", [
    (lambda: sft_labels([[1, 2]], torch.ones(1, 2, dtype=torch.long), torch.tensor([1])), TypeError, "input_ids"),
    (lambda: sft_labels(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), torch.tensor([1])),
     ValueError, "attention_mask"),
    (lambda: sft_labels(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long), torch.tensor([1, 4])),
     ValueError, "prompt_lengths"),
    (lambda: sft_labels(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), torch.tensor([1])), TypeError,
     "attention_mask"),
    (lambda: sampling_probs(torch.tensor([1, 2]), 1.0, 1.0), TypeError, "logits"),
    (lambda: sampling_probs(torch.tensor([1.0, float("nan")]), 1.0, 1.0), ValueError, "logits"),
    (lambda: sampling_probs(torch.zeros(3), 0.0, 1.0), ValueError, "temperature"),
    (lambda: sampling_probs(torch.zeros(3), 1.0, 1.5), ValueError, "top_p"),
    (lambda: sampling_probs(torch.zeros(3), "1", 0.5), TypeError, "temperature"),
    (lambda: pair_ceiling([1, 9], [0]), ValueError, "ratings_a"),
    (lambda: pair_ceiling([1], "3"), TypeError, "ratings_b"),
    (lambda: bradley_terry(torch.zeros(2), torch.zeros(3)), ValueError, "r_chosen and r_rejected"),
])
def test_bad_input_is_refused_naming_the_argument(call, error, named):
    with pytest.raises(error, match=named):
        call()
