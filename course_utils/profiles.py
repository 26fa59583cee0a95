"""One switch that scales every notebook: ``COURSE_PROFILE=smoke|cpu|gpu``.

- ``smoke``: CI and quick checks; each notebook in about a minute on two cores.
- ``cpu``: clear results in minutes on a laptop, with the course's tiny model.
- ``gpu``: GPT-2 (124M) from the Hugging Face Hub where it can be had.

Unset, the profile is chosen for you: CI (``$CI`` set) -> smoke, CUDA -> gpu, else cpu.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

PROFILES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    name: str
    model: str            # "tiny" (the course's checkpoint) or "gpt2" (from the Hub)
    device: str           # "cuda", "mps" or "cpu"
    n_train: int          # training examples a notebook draws from the corpus
    n_eval: int           # held-out prompts or examples a notebook evaluates on
    steps: int            # optimiser steps of a notebook's main training run
    batch_size: int
    lr: float
    max_new_tokens: int   # generation length for samples and rollouts

    @property
    def bf16(self) -> bool:
        """bf16 autocast: on CUDA cards that support it, never on the CPU."""
        return self.device == "cuda" and torch.cuda.is_bf16_supported()


_SIZES = {
    "smoke": dict(model="tiny", n_train=2000, n_eval=96, steps=100, batch_size=16, lr=3e-4, max_new_tokens=64),
    "cpu": dict(model="tiny", n_train=19005, n_eval=400, steps=300, batch_size=32, lr=3e-4, max_new_tokens=64),
    "gpu": dict(model="gpt2", n_train=19005, n_eval=1000, steps=1500, batch_size=32, lr=5e-5, max_new_tokens=64),
}


def default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else ``$COURSE_PROFILE``, else the automatic choice."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"get_profile: name must be one of {', '.join(PROFILES)} (a string) or None, got {name!r}")
    name = name or os.environ.get("COURSE_PROFILE") or None
    if name is None:
        name = "smoke" if os.environ.get("CI") else ("gpu" if torch.cuda.is_available() else "cpu")
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"get_profile: the profile (name= or $COURSE_PROFILE) must be one of "
                         f"{', '.join(PROFILES)}; got {name!r}")
    return Profile(name=name, device=default_device(), **_SIZES[name])
