"""One training loop for every objective in the course.

``train(model, loss_fn, examples, collate, config)`` runs AdamW with warm-up and
cosine decay on batches drawn from ``examples``. The objective is ``loss_fn(model,
batch) -> (loss, metrics)``, so SFT, reward modelling, DPO and ORPO share the loop.

- the device is the model's; on CUDA autocast (bf16 where the card has it natively, fp16 with
  loss scaling on a T4: ``gpu.precision``), TF32, fused AdamW (``gpu``) and, opt-in,
  ``torch.compile`` (``config.compile``); full precision elsewhere;
- seeded: batch k of a run is the same batch however often the run is resumed;
  opt-in, batches of examples of similar length, to cut padding (``config.group_by_length``);
- gradient accumulation: ``config.grad_accum`` micro-batches per optimiser step;
- a progress bar (``progress.Progress``), a one-line summary in headless runs;
- with ``config.checkpoint_dir`` set, a checkpoint is written atomically every
  ``config.checkpoint_every`` steps and on Ctrl-C; calling ``train`` again resumes
  the same run (see ``train`` for what "the same" means).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import pickle
import random
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import _checks, gpu
from ._checks import CheckpointError
from .progress import Progress

# TrainConfig fields that do not change what a run computes: a checkpoint is reused across them
# (compile changes how fast, and the last bits of the numbers on the GPU, not what is computed)
_NOT_IN_FINGERPRINT = ("desc", "checkpoint_dir", "checkpoint_every", "compile")
# TrainConfig fields added after checkpoints were written, with the value those runs had: such a checkpoint is
# still the same run as one made now with that value
_ADDED_FIELDS = {"group_by_length": False}
GROUP_POOL = 50  # group_by_length: batches drawn from pools of 50 batches' worth of examples, as transformers does


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
    group_by_length: bool = False
    compile: bool = False

    def __post_init__(self):
        """Refuse a config that cannot train, when it is made rather than steps into the loop."""
        where = "TrainConfig"
        for name, minimum in [("steps", 1), ("batch_size", 1), ("grad_accum", 1), ("warmup_steps", 0),
                              ("seed", 0), ("log_every", 1), ("checkpoint_every", 1)]:
            _checks.integer(where, name, getattr(self, name), minimum)
        _checks.number(where, "lr", self.lr, positive=True)
        _checks.number(where, "weight_decay", self.weight_decay, nonnegative=True)
        _checks.number(where, "max_grad_norm", self.max_grad_norm, positive=True)
        if self.warmup_steps > self.steps:
            raise ValueError(f"TrainConfig: warmup_steps={self.warmup_steps} is more than steps={self.steps}; "
                             "the learning rate would never reach lr")
        if self.checkpoint_dir is not None:
            _checks.path(where, "checkpoint_dir", self.checkpoint_dir)
            if Path(self.checkpoint_dir).is_file():
                raise ValueError(f"TrainConfig: checkpoint_dir={str(self.checkpoint_dir)!r} is a file; "
                                 "pass a directory (it is created if missing) or None")
        _checks.string(where, "desc", self.desc)
        for name in ("group_by_length", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{where}: {name} must be True or False, got {getattr(self, name)!r}")


def seed_everything(seed: int):
    """Seed Python's, NumPy's and PyTorch's generators (NumPy's with ``seed`` modulo 2**32, all it takes)."""
    _checks.integer("seed_everything", "seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batch_indices(n: int, batch_size: int, seed: int, k: int, lengths=None) -> list[int]:
    """Indices of micro-batch ``k``: examples are read in a fresh seeded permutation
    each epoch, so the stream is reproducible and needs no state to resume.

    With ``lengths`` (one int per example), batches hold examples of similar length, so a
    padded batch wastes little: the epoch's permutation is cut into pools of ``GROUP_POOL``
    batches, each pool sorted by length and cut into batches, and the epoch's batches are
    shuffled (seeded). Every example is still read once per epoch; only the company it keeps
    changes."""
    for name, value, minimum in [("n", n, 1), ("batch_size", batch_size, 1), ("seed", seed, 0), ("k", k, 0)]:
        _checks.integer("batch_indices", name, value, minimum)
    if batch_size > n:
        raise ValueError(f"batch_indices: batch_size {batch_size} is larger than the {n} examples")
    if lengths is not None and (isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__len__")
                                or len(lengths) != n):
        raise ValueError(f"batch_indices: lengths must hold one length per example ({n}), "
                         f"got {len(lengths) if hasattr(lengths, '__len__') else type(lengths).__name__}")
    per_epoch = n // batch_size
    epoch, j = divmod(k, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if lengths is None:
        return perm[j * batch_size:(j + 1) * batch_size].tolist()
    used, pool = perm[:per_epoch * batch_size].tolist(), GROUP_POOL * batch_size
    grouped = [i for start in range(0, len(used), pool)
               for i in sorted(used[start:start + pool], key=lambda i: -lengths[i])]   # stable: ties keep their order
    order = torch.randperm(per_epoch, generator=torch.Generator().manual_seed(seed * 100_003 + epoch + 1)).tolist()
    return grouped[order[j] * batch_size:(order[j] + 1) * batch_size]


def example_length(example) -> int:
    """The padded length an example brings to a batch: its longest ``*input_ids`` list (a preference pair's
    longer response), what ``group_by_length`` sorts by."""
    return _example_length("example_length", example)


def _example_length(where: str, example) -> int:
    if not isinstance(example, dict) or not any(key.endswith("input_ids") for key in example):
        raise ValueError(f"{where}: group_by_length needs encoded examples (dicts with input_ids, or "
                         f"chosen_input_ids and rejected_input_ids), got {type(example).__name__}"
                         + (f" with keys {sorted(example)}" if isinstance(example, dict) else ""))
    return max(len(value) for key, value in example.items() if key.endswith("input_ids"))


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    _checks.integer("lr_at", "step", step, minimum=0)
    _check_config("lr_at", config)
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _check_config(where: str, config):
    if not isinstance(config, TrainConfig):
        raise TypeError(f"{where}: config must be a TrainConfig, got {type(config).__name__}")


def to_device(batch: dict, device) -> dict:
    """``batch`` (a dict) with every tensor moved to ``device``."""
    if not isinstance(batch, dict):
        raise TypeError(f"to_device: batch must be a dict of tensors (what collate returns), "
                        f"got {type(batch).__name__}")
    _checks.device("to_device", "device", device)
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def make_optimizer(model, config: TrainConfig):
    """AdamW; no weight decay on biases and norms; fused kernels on CUDA."""
    _checks.model("make_optimizer", "model", model)
    _check_config("make_optimizer", config)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("make_optimizer: model has no trainable parameters (all have requires_grad=False)")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=fused)


def _feed(h, obj):
    """Feed a canonical serialisation of ``obj`` to the hash ``h``: dicts by sorted key, lists
    and tuples item by item (lists of ints in one go), tensors and arrays by dtype, shape and bytes."""
    if isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for key in sorted(obj, key=str):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        try:
            h.update(b"I%d" % len(obj) + array("q", obj).tobytes())  # the common case: token ids
        except (TypeError, OverflowError):
            h.update(b"[%d" % len(obj))
            for item in obj:
                _feed(h, item)
    elif torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif obj is None or isinstance(obj, (str, bytes, numbers.Number)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        h.update(pickle.dumps(obj))


def _digest(*objs) -> str:
    h = hashlib.sha256()
    for obj in objs:
        _feed(h, obj)
    return h.hexdigest()


def _run_fingerprint(model, loss_fn, examples, first_batch, config: TrainConfig) -> dict:
    """What makes two runs the same run: the config (less the fields that change nothing),
    the objective's qualified name, every training example, the first collated batch (so a
    change in ``collate``, e.g. ``mask_prompt``, counts) and the model's initial weights."""
    return {"config": {k: v for k, v in asdict(config).items() if k not in _NOT_IN_FINGERPRINT},
            "objective": f"{getattr(loss_fn, '__module__', '')}.{getattr(loss_fn, '__qualname__', repr(loss_fn))}",
            "data": _digest(len(examples), *(examples[i] for i in range(len(examples)))),
            "collated batch": _digest(first_batch),
            "initial weights": _digest(dict(model.state_dict()))}


def _differences(saved: dict, current: dict) -> list[str]:
    out = []
    for key, value in current.items():
        if key == "config":
            for field, v in value.items():
                there = saved.get("config", {}).get(field, _ADDED_FIELDS.get(field))
                if there != v:
                    out.append(f"config.{field} ({there!r} there, {v!r} here)")
        elif saved.get(key) != value:
            out.append(f"the objective ({saved.get(key)} there, {value} here)" if key == "objective"
                       else f"the {key}" if key != "data" else "the training examples")
    return out


def _save_checkpoint(path: Path, model, optimizer, step: int, history: list, fingerprint: dict):
    path.mkdir(parents=True, exist_ok=True)
    # metrics as plain Python numbers: the checkpoint is read with weights_only=True, which refuses NumPy scalars
    plain = [{k: v.item() if isinstance(v, np.generic) or (torch.is_tensor(v) and v.dim() == 0) else v
              for k, v in h.items()} for h in history]
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "history": plain, "fingerprint": fingerprint}
    tmp = path / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / "checkpoint.pt")  # atomic: a crash leaves the old or the new file


def _read_checkpoint(file: Path) -> dict:
    """The checkpoint's contents, or a ``CheckpointError`` that names the file and what to do."""
    what_to_do = (f"Delete {file} (or rename it, to keep it) and run train again: it retrains from scratch.")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError (zip), ...: the file is unreadable
        raise CheckpointError(f"train: the checkpoint {file} cannot be read ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'no detail'}); it is damaged (a crash "
                              f"while copying it?) or not a course checkpoint. {what_to_do}") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "history"} <= set(state):
        raise CheckpointError(f"train: {file} is not a checkpoint of course_utils.training. {what_to_do}")
    if "fingerprint" not in state:
        raise CheckpointError(f"train: {file} was written by an older course_utils that did not record which "
                              f"run it belongs to, so it cannot be resumed safely. {what_to_do}")
    return state


def _lengths(where: str, examples, config: TrainConfig):
    """Each example's length when ``config.group_by_length``, else None (plain seeded permutations)."""
    if not config.group_by_length:
        return None
    return [_example_length(where, examples[i]) for i in range(len(examples))]


def _first_batch(examples, collate, config: TrainConfig, lengths=None):
    """The run's first micro-batch, collated: part of its fingerprint (a change in ``collate`` shows there)."""
    return collate([examples[i] for i in batch_indices(len(examples), config.batch_size, config.seed, 0, lengths)])


def finished_run(model, loss_fn, examples, collate, config: TrainConfig) -> bool:
    """Whether ``config.checkpoint_dir`` holds this very run, finished: the run that
    ``train`` with the same arguments would load instead of training. A missing,
    unreadable or other run's checkpoint is ``False``; nothing is read into ``model``."""
    _check_config("finished_run", config)
    if config.checkpoint_dir is None:
        raise ValueError("finished_run: config.checkpoint_dir is None; name the run directory to look in")
    return _finished(config.checkpoint_dir, config.steps, lambda: _run_fingerprint(
        model, loss_fn, examples, _first_batch(examples, collate, config, _lengths("finished_run", examples, config)),
        config))


def _finished(checkpoint_dir, total: int, fingerprint) -> bool:
    """Whether ``checkpoint_dir`` holds a readable checkpoint of ``total`` steps whose run
    fingerprint equals ``fingerprint()`` (computed only when there is one to compare)."""
    file = Path(checkpoint_dir) / "checkpoint.pt"
    if not file.exists():
        return False
    try:
        saved = _read_checkpoint(file)
    except CheckpointError:
        return False
    return saved["step"] >= total and not _differences(saved["fingerprint"], fingerprint())


def _resume(where: str, ckpt: Path | None, fingerprint: dict | None):
    """The checkpoint in ``ckpt`` to resume, if any: ``(saved, fingerprint, start, history)``.

    A checkpoint of another run (its fingerprint differs) is refused with what differs; the
    one exception is the interrupted model itself passed in again, whose weights are the
    checkpoint's rather than the run's initial ones."""
    if not (ckpt and (ckpt / "checkpoint.pt").exists()):
        return None, fingerprint, 0, []
    saved = _read_checkpoint(ckpt / "checkpoint.pt")
    differ = _differences(saved["fingerprint"], fingerprint)
    if differ == ["the initial weights"] and fingerprint["initial weights"] == _digest(dict(saved["model"])):
        differ, fingerprint = [], saved["fingerprint"]  # the interrupted model itself, passed again
    if differ:
        raise ValueError(f"{where}: {ckpt / 'checkpoint.pt'} belongs to another run: {', '.join(differ)} "
                         f"differ. Delete {ckpt} to train this run from scratch, or choose another "
                         "config.checkpoint_dir.")
    return saved, fingerprint, saved["step"], saved["history"]


def _restore(where: str, ckpt: Path, saved: dict, model, optimizer, what: str):
    """Load a checkpoint's weights and optimizer state; a mismatch is a ``CheckpointError``."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{where}: {ckpt / 'checkpoint.pt'} does not fit {what} "
                              f"({str(err).splitlines()[0]}). Delete {ckpt} to retrain.") from err


def train(model, loss_fn, examples, collate, config: TrainConfig, eval_fn=None, eval_every: int = 0):
    """Train ``model`` in place and return its history: one dict per logged step
    with ``step``, ``lr``, ``loss`` and the metrics ``loss_fn`` returned (and
    ``eval_fn(model)``'s metrics every ``eval_every`` steps).

    ``loss_fn(model, batch) -> (scalar loss tensor, dict of metrics)``; ``examples``
    a list (or Dataset) of at least ``config.batch_size`` examples; ``collate(list of
    examples) -> batch``. Every argument, and the first batch, is checked before the
    model is touched. The model is handed back in eval mode; if training fails, in
    the mode it came in.

    Checkpoints (``config.checkpoint_dir``): a checkpoint is resumed only by the same
    run: the same config (``desc``, ``checkpoint_dir`` and ``checkpoint_every`` aside),
    objective (``loss_fn``'s qualified name), training examples, first collated batch
    and initial model weights (or the model that was interrupted, passed again). A finished run is loaded, not retrained, and says so. A
    checkpoint of another run is refused with a ``ValueError`` that says what differs;
    it is never overwritten or retrained over silently, since it may hold hours of
    work: delete the directory or choose another ``checkpoint_dir``. An unreadable
    checkpoint is a ``CheckpointError`` naming the file.
    """
    _checks.model("train", "model", model)
    for name, fn in [("loss_fn", loss_fn), ("collate", collate)]:
        if not callable(fn):
            raise TypeError(f"train: {name} must be a function, got {type(fn).__name__}")
    _checks.sequence("train", "examples", examples, "training examples")
    _check_config("train", config)
    if config.batch_size > len(examples):
        raise ValueError(f"train: config.batch_size={config.batch_size} is larger than the {len(examples)} "
                         "examples; lower batch_size or pass more examples")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"train: eval_fn must be a function of the model or None, got {type(eval_fn).__name__}")
    _checks.integer("train", "eval_every", eval_every, minimum=0)
    if (eval_fn is None) != (eval_every == 0):
        raise ValueError(f"train: eval_fn and eval_every go together (eval_fn={'given' if eval_fn else None}, "
                         f"eval_every={eval_every}); pass both or neither")
    lengths = _lengths("train", examples, config)
    first_batch = _first_batch(examples, collate, config, lengths)
    if not isinstance(first_batch, dict):
        raise TypeError(f"train: collate must return a dict of tensors, returned {type(first_batch).__name__}")

    device = next(model.parameters()).device
    ckpt = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    fingerprint = _run_fingerprint(model, loss_fn, examples, first_batch, config) if ckpt else None
    saved, fingerprint, start, history = _resume("train", ckpt, fingerprint)
    was_training = model.training
    optimizer = make_optimizer(model, config)
    if saved is not None:
        _restore("train", ckpt, saved, model, optimizer, "this model or optimizer")
    if start >= config.steps:
        print(f"Loaded the finished run from {ckpt / 'checkpoint.pt'} ({start} steps); nothing was trained. "
              f"Delete {ckpt} to retrain.")
        model.eval()
        return history
    if start:
        print(f"Resuming from {ckpt / 'checkpoint.pt'} after {start} of {config.steps} steps.")
    gpu.allow_tf32(device)
    scaler = gpu.grad_scaler(device)  # scales the loss in fp16 (a T4); elsewhere it changes nothing
    with gpu.compiled_blocks(model, config.compile):  # opt-in, CUDA only; the blocks run eagerly again after
        model.train()
        bar = Progress(config.steps, config.desc, unit="steps", initial=start)
        done = start  # optimiser steps taken, what a checkpoint records
        finished = False
        try:
            for step in range(start, config.steps):
                seed_everything(config.seed * 1_000_003 + step)  # dropout etc.: the same on a resumed run
                optimizer.zero_grad(set_to_none=True)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, config)
                totals = {}
                for micro in range(config.grad_accum):
                    idx = batch_indices(len(examples), config.batch_size, config.seed, step * config.grad_accum + micro,
                                        lengths)
                    batch = to_device(collate([examples[i] for i in idx]), device)
                    with gpu.autocast(device):
                        loss, metrics = _call_loss(loss_fn, model, batch, step)
                    scaler.scale(loss / config.grad_accum).backward()
                    for key, v in {"loss": loss, **metrics}.items():
                        totals[key] = totals.get(key, 0.0) + float(torch.as_tensor(v).detach()) / config.grad_accum
                scaler.unscale_(optimizer)  # clip the true gradients
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                scaler.step(optimizer)  # in fp16, skipped where a gradient overflowed
                scaler.update()
                done = step + 1
                if eval_fn is not None and eval_every and done % eval_every == 0:
                    model.eval()
                    totals.update(eval_fn(model))
                    model.train()
                if step % config.log_every == 0 or done == config.steps or (eval_every and done % eval_every == 0):
                    history.append({"step": step, "lr": lr_at(step, config), **totals})
                bar.update(1, loss=f"{totals['loss']:.3f}")
                if ckpt and done % config.checkpoint_every == 0:
                    _save_checkpoint(ckpt, model, optimizer, done, history, fingerprint)
            finished = True
        except KeyboardInterrupt:
            if ckpt:
                _save_checkpoint(ckpt, model, optimizer, done, history, fingerprint)
                print(f"Interrupted after {done} steps; saved {ckpt / 'checkpoint.pt'}. Run again to resume.")
            raise
        finally:
            bar.close()
            if not finished:
                model.train(was_training)
    if ckpt:
        _save_checkpoint(ckpt, model, optimizer, config.steps, history, fingerprint)
    model.eval()
    return history


def _call_loss(loss_fn, model, batch, step: int):
    """``loss_fn(model, batch)``, checked: a ``(finite scalar tensor, dict)`` pair."""
    out = loss_fn(model, batch)
    if not (isinstance(out, tuple) and len(out) == 2 and torch.is_tensor(out[0]) and out[0].dim() == 0
            and isinstance(out[1], dict)):
        raise TypeError(f"train: loss_fn must return (loss, metrics): a scalar tensor and a dict; "
                        f"at step {step} it returned {type(out).__name__}"
                        + (f" of {[type(o).__name__ for o in out]}" if isinstance(out, tuple) else ""))
    if not torch.isfinite(out[0].detach()):
        raise ValueError(f"train: loss_fn returned a loss of {out[0].item()} at step {step}; the model has "
                         "diverged or the batch is bad (try a lower lr)")
    return out
