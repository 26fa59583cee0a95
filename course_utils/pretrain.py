"""Rebuild the course's tiny base model from scratch.

    python -m course_utils.pretrain            # writes course_utils/checkpoints/tiny-base

Trains a byte-level BPE tokenizer and a GPT-2-architecture model on the training
split of the corpus (texts only: no instructions, so the base model continues text
but does not follow instructions), then writes the held-out loss to ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from . import _checks
from .data import load_corpus
from .models import TINY_BASE, load_policy, new_tiny_model, save_small, train_tokenizer
from .training import TrainConfig, train


def pack(texts, tokenizer, block: int) -> torch.Tensor:
    """Concatenate ``<eos> text <eos> text ...`` and cut it into blocks of ``block`` tokens."""
    _checks.sequence("pack", "texts", texts, "texts")
    _checks.tokenizer("pack", "tokenizer", tokenizer)
    _checks.integer("pack", "block", block, minimum=2)
    ids = []
    for t in texts:
        ids += [tokenizer.eos_token_id] + tokenizer(t, verbose=False)["input_ids"]
    ids.append(tokenizer.eos_token_id)
    n = len(ids) // block
    if n == 0:
        raise ValueError(f"pack: the texts make {len(ids)} tokens, less than one block of block={block}; "
                         "pass more texts or a smaller block")
    return torch.tensor(ids[:n * block]).view(n, block)


@torch.no_grad()
def heldout_loss(model, blocks: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats per token) over ``blocks`` ([N, T] token ids,
    as from ``pack``). Runs in eval mode and restores the model's mode."""
    _checks.model("heldout_loss", "model", model)
    _checks.tensor("heldout_loss", "blocks", blocks, dims=2, ids=True)
    _checks.integer("heldout_loss", "batch_size", batch_size, minimum=1)
    if blocks.shape[0] == 0 or blocks.shape[1] < 2:
        raise ValueError(f"heldout_loss: blocks must hold at least one block of >= 2 tokens, "
                         f"got shape {tuple(blocks.shape)}")
    _checks.vocabulary("heldout_loss", "blocks", blocks, model)
    _checks.within_context("heldout_loss", blocks.shape[1], model, f"blocks of {blocks.shape[1]} tokens exceed",
                           "pack them with block")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i in range(0, len(blocks), batch_size):
            x = blocks[i:i + batch_size].to(next(model.parameters()).device)
            out = model(input_ids=x, labels=x)
            n = x.numel() - len(x)
            total += out.loss.item() * n
            count += n
    finally:
        model.train(was_training)
    return total / count


def lm_loss(model, batch):
    """``loss_fn`` for pretraining: the next-token loss over every token of ``batch["input_ids"]``."""
    if not isinstance(batch, dict) or not torch.is_tensor(batch.get("input_ids")):
        raise ValueError(f"lm_loss: batch must be a dict with an 'input_ids' tensor, got "
                         f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
    return model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss, {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", default=str(TINY_BASE))
    parser.add_argument("--checkpoint-dir", default="runs/pretrain")
    args = parser.parse_args(argv)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         warmup_steps=min(100, args.steps), weight_decay=0.1, checkpoint_dir=args.checkpoint_dir, checkpoint_every=250,
                         desc="pretrain")  # made first: a bad flag is refused before minutes of work

    t0 = time.time()
    train_texts = load_corpus("train")["text"]
    tokenizer = train_tokenizer(train_texts)
    block = tokenizer.model_max_length
    train_blocks = pack(train_texts, tokenizer, block)
    val_blocks = pack(load_corpus("validation")["text"], tokenizer, block)
    model = new_tiny_model(tokenizer)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{train_blocks.numel():,} training tokens in {len(train_blocks)} blocks of {block}")
    history = train(model, lm_loss, [{"input_ids": b} for b in train_blocks],
                    lambda rows: {"input_ids": torch.stack([r["input_ids"] for r in rows])}, config)
    save_small(model, tokenizer, args.out)
    shipped, _ = load_policy(args.out)  # measure what ships
    metrics = {"validation_loss": heldout_loss(shipped, val_blocks),
               "train_loss_last": history[-1]["loss"], "steps": args.steps, "batch_size": args.batch_size,
               "block_size": block, "train_tokens": train_blocks.numel(), "seconds": round(time.time() - t0),
               "torch_threads": torch.get_num_threads()}
    metrics["validation_perplexity"] = math.exp(metrics["validation_loss"])
    tmp = Path(args.out) / f".metrics.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, Path(args.out) / "metrics.json")  # atomic, like the model files beside it
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
