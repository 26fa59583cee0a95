"""Bad input to the fast paths (chunked log-probs and their switches, length-grouped batches): a clear error
at the door, naming the argument, nothing changed. ``test_misuse.py`` checks that every public function has a
case here or elsewhere."""


import pytest
import torch

from course_utils import dpo, gpu, logprobs, losses, training
from course_utils.batching import collate_sft, encode_preference, encode_prompt_completion
from course_utils.data import format_prompt
from misuse import Case, lm, model_state, tiny

PROMPT = format_prompt("Write a movie review.")


def sft_batch():
    return collate_sft([encode_prompt_completion(tiny()[1], PROMPT, " Great fun.", 64)], tiny()[1].pad_token_id)


def dpo_batch():
    row = dict(encode_preference(tiny()[1], PROMPT, " Great fun.", " Boring.", 64), ref_chosen_logps=-10.0,
               ref_rejected_logps=-12.0)
    return dpo.collate_dpo([row], tiny()[1].pad_token_id)


def hidden(n=3):
    return torch.zeros(n, lm().lm_head.in_features)


CASES = [
    Case("logprobs.selected_logprobs", lambda: logprobs.selected_logprobs(hidden(), "lm_head", torch.zeros(3).long()),
         TypeError, "head"),
    Case("logprobs.selected_logprobs",
         lambda: logprobs.selected_logprobs(hidden(), lm().lm_head, torch.zeros(3).long(), chunk_tokens=0),
         ValueError, "chunk_tokens"),
    Case("logprobs.selected_logprobs",
         lambda: logprobs.selected_logprobs(hidden(), lm().lm_head, torch.zeros(2).long()), ValueError, "targets"),
    Case("logprobs.selected_logprobs",
         lambda: logprobs.selected_logprobs(hidden(), lm().lm_head, torch.full((3,), 5000)), ValueError, "targets"),
    Case("logprobs.sequence_logprobs",
         lambda: logprobs.sequence_logprobs(lm(), *[sft_batch()[k] for k in ("input_ids", "attention_mask",
                                                                            "completion_mask")], chunked="yes"),
         TypeError, "chunked", unchanged=lambda: model_state(lm())),
    Case("losses.sft_step", lambda: losses.sft_step(lm(), sft_batch(), chunked=1), TypeError, "chunked",
         unchanged=lambda: model_state(lm())),
    Case("losses.sft_step", lambda: losses.sft_step(lm(), {**sft_batch(), "labels": torch.full((1, 5), -100)},
                                                    chunked=True), ValueError, "labels",
         unchanged=lambda: model_state(lm())),
    Case("dpo.dpo_step", lambda: dpo.dpo_step(lm(), dpo_batch(), chunked="auto"), TypeError, "chunked",
         unchanged=lambda: model_state(lm())),
    # length-grouped batches
    Case("training.TrainConfig", lambda: training.TrainConfig(steps=4, group_by_length="yes"), TypeError,
         "group_by_length"),
    Case("training.TrainConfig", lambda: training.TrainConfig(steps=4, compile=1), TypeError, "compile"),
    Case("training.batch_indices", lambda: training.batch_indices(8, 2, 0, 0, lengths=[3, 4]), ValueError, "lengths"),
    Case("training.example_length", lambda: training.example_length({"x": [1, 2]}), ValueError, "input_ids"),
    Case("training.train", lambda: training.train(lm(), losses.sft_step, [{"text": "a"}] * 4, lambda rows: {},
                                                  training.TrainConfig(steps=1, batch_size=2, group_by_length=True)),
         ValueError, "train: .*input_ids", unchanged=lambda: model_state(lm())),
    # what runs on a GPU
    Case("gpu.bf16_supported", lambda: gpu.bf16_supported("tpu"), ValueError, "device"),
    Case("gpu.autocast", lambda: gpu.autocast(3), TypeError, "device"),
    Case("gpu.allow_tf32", lambda: gpu.allow_tf32("gpu"), ValueError, "device"),
    Case("gpu.compiled_blocks", lambda: gpu.compiled_blocks("model"), TypeError, "model"),
    Case("gpu.compiled_blocks", lambda: gpu.compiled_blocks(lm(), enabled="yes"), TypeError, "enabled",
         unchanged=lambda: model_state(lm())),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
