"""Generate the student versions of the assignments from their sources.

    python tools/assignments.py            # what `make assignments` runs: solutions/X.ipynb -> assignments/X.ipynb
    python tools/assignments.py --check    # exit 1 if a committed student version differs from its source's

Each source in ``solutions/`` is an nbgrader source notebook (solution regions between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, hidden tests between ``### BEGIN HIDDEN
TESTS`` and ``### END HIDDEN TESTS``, graded cells marked in the cell metadata). The student
version is what ``nbgrader generate_assignment`` releases: solution regions replaced by a
stub that raises ``NotImplementedError``, written answers by "YOUR ANSWER HERE", hidden
tests removed, outputs cleared, checksums of the graded and locked cells recorded.
nbgrader runs in a temporary course root without a gradebook, so nothing but
``assignments/`` is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"


def sources() -> list[Path]:
    return sorted(SOLUTIONS.glob("*.ipynb"))


def student_version(source: Path) -> nbformat.NotebookNode:
    """The student version of one source notebook, as ``nbgrader generate_assignment --no-db`` makes it."""
    import logging
    import warnings

    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    name = source.stem
    with tempfile.TemporaryDirectory(prefix="assignments-") as root:
        (Path(root) / "source" / name).mkdir(parents=True)
        shutil.copy2(source, Path(root) / "source" / name / source.name)
        config = Config()
        config.CourseDirectory.root = root
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
        config.Application.log_level = logging.WARNING
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = NbGraderAPI(config=config).generate_assignment(name)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed on {source}:\n{result.get('error', '')}\n"
                               f"{result.get('log', '')}")
        nb = nbformat.read(Path(root) / "release" / name / source.name, as_version=4)
    nb.metadata.pop("course", None)  # the profile, time and machine of the solution's run
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed student versions")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        nb = student_version(source)
        target = ASSIGNMENTS / source.name
        if args.check:
            if not target.is_file() or nbformat.read(target, as_version=4) != nb:
                stale.append(target.relative_to(ROOT))
            continue
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, target)
        print(f"{source.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
    names = {p.name for p in sources()}
    orphans = [p.relative_to(ROOT) for p in ASSIGNMENTS.glob("*.ipynb") if p.name not in names]
    if orphans:
        print(f"student versions without a source in solutions/: {', '.join(map(str, orphans))}", file=sys.stderr)
    if stale:
        print(f"out of date (run `make assignments`): {', '.join(map(str, stale))}", file=sys.stderr)
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
