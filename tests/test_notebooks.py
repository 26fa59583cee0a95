"""The committed notebooks, as a reader sees them on GitHub, in Colab or in JupyterLab
before running anything: executed top to bottom in the `cpu` profile, every output
saved, nothing that belongs to the machine they ran on. No notebook is executed here
(`make test` runs them under nbval); these checks read the files.
"""

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.progress import format_seconds

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 2_000_000
CHECK = "# NBVAL_CHECK_OUTPUT"
MACHINE_PATH = re.compile(r"(/home/|/root/|/work/|/tmp/|/Users/|/opt/|site-packages|[A-Za-z]:\\)")
CONTROL = re.compile(r"[\r\x1b]")  # carriage returns and ANSI escapes: a progress bar's redraws, colours


def texts(output) -> list[str]:
    """Every text an output shows: a stream, or each text-like MIME type of a result."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return [v for k, v in output.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


def test_executed_in_the_cpu_profile(notebook):
    path, nb = notebook
    course = nb.metadata.get("course", {})
    assert course.get("profile") == "cpu", f"{path.name}: run `make notebooks` (records metadata.course.profile)"
    assert isinstance(course.get("seconds"), int) and course["seconds"] > 0


def test_executed_top_to_bottom_in_order(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


def test_no_error_traceback_or_stderr(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name} cell {i}: an error output"
            assert not (out.output_type == "stream" and out.name == "stderr"), \
                f"{path.name} cell {i}: a stderr box: {out.text[:200]!r}"
            assert all("Traceback (most recent call last)" not in t for t in texts(out)), f"{path.name} cell {i}"


def test_no_machine_paths_progress_bars_or_widgets(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), \
                f"{path.name} cell {i}: a widget output (a progress bar saved at its first frame)"
            for text in texts(out):
                assert not MACHINE_PATH.search(text), f"{path.name} cell {i}: {MACHINE_PATH.search(text)[0]!r}"
                assert not CONTROL.search(text), f"{path.name} cell {i}: control characters in {text[:80]!r}"
    assert "widgets" not in nb.metadata


def test_small_enough(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size / 1e6:.1f} MB"


def test_plots_are_saved(notebook):
    path, nb = notebook
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no plot in the saved outputs"


def test_at_least_three_cells_are_compared_by_nbval(notebook):
    path, nb = notebook
    checked = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(CHECK)]
    assert len(checked) >= 3, f"{path.name}: {len(checked)} cells marked {CHECK}"
    for cell in checked:
        assert cell.outputs, f"{path.name}: a {CHECK} cell without a saved output compares nothing"


def test_readme_states_the_committed_times():
    """The README's cpu column is the time recorded in each committed notebook."""
    for path in NOTEBOOKS:
        committed = format_seconds(nbformat.read(path, as_version=4).metadata["course"]["seconds"])
        assert readme_times(path)[1] == committed, \
            f"README row for {path.name} does not state its committed cpu time {committed}: {readme_times(path)}"


def readme_times(path: Path) -> tuple[str, str]:
    """The README's smoke and cpu columns for a notebook (the last two of its row)."""
    row = next((line for line in (ROOT / "README.md").read_text().splitlines() if f"notebooks/{path.name})" in line),
               None)
    assert row, f"README has no row for {path.name}"
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    return cells[-2], cells[-1]


def test_each_notebook_opens_with_the_readme_times(notebook):
    """What a student reads first ("**Time:** 1m02s in `smoke` and 3m33s in `cpu`") is the README's row."""
    path, nb = notebook
    smoke, cpu = readme_times(path)
    line = f"**Time:** {smoke} in `smoke` and {cpu} in `cpu`"
    assert line in nb.cells[0].source, f"{path.name}'s first cell does not say {line!r}"
