"""The reward model: the SFT model's backbone with a scalar head (InstructGPT's step 2).

    r_φ(x, y) = w · h_φ(x, y)_T

where h_φ(x, y)_T is the backbone's last hidden state at the **last real token** of
``prompt + response + <eos>`` (the end token: by then the model has read the whole
response). It is trained on preference pairs with the Bradley–Terry loss
(``losses.bradley_terry_loss``), so only differences of rewards mean anything:
adding a constant to every reward changes no probability.

The model is a ``GPT2ForSequenceClassification`` (``num_labels=1``), so it saves and
loads with ``save_pretrained``/``from_pretrained`` and TRL's ``RewardTrainer``
accepts it. The course reads the reward itself rather than through that class's
``logits``: it finds the last real token from the attention mask, never from the
pad token's id, and gives each token its true position, so padding on either side
gives the same reward, and GPT-2's "pad with the end token" does not hide the
response's own end token.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from . import _checks
from .batching import collate_sft, encode_prompt_completion
from .losses import bradley_terry_loss


def reward_model_from_policy(policy, seed: int = 0):
    """A reward model whose backbone is a copy of ``policy``'s (the SFT model) and whose
    scalar head ``score`` is new (seeded; transformers' N(0, 0.02) init), in eval mode
    (``train`` switches to training mode itself). ``policy`` is left unchanged."""
    if not hasattr(policy, "base_model") or not hasattr(policy, "config"):
        raise TypeError(f"reward_model_from_policy: policy must be a transformers causal LM, "
                        f"got {type(policy).__name__}")
    config = policy.config.to_dict()
    config.update(num_labels=1, architectures=None, id2label={0: "reward"}, label2id={"reward": 0})
    config = type(policy.config).from_dict(config)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.base_model.load_state_dict(policy.base_model.state_dict())
    return model.to(next(policy.parameters()).device).eval()  # as from_pretrained: eval mode


def rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """r(x, y) of each sequence: [B, T] ids and mask (padding on either side) -> [B].

    The head reads the last position whose mask is 1. Positions count real tokens only
    (``cumsum(mask) - 1``), so left padding shifts nothing."""
    _checks.tensor("rewards", "input_ids", input_ids, ids=True)
    _checks.tensor("rewards", "attention_mask", attention_mask, ids=True)
    if input_ids.dim() != 2 or input_ids.shape != attention_mask.shape:
        raise ValueError(f"rewards: input_ids and attention_mask must share one [B, T] shape, got "
                         f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
    if (attention_mask.sum(-1) == 0).any():
        raise ValueError("rewards: a sequence has no real token (its attention_mask is all zero)")
    _checks.vocabulary("rewards", "input_ids", input_ids, model)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=positions).last_hidden_state        # [B, T, H]
    last = (attention_mask.long() * torch.arange(input_ids.shape[1], device=input_ids.device)).argmax(-1)
    return model.score(hidden[torch.arange(len(hidden), device=hidden.device), last]).squeeze(-1).float()


def reward_step(model, batch: dict):
    """``loss_fn`` for ``training.train`` on batches from ``collate_preference``: chosen and
    rejected go through the model in one forward pass ([2B, T]); Bradley–Terry loss.
    Metrics: ``accuracy`` (r_w > r_l) and ``margin`` (mean r_w - r_l)."""
    needed = [f"{side}_{key}" for side in ("chosen", "rejected") for key in ("input_ids", "attention_mask")]
    if not isinstance(batch, dict) or any(k not in batch for k in needed):
        raise ValueError(f"reward_step: batch must be a dict from collate_preference with {needed}, got "
                         f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    mask = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])
    r_chosen, r_rejected = rewards(model, ids, mask).chunk(2)
    return bradley_terry_loss(r_chosen, r_rejected)


@torch.no_grad()
def score_responses(model, tokenizer, prompts, responses, max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """r(x, y) for each prompt/response pair, in eval mode (the model's mode is restored).

    Each pair is encoded as in training (``encode_prompt_completion``: prompt, response,
    end token, cut to ``max_length``). An empty response is scored as the end token alone
    right after the prompt (a policy can produce one)."""
    _checks.tokenizer("score_responses", "tokenizer", tokenizer)
    _checks.integer("score_responses", "batch_size", batch_size, minimum=1)
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("score_responses: prompts and responses must be lists of strings, not one string")
    if len(prompts) != len(responses):
        raise ValueError(f"score_responses: prompts ({len(prompts)}) and responses ({len(responses)}) "
                         "must have the same length")
    seqs = []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not isinstance(p, str) or not isinstance(r, str):
            raise TypeError(f"score_responses: prompts and responses must be strings (item {i})")
        if r.strip():
            seqs.append(encode_prompt_completion(tokenizer, p, r, max_length, f"pair {i}")["input_ids"])
        else:  # an empty response: the end token right after the prompt
            prompt_ids = tokenizer(p, verbose=False)["input_ids"]
            if not p.strip() or len(prompt_ids) >= max_length:
                raise ValueError(f"score_responses: prompt {i} is empty or longer than max_length={max_length}")
            seqs.append(prompt_ids + [tokenizer.eos_token_id])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros(len(seqs))
    try:
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate_sft([{"input_ids": seqs[i], "completion_mask": [0] * len(seqs[i])} for i in chunk],
                                tokenizer.pad_token_id)
            out[chunk] = rewards(model, batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu().numpy()
    finally:
        model.train(was_training)
    return out
