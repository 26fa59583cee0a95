"""The assignments: one nbgrader source each in solutions/, the student versions in
assignments/ generated from them (tools/assignments.py, `make assignments`).

- the committed student versions are exactly what nbgrader generates from the sources now;
- a student version runs without error up to its first stub, and fails there with the
  stub's NotImplementedError (smoke profile, within the minute a notebook may take);
- every source is a well-formed nbgrader source: graded cells with points, an answer cell
  before each test, a rubric in each written answer, its time budget stated, executed in
  the cpu profile for instructors to read, and listed in the README with its times.

The solutions themselves run under nbval in `make test` (the Makefile's NOTEBOOKS), and
tests/test_grading.py grades them and the fixture submissions with nbgrader.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import assignments  # noqa: E402

from course_utils.progress import format_seconds  # noqa: E402

SOURCES = assignments.sources()
STUB = "raise NotImplementedError()"


@pytest.fixture(params=SOURCES, ids=lambda p: p.stem)
def source(request):
    return request.param


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_there_is_an_assignment():
    assert SOURCES, "no source in solutions/"


def test_student_versions_are_in_sync_with_their_sources(source):
    committed = ROOT / "assignments" / source.name
    assert committed.is_file(), f"assignments/{source.name} is missing: run `make assignments`"
    assert nbformat.read(committed, as_version=4) == assignments.student_version(source), \
        f"assignments/{source.name} is out of date with solutions/{source.name}: run `make assignments`"


def test_no_student_version_without_a_source():
    names = {p.name for p in SOURCES}
    assert {p.name for p in (ROOT / "assignments").glob("*.ipynb")} <= names


def test_student_version_runs_up_to_its_first_stub_and_fails_there(source, tmp_path):
    student = nbformat.read(ROOT / "assignments" / source.name, as_version=4)
    stubs = {nbgrader_meta(c)["grade_id"] for c in student.cells if c.cell_type == "code" and STUB in c.source}
    assert stubs, "the student version has no stub"
    env_before = {k: os.environ.get(k) for k in ("COURSE_PROFILE", "COURSE_PROGRESS")}
    os.environ.update(COURSE_PROFILE="smoke", COURSE_PROGRESS="summary")
    t0 = time.time()
    try:
        with pytest.raises(CellExecutionError) as failure:
            NotebookClient(student, timeout=120, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT / "assignments")}}).execute()
    finally:
        for k, v in env_before.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    seconds = time.time() - t0
    assert failure.value.ename == "NotImplementedError", f"failed with {failure.value.ename}: {failure.value}"
    executed = [c for c in student.cells if c.cell_type == "code" and c.get("execution_count")]
    failed = executed[-1]
    errors = [c for c in executed for o in c.outputs if o.output_type == "error"]
    assert errors == [failed], "an error before the first stub"
    # the error comes from a stub: raised in a stub cell, or raised by a stub function that the failing cell calls
    first_stub_cell = next(c for c in student.cells if nbgrader_meta(c).get("grade_id") in stubs)
    assert student.cells.index(failed) >= student.cells.index(first_stub_cell)
    assert STUB in failed.source or any(STUB in c.source for c in executed if c is not failed
                                        and nbgrader_meta(c).get("grade_id") in stubs)
    assert seconds < 60, f"{source.name}: {seconds:.0f} s up to the first stub"


def test_source_is_a_well_formed_nbgrader_source(source):
    nb = nbformat.read(source, as_version=4)
    meta = [(c, nbgrader_meta(c)) for c in nb.cells if nbgrader_meta(c)]
    tests = [c for c, m in meta if m.get("grade") and not m.get("solution")]
    answers = [c for c, m in meta if m.get("solution") and c.cell_type == "code"]
    written = [c for c, m in meta if m.get("solution") and c.cell_type == "markdown"]
    assert tests and answers, "no autograder tests or no answer cells"
    for c, m in meta:
        if m.get("grade"):
            assert m.get("points", 0) > 0, f"{m['grade_id']}: no points"
        if m.get("grade") or m.get("solution"):
            assert m.get("locked") == (not m.get("solution")), f"{m['grade_id']}: tests are locked, answers are not"
    for cell in answers:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, nbgrader_meta(cell)
    for cell in tests:
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{nbgrader_meta(cell)['grade_id']}: no hidden tests"
        assert nb.cells.index(cell) > nb.cells.index(answers[0])
    for cell in written:
        assert "Rubric" in cell.source, f"{nbgrader_meta(cell)['grade_id']}: the solution states no rubric"
    intro = nb.cells[0].source
    assert "Time budget" in intro and "Points" in intro


def test_source_is_committed_executed_in_the_cpu_profile(source):
    nb = nbformat.read(source, as_version=4)
    assert nb.metadata.get("course", {}).get("profile") == "cpu", "run `make solutions`"
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error" and not (out.output_type == "stream" and out.name == "stderr"), out


def test_readme_lists_the_assignment_with_its_committed_time(source):
    nb = nbformat.read(source, as_version=4)
    row = next((line for line in (ROOT / "README.md").read_text().splitlines() if f"solutions/{source.name})" in line),
               None)
    assert row, f"README has no row for solutions/{source.name}"
    assert f"| {format_seconds(nb.metadata['course']['seconds'])} |" in row, row
