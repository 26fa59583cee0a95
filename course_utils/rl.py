"""A resumable loop for online RL (notebooks 04 and 05): sample, score, update, repeat.

``train_rl(models, step, prompts, config)`` calls ``step`` once per iteration on that
iteration's prompts; ``step`` does the work of one method (rollout, rewards,
advantages, one or several optimiser steps) and returns its metrics. The loop owns
what every method shares, and reuses ``training``'s pieces for it:

- one AdamW over the trainable ``models`` (``training.make_optimizer``), constant lr;
- seeding: iteration k's prompts, its sampling seed and every other random draw are
  functions of (config.seed, k) only, so a resumed run draws what an uninterrupted
  one would;
- checkpoints written atomically every ``config.checkpoint_every`` iterations and at the
  end (``training``'s writer; not on Ctrl-C, which can land in the middle of an
  iteration's updates: an interrupted run resumes from its last checkpoint): the trainable models, the optimiser, the history
  and the method's small ``state`` (a dict of floats such as a moving-average baseline
  or an adaptive β, recorded in every history row and restored from the last);
- the same-run rule as ``training.train``: a checkpoint is resumed only by the same
  config, step function, prompts, initial weights (trainable and ``frozen`` models) and
  initial state; a finished run is loaded, not retrained; another run's checkpoint is
  refused with what differs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import _checks
from .progress import Progress
from .training import (TrainConfig, _digest, _finished, _restore, _resume, _save_checkpoint, batch_indices,
                       make_optimizer, seed_everything)

_NOT_IN_FINGERPRINT = ("desc", "checkpoint_dir", "checkpoint_every")


@dataclass
class RLConfig:
    iterations: int
    prompts_per_iteration: int
    lr: float = 1e-4
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 5
    desc: str = "RL"

    def __post_init__(self):
        where = "RLConfig"
        for name, minimum in [("iterations", 1), ("prompts_per_iteration", 1), ("seed", 0), ("checkpoint_every", 1)]:
            _checks.integer(where, name, getattr(self, name), minimum)
        _checks.number(where, "lr", self.lr, positive=True)
        _checks.number(where, "max_grad_norm", self.max_grad_norm, positive=True)
        if self.checkpoint_dir is not None:
            _checks.path(where, "checkpoint_dir", self.checkpoint_dir)
            if Path(self.checkpoint_dir).is_file():
                raise ValueError(f"RLConfig: checkpoint_dir={str(self.checkpoint_dir)!r} is a file; "
                                 "pass a directory (it is created if missing) or None")
        _checks.string(where, "desc", self.desc)


def iteration_seed(config: RLConfig, iteration: int) -> int:
    """The seed of iteration ``iteration``: what ``train_rl`` seeds every generator with before
    calling ``step``, and what ``step`` should pass to ``generation.rollout``."""
    if not isinstance(config, RLConfig):
        raise TypeError(f"iteration_seed: config must be an RLConfig, got {type(config).__name__}")
    _checks.integer("iteration_seed", "iteration", iteration, minimum=0)
    return config.seed * 1_000_003 + iteration


def clip_and_step(optimizer, parameters, max_grad_norm: float) -> float:
    """Clip the gradient's norm to ``max_grad_norm``, take the optimiser step, zero the
    gradients; returns the norm before clipping (a diagnostic)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"clip_and_step: optimizer must be a torch optimizer, got {type(optimizer).__name__}")
    _checks.number("clip_and_step", "max_grad_norm", max_grad_norm, positive=True)
    norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def _check_models(where: str, name: str, models) -> torch.nn.ModuleDict:
    if not isinstance(models, dict) or not models:
        raise TypeError(f"{where}: {name} must be a non-empty dict {{name: model}}, got {type(models).__name__}")
    for key, model in models.items():
        _checks.model(where, f"{name}[{key!r}]", model)
    return torch.nn.ModuleDict(models)


def _check_run(where: str, models, step, prompts, config, state, frozen):
    trainable = _check_models(where, "models", models)
    if not callable(step):
        raise TypeError(f"{where}: step must be a function (prompts, optimizer, state, seed) -> metrics, "
                        f"got {type(step).__name__}")
    _checks.sequence(where, "prompts", prompts, "prompt strings")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError(f"{where}: prompts must be non-empty strings")
    if not isinstance(config, RLConfig):
        raise TypeError(f"{where}: config must be an RLConfig, got {type(config).__name__}")
    if config.prompts_per_iteration > len(prompts):
        raise ValueError(f"{where}: config.prompts_per_iteration={config.prompts_per_iteration} is more than the "
                         f"{len(prompts)} prompts")
    state = {} if state is None else state
    if not isinstance(state, dict) or any(not isinstance(k, str) or isinstance(v, bool)
                                          or not isinstance(v, (int, float)) for k, v in state.items()):
        raise TypeError(f"{where}: state must be a dict {{name: float}} (e.g. {{'baseline': 0.0}}) or None")
    frozen_models = _check_models(where, "frozen", frozen) if frozen is not None else None
    return trainable, state, frozen_models


def _fingerprint(trainable, step, prompts, config: RLConfig, state: dict, frozen_models) -> dict:
    """What makes two RL runs the same run (see ``train_rl``)."""
    return {"config": {k: v for k, v in asdict(config).items() if k not in _NOT_IN_FINGERPRINT},
            "objective": f"{getattr(step, '__module__', '')}.{getattr(step, '__qualname__', repr(step))}",
            "data": _digest(list(prompts)),
            "initial weights": _digest(dict(trainable.state_dict())),
            "frozen models": _digest(dict(frozen_models.state_dict())) if frozen_models else None,
            "initial state": _digest(state)}


def finished_rl_run(models: dict, step, prompts, config: RLConfig, state: dict | None = None,
                    frozen: dict | None = None) -> bool:
    """Whether ``config.checkpoint_dir`` holds this very run, finished: what ``train_rl`` with
    the same arguments would load instead of training. Nothing is read into the models."""
    trainable, state, frozen_models = _check_run("finished_rl_run", models, step, prompts, config, state, frozen)
    if config.checkpoint_dir is None:
        raise ValueError("finished_rl_run: config.checkpoint_dir is None; name the run directory to look in")
    return _finished(config.checkpoint_dir, config.iterations,
                     lambda: _fingerprint(trainable, step, prompts, config, state, frozen_models))


def train_rl(models: dict, step, prompts, config: RLConfig, state: dict | None = None,
             frozen: dict | None = None) -> list[dict]:
    """Run ``config.iterations`` iterations of ``step`` and return the history: one dict per
    iteration with ``iteration``, ``step``'s metrics and ``state``'s values after it.

    ``models``: the trainable models by name (e.g. ``{"policy": p}`` or ``{"policy": p,
    "value": v}``), trained in place by one optimiser. ``step(prompts, optimizer, state,
    seed) -> dict of float metrics`` runs one iteration on the list of prompts drawn for
    it (``config.prompts_per_iteration`` of ``prompts``, a fresh seeded permutation per
    epoch), may update ``state`` (a dict of floats) in place, and takes its optimiser
    steps itself (``clip_and_step``); ``seed`` is ``iteration_seed(config, k)``.
    ``frozen``: models that ``step`` reads but does not train (reference, reward model),
    part of the run's fingerprint only. Every model is left in eval mode (RL here runs
    without dropout, so that sampling and training see one policy).
    """
    trainable, state, frozen_models = _check_run("train_rl", models, step, prompts, config, state, frozen)
    ckpt = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    fingerprint = _fingerprint(trainable, step, prompts, config, state, frozen_models) if ckpt else None
    saved, fingerprint, start, history = _resume("train_rl", ckpt, fingerprint)
    optimizer = make_optimizer(trainable, TrainConfig(steps=config.iterations, lr=config.lr))
    if saved is not None:
        _restore("train_rl", ckpt, saved, trainable, optimizer, "these models")
        if history:
            state.update({k: history[-1][k] for k in state})
    trainable.eval()
    if start >= config.iterations:
        print(f"Loaded the finished run from {ckpt / 'checkpoint.pt'} ({start} iterations); nothing was trained. "
              f"Delete {ckpt} to retrain.")
        return history
    if start:
        print(f"Resuming from {ckpt / 'checkpoint.pt'} after {start} of {config.iterations} iterations.")
    bar = Progress(config.iterations, config.desc, unit="iterations", initial=start)
    done = start
    try:
        for k in range(start, config.iterations):
            seed = iteration_seed(config, k)
            seed_everything(seed)
            batch = [prompts[i] for i in batch_indices(len(prompts), config.prompts_per_iteration, config.seed, k)]
            metrics = step(batch, optimizer, state, seed)
            if not isinstance(metrics, dict):
                raise TypeError(f"train_rl: step must return a dict of metrics, returned {type(metrics).__name__}")
            metrics = {m: float(torch.as_tensor(v).detach()) for m, v in metrics.items()}
            done = k + 1
            history.append({"iteration": k, **metrics, **{s: float(v) for s, v in state.items()}})
            bar.update(1, **{m: f"{v:.3f}" for m, v in list(metrics.items())[:2] if m != "n"})
            if ckpt and (done % config.checkpoint_every == 0 or done == config.iterations):
                _save_checkpoint(ckpt, trainable, optimizer, done, history, fingerprint)
    finally:
        bar.close()
        trainable.eval()
    return history
