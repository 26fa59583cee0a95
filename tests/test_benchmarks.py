"""Each benchmark script runs (``--quick``: tiny sizes, seconds) and reports what ``make bench`` tabulates.
The benchmarks themselves are not part of ``make test``: ``make bench`` runs them at full size."""

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# transformers warns that `gradient_checkpointing` (which TRL's configs set) is renamed
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture
def benchmark(monkeypatch, tmp_path):
    """``benchmark(name)`` runs benchmarks/<name>.py --quick in this process and returns its result rows."""
    monkeypatch.setenv("COURSE_PROGRESS", "summary")
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def run(name):
        out = tmp_path / f"{name}.jsonl"
        monkeypatch.setattr(sys, "argv", [f"{name}.py", "--quick", "--out", str(out)])
        importlib.import_module(name).main()
        return [json.loads(line) for line in out.read_text().splitlines()]
    return run


@pytest.mark.parametrize("name, sides", [
    ("sft", {"course", "TRL SFTTrainer", "transformers Trainer", "course, chunked=True", "course, group_by_length"}),
    ("dpo", {"course", "TRL DPOTrainer", "course, chunked=True"}),
    ("rollout", {"course", "transformers generate", "generate + log-probs"}),
    ("logprobs", {"course", "course, chunked", "plain log_softmax"}),
])
def test_each_benchmark_runs_and_reports(benchmark, name, sides):
    rows = benchmark(name)
    assert {row["side"] for row in rows} == sides
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["tokens_per_cpu_s"] > 0 and row["peak_memory_mb"] > 0
        assert row["course_speedup"] > 0 and row["machine"] and row["versions"]
        if row["side"] == "course":
            assert row["course_speedup"] == 1.0
    if name == "logprobs":
        assert all(row["max_abs_difference"] < 1e-3 for row in rows)  # equal results, checked by the script too


def test_the_runner_tabulates_rows():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        run = importlib.import_module("run")
    finally:
        sys.path.remove(str(BENCHMARKS))
    rows = [{"benchmark": "sft", "side": "course", "tokens_per_s": 100.0, "tokens_per_s_min": 90,
             "tokens_per_s_max": 110, "tokens_per_cpu_s": 120, "peak_memory_mb": 50, "course_speedup": 1.0, "course_speedup_min": 1.0,
             "course_speedup_max": 1.0},
            {"benchmark": "sft", "side": "TRL SFTTrainer", "tokens_per_s": 50.0, "tokens_per_s_min": 45,
             "tokens_per_s_max": 55, "tokens_per_cpu_s": 60, "peak_memory_mb": 80, "course_speedup": 2.0,
             "course_speedup_min": 1.8, "course_speedup_max": 2.2, "mfu": None}]
    text = run.table(rows, markdown=True)
    assert "| sft | TRL SFTTrainer | 50 (45–55) | 60 | 80.0 MB | ×2.00 (1.80–2.20) |" in text
