"""Grading with tools/grade.py, end to end, on the fixture submissions of tests/grading_fixtures.py.

One grading run per assignment takes every fixture at once, two at a time, as an
instructor's run would: the solution must get full automatic marks; each wrong answer
must lose exactly the tests written for it (and the numbers computed from it); each
hostile submission (endless loop, os._exit, sys.exit, deleting a course file, asking for
far too much memory) must lose only its own points while the others in the same run are
graded normally; and the repository must be unchanged afterwards. The run starts with
a bare environment (no venv on PATH, nothing activated), as from a fresh shell.

A second, short run grades an endless loop that ignores interrupts under a wall-clock
limit of a few seconds: the whole-notebook limit, not nbgrader's per-cell timeout, stops it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_fixtures import A1_HANG_FOREVER, FIXTURES, submission  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRADE = ROOT / "tools" / "grade.py"
TIMEOUT, CELL_TIMEOUT, MEMORY_GB, JOBS = 120, 15, 4, 2  # the limits of the main run


def bare_env() -> dict:
    """What a fresh login shell has: no venv on PATH, no PYTHONPATH, no course variables but the data dir."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ["HOME"], "LANG": "C.UTF-8"}
    if os.environ.get("COURSE_DATA_DIR"):
        env["COURSE_DATA_DIR"] = os.environ["COURSE_DATA_DIR"]
    return env


def snapshot() -> dict:
    """Every file of the repository (outside .git and the venv) with its size and modification time."""
    out = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv") and not Path(folder, d).is_symlink()]
        for name in files:
            path = Path(folder, name)
            st = path.lstat()
            out[str(path.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return out


def grade(tmp: Path, assignment: str, fixtures, *options) -> dict:
    """Write the fixtures as submissions, run the grader, return what came out."""
    submissions, output = tmp / "submissions", tmp / "output"
    submissions.mkdir()
    for fixture in fixtures:
        nbformat.write(submission(assignment, fixture.answers), submissions / f"{fixture.name}.ipynb")
    before = snapshot()
    t0 = time.time()
    run = subprocess.run([sys.executable, str(GRADE), str(submissions), "--assignment", assignment,
                          "--output", str(output), *map(str, options)],
                         cwd=tmp, env=bare_env(), capture_output=True, text=True, timeout=900)
    seconds = time.time() - t0
    after = snapshot()
    assert run.returncode == 0, run.stdout + run.stderr
    scores, status = defaultdict(dict), {}
    with open(output / "scores.csv") as f:
        for row in csv.DictReader(f):
            status[row["student"]] = row["status"]
            if row["kind"] == "auto":
                scores[row["student"]][row["test"]] = (float(row["points"]), float(row["max_points"]))
    return {"scores": scores, "status": status, "output": output, "stdout": run.stdout, "seconds": seconds,
            "before": before, "after": after}


@pytest.fixture(scope="module", params=sorted(FIXTURES))
def graded(request, tmp_path_factory):
    assignment = request.param
    result = grade(tmp_path_factory.mktemp(assignment), assignment, FIXTURES[assignment],
                   "--timeout", TIMEOUT, "--cell-timeout", CELL_TIMEOUT, "--memory-gb", MEMORY_GB,
                   "--jobs", JOBS)
    print(f"\n{assignment}: graded {len(FIXTURES[assignment])} submissions in {result['seconds']:.0f} s\n"
          + result["stdout"])
    return assignment, result


def fixture_ids():
    return [(a, f) for a in sorted(FIXTURES) for f in FIXTURES[a]]


def test_every_fixture_is_graded_with_the_expected_outcome(graded):
    """Each fixture loses points on exactly the tests it must lose them on, and keeps all the others."""
    assignment, result = graded
    problems = []
    for fixture in FIXTURES[assignment]:
        got = result["scores"][fixture.name]
        assert got, f"{fixture.name}: not in scores.csv"
        lost = {test for test, (points, full) in got.items() if points < full}
        zero = {test for test, (points, _) in got.items() if points == 0}
        if lost != set(fixture.loses) or not set(fixture.loses) <= zero:
            problems.append(f"{fixture.name} ({fixture.what}): lost {sorted(lost)}, expected {sorted(fixture.loses)}")
        if not result["status"][fixture.name].startswith(fixture.status):
            problems.append(f"{fixture.name}: status {result['status'][fixture.name]!r}, expected {fixture.status!r}")
    assert not problems, "\n".join(problems) + "\n" + result["stdout"]


def test_the_solution_gets_full_automatic_marks(graded):
    assignment, result = graded
    got = result["scores"]["solution"]
    assert got and all(points == full for points, full in got.values()), got


def test_the_repository_is_unchanged(graded):
    """No gradebook, feedback or other file lands in the repository, and nothing in it changes or goes."""
    _, result = graded
    before, after = result["before"], result["after"]
    assert set(after) - set(before) == set(), f"new files in the repository: {sorted(set(after) - set(before))}"
    assert set(before) - set(after) == set(), f"files gone from the repository: {sorted(set(before) - set(after))}"
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, f"files changed in the repository: {changed}"


def test_the_deleting_submission_hit_its_own_copy(graded):
    """It did delete course_utils/preferences.py, found through course_utils.__file__: the sandbox's copy."""
    assignment, result = graded
    graded_nb = result["output"] / "delete_course_file" / f"{assignment}.ipynb"
    if not graded_nb.is_file():
        pytest.skip("no deleting fixture for this assignment")
    text = "".join(o.get("text", "") for c in nbformat.read(graded_nb, as_version=4).cells if c.cell_type == "code"
                   for o in c.outputs)
    deleted = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("deleted ")]
    assert deleted and deleted[0].endswith("course_utils/preferences.py"), text[:500]
    assert not Path(deleted[0]).is_relative_to(ROOT) and (ROOT / "course_utils" / "preferences.py").is_file()


def test_feedback_and_written_answers_for_every_student(graded):
    assignment, result = graded
    for fixture in FIXTURES[assignment]:
        page = result["output"] / fixture.name / f"{assignment}.html"
        assert page.is_file() and page.stat().st_size > 0, page
    assert (result["output"] / "written_answers.md").is_file()
    for line in ("student", "solution"):
        assert line in result["stdout"]


def test_an_endless_loop_is_stopped_by_the_whole_notebook_limit(tmp_path):
    """No per-cell timeout below the limit: the wall clock stops it, every test scores 0, nothing lingers."""
    result = grade(tmp_path, "a1_diverse_preferences", [A1_HANG_FOREVER], "--timeout", 8, "--memory-gb", MEMORY_GB)
    got = result["scores"][A1_HANG_FOREVER.name]
    assert result["status"][A1_HANG_FOREVER.name].startswith("timed out"), result["stdout"]
    assert got and all(points == 0 for points, _ in got.values())
    assert result["seconds"] < 60, result["seconds"]
    assert set(result["after"]) == set(result["before"])


def test_every_assignment_has_fixture_submissions():
    """A new source in solutions/ comes with its fixtures: the solution and the usual wrong answers."""
    sources = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    assert sorted(FIXTURES) == sources
    for assignment, fixtures in FIXTURES.items():
        names = [f.name for f in fixtures]
        assert "solution" in names and len(names) == len(set(names)), names
        assert any(f.loses and f.status == "ok" for f in fixtures), f"{assignment}: no wrong-answer fixture"
