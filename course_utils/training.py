"""One training loop for every objective in the course.

``train(model, loss_fn, examples, collate, config)`` runs AdamW with warm-up and
cosine decay on batches drawn from ``examples``. The objective is ``loss_fn(model,
batch) -> (loss, metrics)``, so SFT, reward modelling, DPO and ORPO share the loop.

- the device is the model's; bf16 autocast on CUDA, full precision elsewhere;
- seeded: batch k of a run is the same batch however often the run is resumed;
- gradient accumulation: ``config.grad_accum`` micro-batches per optimiser step;
- a progress bar (``progress.Progress``), a one-line summary in headless runs;
- with ``config.checkpoint_dir`` set, a checkpoint is written atomically every
  ``config.checkpoint_every`` steps and on Ctrl-C; calling ``train`` again resumes.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .progress import Progress


@dataclass
class TrainConfig:
    steps: int
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    log_every: int = 10
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    desc: str = "train"


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_indices(n: int, batch_size: int, seed: int, k: int) -> list[int]:
    """Indices of micro-batch ``k``: examples are read in a fresh seeded permutation
    each epoch, so the stream is reproducible and needs no state to resume."""
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} examples")
    per_epoch = n // batch_size
    epoch, j = divmod(k, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return perm[j * batch_size:(j + 1) * batch_size].tolist()


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def make_optimizer(model, config: TrainConfig):
    """AdamW; no weight decay on biases and norms; fused kernels on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=fused)


def _save_checkpoint(path: Path, model, optimizer, step: int, history: list, config: TrainConfig):
    path.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "history": history, "config": asdict(config)}
    tmp = path / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / "checkpoint.pt")  # atomic: a crash leaves the old or the new file


def _load_checkpoint(path: Path, model, optimizer, config: TrainConfig):
    file = path / "checkpoint.pt"
    if not file.exists():
        return 0, []
    state = torch.load(file, map_location=next(model.parameters()).device, weights_only=False)
    if state["config"] != asdict(config):
        raise ValueError(f"{file} was written by a run with another config; delete it or "
                         "choose another checkpoint_dir.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["history"]


def train(model, loss_fn, examples, collate, config: TrainConfig, eval_fn=None, eval_every: int = 0):
    """Train ``model`` in place and return its history: one dict per logged step
    with ``step``, ``lr``, ``loss`` and the metrics ``loss_fn`` returned (and
    ``eval_fn(model)``'s metrics every ``eval_every`` steps)."""
    device = next(model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"
                              and torch.cuda.is_bf16_supported())
    optimizer = make_optimizer(model, config)
    ckpt = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    start, history = _load_checkpoint(ckpt, model, optimizer, config) if ckpt else (0, [])
    if start:
        print(f"Resuming from {ckpt / 'checkpoint.pt'} after {start} of {config.steps} steps.")
    model.train()
    bar = Progress(config.steps, config.desc, unit="steps", initial=start)
    done = start  # optimiser steps taken, what a checkpoint records
    try:
        for step in range(start, config.steps):
            seed_everything(config.seed * 1_000_003 + step)  # dropout etc.: the same on a resumed run
            optimizer.zero_grad(set_to_none=True)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            totals = {}
            for micro in range(config.grad_accum):
                idx = batch_indices(len(examples), config.batch_size, config.seed, step * config.grad_accum + micro)
                batch = to_device(collate([examples[i] for i in idx]), device)
                with autocast:
                    loss, metrics = loss_fn(model, batch)
                (loss / config.grad_accum).backward()
                for k, v in {"loss": loss, **metrics}.items():
                    totals[k] = totals.get(k, 0.0) + float(torch.as_tensor(v).detach()) / config.grad_accum
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            done = step + 1
            if eval_fn is not None and eval_every and done % eval_every == 0:
                model.eval()
                totals.update(eval_fn(model))
                model.train()
            if step % config.log_every == 0 or done == config.steps or (eval_every and done % eval_every == 0):
                history.append({"step": step, "lr": lr_at(step, config), **totals})
            bar.update(1, loss=f"{totals['loss']:.3f}")
            if ckpt and done % config.checkpoint_every == 0:
                _save_checkpoint(ckpt, model, optimizer, done, history, config)
    except KeyboardInterrupt:
        if ckpt:
            _save_checkpoint(ckpt, model, optimizer, done, history, config)
            print(f"Interrupted after {done} steps; saved {ckpt / 'checkpoint.pt'}. Run again to resume.")
        raise
    finally:
        bar.close()
    if ckpt:
        _save_checkpoint(ckpt, model, optimizer, config.steps, history, config)
    model.eval()
    return history
