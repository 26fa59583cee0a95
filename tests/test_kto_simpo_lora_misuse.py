"""Bad input to notebook 11's helpers (KTO, SimPO, LoRA): a clear error at the door, naming the argument, nothing
changed. ``test_misuse.py`` checks that every public function has a case here or elsewhere."""

import functools

import pytest
import torch
from datasets import Dataset

from course_utils import kto, lora, simpo
from course_utils.batching import collate_preference, encode_preference
from course_utils.data import format_prompt
from course_utils.dpo import dpo_objective
from misuse import Case, lm, model_state, tiny

PROMPT = format_prompt("Write a movie review.")
L = [torch.tensor([-3.0, -4.0]), torch.tensor([-3.5, -2.0])]
YES = torch.tensor([True, False])
CORPUS = Dataset.from_list([{"text": "good", "domain": "movie", "ratings": [2, 3]},
                            {"text": "bad", "domain": "movie", "ratings": [-2]}])


@functools.cache
def unpaired():
    raw = [{"prompt": PROMPT, "completion": c, "label": y} for c, y in ((" Great fun.", True), (" Boring.", False))]
    return kto.add_kto_reference_logprobs(tiny()[0], kto.encode_unpaired(tiny()[1], raw, 64), tiny()[1].pad_token_id)


@functools.cache
def pair_batch():
    rows = [encode_preference(tiny()[1], PROMPT, " Great fun.", " Boring.", 64)]
    return collate_preference(rows, tiny()[1].pad_token_id)


def kto_batch_without(key):
    return {k: v for k, v in kto.collate_kto(list(unpaired()), tiny()[1].pad_token_id).items() if k != key}


@functools.cache
def adapted():
    return lora.lora_model(tiny()[0], r=2, alpha=4.0)


CASES = [
    Case("kto.kto_reference_point", lambda: kto.kto_reference_point(L[0], torch.tensor([-1.0])), ValueError,
         "ref_kl_logps"),
    Case("kto.kto_reference_point", lambda: kto.kto_reference_point([-1.0], L[1]), TypeError, "policy_kl_logps"),
    Case("kto.kto_loss", lambda: kto.kto_loss(*L, torch.tensor([1, 0]), 0.0), TypeError, "desirable"),
    Case("kto.kto_loss", lambda: kto.kto_loss(*L, YES, -0.5), ValueError, "z0"),
    Case("kto.kto_loss", lambda: kto.kto_loss(*L, YES, torch.zeros(2)), ValueError, "z0"),
    Case("kto.kto_loss", lambda: kto.kto_loss(*L, YES, 0.0, beta=0.0), ValueError, "beta"),
    Case("kto.kto_loss", lambda: kto.kto_loss(*L, YES, 0.0, undesirable_weight=-1.0), ValueError,
         "undesirable_weight"),
    Case("kto.kto_loss", lambda: kto.kto_loss(torch.tensor([float("nan"), 1.0]), L[1], YES, 0.0), ValueError,
         "policy_logps.*NaN"),
    Case("kto.single_rater_labels", lambda: kto.single_rater_labels(CORPUS.remove_columns("ratings"), 1),
         ValueError, "corpus.*ratings"),
    Case("kto.single_rater_labels", lambda: kto.single_rater_labels(CORPUS, 3), ValueError, "n_texts"),
    Case("kto.single_rater_labels", lambda: kto.single_rater_labels(CORPUS, 1, seed=-1), ValueError, "seed"),
    Case("kto.pairs_from_single_ratings", lambda: kto.pairs_from_single_ratings(CORPUS), ValueError, "labels"),
    Case("kto.pairs_from_single_ratings",
         lambda: kto.pairs_from_single_ratings(kto.single_rater_labels(CORPUS, 1)), ValueError, "pairs_from"),
    Case("kto.encode_unpaired", lambda: kto.encode_unpaired(tiny()[1], [{"prompt": PROMPT, "completion": " a",
                                                                         "label": 1}], 64), ValueError, "label"),
    Case("kto.encode_unpaired", lambda: kto.encode_unpaired(tiny()[1], [{"prompt": PROMPT, "completion": " a",
                                                                         "label": True}] * 2, 1), ValueError,
         "max_length"),
    Case("kto.encode_unpaired", lambda: kto.encode_unpaired(tiny()[1], [], 64), ValueError, "rows"),
    Case("kto.add_kto_reference_logprobs",
         lambda: kto.add_kto_reference_logprobs(lm(), [{"input_ids": [1, 2]}], 1), ValueError, "rows",
         unchanged=lambda: model_state(lm())),
    Case("kto.add_kto_reference_logprobs", lambda: kto.add_kto_reference_logprobs(lm(), unpaired(), -1), ValueError,
         "pad_token_id", unchanged=lambda: model_state(lm())),
    Case("kto.collate_kto", lambda: kto.collate_kto([{k: v for k, v in unpaired()[0].items() if k != "ref_KL_logps"}],
                                                    1), ValueError, "ref_KL_logps"),
    Case("kto.kto_step", lambda: kto.kto_step(lm(), kto_batch_without("KL_input_ids")), ValueError, "KL_input_ids",
         unchanged=lambda: model_state(lm())),
    Case("kto.kto_objective", lambda: kto.kto_objective(desirable_weight=0), ValueError, "desirable_weight"),
    Case("simpo.simpo_loss", lambda: simpo.simpo_loss(*L, torch.tensor([3, 0]), torch.tensor([2, 2])), ValueError,
         "chosen_lengths"),
    Case("simpo.simpo_loss", lambda: simpo.simpo_loss(*L, [3, 2], torch.tensor([2, 2])), TypeError, "chosen_lengths"),
    Case("simpo.simpo_loss", lambda: simpo.simpo_loss(*L, torch.ones(2), torch.ones(2), gamma=-1.0), ValueError,
         "gamma"),
    Case("simpo.simpo_loss", lambda: simpo.simpo_loss(L[0], torch.tensor([-1.0]), torch.ones(2), torch.ones(1)),
         ValueError, "policy_rejected_logps"),
    Case("simpo.simpo_step", lambda: simpo.simpo_step(lm(), {k: v for k, v in pair_batch().items()
                                                             if k != "rejected_attention_mask"}),
         ValueError, "rejected_attention_mask", unchanged=lambda: model_state(lm())),
    Case("simpo.simpo_step", lambda: simpo.simpo_step(lm(), pair_batch(), beta=0.0), ValueError, "beta",
         unchanged=lambda: model_state(lm())),
    Case("simpo.simpo_objective", lambda: simpo.simpo_objective(gamma="1"), TypeError, "gamma"),
    Case("lora.lora_forward", lambda: lora.lora_forward(torch.ones(2, 5), torch.ones(4, 5), torch.ones(2, 5),
                                                        torch.ones(4, 3), 1.0), ValueError, "lora_B"),
    Case("lora.lora_forward", lambda: lora.lora_forward(torch.ones(2, 5), torch.ones(4, 5), torch.ones(2, 5),
                                                        torch.ones(4, 2), 0.0), ValueError, "alpha"),
    Case("lora.lora_model", lambda: lora.lora_model(lm(), r=0), ValueError, r"\br\b",
         unchanged=lambda: model_state(lm())),
    Case("lora.lora_model", lambda: lora.lora_model(lm(), target_modules=["q_proj"]), ValueError, "q_proj",
         unchanged=lambda: model_state(lm())),
    Case("lora.lora_model", lambda: lora.lora_model(lm(), target_modules="c_attn"), TypeError, "target_modules",
         unchanged=lambda: model_state(lm())),
    Case("lora.adapter_reference_logprobs", lambda: lora.adapter_reference_logprobs(lm(), [], 1), TypeError,
         "peft model", unchanged=lambda: model_state(lm())),
    Case("lora.parameter_counts", lambda: lora.parameter_counts(torch.nn.ReLU()), ValueError, "model"),
    Case("lora.training_footprint", lambda: lora.training_footprint(adapted(), dpo_objective(), [1]), TypeError,
         "batch"),
    Case("lora.training_footprint", lambda: lora.training_footprint(adapted(), "dpo", {}), TypeError, "loss_fn"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
