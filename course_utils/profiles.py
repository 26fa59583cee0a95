"""One switch that scales every notebook: ``COURSE_PROFILE=smoke|cpu|gpu``.

- ``smoke``: CI and quick checks; each notebook in about a minute on two cores.
- ``cpu``: clear results in minutes on a laptop, with the course's tiny model.
- ``gpu``: GPT-2 (124M) from the Hugging Face Hub where it can be had. Opt-in only: it has not yet
  been measured on a GPU, and its asserts are the ``cpu`` profile's (``GPU_NOTE``).

Unset, the profile is chosen for you: CI (``$CI`` set) -> smoke, else cpu. On a CUDA machine (a Colab
GPU runtime) that is the ``cpu`` profile's recipes on the GPU: every assert in them has been run, and
the GPU makes them fast. The device is always the best one there is (CUDA, then MPS, then the CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from . import gpu

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
    def precision(self) -> str:
        """The autocast precision on this profile's device (``gpu.precision``): ``"bf16"`` on CUDA cards of
        compute capability 8.0 or more, ``"fp16"`` (loss scaled) on 7.x such as Colab's T4, else ``"fp32"``."""
        return gpu.precision(self.device)

    @property
    def bf16(self) -> bool:
        """bf16 autocast: on CUDA cards with native bf16 (compute capability 8.0 or more), never on the CPU."""
        return self.precision == "bf16"


_SIZES = {
    "smoke": dict(model="tiny", n_train=2000, n_eval=96, steps=50, batch_size=16, lr=3e-4, max_new_tokens=64),
    "cpu": dict(model="tiny", n_train=19005, n_eval=400, steps=300, batch_size=32, lr=3e-4, max_new_tokens=64),
    "gpu": dict(model="gpt2", n_train=19005, n_eval=1000, steps=1500, batch_size=32, lr=5e-5, max_new_tokens=64),
}


GPU_NOTE = ("Note: the gpu profile (GPT-2 124M) has not yet been measured on a GPU: its times are unknown and its "
            "asserts are the cpu profile's. Unset COURSE_PROFILE to run the cpu profile's recipes on the GPU.")


def default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else ``$COURSE_PROFILE``, else the automatic choice (``smoke`` under CI, else ``cpu``,
    on the best device there is). Asking for ``gpu`` prints ``GPU_NOTE``."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"get_profile: name must be one of {', '.join(PROFILES)} (a string) or None, got {name!r}")
    name = name or os.environ.get("COURSE_PROFILE") or None
    if name is None:
        name = "smoke" if os.environ.get("CI") else "cpu"
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"get_profile: the profile (name= or $COURSE_PROFILE) must be one of "
                         f"{', '.join(PROFILES)}; got {name!r}")
    if name == "gpu":
        print(GPU_NOTE)
    return Profile(name=name, device=default_device(), **_SIZES[name])
