"""Batched generation: left padding must not change what a prompt gets; bad input is refused."""

import pytest

from course_utils.generation import generate
from course_utils.models import load_policy


@pytest.fixture(scope="module")
def tiny():
    return load_policy("tiny")


def test_a_prompt_gets_the_same_response_alone_and_in_a_left_padded_batch(tiny):
    model, tok = tiny
    short, long = "Instruction: Write a tweet.\nResponse:", "The movie was long, and the actors were"
    # near-greedy sampling: the response is a function of the prompt, so batching must not change it
    alone = generate(model, tok, [short], max_new_tokens=12, temperature=1e-4)
    batched = generate(model, tok, [long, short], max_new_tokens=12, temperature=1e-4)
    assert batched["responses"][1] == alone["responses"][0]
    assert batched["finished"][1] == alone["finished"][0]


def test_responses_stop_at_the_end_token_and_say_so(tiny):
    model, tok = tiny
    out = generate(model, tok, [tok.eos_token] * 16, max_new_tokens=64, seed=0)
    assert any(out["finished"])
    assert not any(tok.eos_token in r or tok.pad_token in r for r in out["responses"])


@pytest.mark.parametrize("prompts, kwargs, message", [
    ([], {}, "non-empty list"),
    (["ok", "  "], {}, "non-empty prompt"),
    (["ok"], {"temperature": 0}, "temperature must be positive"),
])
def test_bad_input_is_a_clear_error(tiny, prompts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(*tiny, prompts, **kwargs)


def test_the_model_mode_and_padding_side_are_restored_even_on_error(tiny, monkeypatch):
    model, tok = tiny
    model.train()
    tok.padding_side = "right"
    try:
        out = generate(model, tok, ["The movie"], max_new_tokens=4)
        assert len(out["responses"]) == 1 and model.training and tok.padding_side == "right"

        def out_of_memory(*args, **kwargs):
            raise RuntimeError("out of memory")
        monkeypatch.setattr(model, "generate", out_of_memory)
        with pytest.raises(RuntimeError, match="out of memory"):
            generate(model, tok, ["The movie"], max_new_tokens=4)
        assert model.training and tok.padding_side == "right"
    finally:
        model.eval()
        tok.padding_side = "left"


def test_the_pad_token_is_never_sampled(tiny, monkeypatch):
    """The tiny model has a pad token of its own. Made likely (its logit raised by a hook), it
    would be sampled, and padding inside a response vanishes from the decoded text unnoticed.
    It is suppressed: the sampled tokens (read from the model's own generate) hold no pad
    before the end token."""
    model, tok = tiny
    sampled, real_generate = [], model.generate

    def favour_pad(module, inputs, logits):
        logits[..., tok.pad_token_id] += 20.0
        return logits
    hook = model.lm_head.register_forward_hook(favour_pad)

    def recording_generate(*args, **kwargs):
        out = real_generate(*args, **kwargs)
        sampled.extend(out[:, kwargs["input_ids"].shape[1]:].tolist())
        return out
    monkeypatch.setattr(model, "generate", recording_generate)
    try:
        generate(model, tok, ["The movie"] * 64, max_new_tokens=16, seed=0)
    finally:
        hook.remove()
    for row in sampled:
        body = row[:row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
        assert tok.pad_token_id not in body
