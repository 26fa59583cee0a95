"""The Bradley–Terry loss, the reward model (reward at the last real token, either
padding side) and its agreement with TRL's RewardTrainer on the same batch."""

import math

import pytest
import torch
from transformers import GPT2ForSequenceClassification

from course_utils.batching import collate_preference, encode_preference
from course_utils.data import format_prompt
from course_utils.losses import bradley_terry_loss
from course_utils.reward_model import reward_model_from_policy, reward_step, rewards, score_responses

PROMPT = format_prompt("Write a movie review.")
PAIRS = [(" The film was great fun.", " The plot was boring."),
         (" A great movie.", " The actors were awful and the film was boring today."),
         (" Boring.", " Fun fun fun, the movie was great.")]


def test_bradley_terry_loss_by_hand():
    loss, m = bradley_terry_loss(torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, 0.0, 1.0]))
    expected = (math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert m["accuracy"].item() == pytest.approx(1 / 3) and m["margin"].item() == pytest.approx(0.0)
    # finite and right for huge margins of either sign
    assert bradley_terry_loss(torch.tensor([200.0]), torch.tensor([0.0]))[0].item() == pytest.approx(0.0, abs=1e-30)
    assert bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0]))[0].item() == pytest.approx(200.0)
    # only differences matter
    shifted = bradley_terry_loss(torch.tensor([5.0, 7.0, 4.0]), torch.tensor([5.0, 5.0, 6.0]))[0]
    assert shifted.item() == pytest.approx(expected, rel=1e-6)


def test_bradley_terry_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="r_chosen"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="r_chosen"):
        bradley_terry_loss(torch.zeros(3, 1), torch.zeros(3, 1))


@pytest.fixture
def reward_model(make_tiny_lm):
    policy = make_tiny_lm(seed=1)
    model = reward_model_from_policy(policy, seed=2)
    torch.nn.init.normal_(model.score.weight, std=1.0)  # a head that tells texts apart
    return policy, model.eval()


def test_reward_model_copies_the_backbone_and_leaves_the_policy(reward_model):
    policy, model = reward_model
    assert isinstance(model, GPT2ForSequenceClassification) and model.config.num_labels == 1
    for (name, p), (_, q) in zip(policy.transformer.state_dict().items(), model.transformer.state_dict().items()):
        assert torch.equal(p, q), name
    model.transformer.h[0].attn.c_attn.weight.data.add_(1.0)
    assert not torch.equal(policy.transformer.h[0].attn.c_attn.weight, model.transformer.h[0].attn.c_attn.weight)


def test_reward_reads_the_last_real_token_on_either_padding_side(reward_model, course_tokenizer):
    _, model = reward_model
    seqs = [course_tokenizer(PROMPT + c)["input_ids"] + [course_tokenizer.eos_token_id] for c, _ in PAIRS]
    width = max(map(len, seqs)) + 2
    pad = course_tokenizer.pad_token_id

    def batch(side):
        ids = [s + [pad] * (width - len(s)) if side == "right" else [pad] * (width - len(s)) + s for s in seqs]
        mask = [[1] * len(s) + [0] * (width - len(s)) if side == "right" else [0] * (width - len(s)) + [1] * len(s)
                for s in seqs]
        return torch.tensor(ids), torch.tensor(mask)

    with torch.no_grad():
        right, left = rewards(model, *batch("right")), rewards(model, *batch("left"))
        alone = torch.stack([rewards(model, torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))[0]
                             for s in seqs])
        ids, mask = batch("right")
        hf = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)  # transformers' own head, right padding, pad != eos
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(hf, alone, atol=1e-5, rtol=0)
    assert right.std() > 0.1  # the texts get different rewards: the test could fail


def test_rewards_rejects_bad_shapes(reward_model):
    _, model = reward_model
    with pytest.raises(ValueError, match="attention_mask"):
        rewards(model, torch.ones(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        rewards(model, torch.ones(2, 3, dtype=torch.long), torch.tensor([[1, 1, 1], [0, 0, 0]]))


def test_reward_model_saves_and_loads(reward_model, course_tokenizer, tmp_path):
    _, model = reward_model
    model.save_pretrained(tmp_path)
    loaded = GPT2ForSequenceClassification.from_pretrained(tmp_path).eval()
    prompts, responses = [PROMPT] * 3, [c for c, _ in PAIRS]
    assert score_responses(loaded, course_tokenizer, prompts, responses) == pytest.approx(
        score_responses(model, course_tokenizer, prompts, responses), abs=1e-6)


def test_score_responses_order_mode_and_empty_responses(reward_model, course_tokenizer):
    _, model = reward_model
    prompts, responses = [PROMPT] * 4, [c for c, _ in PAIRS] + [""]
    model.train()
    scores = score_responses(model, course_tokenizer, prompts, responses, batch_size=2)
    assert model.training  # mode restored
    reversed_scores = score_responses(model, course_tokenizer, prompts[::-1], responses[::-1], batch_size=3)
    assert scores == pytest.approx(reversed_scores[::-1], abs=1e-5)
    ids = course_tokenizer(PROMPT)["input_ids"] + [course_tokenizer.eos_token_id]
    with torch.no_grad():
        empty = rewards(model.eval(), torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)).item()
    assert scores[3] == pytest.approx(empty, abs=1e-5)
    with pytest.raises(TypeError, match="prompts"):
        score_responses(model, course_tokenizer, PROMPT, responses[0])
    with pytest.raises(ValueError, match="same length"):
        score_responses(model, course_tokenizer, prompts, responses[:2])


def encoded_batch(tokenizer):
    rows = [encode_preference(tokenizer, PROMPT, c, r, max_length=64) for c, r in PAIRS]
    return rows, collate_preference(rows, tokenizer.pad_token_id)


def test_reward_step_equals_trl_reward_trainer(reward_model, course_tokenizer, tmp_path):
    """The same model, the same token ids, TRL's own collator and compute_loss."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    _, model = reward_model
    rows, batch = encoded_batch(course_tokenizer)
    trl_rows = [{"chosen_ids": r["chosen_input_ids"], "rejected_ids": r["rejected_input_ids"]} for r in rows]
    args = RewardConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_length=None,
                        per_device_train_batch_size=len(rows))
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(trl_rows),
                            processing_class=course_tokenizer)
    trl_batch = DataCollatorForPreference(pad_token_id=course_tokenizer.pad_token_id)(trl_rows)
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, trl_batch)
        ours, metrics = reward_step(model, batch)
    assert ours.item() == pytest.approx(trl_loss.item(), abs=1e-5)
    assert 0.0 <= metrics["accuracy"].item() <= 1.0
