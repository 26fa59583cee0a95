"""Run every benchmark (``make bench``): results in ``benchmarks/results/<machine>.csv`` and ``.png``,
and a table with the ratios and the machine printed at the end.

    python benchmarks/run.py                  # all of them, at full size
    python benchmarks/run.py --quick          # seconds: checks that each script runs (nothing written)
    python benchmarks/run.py --only sft dpo   # some of them
    python benchmarks/run.py --markdown FILE  # print FILE's table as Markdown (for the README)
    python benchmarks/run.py --plot FILE      # draw FILE's plot again (FILE with .png)

Each script runs in its own process, one after the other, so that they do not compete for the
machine. ``course_speedup`` is the course's tokens/s over the other side's, the median of the
ratios of back-to-back repetitions (with their range): above 1, the course is faster. On the CPU
it is the ratio of tokens per CPU-second (``course_speedup_wall``: of wall-clock tokens/s), which
holds up when other jobs share the machine. For the log-probs rows, compare ``peak_memory_mb``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("sft", "dpo", "rollout", "logprobs")
COLUMNS = ["machine", "benchmark", "side", "shape", "device", "precision", "batch", "tokens_per_sequence",
           "tokens_per_s", "tokens_per_s_min", "tokens_per_s_max", "tokens_per_cpu_s", "course_speedup",
           "course_speedup_min", "course_speedup_max", "course_speedup_wall", "reps", "peak_memory_mb", "mfu",
           "max_abs_difference", "settings", "machine_text", "versions"]


def run(only, quick: bool, shape: str | None) -> tuple[list[dict], float]:
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.jsonl"
        for name in only:
            command = [sys.executable, str(HERE / f"{name}.py"), "--out", str(out)]
            command += ["--quick"] * quick + (["--shape", shape] if shape else [])
            print(f"== {name}", flush=True)
            t = time.time()
            subprocess.run(command, check=True, cwd=HERE.parent)
            print(f"== {name}: {time.time() - t:.0f} s", flush=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rows, time.time() - started


def fmt(value, digits=0) -> str:
    return "" if value in (None, "") else f"{float(value):,.{digits}f}"


def table(rows: list[dict], markdown: bool = False) -> str:
    head = ["benchmark", "side", "tokens/s (range)", "per CPU-s", "peak memory", "course speedup (range)"]
    lines = []
    for r in rows:
        speed = f"{fmt(r['tokens_per_s'])} ({fmt(r['tokens_per_s_min'])}–{fmt(r['tokens_per_s_max'])})"
        ratio = "" if r["side"] == "course" else \
            f"×{fmt(r['course_speedup'], 2)} ({fmt(r['course_speedup_min'], 2)}–{fmt(r['course_speedup_max'], 2)})"
        if r.get("mfu") not in (None, ""):
            speed += f", MFU {float(r['mfu']):.0%}"
        lines.append([r["benchmark"], r["side"], speed, fmt(r.get("tokens_per_cpu_s")),
                      f"{fmt(r['peak_memory_mb'], 1)} MB", ratio])
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(cells) + " |" for cells in lines])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)) for cells in [head] + lines)


def plot(rows: list[dict], path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [r for r in rows if r["side"] != "course"]
    labels = [f"{r['benchmark']}\nvs {r['side']}" for r in others]
    # the course's own opt-in paths (or the CUDA defaults) against its default, apart from the libraries
    colors = ["tab:green" if r["side"].startswith("course") else "tab:blue" for r in others]
    speedup = [float(r["course_speedup"]) for r in others]
    low = [s - float(r["course_speedup_min"]) for s, r in zip(speedup, others)]
    high = [float(r["course_speedup_max"]) - s for s, r in zip(speedup, others)]
    course_memory = {r["benchmark"]: float(r["peak_memory_mb"]) for r in rows if r["side"] == "course"}
    memory = [float(r["peak_memory_mb"]) / course_memory[r["benchmark"]] for r in others]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.55 * len(others) + 1.6), sharey=True)
    y = range(len(others))
    axes[0].barh(y, speedup, xerr=[low, high], color=colors, capsize=3)
    axes[0].axvline(1, color="black", lw=1)
    per = "tokens per CPU-second" if rows[0]["device"] == "cpu" else "tokens/s"
    axes[0].set_xlabel(f"course {per} ÷ other side's (median, range over repetitions)")
    axes[1].barh(y, memory, color=colors)
    axes[1].axvline(1, color="black", lw=1)
    axes[1].set_xlabel("other side's peak memory ÷ course's")
    axes[0].set_yticks(list(y), labels, fontsize=8)
    axes[0].invert_yaxis()
    from matplotlib.patches import Patch
    axes[1].legend(handles=[Patch(color="tab:blue", label="transformers, TRL, the plain way"),
                            Patch(color="tab:green", label="the course's opt-in path")], fontsize=8, loc="lower right")
    fig.suptitle(f"{rows[0]['machine_text']}; {rows[0]['versions']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, default=list(SCRIPTS))
    parser.add_argument("--quick", action="store_true", help="tiny runs that check the scripts work; writes nothing")
    parser.add_argument("--shape", choices=("tiny", "gpt2"), default=None)
    parser.add_argument("--markdown", metavar="CSV", help="print a results file's table as Markdown and exit")
    parser.add_argument("--plot", metavar="CSV", help="draw a results file's plot again and exit")
    args = parser.parse_args()
    if args.markdown or args.plot:
        with open(args.markdown or args.plot) as f:
            rows = list(csv.DictReader(f))
        if args.markdown:
            print(table(rows, markdown=True))
        else:
            plot(rows, Path(args.plot).with_suffix(".png"))
        return
    rows, seconds = run(args.only, args.quick, args.shape)
    if not args.quick:
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        name = rows[0]["machine"]
        with open(results / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        plot(rows, results / f"{name}.png")
        print(f"\nwrote {results / name}.csv and .png")
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"\n{rows[0]['machine_text']}; {rows[0]['versions']}; OMP_NUM_THREADS={threads}")
    print(table(rows))
    print(f"\nall benchmarks: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
