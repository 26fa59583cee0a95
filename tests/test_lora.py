"""LoRA through peft: the layer's equation against peft's, the adapted model starting at the base model, the
reference log-probs with the adapters switched off, DPO training only the adapters, and the measured footprint."""

import pytest
import torch

from course_utils.batching import encode_preference
from course_utils.data import format_prompt
from course_utils.dpo import add_reference_logprobs, collate_dpo, dpo_objective
from course_utils.lora import adapter_reference_logprobs, lora_forward, lora_model, parameter_counts, training_footprint

PROMPT = format_prompt("Write a movie review.")
PAIRS = [(" The film was great fun.", " The plot was boring."), (" A great movie.", " Awful."),
         (" Boring.", " Fun fun fun, the movie was great."), (" The actors were great.", " Awful.")]


def test_lora_forward_by_hand():
    torch.manual_seed(0)
    x, w = torch.randn(3, 5), torch.randn(4, 5)
    a, b = torch.randn(2, 5), torch.randn(4, 2)
    expected = x @ w.T + (6.0 / 2) * (x @ a.T @ b.T)
    torch.testing.assert_close(lora_forward(x, w, a, b, alpha=6.0), expected)
    # B = 0 (how LoRA starts): exactly the frozen layer
    torch.testing.assert_close(lora_forward(x, w, a, torch.zeros(4, 2), 6.0), x @ w.T)
    # rank one, one token, extra leading dims
    x1 = torch.randn(2, 1, 5)
    torch.testing.assert_close(lora_forward(x1, w, a[:1], b[:, :1], 1.0), x1 @ w.T + x1 @ a[:1].T @ b[:, :1].T)


def test_lora_forward_equals_peft_on_a_gpt2_layer(make_tiny_lm):
    """peft's LoRA layer on a GPT-2 Conv1D (weight stored [d_in, d_out]) computes W x + b + (α/r) B A x."""
    model = lora_model(make_tiny_lm(seed=2), r=4, alpha=8.0, target_modules=["c_attn"])
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    torch.nn.init.normal_(layer.lora_B["default"].weight)   # trained-looking adapters, not zero
    x = torch.randn(2, 3, layer.base_layer.weight.shape[0])
    with torch.no_grad():
        ours = lora_forward(x, layer.base_layer.weight.T, layer.lora_A["default"].weight,
                            layer.lora_B["default"].weight, 8.0) + layer.base_layer.bias
        torch.testing.assert_close(layer(x), ours)


def test_lora_model_starts_at_the_base_and_trains_only_the_adapters(make_tiny_lm, course_tokenizer):
    base = make_tiny_lm(seed=2)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = lora_model(base, r=4, alpha=8.0)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())   # the base is not changed
    counts = parameter_counts(model)
    assert 0 < counts["trainable"] < counts["total"] / 5
    named = {n for n, p in model.named_parameters() if p.requires_grad}
    assert named and all("lora_" in n for n in named)
    again = lora_model(base, r=4, alpha=8.0)   # the same seed: the same adapters
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))
    ids = torch.tensor([course_tokenizer(PROMPT + " Great fun.")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, base(input_ids=ids).logits)


def rows(tokenizer):
    return [encode_preference(tokenizer, PROMPT, c, r, 64) for c, r in PAIRS]


def test_adapter_reference_logprobs_are_the_base_models(make_tiny_lm, course_tokenizer):
    base = make_tiny_lm(seed=2)
    model = lora_model(base, r=4, alpha=8.0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)   # the adapters now change the outputs
    pad = course_tokenizer.pad_token_id
    off = adapter_reference_logprobs(model, rows(course_tokenizer), pad)
    expected = add_reference_logprobs(base, rows(course_tokenizer), pad)
    on = add_reference_logprobs(model, rows(course_tokenizer), pad)
    for a, b, c in zip(off, expected, on):
        assert a["ref_chosen_logps"] == pytest.approx(b["ref_chosen_logps"], abs=1e-5)
        assert abs(c["ref_chosen_logps"] - b["ref_chosen_logps"]) > 1e-3
    # the adapters are back on afterwards
    again = add_reference_logprobs(model, rows(course_tokenizer), pad)
    assert again[0]["ref_chosen_logps"] == pytest.approx(on[0]["ref_chosen_logps"], abs=1e-6)


def test_lora_dpo_trains_the_adapters_and_its_state_is_a_fraction(make_tiny_lm, course_tokenizer):
    from course_utils.training import TrainConfig, train

    base = make_tiny_lm(seed=2)
    model = lora_model(base, r=4, alpha=8.0)
    pad = course_tokenizer.pad_token_id
    data = adapter_reference_logprobs(model, rows(course_tokenizer), pad)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    history = train(model, dpo_objective(beta=0.5), data, lambda r: collate_dpo(r, pad),
                    TrainConfig(steps=10, batch_size=4, lr=1e-2, log_every=1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)
    batch = collate_dpo(data, pad)
    lora, full = training_footprint(model, dpo_objective(), batch), training_footprint(base, dpo_objective(), batch)
    assert lora["trainable"] == parameter_counts(model)["trainable"] and full["trainable"] == full["total"]
    # AdamW keeps two fp32 moments (and a step count) per trainable tensor: measured, then checked against that
    assert 8 * lora["trainable"] <= lora["optimizer state"] < 8 * lora["trainable"] + 1024
    assert lora["gradients"] == 4 * lora["trainable"] and full["gradients"] == 4 * full["total"]
    assert lora["optimizer state"] < full["optimizer state"] / 5 and lora["peak"] is None
    assert lora["step"] == lora["weights"] + lora["gradients"] + lora["optimizer state"] + lora["activations"]


def test_the_lora_benchmark_counts_and_measures():
    """benchmarks/lora.py on the tiny shape: its counts agree with what one measured step allocates."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lora.py"
    spec = importlib.util.spec_from_file_location("benchmark_lora", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    full, adapted = bench.measure("tiny", step=True, pairs=2, length=24)
    assert full["trainable"] == full["total"] and adapted["trainable"] < full["trainable"] / 10
    for row in (full, adapted):
        # a step's gradients are 4 bytes per trainable parameter; AdamW's state two moments and a step count each
        assert row["gradients_mib"] == pytest.approx(4 * row["trainable"] / 2**20)
        assert 8 * row["trainable"] / 2**20 <= row["optimizer_state_mib"] < 8 * row["trainable"] / 2**20 + 0.01
        assert row["step_mib"] > row["weights_mib"] + row["optimizer_state_mib"]
