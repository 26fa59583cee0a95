"""Batched sampling with the KV cache, prompts left-padded.

Left padding puts every prompt's last token in the last column, so one forward
pass per new token continues all prompts at once; the attention mask hides the
padding and the KV cache keeps each step to one token's worth of work.
"""

from __future__ import annotations

import torch

from . import _checks


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 48, temperature: float = 1.0,
             top_k: int | None = None, batch_size: int = 64, seed: int = 0) -> dict:
    """Sample one response per prompt.

    Returns ``dict(responses=list[str], finished=list[bool])``: the decoded new
    text (without the end token) and whether the model ended it with its end token
    within ``max_new_tokens``. A pad token distinct from the end token is never
    sampled (it only fills batches), so padding never shows up inside a response.

    Every argument is checked before anything runs, the longest prompt plus
    ``max_new_tokens`` included (it must fit the model's context); the model's
    train/eval mode is restored afterwards, also when generation fails.
    """
    _checks.model("generate", "model", model)
    _checks.tokenizer("generate", "tokenizer", tokenizer)
    if isinstance(prompts, str):
        raise TypeError("generate: prompts must be a list of strings, got one string; wrap it in a list")
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("generate() needs a non-empty list of non-empty prompt strings (prompts)")
    _checks.integer("generate", "max_new_tokens", max_new_tokens, minimum=1)
    _checks.number("generate", "temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"generate: temperature must be positive, got {temperature} "
                         "(use a small value for near-greedy sampling)")
    if top_k is not None:
        _checks.integer("generate", "top_k", top_k, minimum=1)
    _checks.integer("generate", "batch_size", batch_size, minimum=1)
    _checks.integer("generate", "seed", seed, minimum=0)
    encoded = tokenizer(list(prompts), verbose=False)["input_ids"]
    _checks.vocabulary("generate", "tokenizer", torch.tensor([max(ids, default=0) for ids in encoded]), model)
    longest = max(len(ids) for ids in encoded)
    context = _checks.context_length(model)
    if context and longest + max_new_tokens > context:
        raise ValueError(f"generate: max_new_tokens={max_new_tokens} plus the longest prompt ({longest} tokens) "
                         f"exceeds the model's context of {context} tokens; "
                         + (f"lower max_new_tokens to at most {context - longest}" if longest < context
                            else "shorten the prompt"))
    device = next(model.parameters()).device
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    # a pad token of its own is for batching only: never sample it (GPT-2 pads with its end token instead)
    never = [tokenizer.pad_token_id] if tokenizer.pad_token_id != tokenizer.eos_token_id else None
    responses, finished = [], []
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True).to(device)
            out = model.generate(**enc, do_sample=True, temperature=temperature, top_k=top_k or 0,
                                 # a finished row is filled with end tokens, not pad: the pad id in the
                                 # input would make transformers warn about a missing mask (it has one)
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id,
                                 eos_token_id=tokenizer.eos_token_id, use_cache=True, suppress_tokens=never)
            for row in out[:, enc["input_ids"].shape[1]:].tolist():
                ended = tokenizer.eos_token_id in row
                if ended:
                    row = row[:row.index(tokenizer.eos_token_id)]
                responses.append(tokenizer.decode(row, skip_special_tokens=True))
                finished.append(ended)
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side
    return {"responses": responses, "finished": finished}
