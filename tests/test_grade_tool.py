"""The pieces of tools/grade.py, without running nbgrader (tests/test_grading.py runs it end to end):
where submissions are found, what is refused, the sandbox's environment and limits, how
leftover processes are found and killed, and how results are reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402

A1 = ROOT / "solutions" / "a1_diverse_preferences.ipynb"


def touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")


def test_submissions_in_every_layout(tmp_path):
    touch(tmp_path / "alice.ipynb")                                  # a loose notebook
    touch(tmp_path / "bob" / "a1.ipynb")                            # a folder per student
    touch(tmp_path / "carol" / "a1" / "a1.ipynb")                   # as `nbgrader collect` leaves it
    touch(tmp_path / "dave" / "my copy of a1.ipynb")                # the folder's only notebook
    touch(tmp_path / "dave" / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    touch(tmp_path / "erin" / "notes.txt")                          # no notebook: skipped
    touch(tmp_path / "frank" / "x.ipynb")
    touch(tmp_path / "frank" / "y.ipynb")                           # two others: which one? skipped
    touch(tmp_path / "bad name.ipynb")                              # not a usable student id: skipped
    touch(tmp_path / ".hidden.ipynb")
    found, skipped = grade.find_submissions(tmp_path, "a1")
    assert {k: v.relative_to(tmp_path).as_posix() for k, v in found.items()} == {
        "alice": "alice.ipynb", "bob": "bob/a1.ipynb", "carol": "carol/a1/a1.ipynb", "dave": "dave/my copy of a1.ipynb"}
    assert sorted(s.split(":")[0].rstrip("/") for s in skipped) == ["bad name.ipynb", "erin", "frank"]


@pytest.mark.parametrize("args, message", [
    (["--assignment", "a9_nothing"], "has no source solutions/a9_nothing.ipynb; assignments: a1_diverse_preferences"),
    (["--assignment", "a1_diverse_preferences", "--output", str(ROOT / "grades")], "is inside the repository"),
    (["--assignment", "a1_diverse_preferences", "--jobs", "0"], "--jobs >= 1"),
])
def test_refused_before_anything_runs(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        grade.main([str(tmp_path), *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (ROOT / "grades").exists()


def test_no_submissions_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--assignment", "a1_diverse_preferences", "--output", str(tmp_path / "out")])
    assert "no submissions" in capsys.readouterr().err


def test_sandbox_environment(tmp_path):
    env = grade.sandbox_env(tmp_path, "t0k3n", "smoke")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # nbgrader finds alembic there
    assert env["PYTHONPATH"] == str(tmp_path / "course")                       # the copy of course_utils
    for key in ("HOME", "TMPDIR", "COURSE_DATA_DIR", "JUPYTER_CONFIG_DIR"):
        assert Path(env[key]).is_relative_to(tmp_path), key
    assert env[grade.MARKER] == "t0k3n" and env["COURSE_PROFILE"] == "smoke"
    assert "VIRTUAL_ENV" not in env and "PYTHONSTARTUP" not in env


def test_memory_limit_turns_a_large_allocation_into_memory_error():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import grade; grade.apply_limits(1.0)\n"
            "try:\n    bytearray(2 * 2**30)\nexcept MemoryError:\n    print('MemoryError')\n")
    run = subprocess.run([sys.executable, "-c", code, str(ROOT / "tools")], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "MemoryError", run.stdout + run.stderr


def test_kill_all_finds_detached_processes_by_their_marker():
    """A process in a session of its own, no longer a child of the worker, is still found and killed."""
    token = "test-" + str(os.getpid())
    env = dict(os.environ, **{grade.MARKER: token})
    proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        time.sleep(0.2)
        assert proc.pid in grade.processes_of(token)
        grade.kill_all(token)
        assert proc.wait(timeout=10) != 0
        assert grade.processes_of(token) == []
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("log, reason", [
    ("...\nnbclient.exceptions.DeadKernelError: Kernel died\n...NbGraderException: see above", "the kernel died"),
    ("nbclient.exceptions.CellTimeoutError: A cell timed out\n", "did not stop when interrupted"),
    ("  File x\nsqlite3.OperationalError: database disk image is malformed\nNbGraderException: x\n",
     "sqlite3.OperationalError: database disk image is malformed"),
    ("", "the grader stopped (exit code 2)"),
])
def test_failure_reasons(tmp_path, log, reason):
    (tmp_path / "log").write_text(log)
    assert reason in grade.failure_reason(tmp_path / "log", 2)


def test_graded_cells_and_rubric_of_assignment_1():
    cells = grade.graded_cells(A1)
    assert sum(c.points for c in cells if c.automatic) == 21
    assert sum(c.points for c in cells if not c.automatic) == 6
    key = grade.rubric(A1)
    assert set(key) == {c.grade_id for c in cells if not c.automatic}
    assert all("Rubric" in text and "BEGIN SOLUTION" not in text for text in key.values())


def test_table_and_scores_count_a_failed_submission_as_zero(tmp_path):
    cells = [grade.GradedCell("test_a", 2.0, True), grade.GradedCell("written", 1.0, False)]
    outcomes = [grade.Outcome("ann", "ok", {"test_a": 2.0}), grade.Outcome("ben", "timed out (60 s)")]
    text = grade.table(outcomes, cells)
    lines = text.splitlines()
    assert lines[2].split() == ["ann", "2/2", "2/2", "ok"]
    assert lines[3].split()[:3] == ["ben", "0/2", "0/2"] and lines[3].endswith("timed out (60 s)")
    assert "by hand" in lines[-1]
    grade.write_scores(tmp_path / "scores.csv", outcomes, cells)
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[0] == "student,test,points,max_points,kind,status"
    assert "ben,test_a,0.0,2.0,auto,timed out (60 s)" in rows and "ann,written,,1.0,written,ok" in rows


def test_written_answers_collected_under_the_rubric(tmp_path):
    import json

    nb = json.loads((ROOT / "assignments" / "a1_diverse_preferences.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "written_split":
            cell["source"] = "Split texts are two crowds."
    (tmp_path / "ann.ipynb").write_text(json.dumps(nb))
    (tmp_path / "ben.ipynb").write_text("not a notebook")
    grade.write_written_answers(tmp_path / "w.md", A1, {"ann": tmp_path / "ann.ipynb", "ben": tmp_path / "ben.ipynb"},
                                "a1_diverse_preferences")
    text = (tmp_path / "w.md").read_text()
    split = text[text.index("## written_split"):text.index("## written_mixture")]
    assert "Rubric" in split and "Split texts are two crowds." in split and "### ben\n\n(no answer)" in split
