"""Batched sampling with the KV cache, prompts left-padded.

Left padding puts every prompt's last token in the last column, so one forward
pass per new token continues all prompts at once; the attention mask hides the
padding and the KV cache keeps each step to one token's worth of work.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 48, temperature: float = 1.0,
             top_k: int | None = None, batch_size: int = 64, seed: int = 0) -> dict:
    """Sample one response per prompt.

    Returns ``dict(responses=list[str], finished=list[bool])``: the decoded new
    text (without the end token) and whether the model ended it with its end token
    within ``max_new_tokens``.
    """
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("generate() needs a non-empty list of non-empty prompt strings")
    if temperature <= 0:
        raise ValueError("temperature must be positive (use a small value for near-greedy sampling)")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    responses, finished = [], []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True).to(device)
        out = model.generate(**enc, do_sample=True, temperature=temperature, top_k=top_k or 0,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, use_cache=True)
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            ended = tokenizer.eos_token_id in row
            if ended:
                row = row[:row.index(tokenizer.eos_token_id)]
            row = [t for t in row if t != tokenizer.pad_token_id]
            responses.append(tokenizer.decode(row, skip_special_tokens=True))
            finished.append(ended)
    model.train(was_training)
    return {"responses": responses, "finished": finished}
