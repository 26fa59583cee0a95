"""Small plotting helpers shared by the notebooks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import _checks


def smooth(values, window: int = 5) -> np.ndarray:
    """Moving average (shorter at the start), to read a noisy curve."""
    _checks.integer("smooth", "window", window, minimum=1)
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"smooth: values must be a list of numbers, got {type(values).__name__}") from None
    if values.ndim != 1:
        raise ValueError(f"smooth: values must be a flat list of numbers, got shape {values.shape}")
    out = np.empty_like(values)
    for i in range(len(values)):
        out[i] = values[max(0, i - window + 1):i + 1].mean()
    return out


def plot_histories(histories: dict, key: str = "loss", ax=None, window: int = 5, ylabel: str | None = None):
    """One curve per run: ``histories`` maps a run's name to ``train()``'s history."""
    if not isinstance(histories, dict):
        raise TypeError(f"plot_histories: histories must be a dict {{run name: train()'s history}}, got "
                        f"{type(histories).__name__}" + ("; wrap one history as {'run': history}"
                                                         if isinstance(histories, list) else ""))
    if not histories:
        raise ValueError("plot_histories: histories is empty; pass at least one run")
    for name, history in histories.items():
        if not isinstance(history, list) or not all(isinstance(h, dict) and "step" in h for h in history):
            raise ValueError(f"plot_histories: histories[{name!r}] must be train()'s history, a list of dicts "
                             "with a 'step'")
    present = sorted({k for history in histories.values() for h in history for k in h})
    if key not in present:
        raise ValueError(f"plot_histories: key={key!r} is in no history; the histories hold {present}")
    _checks.integer("plot_histories", "window", window, minimum=1)
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, history in histories.items():
        rows = [h for h in history if key in h]
        ax.plot([h["step"] for h in rows], smooth([h[key] for h in rows], window), label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel or key)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
