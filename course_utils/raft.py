"""Reward-ranked fine-tuning (RAFT; Dong et al. 2023), notebook 03's rounds as a step of ``rl.train_rl``.

One round: sample m responses per prompt from the current policy, keep the one the reward model
scores highest (finished responses only), and fine-tune the policy on the kept responses with
notebook 01's SFT loss (``losses.sft_step``, prompt masked). Best-of-m, distilled into the weights.

As a ``step`` of ``train_rl`` a round is checkpointed like any RL iteration, so a run of several
rounds resumes after the last finished one, and a finished run is loaded without sampling again.
Each round fine-tunes with ``training.train`` and a fresh AdamW, as notebook 03 does; the loop's
own optimiser is not used.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from . import _checks
from .batching import collate_sft, encode_sft_dataset
from .losses import sft_step
from .training import TrainConfig, train

SAMPLING_SEED = 1000   # round k samples with seed SAMPLING_SEED + seed (notebook 03: 1000 + k)


def keep_top_k(rewards, finished, samples_per_prompt: int, k: int = 1) -> np.ndarray:
    """RAFT's filter (Dong et al. 2023: sample, rank by reward, keep the best, fine-tune): what to fine-tune on.

    rewards [N] (numbers), finished [N] (bools), N = prompts × ``samples_per_prompt``, each prompt's samples
    consecutive -> [N] bool: True for each prompt's ``k`` highest-reward *finished* samples. An unfinished
    sample is never kept, so a prompt with fewer than ``k`` finished samples keeps those it has. Among equal
    rewards the earlier sample wins."""
    where = "keep_top_k"
    rewards = np.asarray(_checks.finite(where, "rewards", np.asarray(rewards, dtype=float)))
    finished = np.asarray(finished)
    if rewards.ndim != 1 or finished.shape != rewards.shape or finished.dtype != bool:
        raise ValueError(f"{where}: rewards and finished must be [N] arrays of one length, finished of bools; "
                         f"got shapes {rewards.shape} and {finished.shape} (finished {finished.dtype})")
    m = _checks.integer(where, "samples_per_prompt", samples_per_prompt, minimum=1)
    _checks.integer(where, "k", k, minimum=1)
    if len(rewards) % m or k > m:
        raise ValueError(f"{where}: rewards has {len(rewards)} entries for samples_per_prompt={m} and k={k}; "
                         f"N must be a multiple of samples_per_prompt, and k at most samples_per_prompt")
    ranked = np.where(finished, rewards, -np.inf).reshape(-1, m)
    top = np.argsort(-ranked, axis=-1, kind="stable")[:, :k]
    keep = np.zeros(ranked.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    return keep.reshape(-1) & finished


def raft_step(policy, reward_model, tokenizer, prompts, samples_per_prompt: int = 8, max_new_tokens: int = 64,
              lr: float = 3e-4, max_length: int = 96):
    """One RAFT round, as a ``step`` for ``rl.train_rl`` with ``models={"policy": policy}``:

    1. ``samples_per_prompt`` responses to every prompt of ``prompts`` (each prompt's samples consecutive,
       ``generation.generate`` at temperature 1, seed ``SAMPLING_SEED + seed``);
    2. each sample scored by ``reward_model``; per prompt, the highest-scoring *finished* response is kept
       (an unfinished or empty one never is);
    3. ``training.train`` with the SFT loss on the kept responses (encoded to ``max_length`` tokens):
       max(10, kept // 4) steps of min(32, kept), learning rate ``lr`` (2 warm-up steps, cosine), seeded by
       ``seed``.

    Every round samples all of ``prompts``, in their order: ``train_rl`` must be given the same prompts with
    ``prompts_per_iteration=len(prompts)`` (its draw only permutes them; the round puts them back in order).
    Returns ``step(prompts, optimizer, state, seed) -> metrics``: ``reward`` (mean over all samples),
    ``kept_reward`` (mean over the kept ones), ``kept`` (how many), ``loss`` (the last SFT step's), ``ended``."""
    from .generation import generate
    from .reward_model import score_responses

    _checks.model("raft_step", "policy", policy)
    _checks.model("raft_step", "reward_model", reward_model)
    _checks.tokenizer("raft_step", "tokenizer", tokenizer)
    _checks.sequence("raft_step", "prompts", prompts, "prompt strings")
    if isinstance(prompts, str) or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("raft_step: prompts must be a list of non-empty prompt strings")
    _checks.integer("raft_step", "samples_per_prompt", samples_per_prompt, minimum=1)
    _checks.integer("raft_step", "max_new_tokens", max_new_tokens, minimum=1)
    _checks.number("raft_step", "lr", lr, positive=True)
    _checks.integer("raft_step", "max_length", max_length, minimum=2)
    prompts = list(prompts)
    collate = partial(collate_sft, pad_token_id=tokenizer.pad_token_id)

    def step(drawn, optimizer, state, seed):
        if sorted(drawn) != sorted(prompts):
            raise ValueError("raft_step: train_rl drew other prompts than the round's; pass raft_step's prompts to "
                             "train_rl with prompts_per_iteration=len(prompts)")
        expanded = [p for p in prompts for _ in range(samples_per_prompt)]
        out = generate(policy, tokenizer, expanded, max_new_tokens=max_new_tokens, temperature=1.0,
                       seed=SAMPLING_SEED + seed)
        reward = score_responses(reward_model, tokenizer, expanded, out["responses"])
        finished = np.array(out["finished"], dtype=bool)
        best = np.flatnonzero(keep_top_k(reward, finished, samples_per_prompt))
        kept = [{"prompt": expanded[i], "completion": out["responses"][i]} for i in best
                if out["responses"][i].strip()]
        if not kept:
            raise ValueError("raft_step: no prompt has a finished, non-empty response to keep; raise max_new_tokens")
        rows = encode_sft_dataset(tokenizer, kept, max_length)
        config = TrainConfig(steps=max(10, len(rows) // 4), batch_size=min(32, len(rows)), lr=lr, warmup_steps=2,
                             log_every=5, seed=seed, desc=f"RAFT round (seed {seed})")
        history = train(policy, sft_step, rows, collate, config)
        return {"reward": float(reward.mean()), "kept_reward": float(reward[best].mean()), "kept": len(rows),
                "loss": history[-1]["loss"], "ended": float(finished.mean())}

    step.__qualname__ = (f"raft_step(prompts={len(prompts)}, samples_per_prompt={samples_per_prompt}, "
                         f"max_new_tokens={max_new_tokens}, lr={lr}, max_length={max_length})")
    return step
