"""Shared shape of a bad-input case, so that every misuse test module can register its
cases and ``test_misuse.py`` can check that every public function of ``course_utils``
has at least one.

A test module ``tests/test_*misuse*.py`` exports ``CASES: list[Case]``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Callable

import pytest
import torch


@dataclass
class Case:
    target: str                      # "module.function" or "module.Class.method", e.g. "data.load_corpus"
    call: Callable[[], object]       # makes the bad call
    exc: type | tuple                # ValueError, TypeError, FileNotFoundError or a course exception
    names: str                       # regex the message must contain: the offending argument's name
    unchanged: Callable[[], object] | None = None  # snapshot -> compared before and after the call
    id: str = ""

    def run(self):
        before = self.unchanged() if self.unchanged else None
        with pytest.raises(self.exc) as info:
            self.call()
        assert re.search(self.names, str(info.value)), f"{self.target}: message {str(info.value)!r} " \
                                                        f"does not name {self.names!r}"
        if self.unchanged:
            assert self.unchanged() == before, f"{self.target}: state changed by a rejected call"
        return info


# ---------------------------------------------------------------- what the model-taking cases share

@functools.cache
def tiny():
    """The course's tiny model and tokenizer, loaded once per test session."""
    from course_utils.models import load_policy

    return load_policy("tiny")


def lm():
    return tiny()[0].train()  # train mode, so a call that leaves it in eval mode is caught


def model_state(model):
    """Mode, a hash of every weight and the dropout rates: what a refused call must leave as it was."""
    h = hashlib.sha256()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return model.training, h.hexdigest(), [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
