"""A solved notebook runs as the shipped one does.

Notebook 06 is executed with every folded solution written into its stub: each check must
say "Passed", and every other checked output (``# NBVAL_CHECK_OUTPUT``) must equal the
committed one, so the student's functions drive the later cells exactly as the course's do.
(06 is the quickest notebook with exercises, and its outputs do not depend on the profile.)
"""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from test_exercises import CHECK_CALL, SOLUTION

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_dpo_derivation.ipynb"
CHECK = "# NBVAL_CHECK_OUTPUT"
STUB = re.compile(r"def (\w+)\(.*?raise NotImplementedError\([^)]*\)\n", re.S)


def shown(cell) -> str:
    """The text a cell shows: its streams and the plain text of its results."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def solved(nb):
    """A copy of ``nb`` with each stub replaced by the solution folded below it; the indices of the check cells."""
    nb = nbformat.from_dict(nb)
    checks = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source):
            solution = SOLUTION.search(nb.cells[i + 1].source)[1]
            cell.source, n = STUB.subn(lambda m: solution, cell.source, count=1)
            assert n == 1, f"cell {i}: no stub to replace"
            checks.append(i)
    return nb, checks


def test_the_solved_notebook_reproduces_the_shipped_outputs(monkeypatch):
    shipped = nbformat.read(NOTEBOOK, as_version=4)
    nb, checks = solved(shipped)
    assert len(checks) >= 3
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    for i in checks:
        assert shown(nb.cells[i]).startswith("Passed"), f"cell {i}: {shown(nb.cells[i])}"
    compared = 0
    for i, (ran, committed) in enumerate(zip(nb.cells, shipped.cells)):
        if ran.cell_type == "code" and CHECK in ran.source and i not in checks:
            assert shown(ran) == shown(committed), f"cell {i} differs with the solutions filled in"
            compared += 1
    assert compared >= 8
