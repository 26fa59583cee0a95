"""Rollouts: the course's batched KV-cache sampler (``generation.rollout``) against transformers'
``model.generate``, at the same sampling settings, on identical work.

Identical: the same weights, the same left-padded prompts (notebook 04's four instructions, each
repeated, as RL samples a group per prompt), pure sampling at temperature 1 (``generate`` with
``top_k=0, top_p=1.0``: its default ``top_k=50`` would be another distribution), the same number of
new tokens: both keep computing every row until the batch ends, and with random weights the end token
has probability ~1/vocabulary, so a batch runs to ``max_new_tokens`` on both sides (checked). The
course's sampler also returns each token's log-prob under the model, which RL needs; ``generate`` is
timed twice: returning tokens only, and returning the logits of every step (``output_logits=True``),
from which the same log-probs are taken (checked equal).
All in eval mode, with the KV cache (transformers' default dynamic cache), fp32 on the CPU, bf16 on a GPU
(the course's autocast; ``generate`` on bf16 weights).
"""

from __future__ import annotations

import torch

import common

BATCH = {"tiny": 64, "gpt2": 64}
NEW_TOKENS = {"tiny": 48, "gpt2": 256}   # tiny: notebook 04's PG_MAX_NEW_TOKENS


def prompts(n: int) -> list[str]:
    from course_utils.data import INSTRUCTIONS, format_prompt
    instructions = list(INSTRUCTIONS.values())
    return [format_prompt(instructions[i % len(instructions)]) for i in range(n)]


def course_side(model, tok, texts, new_tokens, seed):
    from course_utils.generation import rollout
    out = rollout(model, tok, texts, max_new_tokens=new_tokens, temperature=1.0, seed=seed)
    assert out.responses.shape[1] == new_tokens, "a batch ended early: the two sides did different work"
    return out


def generate_side(model, tok, texts, new_tokens, seed, logprobs=False):
    inputs = tok(texts, return_tensors="pt", padding=True).to(model.device)   # left-padded (load_tokenizer)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                             return_dict_in_generate=True, output_logits=logprobs)
        tokens = out.sequences[:, inputs["input_ids"].shape[1]:]
        assert tokens.shape[1] == new_tokens, "a batch ended early: the two sides did different work"
        if logprobs:  # what RL needs: log π(y_t | x, y_<t) of each sampled token
            logits = torch.stack(out.logits, 1).float()
            return tokens, logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    return tokens, None


def generate_logprobs_side(model, tok, texts, new_tokens, seed):
    return generate_side(model, tok, texts, new_tokens, seed, logprobs=True)


def check_same_logprobs(model, tok, texts, new_tokens):
    """The log-probs ``generate``'s logits give are the course's (``response_logprobs``) for its tokens (fp32).
    A row that ends keeps being fed (padding, attended to) until the batch ends, on both sides alike."""
    from course_utils.generation import Rollout, response_logprobs
    if next(model.parameters()).device.type != "cpu":
        return
    tokens, logps = generate_logprobs_side(model, tok, texts, new_tokens, 0)
    prompt = tok(texts, return_tensors="pt", padding=True)
    ones = torch.ones_like(tokens)
    sampled = Rollout(torch.cat([prompt["input_ids"], tokens], 1), torch.cat([prompt["attention_mask"], ones], 1),
                      ones, logps, torch.zeros(len(texts), dtype=torch.bool), prompt["input_ids"].shape[1])
    with torch.no_grad():
        ours = response_logprobs(model, sampled)
    assert (ours - logps).abs().max() < 1e-4, "generate's log-probs differ from the course's"


def main():
    args = common.arguments(__doc__.splitlines()[0])
    dev = common.device()
    tok = common.tokenizer()
    batch = 8 if args.quick else BATCH[args.shape]
    new_tokens = 8 if args.quick else NEW_TOKENS[args.shape]
    reps = args.reps or (2 if args.quick else 5)
    model = common.new_model(args.shape, tok, device=dev).eval()
    texts = prompts(batch)
    generate_model = model if dev == "cpu" else common.new_model(args.shape, tok, device=dev).to(torch.bfloat16)
    check_same_logprobs(model, tok, texts, new_tokens)
    sides = {"course": course_side,
             "transformers generate": lambda m, *a: generate_side(generate_model, *a),
             "generate + log-probs": lambda m, *a: generate_logprobs_side(generate_model, *a)}
    seeds = iter(range(10_000))

    def timed(side):
        def run():
            clock = common.Clock()
            clock.tick()
            side(model, tok, texts, new_tokens, next(seeds))
            clock.tick()
            return batch * new_tokens, clock.seconds(0, 2)
        return run

    print(f"rollouts: {args.shape} shape, {batch} prompts, {new_tokens} new tokens each, {reps} repetitions on {dev}",
          flush=True)
    rates = common.interleaved({name: timed(side) for name, side in sides.items()}, reps, warmup_rep=True)
    summary = common.summarise(rates, "course")
    memory = {name: common.peak_memory(lambda: side(model, tok, texts, new_tokens, 0), model)
              for name, side in sides.items()}
    settings = {"course": "generation.rollout (returns tokens and their log-probs)",
                "transformers generate": "do_sample, top_k=0, top_p=1.0, temperature 1, dynamic KV cache; tokens only",
                "generate + log-probs": "the same with output_logits=True, log_softmax of the sampled tokens"}
    common.emit([{"benchmark": "rollout", "side": name, "shape": args.shape, "device": dev,
                  "precision": "bf16" if dev == "cuda" else "fp32", "batch": batch,
                  "tokens_per_sequence": new_tokens, "peak_memory_mb": round(memory[name], 1),
                  "settings": settings[name],
                  **{k: round(v, 3) if isinstance(v, float) else v for k, v in summary[name].items()}}
                 for name in sides], args.out)


if __name__ == "__main__":
    main()
