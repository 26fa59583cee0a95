"""Bad input to what the front door added (GPU precision, where runs live, the loaders' note): a clear error at
the door, naming the argument. ``test_misuse.py`` checks that every public function has a case here or elsewhere."""

import os
from pathlib import Path

import pytest
import torch

from course_utils import gpu, runs
from course_utils.profiles import get_profile
from misuse import Case


def runs_root_with(value: str):
    """``runs.runs_root()`` with ``$COURSE_RUNS_DIR`` set to ``value`` for the call only."""
    before = os.environ.get(runs.RUNS_DIR_VARIABLE)
    os.environ[runs.RUNS_DIR_VARIABLE] = value
    try:
        return runs.runs_root()
    finally:
        if before is None:
            del os.environ[runs.RUNS_DIR_VARIABLE]
        else:
            os.environ[runs.RUNS_DIR_VARIABLE] = before


CASES = [
    Case("gpu.precision", lambda: gpu.precision("tpu"), ValueError, "device"),
    Case("gpu.precision", lambda: gpu.precision(torch.nn.Sequential()), ValueError, "device"),  # no weights
    Case("gpu.grad_scaler", lambda: gpu.grad_scaler(3), TypeError, "device"),
    Case("gpu.grad_scaler", lambda: gpu.grad_scaler("gpu"), ValueError, "device"),
    Case("runs.runs_root", lambda: runs_root_with(__file__), NotADirectoryError, "COURSE_RUNS_DIR"),
    Case("runs.training_note", lambda: runs.training_note("cpu", Path("runs/x"), "SFT", "01"), TypeError, "profile"),
    Case("runs.training_note", lambda: runs.training_note(get_profile("cpu"), Path("runs/x"), 3, "01"), TypeError,
         "what"),
    Case("runs.training_note", lambda: runs.training_note(get_profile("cpu"), Path("runs/x"), "SFT", "06"),
         ValueError, "notebook"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target)
def test_misuse(case):
    case.run()
