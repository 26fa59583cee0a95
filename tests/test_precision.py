"""Precision on GPUs, with the card faked (no GPU here): bf16 only where the card has it natively
(compute capability 8.0 or more, an A100); fp16 autocast with loss scaling on a T4 (7.5), whose
``torch.cuda.is_bf16_supported()`` says True because it counts emulation; fp32 on older cards."""

from functools import partial

import pytest
import torch

from course_utils import gpu
from course_utils.batching import collate_sft, encode_prompt_completion
from course_utils.losses import sft_step
from course_utils.profiles import get_profile
from course_utils.training import TrainConfig, train

@pytest.fixture
def card(monkeypatch):
    """``card((major, minor))``: CUDA faked as a card of that compute capability, which also says that it
    supports bf16 (as a T4 does, counting emulation)."""
    def fake(capability):
        monkeypatch.setattr(gpu, "_device_type", lambda where, device: "cuda")
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return fake


@pytest.mark.parametrize("capability, expected", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp16"),
                                                  ((7, 0), "fp16"), ((6, 0), "fp32")])
def test_precision_follows_the_compute_capability(card, capability, expected):
    card(capability)
    assert gpu.precision("cuda") == expected
    assert gpu.bf16_supported("cuda") == (expected == "bf16")


def test_an_a100_like_card_autocasts_in_bf16_without_loss_scaling(card):
    card((8, 0))
    context = gpu.autocast("cuda")
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    assert not gpu.grad_scaler("cuda").is_enabled()


def test_a_t4_like_card_autocasts_in_fp16_and_scales_the_loss(card):
    card((7, 5))
    context = gpu.autocast("cuda")
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.float16
    scaler = gpu.grad_scaler("cuda")
    assert isinstance(scaler, torch.amp.GradScaler)
    assert scaler.is_enabled()


def test_an_old_card_computes_in_fp32(card):
    card((6, 1))
    assert isinstance(gpu.autocast("cuda"), type(gpu.autocast("cpu")))
    assert not gpu.grad_scaler("cuda").is_enabled()


def test_the_cpu_computes_in_fp32_and_scales_nothing():
    assert gpu.precision("cpu") == "fp32" and not gpu.grad_scaler("cpu").is_enabled()


def test_the_profile_states_the_cards_precision(card, monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for capability, precision in (((7, 5), "fp16"), ((8, 0), "bf16")):
        card(capability)
        profile = get_profile()
        assert (profile.device, profile.precision, profile.bf16) == ("cuda", precision, precision == "bf16")


def test_training_goes_through_the_scaler(make_tiny_lm, course_tokenizer, monkeypatch):
    """train scales the loss, unscales before clipping, and steps and updates through the scaler."""
    calls = []

    class Recording(torch.amp.GradScaler):
        def scale(self, outputs):
            calls.append("scale")
            return super().scale(outputs)

        def unscale_(self, optimizer):
            calls.append("unscale_")
            return super().unscale_(optimizer)

        def step(self, optimizer, *args, **kwargs):
            calls.append("step")
            return super().step(optimizer, *args, **kwargs)

        def update(self, new_scale=None):
            calls.append("update")
            return super().update(new_scale)

    monkeypatch.setattr(gpu, "grad_scaler", lambda device: Recording("cuda", enabled=False))
    examples = [encode_prompt_completion(course_tokenizer, "Review:", " Great fun.", max_length=64)] * 4
    train(make_tiny_lm(), sft_step, examples, partial(collate_sft, pad_token_id=course_tokenizer.pad_token_id),
          TrainConfig(steps=2, batch_size=2))
    assert calls == ["scale", "unscale_", "step", "update"] * 2


@pytest.mark.parametrize("fn", [gpu.precision, gpu.grad_scaler])
def test_a_bad_device_is_a_clear_error(fn):
    with pytest.raises(ValueError, match="device"):
        fn("tpu")
