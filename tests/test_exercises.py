"""The exercise runner and every exercise of the course.

- The runner gives one of three outcomes, never a traceback, whatever the student's code does.
- Every exercise's folded solution (taken out of the committed notebook) passes its check,
  and every known mistake fails it with its own hint: a shown solution can never be wrong
  and a check can never pass everything.
"""

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import exercises
from course_utils.exercises import NOT_DONE, NOT_YET_RIGHT, PASSED, Case, Exercise, Mistake
from course_utils.exercises._runner import evaluate, report

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK_CALL = re.compile(r"""exercises\.check\(\s*["'](\w+)["']\s*,\s*(\w+)""")
SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>\s*```python\n(.*?)```\s*</details>", re.S)
FAST = 0.5  # seconds before a looping function is stopped, in these tests


# ---------------------------------------------------------------- the runner, on a toy exercise

def _bt(r_chosen, r_rejected):
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def _bt_cases():
    g = torch.Generator().manual_seed(0)
    return [Case((torch.randn(4, generator=g), torch.randn(4, generator=g)), label="four pairs"),
            Case((torch.zeros(3), torch.zeros(3)), label="ties"),
            Case((torch.tensor([2.0]), torch.tensor([-1.0])), label="one pair")]


TOY = Exercise(
    name="toy_bradley_terry", notebook="xx", reference=_bt, cases=_bt_cases, grad=True,
    mistakes=(Mistake(lambda w, l: -F.logsigmoid(w - l).sum(), "a sum where the mean is asked for"),
              Mistake(lambda w, l: -F.logsigmoid(l - w).mean(), "the sign of the margin")))


def test_not_done_passes_and_wrong():
    def stub(r_chosen, r_rejected):
        raise NotImplementedError("your code here")

    assert evaluate(TOY, stub).outcome == NOT_DONE
    assert "Not done yet" in report(TOY, evaluate(TOY, stub))
    good = evaluate(TOY, lambda r_chosen, r_rejected: torch.nn.functional.softplus(r_rejected - r_chosen).mean())
    assert good.outcome == PASSED and "gradients" in good.message
    for mistake in TOY.mistakes:
        result = evaluate(TOY, mistake.fn)
        assert result.outcome == NOT_YET_RIGHT and result.hint == mistake.hint


def test_an_unknown_mistake_gets_no_hint_but_the_case():
    result = evaluate(TOY, lambda w, l: (w - l).mean())
    assert result.outcome == NOT_YET_RIGHT and result.hint == ""
    assert "case 1 of 3 (four pairs)" in result.message and "expected" in result.message


@pytest.mark.parametrize("fn, said", [
    (lambda w, l: 1 / 0, "raised ZeroDivisionError"),
    (lambda w, l: [0.5], "should be a torch tensor"),
    (lambda w, l: torch.tensor(float("nan")), "NaN"),
    (lambda w, l: torch.zeros(2), "shape"),
    (lambda w, l: _bt(w, l).double(), "dtype"),
    (lambda w, l: _bt(w, l).detach(), "no gradient"),
    (lambda w: w, "wrong arguments"),
    (42, "pass your function itself"),
])
def test_misuse_is_not_yet_right_with_a_clear_line(fn, said):
    result = evaluate(TOY, fn, timeout=FAST)
    assert result.outcome == NOT_YET_RIGHT and said in result.message, result.message
    assert "Traceback" not in report(TOY, result)


def test_an_endless_loop_is_stopped():
    def forever(r_chosen, r_rejected):
        while True:
            pass

    result = evaluate(TOY, forever, timeout=FAST)
    assert result.outcome == NOT_YET_RIGHT and "stopped after 0.5 s" in result.message


def test_the_student_cannot_change_the_cases():
    def in_place(r_chosen, r_rejected):
        out = _bt(r_chosen, r_rejected)
        r_chosen.data.fill_(100.0)
        return out

    assert evaluate(TOY, in_place).outcome == PASSED


def test_check_returns_the_function_to_go_on_with(capsys):
    ex = exercises.get(exercises.names()[0]) if exercises.names() else None
    if ex is None:
        pytest.skip("no exercise registered yet")

    def stub(*args, **kwargs):
        raise NotImplementedError

    assert exercises.check(ex.name, stub) is ex.reference
    assert capsys.readouterr().out.startswith("Not done yet")


def test_bad_names_and_timeouts_are_refused():
    with pytest.raises(ValueError, match="name must be one of"):
        exercises.get("no_such_exercise")
    with pytest.raises(TypeError, match="name must be the name of an exercise"):
        exercises.get(3)
    with pytest.raises(ValueError, match="timeout"):
        exercises.run(exercises.names()[0] if exercises.names() else "x", _bt, timeout=0)
    with pytest.raises(ValueError, match="identifier"):
        Exercise(name="not a name", notebook="xx", reference=_bt, cases=_bt_cases)


# ---------------------------------------------------------------- every exercise of the course

@pytest.fixture(params=exercises.names() or [None], ids=lambda n: n or "none")
def exercise(request):
    if request.param is None:
        pytest.skip("no exercise registered yet")
    return exercises.get(request.param)


def test_each_exercise_is_well_posed(exercise):
    cases = exercise.cases()
    assert len(cases) >= 4, f"{exercise.name}: at least four cases, one an edge case"
    assert len(exercise.mistakes) >= 2, f"{exercise.name}: at least two known mistakes"
    assert len({m.hint for m in exercise.mistakes}) == len(exercise.mistakes), "each mistake its own hint"
    assert evaluate(exercise, exercise.reference).outcome == PASSED


def test_each_known_mistake_fails_with_its_own_hint(exercise):
    for mistake in exercise.mistakes:
        result = evaluate(exercise, mistake.fn, timeout=FAST)
        assert result.outcome == NOT_YET_RIGHT, f"{exercise.name}: a wrong variant passes ({mistake.hint})"
        assert result.hint == mistake.hint, f"{exercise.name}: {result.hint!r} instead of {mistake.hint!r}"


def test_each_check_survives_misuse(exercise):
    def raises(*args, **kwargs):
        raise RuntimeError("boom")

    def loops(*args, **kwargs):
        while True:
            pass

    for fn in (raises, loops, lambda *a, **k: [1, 2], lambda *a, **k: float("nan"), lambda: None, "f"):
        assert evaluate(exercise, fn, timeout=FAST).outcome == NOT_YET_RIGHT


def _check_cells(path):
    """(exercise name, function name, check cell, the cell right below) for each check cell of a notebook."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
        if match:
            found.append((match[1], match[2], cell, nb.cells[i + 1] if i + 1 < len(nb.cells) else None))
    return found


def _solutions(path):
    """(exercise name, function name, solution code) for each check cell that has its folded solution below."""
    found = []
    for name, function, _, below in _check_cells(path):
        solution = SOLUTION.search(below.source) if below is not None and below.cell_type == "markdown" else None
        if solution:
            found.append((name, function, solution[1]))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_check_cell_is_checked_and_has_its_solution_below(path):
    for name, _, cell, below in _check_cells(path):
        assert any(line.strip() == "# NBVAL_CHECK_OUTPUT" for line in cell.source.splitlines()), \
            f"{path.name}: the check of {name} must carry '# NBVAL_CHECK_OUTPUT' on a line of its own"
        assert below is not None and below.cell_type == "markdown" and SOLUTION.search(below.source), \
            f"{path.name}: the check of {name} has no folded solution right below"
        assert cell.outputs and "".join(o.get("text", "") for o in cell.outputs).startswith("Not done yet"), \
            f"{path.name}: {name} ships as a stub: its committed output says 'Not done yet'"


SOLVED = [(p, *s) for p in NOTEBOOKS for s in _solutions(p)]


@pytest.mark.parametrize("path, name, function, code", SOLVED or [pytest.param(None, None, None, None,
                         marks=pytest.mark.skip("no exercise in the notebooks yet"))],
                         ids=lambda v: v.stem if isinstance(v, Path) else None)
def test_each_folded_solution_passes_its_check(path, name, function, code):
    namespace = {"torch": torch, "F": F, "np": np, "math": math}
    exec(compile(code, f"{path.name}:{name}", "exec"), namespace)
    result = exercises.run(name, namespace[function])
    assert result.outcome == PASSED, f"{path.name}, {name}: {result.message} {result.hint}"


def test_every_exercise_is_in_a_notebook():
    shown = {name for _, name, _, _ in SOLVED}
    assert set(exercises.names()) <= shown, f"exercises with no notebook cell: {set(exercises.names()) - shown}"
