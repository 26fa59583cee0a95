"""Batched generation: left padding must not change what a prompt gets; bad input is refused."""

import pytest

import torch

from course_utils.batching import collate_sft
from course_utils.data import INSTRUCTIONS, format_prompt
from course_utils.generation import decode, generate, positions, response_logprobs, rollout
from course_utils.logprobs import sequence_logprobs
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
        monkeypatch.setattr(model, "forward", out_of_memory)
        with pytest.raises(RuntimeError, match="out of memory"):
            generate(model, tok, ["The movie"], max_new_tokens=4)
        assert model.training and tok.padding_side == "right"
    finally:
        model.eval()
        tok.padding_side = "left"


def test_the_pad_token_is_never_sampled(tiny):
    """The tiny model has a pad token of its own. Made likely (its logit raised by a hook), it
    would be sampled, and padding inside a response vanishes from the decoded text unnoticed.
    It is suppressed: the sampled tokens hold no pad inside a response."""
    model, tok = tiny

    def favour_pad(module, inputs, logits):
        logits[..., tok.pad_token_id] += 20.0
        return logits
    hook = model.lm_head.register_forward_hook(favour_pad)
    try:
        out = rollout(model, tok, ["The movie"] * 64, max_new_tokens=16, seed=0)
    finally:
        hook.remove()
    assert not (out.responses[out.response_mask.bool()] == tok.pad_token_id).any()


# ---------------------------------------------------------------- rollouts

PROMPTS = [format_prompt(i) for i in INSTRUCTIONS.values()] + ["The movie was long, and the actors were"]


@pytest.fixture(scope="module")
def sampled(tiny):
    model, tok = tiny
    return rollout(model, tok, PROMPTS * 4, max_new_tokens=24, seed=3)


def test_rollout_logprobs_equal_a_fresh_forward_pass(tiny, sampled):
    """The log-probs recorded while sampling (KV cache, one token at a time) are those of a
    fresh forward pass over the whole sequence, as the training step computes them."""
    model, _ = tiny
    with torch.no_grad():
        fresh = response_logprobs(model, sampled)
    torch.testing.assert_close(fresh, sampled.logprobs, atol=1e-4, rtol=0)
    assert (sampled.logprobs[sampled.response_mask == 0] == 0).all()


def test_rollout_logprobs_equal_sequence_logprobs_of_the_same_tokens_right_padded(tiny, sampled):
    """An independent path: each prompt and its sampled tokens, re-packed without left padding
    (``collate_sft``) and scored with ``sequence_logprobs``, give the same sums."""
    model, tok = tiny
    rows = []
    for ids, amask, rmask in zip(sampled.input_ids, sampled.attention_mask, sampled.response_mask):
        prompt = ids[:sampled.prompt_length][amask[:sampled.prompt_length].bool()].tolist()
        response = ids[sampled.prompt_length:][rmask.bool()].tolist()
        rows.append({"input_ids": prompt + response, "completion_mask": [0] * len(prompt) + [1] * len(response)})
    batch = collate_sft(rows, tok.pad_token_id)
    with torch.no_grad():
        total = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    torch.testing.assert_close(total, sampled.logprobs.sum(-1), atol=1e-3, rtol=1e-5)


def test_rollout_masks_stop_at_the_end_token(tiny, sampled):
    _, tok = tiny
    mask, resp = sampled.response_mask, sampled.responses
    lengths = mask.sum(-1)
    assert (mask == (torch.arange(mask.shape[1]) < lengths[:, None]).long()).all()   # 1s, then 0s
    assert sampled.finished.any()
    for row, n, ended in zip(resp, lengths, sampled.finished):
        body = row[:n].tolist()
        assert (body[-1] == tok.eos_token_id) == bool(ended)
        assert tok.eos_token_id not in body[:-1]
        assert (row[n:] == tok.pad_token_id).all()
    assert (sampled.attention_mask[:, sampled.prompt_length:] == mask).all()
    assert decode(tok, sampled)[0] == tok.decode(resp[0, :lengths[0] - int(sampled.finished[0])])


def test_logprobs_are_those_at_temperature_one_whatever_the_sampling(tiny):
    """Sampling at temperature 0.5 with top-k and top-p changes which tokens come out, not whose
    log-probs are recorded: π's own, as the PPO ratio and the KL need."""
    model, tok = tiny
    out = rollout(model, tok, PROMPTS, max_new_tokens=12, temperature=0.5, top_k=20, top_p=0.9, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(response_logprobs(model, out), out.logprobs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kwargs", [{"top_k": 1}, {"top_p": 1e-6}, {"temperature": 1e-5}])
def test_top_k_1_top_p_tiny_and_temperature_near_0_are_greedy(tiny, kwargs):
    model, tok = tiny
    out = rollout(model, tok, PROMPTS[:2], max_new_tokens=6, seed=0, **kwargs)
    with torch.no_grad():
        logits = model(input_ids=out.input_ids, attention_mask=out.attention_mask,
                       position_ids=positions(out.attention_mask)).logits[:, out.prompt_length - 1:-1]
    logits[..., tok.pad_token_id] = -float("inf")
    greedy = logits.argmax(-1)
    assert ((greedy == out.responses) | (out.response_mask == 0)).all()


def test_response_logprobs_entropy(tiny, sampled):
    model, _ = tiny
    with torch.no_grad():
        logps, entropy = response_logprobs(model, sampled, entropy=True)
        logits = model(input_ids=sampled.input_ids[:1], attention_mask=sampled.attention_mask[:1],
                       position_ids=positions(sampled.attention_mask[:1])).logits[0, sampled.prompt_length - 1]
    torch.testing.assert_close(logps, sampled.logprobs, atol=1e-4, rtol=0)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(entropy[0, 0], expected, atol=1e-4, rtol=1e-4)
    assert (entropy[sampled.response_mask == 0] == 0).all() and (entropy >= 0).all()


def test_positions_count_real_tokens():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert positions(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
