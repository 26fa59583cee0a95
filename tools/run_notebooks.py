"""Execute the course notebooks headless, with progress, and save them clean.

    python tools/run_notebooks.py --inplace notebooks/*.ipynb          # what `make notebooks` runs
    python tools/run_notebooks.py --output-dir build --html notebooks/*.ipynb   # `make run`

Each notebook runs top to bottom in a fresh kernel, in its own folder (so its
``runs/`` land under ``notebooks/runs``), with ``COURSE_PROGRESS=summary``: long
loops print one summary line instead of a progress bar, which any viewer without
widgets would show frozen at 0 %. While it runs, every cell that takes a while
is reported here.

The saved notebook keeps what shows that it ran (execution counts in order, every
output) and drops what would make a re-run of unchanged code a large diff: timing
metadata and widget state. Its metadata records the profile,
the wall-clock time and the machine (``metadata.course``), which the README's
table of times quotes and ``tests/test_notebooks.py`` checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

SLOW_CELL_SECONDS = 3  # cells that take longer are reported while the notebook runs


def machine() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU"


def clean(nb):
    """Drop volatile metadata; keep outputs and execution counts."""
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}  # not the kernel's exact version: that is the machine's
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
    return nb


def execute(path: Path, profile: str, timeout: int) -> tuple:
    nb = nbformat.read(path, as_version=4)
    name = path.stem.split("_")[0]
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    started = {}

    def on_start(cell, cell_index):
        started[cell_index] = time.time()

    def on_done(cell, cell_index, execute_reply):
        seconds = time.time() - started.get(cell_index, time.time())
        if seconds >= SLOW_CELL_SECONDS:
            first = next((line for line in cell.source.splitlines() if line and not line.startswith("#")), "")
            print(f"  [{name}] cell {cell.get('execution_count')}/{n_code} took {seconds:.0f}s: {first[:60]}",
                  flush=True)

    env_before = {k: os.environ.get(k) for k in ("COURSE_PROFILE", "COURSE_PROGRESS")}
    os.environ.update(COURSE_PROFILE=profile, COURSE_PROGRESS="summary")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}},
                                on_cell_start=on_start, on_cell_executed=on_done)
        t0 = time.time()
        client.execute()
        seconds = time.time() - t0
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.metadata["course"] = {"profile": profile, "seconds": round(seconds), "machine": machine()}
    return clean(nb), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--inplace", action="store_true", help="overwrite each notebook with its executed copy")
    where.add_argument("--output-dir", type=Path, help="write executed copies here")
    parser.add_argument("--profile", default=os.environ.get("COURSE_PROFILE") or "cpu",
                        choices=("smoke", "cpu", "gpu"), help="default: $COURSE_PROFILE, else cpu")
    parser.add_argument("--html", action="store_true", help="also write an HTML page next to each copy")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    total, failed = 0.0, []
    for path in sorted(args.notebooks):
        print(f"==> {path} ({args.profile} profile)", flush=True)
        try:
            nb, seconds = execute(path.resolve(), args.profile, args.timeout)
        except CellExecutionError as err:  # the cell and its error, not nbclient's own traceback
            print(f"    FAILED: {str(err).strip().splitlines()[-1]}\n{err}", flush=True)
            failed.append(str(path))
            continue
        total += seconds
        out = path if args.inplace else args.output_dir / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, out)  # atomic: an interrupted run leaves the old notebook whole
        print(f"    executed in {seconds:.0f}s -> {out}", flush=True)
        if args.html:
            from nbconvert import HTMLExporter
            body, _ = HTMLExporter().from_notebook_node(nb)
            out.with_suffix(".html").write_text(body, encoding="utf-8")
    print(f"{len(args.notebooks) - len(failed)} of {len(args.notebooks)} notebook(s) executed in "
          f"{total / 60:.1f} min", flush=True)
    if failed:
        print("failed (left unchanged): " + ", ".join(failed), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
