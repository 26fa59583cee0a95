"""Shared shape of a bad-input case, so that every misuse test module can register its
cases and ``test_misuse.py`` can check that every public function of ``course_utils``
has at least one.

A test module ``tests/test_*misuse*.py`` exports ``CASES: list[Case]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import pytest


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
