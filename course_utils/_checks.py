"""Checks at the door of the public functions: each raises ``TypeError`` or ``ValueError``
with a message that names the function, the argument, what it got and what is allowed.
Also ``CheckpointError``, the course's error for a saved file that cannot be used."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path


def _got(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def integer(where: str, name: str, value, minimum: int | None = None) -> int:
    """An int (not a bool, not a float) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an integer, got {_got(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def number(where: str, name: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real number (not a bool, not a string), optionally > 0 or >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a number, got {_got(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{where}: {name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{where}: {name} must be >= 0, got {value}")
    return float(value)


def string(where: str, name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise (ValueError if isinstance(value, str) else TypeError)(
            f"{where}: {name} must be a non-empty string, got {_got(value)}")
    return value


def sequence(where: str, name: str, value, what: str = "examples"):
    """Something with a length and indexing (a list, a ``datasets.Dataset``), not empty, not a string."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        raise TypeError(f"{where}: {name} must be a list (or Dataset) of {what}, got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{where}: {name} is empty; pass at least one of the {what}")
    return value


def choice(where: str, name: str, value, allowed):
    if value not in allowed:
        raise ValueError(f"{where}: {name}={_got(value)} is not one of {list(allowed)}")
    return value


def tensor(where: str, name: str, value, dims: int | None = None, floating: bool = False, ids: bool = False):
    import torch

    if not torch.is_tensor(value):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if dims is not None and value.dim() != dims:
        raise ValueError(f"{where}: {name} must have {dims} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{where}: {name} must be a floating-point tensor, got {value.dtype}")
    if ids and (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"{where}: {name} must be an integer tensor (token ids or a 0/1 mask), got {value.dtype}")
    return value


def model(where: str, name: str, value):
    import torch

    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{where}: {name} must be a torch.nn.Module (a model), got {type(value).__name__}")
    if next(value.parameters(), None) is None:
        raise ValueError(f"{where}: {name} has no parameters")
    return value


def tokenizer(where: str, name: str, value):
    if not callable(value) or not hasattr(value, "eos_token_id") or not hasattr(value, "decode"):
        raise TypeError(f"{where}: {name} must be a Hugging Face tokenizer (e.g. from load_tokenizer), "
                        f"got {type(value).__name__}")
    if value.eos_token_id is None:
        raise ValueError(f"{where}: {name} has no end token (eos_token_id is None)")
    return value


def path(where: str, name: str, value) -> Path:
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or str(value).strip() == "":
        raise TypeError(f"{where}: {name} must be a path (str or pathlib.Path), got {_got(value)}")
    return Path(value)


class CheckpointError(RuntimeError):
    """A saved file (checkpoint, model) is unreadable or belongs to another run; the message
    names the file and says what to do."""


def device(where: str, name: str, value) -> str:
    """A device this machine has: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` (or a ``torch.device``)."""
    import torch

    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{where}: {name} must be a device name such as 'cpu' or 'cuda', got {_got(value)}")
    try:
        kind = torch.device(value).type
    except RuntimeError:
        raise ValueError(f"{where}: {name}={value!r} is not a device; use 'cpu', 'cuda' or 'mps' "
                         "(get_profile().device picks the best one here)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(kind, False):
        raise ValueError(f"{where}: {name}={str(value)!r} is not available on this machine; "
                         f"available: {[k for k, ok in available.items() if ok]}")
    index = torch.device(value).index
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"{where}: {name}={str(value)!r} is not available on this machine; it has "
                         f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return value


def vocabulary(where: str, name: str, ids, model):
    """Token ids that ``model`` can embed: below its vocabulary size (a tokenizer of another model gives more)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    size = getattr(embeddings, "num_embeddings", None)
    if size is not None and ids.numel() and int(ids.max()) >= size:
        raise ValueError(f"{where}: {name} holds token id {int(ids.max())}, but the model knows {size} tokens; "
                         "were the ids made by another model's tokenizer?")
    return ids


def context_length(model) -> int | None:
    """The most positions ``model`` embeds (GPT-2: ``n_positions``), or ``None`` if it does not say."""
    config = getattr(model, "config", None)
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def within_context(where: str, length: int, model, said: str, fix: str):
    """Refuse sequences longer than ``model``'s context: "<where>: <said> the model's context
    of C; <fix> <= C" (``said`` names the argument and its length)."""
    context = context_length(model)
    if context and length > context:
        raise ValueError(f"{where}: {said} the model's context of {context}; {fix} <= {context}")


def finite(where: str, name: str, value, allow_inf: bool = False):
    """Refuse NaN and infinity in ``value`` (a torch tensor, a numpy array or a number): the message
    names the first bad entry, e.g. "win_rate: scores[3] is nan (2 of 10 entries bad); ...".
    ``allow_inf=True`` lets -inf/+inf through (log-probabilities of masked tokens), NaN never.
    Returns ``value`` unchanged."""
    import numpy as np
    import torch

    if torch.is_tensor(value):
        if not (value.is_floating_point() or value.is_complex()):
            return value
        bad = torch.isnan(value) if allow_inf else ~torch.isfinite(value)
        if not bad.any():
            return value
        bad = bad.detach().cpu().numpy()
        array = value.detach().cpu().double().numpy()
    else:
        array = np.asarray(value)
        if array.dtype.kind not in "fc":
            return value
        bad = np.isnan(array) if allow_inf else ~np.isfinite(array)
        if not bad.any():
            return value
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    index = "".join(f"[{i}]" for i in first)
    allowed = "numbers or -inf/+inf, not NaN" if allow_inf else "finite numbers (no NaN or inf)"
    raise ValueError(f"{where}: {name}{index} is {array[first]} ({int(bad.sum())} of {bad.size} entries bad); "
                     f"{name} must hold {allowed}")


DISTRIBUTION_ATOL = 1e-6


def distribution(where: str, name: str, value, atol: float = DISTRIBUTION_ATOL, positive: bool = False):
    """A probability vector, or a 2-D array whose rows are each one: finite, entries >= 0 (> 0 with
    ``positive``), summing to 1 within ``atol``. Returns it as a float numpy array."""
    import numpy as np

    try:
        p = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a probability vector (a list of numbers), "
                        f"got {type(value).__name__}") from None
    if p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise ValueError(f"{where}: {name} must be a probability vector (or rows of them), got shape {p.shape}")
    finite(where, name, p)
    low = p <= 0 if positive else p < 0
    if low.any():
        first = tuple(int(i) for i in np.argwhere(low)[0])
        raise ValueError(f"{where}: {name}{''.join(f'[{i}]' for i in first)} is {p[first]}; a probability "
                         f"vector's entries must be {'> 0' if positive else '>= 0'}")
    sums = np.atleast_1d(p.sum(-1))
    off = np.abs(sums - 1) > atol
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{where}: {name}{f'[{row}]' if p.ndim == 2 else ''} sums to {sums[row]:.6g}, not 1 "
                         f"(within {atol:g}); a probability vector's entries must sum to 1")
    return p


def vectors(where: str, names, *values) -> None:
    """Floating ``[B]`` tensors of one length ``B >= 1``, finite: the per-example inputs of a loss."""
    for name, value in zip(names, values):
        finite(where, name, tensor(where, name, value, dims=1, floating=True))
    if len({tuple(v.shape) for v in values}) != 1 or values[0].numel() == 0:
        raise ValueError(f"{where}: {', '.join(names)} must all be [B] with one B >= 1, got shapes "
                         f"{[tuple(v.shape) for v in values]}")
