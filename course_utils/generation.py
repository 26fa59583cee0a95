"""Batched sampling with the KV cache, prompts left-padded: text for reading, rollouts for RL.

Left padding puts every prompt's last token in the last column, so one forward
pass per new token continues all prompts at once; the attention mask hides the
padding, positions count real tokens only (``cumsum(mask) - 1``, so a padded
prompt sees the positions it would see alone), and the KV cache keeps each step
to one token's worth of work.

``rollout`` is the sampler; it returns the tokens and, from the same forward
passes, the log-probabilities that RL needs. ``generate`` decodes a rollout into
text. ``response_logprobs`` is the training-time forward over a rollout: the same
tokens, mask and positions, so that it gives the same numbers as the sampler did.

Which log-probabilities: ``rollout`` records log π(y_t | x, y_<t) of the model's
own distribution (softmax of its logits at temperature 1, nothing removed), because
that is what a policy-gradient loss differentiates, the PPO ratio compares, and the
KL to a reference measures. The token itself is drawn from the *processed*
distribution (temperature, top-k, top-p). With the defaults (temperature 1, no
top-k or top-p) the two are one, which is how RL samples: with any other setting
the samples come from a distribution that is not π, and the log-probs recorded
are not those of the distribution sampled from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _checks, gpu
from .logprobs import token_logprobs


@dataclass
class Rollout:
    """A batch of sampled responses, B rows, P prompt columns (left-padded), T response columns.

    - ``input_ids`` [B, P + T]: prompt then response; after a response's end token,
      the pad token;
    - ``attention_mask`` [B, P + T]: 1 on real prompt tokens and on response tokens;
    - ``response_mask`` [B, T]: 1 on the response's tokens, its end token included;
    - ``logprobs`` [B, T] (float32): log π(y_t | x, y_<t) of each response token under
      the sampling model at temperature 1 (0 where ``response_mask`` is 0);
    - ``finished`` [B] (bool): whether the response ended with the end token;
    - ``prompt_length``: P, so ``input_ids[:, P:]`` are the responses.
    """
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    logprobs: torch.Tensor
    finished: torch.Tensor
    prompt_length: int

    @property
    def responses(self) -> torch.Tensor:
        """[B, T]: the response tokens (``input_ids[:, P:]``)."""
        return self.input_ids[:, self.prompt_length:]

    def select(self, rows) -> "Rollout":
        """The rollout of the rows ``rows`` (a list or 1-D tensor of row indices, e.g. a minibatch)."""
        index = torch.as_tensor(rows, dtype=torch.long) if not torch.is_tensor(rows) else rows
        if index.dim() != 1 or index.is_floating_point() or not len(index):
            raise ValueError(f"Rollout.select: rows must be a non-empty list (or 1-D tensor) of row indices, got {rows!r}")
        if index.min() < -len(self.finished) or index.max() >= len(self.finished):
            raise ValueError(f"Rollout.select: rows must be in [0, {len(self.finished)}), got {index.tolist()}")
        index = index.to(self.input_ids.device)
        return Rollout(self.input_ids[index], self.attention_mask[index], self.response_mask[index],
                       self.logprobs[index], self.finished[index], self.prompt_length)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only: ``cumsum(mask) - 1``, 0 on left padding.

    attention_mask [B, L] -> [B, L]. A left-padded prompt then gets the positions it
    would get alone, which is what makes a padded batch give every row its own answer."""
    _checks.tensor("positions", "attention_mask", attention_mask, dims=2, ids=True)
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _check_sampling(where: str, temperature, top_k, top_p):
    _checks.number(where, "temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"{where}: temperature must be positive, got {temperature} "
                         "(use a small value for near-greedy sampling)")
    if top_k is not None:
        _checks.integer(where, "top_k", top_k, minimum=1)
    if top_p is not None:
        _checks.number(where, "top_p", top_p)
        if not 0 < top_p <= 1:
            raise ValueError(f"{where}: top_p must be in (0, 1], got {top_p}")


def _check_prompts(where: str, model, tokenizer, prompts, max_new_tokens) -> list[list[int]]:
    """Every argument that depends on the prompts, checked; returns their token ids."""
    _checks.model(where, "model", model)
    _checks.tokenizer(where, "tokenizer", tokenizer)
    if isinstance(prompts, str):
        raise TypeError(f"{where}: prompts must be a list of strings, got one string; wrap it in a list")
    if isinstance(prompts, (bytes, dict)) or not hasattr(prompts, "__len__"):
        raise TypeError(f"{where}: prompts must be a list of strings, got {type(prompts).__name__}")
    if not len(prompts) or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError(f"{where}() needs a non-empty list of non-empty prompt strings (prompts)")
    _checks.integer(where, "max_new_tokens", max_new_tokens, minimum=1)
    encoded = tokenizer(list(prompts), verbose=False)["input_ids"]
    _checks.vocabulary(where, "tokenizer", torch.tensor([max(ids, default=0) for ids in encoded]), model)
    longest = max(len(ids) for ids in encoded)
    context = _checks.context_length(model)
    if context and longest + max_new_tokens > context:
        raise ValueError(f"{where}: max_new_tokens={max_new_tokens} plus the longest prompt ({longest} tokens) "
                         f"exceeds the model's context of {context} tokens; "
                         + (f"lower max_new_tokens to at most {context - longest}" if longest < context
                            else "shorten the prompt"))
    return encoded


def _left_pad(encoded: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in encoded)
    ids = torch.tensor([[pad_id] * (width - len(row)) + row for row in encoded], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in encoded], device=device)
    return ids, mask


def _processed(logits: torch.Tensor, temperature: float, top_k, top_p, never) -> torch.Tensor:
    """The logits sampled from: banned tokens removed, divided by the temperature, then
    only the ``top_k`` most likely tokens, then the smallest set of tokens whose
    probability reaches ``top_p``."""
    if never is not None:
        logits = logits.index_fill(-1, torch.tensor(never, device=logits.device), -float("inf"))
    if temperature != 1:  # dividing by 1 changes no number: no copy of the logits for it
        logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)  # mass strictly above each token
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, -float("inf"))
    return logits


@torch.no_grad()
def rollout(model, tokenizer, prompts: list[str], max_new_tokens: int = 48, temperature: float = 1.0,
            top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> Rollout:
    """Sample one response per prompt, in one batch, and return it as a ``Rollout``.

    Each step feeds the last sampled token with the KV cache, draws the next token
    from the processed distribution (see ``_processed``), and records its log-prob
    under the model at temperature 1 from the same logits (no second forward pass).
    A row stops at the end token (which belongs to the response); the batch stops
    when every row has. A pad token distinct from the end token is never sampled.

    Runs in eval mode (no dropout; the model's mode is restored afterwards, also
    when sampling fails), seeded by ``seed``. Every argument is checked first, the
    longest prompt plus ``max_new_tokens`` included (it must fit the context).
    """
    encoded = _check_prompts("rollout", model, tokenizer, prompts, max_new_tokens)
    _check_sampling("rollout", temperature, top_k, top_p)
    _checks.integer("rollout", "seed", seed, minimum=0)
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    pad = eos if pad is None else pad
    # a pad token of its own is for batching only: never sample it (GPT-2 pads with its end token instead)
    never = [pad] if pad != eos else None
    prompt_ids, prompt_mask = _left_pad(encoded, pad, device)
    batch = len(encoded)
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        mask, pos = prompt_mask, positions(prompt_mask)
        with gpu.autocast(device):  # bf16 on CUDA; on the CPU nothing changes
            out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=pos, use_cache=True)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        tokens, logps, alive = [], [], []
        for _ in range(max_new_tokens):
            logits = out.logits[:, -1].float()                                 # [B, V]
            probs = _processed(logits, temperature, top_k, top_p, never).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            token = torch.where(done, torch.full_like(token, pad), token)      # a finished row is padded
            logps.append(logits.log_softmax(-1).gather(-1, token[:, None]).squeeze(-1) * ~done)
            alive.append(~done)
            tokens.append(token)
            done = done | (token == eos)
            if done.all():
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            pos = pos[:, -1:] + 1
            with gpu.autocast(device):
                out = model(input_ids=token[:, None], attention_mask=mask, position_ids=pos,
                            past_key_values=out.past_key_values, use_cache=True)
    finally:
        model.train(was_training)
    response_mask = torch.stack(alive, 1).long()
    return Rollout(input_ids=torch.cat([prompt_ids, torch.stack(tokens, 1)], dim=1),
                   attention_mask=torch.cat([prompt_mask, response_mask], dim=1),
                   response_mask=response_mask, logprobs=torch.stack(logps, 1), finished=done,
                   prompt_length=prompt_ids.shape[1])


def _check_rollout(where: str, value):
    if not isinstance(value, Rollout):
        raise TypeError(f"{where}: rollout must be a Rollout (from generation.rollout), got {type(value).__name__}")
    return value


def response_logprobs(model, rollout: Rollout, entropy: bool = False):
    """log π(y_t | x, y_<t) of every response token of ``rollout`` under ``model``: [B, T].

    One forward pass over ``rollout.input_ids`` with its attention mask and the same
    positions as the sampler (``positions``), so for the sampling model it equals
    ``rollout.logprobs`` (to float precision). The logits at column P - 1 + t predict
    response token t. Gradients flow (wrap in ``torch.no_grad()`` for a frozen
    reference); the model's mode is the caller's (the course keeps RL models in eval
    mode: dropout would make the sampler's and the trainer's numbers differ). 0 where
    ``rollout.response_mask`` is 0.

    With ``entropy=True`` returns ``(logprobs, entropy)``, the second [B, T]: the
    entropy -Σ_v π(v) log π(v) of the next-token distribution at each response position.
    """
    _checks.model("response_logprobs", "model", model)
    _check_rollout("response_logprobs", rollout)
    if not isinstance(entropy, bool):
        raise TypeError(f"response_logprobs: entropy must be True or False, got {entropy!r}")
    _checks.vocabulary("response_logprobs", "rollout.input_ids", rollout.input_ids, model)
    p = rollout.prompt_length
    logits = model(input_ids=rollout.input_ids, attention_mask=rollout.attention_mask,
                   position_ids=positions(rollout.attention_mask)).logits[:, p - 1:-1]   # [B, T, V]
    logps = token_logprobs(logits, rollout.responses) * rollout.response_mask
    if not entropy:
        return logps
    logp_all = logits.float().log_softmax(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1) * rollout.response_mask
    return logps, ent


def decode(tokenizer, rollout: Rollout) -> list[str]:
    """The text of each response of ``rollout``, without its end token."""
    _checks.tokenizer("decode", "tokenizer", tokenizer)
    _check_rollout("decode", rollout)
    lengths = rollout.response_mask.sum(-1) - rollout.finished.long()   # the end token is not text
    return [tokenizer.decode(row[:n].tolist(), skip_special_tokens=True)
            for row, n in zip(rollout.responses, lengths)]


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 48, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, batch_size: int = 64, seed: int = 0) -> dict:
    """Sample one response per prompt, as text: ``rollout`` in batches of ``batch_size``, decoded.

    Returns ``dict(responses=list[str], finished=list[bool])``: the decoded new
    text (without the end token) and whether the model ended it with its end token
    within ``max_new_tokens``. A pad token distinct from the end token is never
    sampled (it only fills batches), so padding never shows up inside a response.

    Every argument is checked before anything runs, the longest prompt plus
    ``max_new_tokens`` included (it must fit the model's context); the model's
    train/eval mode is restored afterwards, also when generation fails. Batch k is
    seeded with ``seed + k``.
    """
    _check_prompts("generate", model, tokenizer, prompts, max_new_tokens)
    _check_sampling("generate", temperature, top_k, top_p)
    _checks.integer("generate", "batch_size", batch_size, minimum=1)
    _checks.integer("generate", "seed", seed, minimum=0)
    responses, finished = [], []
    for k, i in enumerate(range(0, len(prompts), batch_size)):
        out = rollout(model, tokenizer, list(prompts[i:i + batch_size]), max_new_tokens, temperature, top_k, top_p,
                      seed=seed + k)
        responses += decode(tokenizer, out)
        finished += out.finished.tolist()
    return {"responses": responses, "finished": finished}
