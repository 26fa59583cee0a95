"""Small plotting helpers shared by the notebooks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def smooth(values, window: int = 5) -> np.ndarray:
    """Moving average (shorter at the start), to read a noisy curve."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for i in range(len(values)):
        out[i] = values[max(0, i - window + 1):i + 1].mean()
    return out


def plot_histories(histories: dict, key: str = "loss", ax=None, window: int = 5, ylabel: str | None = None):
    """One curve per run: ``histories`` maps a run's name to ``train()``'s history."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, history in histories.items():
        rows = [h for h in history if key in h]
        ax.plot([h["step"] for h in rows], smooth([h[key] for h in rows], window), label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel or key)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
