"""The SFT loss, checked against Hugging Face's causal-LM loss and TRL's SFTTrainer.

What TRL 1.16 does with prompt/completion rows (``SFTTrainer._prepare_dataset``),
and how the course compares:

- it appends the end token to the completion as TEXT (``completion + eos_token``)
  and the tokenizer turns that text into the end token's id; the course appends
  the id. Same ids.
- it tokenises ``prompt`` alone and ``prompt + completion`` jointly, and the
  response starts where the two token lists first differ; the course tokenises
  prompt and completion separately. Same ids when the prompt ends on a token
  boundary, as the course's prompts do (``"...\\nResponse:"`` then ``" text"``).
  When tokens merge across the boundary (a prompt ending in a space), TRL drops
  the prompt's last token(s) from the sequence and counts the merged token as
  response; the course keeps the prompt's tokens as the model sees them at
  generation time. ``test_where_trl_tokenises_differently`` pins this down.
- neither adds a start token here (the course's tokenizer adds none).
- it truncates to ``max_length`` from the right (``truncation_mode="keep_start"``),
  like the course, and silently drops rows whose prompt fills ``max_length``;
  the course raises ``ValueError`` for them.
- its loss (a fused LM head computing log-probabilities of the labelled tokens
  only) is the token mean over all response tokens in the batch, as the course's.
"""

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from course_utils.batching import collate_sft, encode_prompt_completion
from course_utils.data import format_prompt
from course_utils.losses import sft_loss, sft_step

# TRL 1.16's SFTConfig defaults `gradient_checkpointing=True`, which transformers 5 renames.
pytestmark = pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")

MAX_LENGTH = 48
ROWS = [
    {"prompt": format_prompt("Write a movie review."), "completion": " The film was great."},
    {"prompt": format_prompt("Write a tweet."), "completion": " Fun today!"},
    {"prompt": format_prompt("Write a product review."), "completion": " It works. The actors? Boring."},
    {"prompt": format_prompt("Write a tweet."),  # longer than MAX_LENGTH: truncated, loses its end token
     "completion": " The city council was awful, the plot was boring, the product broke."},
]


def course_batch(tok, rows, mask_prompt=True):
    encoded = [encode_prompt_completion(tok, r["prompt"], r["completion"], MAX_LENGTH) for r in rows]
    return collate_sft(encoded, pad_token_id=tok.pad_token_id, mask_prompt=mask_prompt)


def trl_batch(tok, rows, model, tmp_path):
    """TRL's trainer over ``rows`` and one batch holding all of them (in its own order)."""
    args = SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, per_device_train_batch_size=len(rows),
                     max_length=MAX_LENGTH, report_to=[], use_cpu=True, bf16=False, save_strategy="no")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    return trainer, next(iter(trainer.get_train_dataloader()))


def unpadded(batch):
    """The rows of a batch as (input_ids, labels) tuples without padding, sorted."""
    return sorted((tuple(ids[m == 1].tolist()), tuple(lab[m == 1].tolist()))
                  for ids, lab, m in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]))


def test_sft_loss_equals_hugging_face_loss(course_tokenizer, make_tiny_lm):
    model = make_tiny_lm()
    batch = course_batch(course_tokenizer, ROWS)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    torch.testing.assert_close(sft_loss(out.logits, batch["labels"]), out.loss, atol=1e-6, rtol=0)


def test_sft_loss_equals_trl_completion_only_loss(course_tokenizer, make_tiny_lm, tmp_path):
    tok, model = course_tokenizer, make_tiny_lm()
    trainer, trl = trl_batch(tok, ROWS, model, tmp_path)
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, trl)
        # 1. the course's loss on TRL's own token ids and labels
        logits = model(input_ids=trl["input_ids"], attention_mask=trl["attention_mask"]).logits
        torch.testing.assert_close(sft_loss(logits, trl["labels"]), trl_loss, atol=1e-5, rtol=0)
        # 2. the course's encoding gives TRL's ids and labels (truncated row and end tokens included) ...
        ours = course_batch(tok, ROWS)
        assert unpadded(ours) == unpadded(trl)
        assert max(len(ids) for ids, _ in unpadded(ours)) == MAX_LENGTH  # the long row was cut
        # 3. ... so the course's loss on its own batch is TRL's loss (a token mean: row order does not matter)
        loss, metrics = sft_step(model, ours)
    torch.testing.assert_close(loss, trl_loss, atol=1e-5, rtol=0)
    assert metrics["tokens"] == int((trl["labels"] != -100).sum())


def test_where_trl_tokenises_differently(course_tokenizer, make_tiny_lm, tmp_path):
    """A prompt ending in a space: jointly, " " + "The" merge into " The". TRL then
    leaves the prompt's " " out of the sequence; the course keeps it. A prompt
    that fills max_length: TRL drops the row, the course raises."""
    tok = course_tokenizer
    row = {"prompt": "Response: ", "completion": "The film"}
    too_long = {"prompt": "a " * MAX_LENGTH, "completion": " The film"}
    trainer, trl = trl_batch(tok, [row, too_long], make_tiny_lm(), tmp_path)
    assert len(trainer.train_dataset) == 1  # the over-long prompt is gone
    with pytest.raises(ValueError, match="truncated away"):
        course_batch(tok, [too_long])

    joint = tok(row["prompt"] + row["completion"] + tok.eos_token)["input_ids"]
    prompt, completion = tok(row["prompt"])["input_ids"], tok(row["completion"], add_special_tokens=False)["input_ids"]
    (trl_ids, trl_labels), = unpadded(trl)
    (our_ids, our_labels), = unpadded(course_batch(tok, [row]))
    assert list(trl_ids) == joint and list(our_ids) == prompt + completion + [tok.eos_token_id]
    assert trl_ids != our_ids
    assert list(trl_ids[:len(prompt) - 1]) == prompt[:-1]  # TRL: the prompt minus its " " ...
    assert tok.decode(trl_ids[len(prompt) - 1]) == " The"   # ... then the merged token, trained on as response
    assert trl_labels[len(prompt) - 1] == trl_ids[len(prompt) - 1]


def test_masking_the_prompt_changes_the_loss(course_tokenizer, make_tiny_lm):
    model = make_tiny_lm()
    with torch.no_grad():
        masked, m = sft_step(model, course_batch(course_tokenizer, ROWS))
        unmasked, u = sft_step(model, course_batch(course_tokenizer, ROWS, mask_prompt=False))
    assert u["tokens"] > m["tokens"]
    assert abs(masked.item() - unmasked.item()) > 1e-3


def test_sft_loss_rejects_bad_input():
    logits = torch.randn(2, 4, 10)
    with pytest.raises(ValueError, match="no labelled tokens"):
        sft_loss(logits, torch.full((2, 4), -100))
    with pytest.raises(ValueError, match=r"labels \[B, T\]"):
        sft_loss(logits, torch.zeros(2, 5, dtype=torch.long))
