"""Grade a folder of submissions with nbgrader, each student in a sandbox of its own.

    python tools/grade.py SUBMISSIONS --assignment a1_diverse_preferences [--output DIR]
    make grade SUBMISSIONS=DIR ASSIGNMENT=a1_diverse_preferences

SUBMISSIONS holds one entry per student: a notebook ``<student>.ipynb``, or a folder
``<student>/`` with the assignment's notebook in it (directly, or under
``<student>/<assignment>/`` as ``nbgrader collect`` leaves it). The assignment is the
name of a source in ``solutions/``.

What happens: ``nbgrader generate_assignment`` runs once on the source, in a temporary
course root outside the repository; then every student is graded by ``nbgrader
autograde`` and ``nbgrader generate_feedback`` (nbgrader's Python API) in a course root of
its own, which holds a copy of the gradebook, the submission, a copy of ``course_utils``
(first on the kernel's ``PYTHONPATH``) and a copy of the corpus cache. ``--jobs`` grading
processes each take student after student (Python and nbgrader start once per process, not
once per student); each student's kernel starts with that student's ``HOME``, working
directory and course files, and talks to its process over Unix sockets in a folder of its
own (no TCP ports, which two kernels starting at once can race for). Each student is graded
with

- a wall-clock limit for the whole grading of the student (``--timeout``; nbgrader's own
  timeout, ``--cell-timeout``, is per cell and only interrupts the kernel, which a
  submission can ignore): at the limit every process of that student, and its grading
  process, is killed, and the next student gets a fresh one;
- a memory limit (``--memory-gb``, the address space of each process, ``RLIMIT_AS``): an
  allocation above it raises ``MemoryError`` in the cell that asked for it;
- its own ``HOME``, working directory, gradebook and course files, so that a submission
  that deletes or rewrites files damages only its own copies.

A submission that hangs, crashes its kernel (``os._exit``), calls ``sys.exit``, deletes
course files or asks for too much memory thus loses its own points and nothing else: the
next student is graded, the repository is untouched, and no gradebook or other file is
written into it. This protects against accidents and broken code, not against a student
who attacks the grader on purpose (the kernel runs as you, with your file permissions).

Results go to ``--output`` (default ``~/preference-course-grades/<assignment>``, which
must be outside the repository): ``scores.csv`` (one row per student and test), and per
student the feedback page ``<student>/<assignment>.html``, the graded notebook
``<student>/<assignment>.ipynb`` and ``<student>/grading.log``. A table of scores per
student and per test is printed. Written answers are graded by hand: the table counts
them as pending, and ``written_answers.md`` collects every student's answers beside the
rubric of the solution.

Runs with the venv's python whether or not the venv is activated (nbgrader calls
``alembic`` from PATH; the subprocesses get the venv's ``bin`` first on PATH).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
PACKAGE = ROOT / "course_utils"
MARKER = "COURSE_GRADE_SANDBOX"  # environment variable that every process of one student inherits
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CORPUS_FILES = ("corpus.jsonl", "corpus.jsonl.check.json")


# ------------------------------------------------------------------ the source's graded cells


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    automatic: bool  # an autograder test cell; otherwise a written answer graded by hand


def graded_cells(source: Path) -> list[GradedCell]:
    """The graded cells of an nbgrader source notebook, in notebook order."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            cells.append(GradedCell(meta["grade_id"], float(meta["points"]), automatic=not meta.get("solution")))
    return cells


def rubric(source: Path) -> dict[str, str]:
    """Each written answer's text in the solution (its rubric), by grade_id."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    out = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and meta.get("solution"):
            lines = "".join(cell["source"]).splitlines()
            out[meta["grade_id"]] = "\n".join(l for l in lines if not re.match(r"^\s*#+\s*(BEGIN|END) SOLUTION", l))
    return out


# ------------------------------------------------------------------ submissions


def find_submissions(folder: Path, assignment: str) -> tuple[dict[str, Path], list[str]]:
    """``({student: notebook}, [what was skipped and why])`` from the ``<student>.ipynb`` files
    and ``<student>/`` folders of ``folder``. In a folder, ``<assignment>.ipynb`` (directly or
    under ``<assignment>/``) is the submission; failing that, the folder's only notebook."""
    found, skipped = {}, []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            student, notebook = entry.stem, entry
        elif entry.is_dir():
            student = entry.name
            candidates = [entry / f"{assignment}.ipynb", entry / assignment / f"{assignment}.ipynb"]
            notebook = next((c for c in candidates if c.is_file()), None)
            if notebook is None:
                others = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
                if len(others) != 1:
                    skipped.append(f"{entry.name}/: no {assignment}.ipynb"
                                   + (f" (found {', '.join(p.name for p in others)})" if others else ""))
                    continue
                notebook = others[0]
        else:
            continue
        if not STUDENT_ID.match(student):
            skipped.append(f"{entry.name}: a student id must be letters, digits, '.', '_' or '-' (rename it)")
            continue
        found[student] = notebook
    return found, skipped


# ------------------------------------------------------------------ sandbox


def venv_bin() -> str:
    return str(Path(sys.executable).parent)


def student_env(root: Path, token: str) -> dict[str, str]:
    """What changes from one student to the next: the course root's home, temporary folder and
    copies of ``course_utils`` and of the corpus, and the marker every process of the student inherits."""
    home = root / "home"
    return {"HOME": str(home), "TMPDIR": str(root / "tmp"),
            "PYTHONPATH": str(root / "course"),       # the copy of course_utils, not the repository's
            "COURSE_DATA_DIR": str(root / "data"),    # a copy of the corpus cache
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), MARKER: token}


def sandbox_env(root: Path, token: str, profile: str) -> dict[str, str]:
    """A small, explicit environment: nothing of the caller's beyond PATH and locale."""
    env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES")}
    env.update({
        "PATH": venv_bin() + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "COURSE_PROFILE": profile,
        "COURSE_PROGRESS": "summary",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        **student_env(root, token),
    })
    return env


def corpus_cache() -> Path:
    """The caller's corpus cache, filled first if empty (the sandbox has no network to spare)."""
    sys.dont_write_bytecode = True  # importing course_utils here must not write into the repository
    sys.path.insert(0, str(ROOT))
    from course_utils.data import cache_dir, load_corpus

    if not all((cache_dir() / name).is_file() for name in CORPUS_FILES):
        load_corpus()
    return cache_dir()


def make_root(root: Path, master: Path | None = None, corpus: Path | None = None):
    """A course root: ``home``, ``tmp``; with ``master``, a copy of its source and gradebook,
    of ``course_utils`` and of the corpus cache."""
    for sub in ("home", "tmp", "data", "course"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if master is None:
        return
    shutil.copytree(PACKAGE, root / "course" / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in CORPUS_FILES:
        shutil.copy2(corpus / name, root / "data" / name)
    shutil.copytree(master / "source", root / "source")
    shutil.copy2(master / "gradebook.db", root / "gradebook.db")


def processes_of(token: str, also=()) -> list[int]:
    """Pids of every process that carries the sandbox's marker (kernels start sessions of
    their own and a submission may detach more), plus the descendants of ``also``."""
    import psutil

    pids = set()
    for pid in also:
        try:
            pids.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == token:
                pids.add(proc.pid)
        except psutil.Error:
            pass
    pids.discard(os.getpid())
    return sorted(pids)


def kill_all(token: str, worker: subprocess.Popen | None = None):
    for _ in range(3):  # a process may fork while we kill: look again
        pids = processes_of(token, also=[worker.pid] if worker and worker.poll() is None else [])
        if worker is not None and worker.poll() is None:
            pids.append(worker.pid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if worker is not None:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2)


@dataclass
class Limits:
    timeout: float
    cell_timeout: float
    memory_gb: float
    profile: str


def worker_command(mode: str, assignment: str, limits: Limits) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", mode, assignment,
            "--memory-gb", str(limits.memory_gb), "--cell-timeout", str(limits.cell_timeout)]


def prepare(master: Path, assignment: str, limits: Limits, log: Path) -> int | None:
    """``nbgrader generate_assignment`` in ``master``, in a process of its own; its return code
    (None if it ran past ``limits.timeout``)."""
    token = secrets.token_hex(8)
    with open(log, "wb") as out:
        worker = subprocess.Popen(worker_command("prepare", assignment, limits), cwd=master,
                                  env=sandbox_env(master, token, limits.profile), stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return worker.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            kill_all(token, worker)


class GradingProcess:
    """This script in worker mode, grading the students sent to it one after another (so that
    Python and nbgrader start once, not once per student). A student it does not finish (past
    ``--timeout``, or the process died) ends it; the next student starts a fresh one."""

    def __init__(self, work: Path, assignment: str, limits: Limits):
        self.work, self.assignment, self.limits = work, assignment, limits
        self.proc, self.token, self.log = None, None, None

    def start(self):
        root = Path(tempfile.mkdtemp(prefix="process-", dir=self.work))
        make_root(root)
        self.token, self.log = secrets.token_hex(8), root / "process.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(worker_command("serve", self.assignment, self.limits), cwd=root,
                                         env=sandbox_env(root, self.token, self.limits.profile),
                                         stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, text=True)

    def grade(self, root: Path, student: str) -> tuple[str, float]:
        """Grade the student whose course root is ``root``: ``("done" | "died" | "timed out", seconds)``.
        The worker writes ``root / "result.json"`` when it is done."""
        t0 = time.time()
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        token = secrets.token_hex(8)
        try:
            self.proc.stdin.write(json.dumps({"root": str(root), "student": student, "token": token}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: seen below
        while not (root / "result.json").is_file():
            if self.proc.poll() is not None:
                ended = "died"
                break
            if time.time() - t0 > self.limits.timeout:
                ended = "timed out"
                break
            time.sleep(0.05)
        else:
            ended = "done"
        kill_all(token)  # whatever the submission left running (on a time-out, its kernel too)
        if ended != "done":
            self.stop(wait=False)
        return ended, time.time() - t0

    def stop(self, wait: bool = True):
        """End the process: when ``wait``, as it finishes its loop (no more students), else at once."""
        if self.proc is None:
            return
        if wait:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill_all(self.token, self.proc)
        self.proc = None


# ------------------------------------------------------------------ grading one student


@dataclass
class Outcome:
    student: str
    status: str                       # "ok", or why the submission got no automatic points
    scores: dict = field(default_factory=dict)   # grade_id -> points (automatic tests)
    seconds: float = 0.0


KNOWN_FAILURES = (
    ("DeadKernelError", "the kernel died"),
    ("CellTimeoutError", "a cell ran past --cell-timeout and did not stop when interrupted"),
    ("UnresponsiveKernelError", "the kernel stopped responding"),
    ("MemoryError", "the grader ran out of memory"),
)


def failure_reason(log: Path, returncode: int | None) -> str:
    """Why nbgrader gave up on a submission, in a few words, from its grading log (``returncode``:
    the grading process's, if it ended)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    for name, what in KNOWN_FAILURES:
        if name in text:
            return what
    errors = [e for e in re.findall(r"^\s*([\w.]*(?:Error|Exception)\b.*)$", text, flags=re.M)
              if "NbGraderException" not in e]
    if errors:
        return errors[-1].strip()[:120]
    return "the grader stopped" + (f" (exit code {returncode})" if returncode is not None else "")


def failure_page(student: str, assignment: str, status: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment}: {student}</title></head><body>"
            f"<h1>{assignment}: {student}</h1><p>Your notebook could not be graded automatically: "
            f"<strong>{status}</strong>. Every automatic test scores 0. Run the notebook top to bottom "
            "(Kernel &rarr; Restart and run all) and check that it finishes without stopping the kernel.</p>"
            "</body></html>\n")


def grade_one(student: str, notebook: Path, assignment: str, master: Path, corpus: Path, work: Path,
              output: Path, process: GradingProcess, keep: bool) -> Outcome:
    root = work / "students" / student
    make_root(root, master, corpus)
    (root / "submitted" / student / assignment).mkdir(parents=True)
    shutil.copy2(notebook, root / "submitted" / student / assignment / f"{assignment}.ipynb")
    mine = output / student
    if mine.exists():
        shutil.rmtree(mine)
    mine.mkdir(parents=True)
    log = root / "grading.log"      # the worker writes it, and the student's kernel its output
    ended, seconds = process.grade(root, student)
    outcome = Outcome(student, "ok", seconds=seconds)
    try:
        data = json.loads((root / "result.json").read_text()) if ended == "done" else None
    except (OSError, ValueError):
        data = None
    if ended == "timed out":
        outcome.status = f"timed out ({process.limits.timeout:.0f} s)"
    elif data is None or not data.get("success"):
        outcome.status = f"not graded: {failure_reason(log if log.is_file() else process.log, None)}"
    else:
        outcome.scores = {g: s for g, s in data["scores"].items() if s is not None}
    if log.is_file():
        shutil.copy2(log, mine / "grading.log")
    feedback = root / "feedback" / student / assignment / f"{assignment}.html"
    graded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
    if outcome.status == "ok" and feedback.is_file():
        shutil.copy2(feedback, mine / f"{assignment}.html")
    else:
        (mine / f"{assignment}.html").write_text(failure_page(student, assignment, outcome.status), encoding="utf-8")
    if graded.is_file():
        shutil.copy2(graded, mine / f"{assignment}.ipynb")
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return outcome


# ------------------------------------------------------------------ worker mode (inside the sandbox)


def apply_limits(memory_gb: float):
    """Limits of this process, inherited by every process it starts (the kernel included): its
    address space (an allocation above it fails: MemoryError) and no core files."""
    limit = int(memory_gb * 2**30)
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):  # Linux enforces RLIMIT_AS; where it cannot be set, RLIMIT_DATA
        try:
            resource.setrlimit(getattr(resource, name), (limit, limit))
            break
        except (ValueError, OSError, AttributeError):
            continue
    else:
        print(f"[grade.py] warning: no memory limit on this system ({sys.platform})", flush=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))



def worker(argv: list[str]) -> int:
    """``prepare``: nbgrader generate_assignment in the working directory. ``serve``: for each line
    ``{"root", "student", "token"}`` read from stdin, grade that student in its course root."""
    parser = argparse.ArgumentParser(prog="grade.py --worker")
    parser.add_argument("mode", choices=("prepare", "serve"))
    parser.add_argument("assignment")
    parser.add_argument("--memory-gb", type=float, required=True)
    parser.add_argument("--cell-timeout", type=float, required=True)
    args = parser.parse_args(argv)
    apply_limits(args.memory_gb)

    import warnings
    warnings.filterwarnings("ignore")  # SQLAlchemy and traitlets chatter inside nbgrader
    from nbgrader.apps import NbGraderAPI

    if args.mode == "prepare":
        result = NbGraderAPI(config=nbgrader_config(Path.cwd(), args.cell_timeout)).generate_assignment(args.assignment)
        print(result.get("log", ""))
        if not result["success"]:
            print(result.get("error", ""))
        return 0 if result["success"] else 1
    for line in sys.stdin:
        job = json.loads(line)
        grade_student(args.assignment, job["student"], Path(job["root"]), job["token"], args.cell_timeout)
    return 0


def nbgrader_config(root: Path, cell_timeout: float, kernel_sockets: Path | None = None):
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "preference-course"
    config.Execute.timeout = max(1, int(cell_timeout))
    if kernel_sockets is not None:  # Unix sockets: no TCP port that another student's kernel could take first
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(kernel_sockets / "kernel")
    return config


def grade_student(assignment: str, student: str, root: Path, token: str, cell_timeout: float):
    """Autograde one student and write their feedback, inside their course root, with their environment
    (inherited by their kernel); everything printed, the kernel's output included, goes to
    ``root / "grading.log"``; ``root / "result.json"`` is written last."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    os.chdir(root)
    os.environ.update(student_env(root, token))
    tempfile.tempdir = None   # tempfile keeps the first TMPDIR it saw: the last student's
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(root / "grading.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    # a socket's path must stay under about 100 characters, which the course root's may not
    sockets = Path(tempfile.mkdtemp(prefix="grade-kernel-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        api = NbGraderAPI(config=nbgrader_config(root, cell_timeout, sockets))
        t0 = time.time()
        result = api.autograde(assignment, student)
        print(result.get("log", ""))
        print(f"[grade.py] nbgrader autograde: {time.time() - t0:.1f} s", flush=True)
        if not result["success"]:
            print(result.get("error", ""), flush=True)
            outcome = {"success": False}
        else:
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "preference-course") as gb:
                submission = gb.find_submission(assignment, student)
                scores = {g.name: (None if g.needs_manual_grade else g.score)
                          for nb in submission.notebooks for g in nb.grades}
            t0 = time.time()
            feedback = api.generate_feedback(assignment, student)
            print(feedback.get("log", ""))
            print(f"[grade.py] nbgrader generate_feedback: {time.time() - t0:.1f} s", flush=True)
            outcome = {"success": True, "scores": scores}
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    tmp = root / "result.json.tmp"
    tmp.write_text(json.dumps(outcome))
    os.replace(tmp, root / "result.json")


# ------------------------------------------------------------------ report


def table(outcomes: list[Outcome], cells: list[GradedCell]) -> str:
    auto = [c for c in cells if c.automatic]
    manual = [c for c in cells if not c.automatic]
    total = sum(c.points for c in auto)
    head = ["student", *[c.grade_id.removeprefix("test_") for c in auto], "auto", "status"]
    rows = []
    for o in outcomes:
        got = [o.scores.get(c.grade_id, 0.0) for c in auto]
        rows.append([o.student, *[f"{g:g}/{c.points:g}" for g, c in zip(got, auto)], f"{sum(got):g}/{total:g}", o.status])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if manual:
        points = sum(c.points for c in manual)
        lines.append(f"written answers ({points:g} point{'s' if points != 1 else ''}: "
                     f"{', '.join(c.grade_id for c in manual)}) are graded by hand: see written_answers.md")
    return "\n".join(lines)


def write_scores(path: Path, outcomes: list[Outcome], cells: list[GradedCell]):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "test", "points", "max_points", "kind", "status"])
        for o in outcomes:
            for c in cells:
                points = o.scores.get(c.grade_id, 0.0) if c.automatic else ""
                out.writerow([o.student, c.grade_id, points, c.points, "auto" if c.automatic else "written", o.status])


def write_written_answers(path: Path, source: Path, submissions: dict[str, Path], assignment: str):
    """Every student's written answers, question by question, under the solution's model answer and
    rubric (read from the submitted notebooks, so that a submission nbgrader could not run is there too)."""
    key = rubric(source)
    if not key:
        return
    answers = {}
    for student, notebook in sorted(submissions.items()):
        try:
            nb = json.loads(notebook.read_text(encoding="utf-8"))
            cells = nb["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            cells = []
        answers[student] = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in cells
                            if isinstance(c, dict) and c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in key}
    parts = [f"# {assignment}: written answers\n"]
    for grade_id, text in key.items():
        parts.append(f"## {grade_id}\n\n### Model answer and rubric\n\n{text.strip()}\n")
        for student, theirs in answers.items():
            parts.append(f"### {student}\n\n{theirs.get(grade_id, '(no answer)').strip()}\n")
    path.write_text("\n".join(parts), encoding="utf-8")


# ------------------------------------------------------------------ main


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submissions (see above)")
    parser.add_argument("--assignment", required=True, help="a source in solutions/ (its name without .ipynb)")
    parser.add_argument("--output", type=Path, help="where feedback and scores go "
                        "(default ~/preference-course-grades/<assignment>; not inside the repository)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one student's whole notebook")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds per cell before nbgrader interrupts it (default: --timeout)")
    parser.add_argument("--memory-gb", type=float, default=6, help="address space per process, GiB")
    parser.add_argument("--jobs", type=int, default=1, help="students graded at once")
    parser.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "gpu"),
                        help="COURSE_PROFILE for the notebooks (tests hold in every profile; smoke is quickest)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course roots (prints where)")
    args = parser.parse_args(argv)

    sources = sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))
    source = SOLUTIONS / f"{args.assignment}.ipynb"
    if not source.is_file():
        parser.error(f"--assignment {args.assignment!r} has no source solutions/{args.assignment}.ipynb; "
                     f"assignments: {', '.join(sources) or 'none'}")
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of submissions")
    output = (args.output or Path.home() / "preference-course-grades" / args.assignment).expanduser().resolve()
    if output == ROOT or ROOT in output.parents:
        parser.error(f"--output {output} is inside the repository; feedback holds student work, put it elsewhere")
    if args.timeout <= 0 or args.memory_gb <= 0 or args.jobs < 1:
        parser.error("--timeout and --memory-gb must be > 0 and --jobs >= 1")
    limits = Limits(timeout=args.timeout, cell_timeout=args.cell_timeout or args.timeout,
                    memory_gb=args.memory_gb, profile=args.profile)
    submissions, skipped = find_submissions(args.submissions, args.assignment)
    if skipped:
        print("skipped:\n  " + "\n  ".join(skipped), file=sys.stderr)
    if not submissions:
        parser.error(f"no submissions in {args.submissions}")

    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"grade-{args.assignment}-"))
    processes = queue.Queue()
    try:
        for _ in range(min(args.jobs, len(submissions))):  # they start (import nbgrader) while the source is prepared
            process = GradingProcess(work, args.assignment, limits)
            process.start()
            processes.put(process)
        corpus = corpus_cache()
        master = work / "master"
        make_root(master)
        (master / "source" / args.assignment).mkdir(parents=True)
        shutil.copy2(source, master / "source" / args.assignment / f"{args.assignment}.ipynb")
        rc = prepare(master, args.assignment, Limits(300, 300, args.memory_gb, args.profile),
                     output / "generate_assignment.log")
        if rc != 0:
            print(f"nbgrader generate_assignment failed; see {output / 'generate_assignment.log'}", file=sys.stderr)
            return 1
        print(f"grading {len(submissions)} submission(s) of {args.assignment} "
              f"({args.jobs} at a time, {limits.timeout:.0f} s and {limits.memory_gb:g} GiB each, "
              f"{args.profile} profile)", flush=True)

        def one(item):
            student, notebook = item
            process = processes.get()
            try:
                outcome = grade_one(student, notebook, args.assignment, master, corpus, work, output, process,
                                    args.keep)
            finally:
                processes.put(process)
            print(f"  {student}: {outcome.status} ({outcome.seconds:.0f} s)", flush=True)
            return outcome

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(one, sorted(submissions.items())))
    finally:
        while not processes.empty():
            processes.get().stop()
        if args.keep:
            print(f"temporary course roots kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    cells = graded_cells(source)
    print()
    print(table(outcomes, cells))
    write_scores(output / "scores.csv", outcomes, cells)
    write_written_answers(output / "written_answers.md", source, submissions, args.assignment)
    print(f"\nfeedback, graded notebooks and scores.csv in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
