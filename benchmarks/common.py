"""What the benchmarks share: the machine, the model, the data, interleaved timing and peak memory.

Every benchmark runs two (or three) sides on identical work in one process: the same
model weights, token ids, batches, sequence lengths, precision and optimizer. Speed
and memory do not depend on the weights, so the model has random weights, built
from a config (never downloaded):

- on a GPU, GPT-2 (124M)'s shape: 12 layers, width 768, 50,257 tokens, context 1,024;
- on the CPU, the course's tiny model's shape (4 layers, width 256, 4,096 tokens,
  context 128), the model every CPU notebook trains, so that ``make bench`` fits
  15 minutes on two cores; for the memory of long responses' log-probs, the same
  body with GPT-2's vocabulary and context (``tiny-gpt2-vocab``), where, as in
  GPT-2, the logits are what fills memory.

Timing: each side runs ``reps`` repetitions, the sides INTERLEAVED (A B, B A, A B, ...), after
a warm-up (the first steps of every training run, a first repetition of the others) that is not
counted. On a shared machine the absolute tokens/s move with the load; the ratio of two sides timed
back to back moves much less, so each repetition gives one paired ratio and the benchmark reports
their median (and range) beside the median tokens/s. On the CPU the ratio is taken from CPU time
(this process's, all threads), which moves even less with other jobs' load than wall-clock time.
"""

from __future__ import annotations

import argparse
import gc
import warnings
import json
import os
import platform
import re
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

os.environ.setdefault("COURSE_PROGRESS", "summary")  # the course's loops print one line, not a bar
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout: the course's own package
    sys.path.insert(0, str(ROOT))

from course_utils.models import TINY_CONFIG, load_tokenizer  # noqa: E402

# transformers warns that `gradient_checkpointing` (which TRL's configs set) is renamed: noise here
warnings.filterwarnings("ignore", category=FutureWarning)

SHAPES = {
    "tiny": dict(TINY_CONFIG),
    "gpt2": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                 resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1),
    # the tiny body with GPT-2's vocabulary and context: where the logits, not the body, fill memory
    "tiny-gpt2-vocab": dict(TINY_CONFIG, vocab_size=50257, n_positions=1024),
}
# dense bf16 peak of the GPUs the MFU is quoted against (TFLOP/s, without sparsity)
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "T4": 65.0}


# ---------------------------------------------------------------- the machine

def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on: ``name`` (for the results file) and a description."""
    threads = torch.get_num_threads()
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        name = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
        text = f"{gpu}, {os.cpu_count()}-core CPU"
    else:
        name = f"cpu-{os.cpu_count()}core-" + re.sub(r"[^a-z0-9]+", "-", cpu_name().lower()).strip("-")
        text = f"{os.cpu_count()}-core CPU ({cpu_name()}), {threads} torch thread{'s' if threads > 1 else ''}, no GPU"
    import transformers
    import trl
    return {"machine": name, "machine_text": text,
            "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}"}


def bf16_peak_tflops() -> float | None:
    """The GPU's dense bf16 peak, for MFU; None where the GPU is not in ``BF16_PEAK_TFLOPS`` (or on the CPU)."""
    if not torch.cuda.is_available():
        return None
    gpu = torch.cuda.get_device_name(0)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in gpu), None)


def train_flops_per_token(config, seq_len: float) -> float:
    """6 N + 12 L H T: the FLOPs of a training step per token, N every parameter (GPT-2: 124M, the tied
    embedding counted once, as it is used: as the output layer), L layers, H the width, T the sequence length."""
    n = sum(p.numel() for p in _params_of(config))
    return 6 * n + 12 * config.n_layer * config.n_embd * seq_len


def _params_of(config):
    from transformers import GPT2LMHeadModel
    with torch.device("meta"):
        return list(GPT2LMHeadModel(config).parameters())


# ---------------------------------------------------------------- model and data

def tokenizer():
    """The course's tokenizer: its ids (< 4,096) are valid for both shapes."""
    return load_tokenizer("tiny")


def model_config(shape: str, tok, dropout: bool = True):
    from transformers import GPT2Config
    sizes = dict(SHAPES[shape])
    if not dropout:
        sizes.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2Config(**sizes, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)


def new_model(shape: str, tok, seed: int = 0, dropout: bool = True, device: str = "cpu"):
    """A GPT-2 of ``shape`` with random weights (seeded), fp32, as the course trains it."""
    from transformers import GPT2LMHeadModel
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(model_config(shape, tok, dropout))
    model.loss_type = "ForCausalLM"  # as course_utils.models names it (silences a transformers warning)
    return model.to(device)


def sft_rows(tok, n: int, max_length: int, seed: int = 0) -> list[dict]:
    """``n`` prompt/completion rows of the course's SFT data (notebook 01), encoded as the course does."""
    from course_utils.batching import encode_sft_dataset
    from course_utils.data import load_corpus, sft_dataset
    corpus = load_corpus("train").shuffle(seed=seed).select(range(n))
    return encode_sft_dataset(tok, sft_dataset(corpus), max_length)


def long_sft_rows(tok, n: int, length: int, seed: int = 0) -> list[dict]:
    """``n`` rows of exactly ``length`` tokens: the course's prompt, then corpus texts of its domain
    joined into one response and cut at ``length`` (for long-sequence benchmarks on a GPU)."""
    from course_utils.data import INSTRUCTIONS, format_prompt, load_corpus
    corpus = load_corpus("train").shuffle(seed=seed)
    texts = {d: iter([t for t, dd in zip(corpus["text"], corpus["domain"]) if dd == d]) for d in INSTRUCTIONS}
    rows = []
    domains = list(INSTRUCTIONS)
    for i in range(n):
        domain = domains[i % len(domains)]
        prompt = tok(format_prompt(INSTRUCTIONS[domain]))["input_ids"]
        response = []
        while len(prompt) + len(response) < length:
            response += tok(" " + next(texts[domain]), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = (prompt + response)[:length]
        rows.append({"input_ids": ids, "completion_mask": [0] * len(prompt) + [1] * (length - len(prompt))})
    return rows


def preference_texts(n: int, seed: int = 0) -> list[dict]:
    """``n`` human preference pairs (notebook 07's kind: prompt, chosen, rejected)."""
    from course_utils.data import load_corpus
    from course_utils.preferences import human_preference_pairs
    return list(human_preference_pairs(load_corpus("train"), n, seed=seed))


def long_preference_texts(tok, n: int, length: int, seed: int = 0) -> list[dict]:
    """``n`` pairs whose prompt + response fills up to ``length`` tokens: each response is corpus texts of the
    prompt's domain joined until the next would not fit (for long-sequence benchmarks on a GPU)."""
    from course_utils.data import INSTRUCTIONS, format_prompt, load_corpus
    corpus = load_corpus("train").shuffle(seed=seed)
    domains = list(INSTRUCTIONS)
    texts = {d: iter([t for t, dd in zip(corpus["text"], corpus["domain"]) if dd == d]) for d in domains}
    pairs = []
    for i in range(n):
        domain = domains[i % len(domains)]
        prompt = format_prompt(INSTRUCTIONS[domain])
        room = length - len(tok(prompt)["input_ids"]) - 1        # the end token
        sides = []
        for _ in range(2):
            parts, used = [], 0
            while True:
                text = next(texts[domain])
                size = len(tok(" " + text, add_special_tokens=False)["input_ids"])
                if used + size > room:
                    break
                parts.append(text)
                used += size
            sides.append(" " + " ".join(parts))
        pairs.append({"prompt": prompt, "chosen": sides[0], "rejected": sides[1]})
    return pairs


# ---------------------------------------------------------------- timing

def collect_garbage():
    """Free what earlier runs left (models in reference cycles with their trainers) before the next one:
    fully on a GPU, whose memory they would fill; on the CPU the young generations only (a full collection
    of a process that imported transformers and TRL takes most of a second)."""
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
    else:
        gc.collect(1)


class Clock:
    """Timestamps of the steps of one run, wall-clock and CPU time (this process, all its threads):
    ``tick()`` at the start of every step. The steady-state time per step leaves out the first
    ``warmup`` steps (and everything before them)."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def tick(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def seconds(self, warmup: int, steps: int) -> tuple[float, float]:
        """(wall, CPU) seconds from the start of step ``warmup`` to the start of step ``steps - 1``:
        ``steps - 1 - warmup`` whole steps, each with its data, forward, backward, optimizer step and
        bookkeeping."""
        if len(self.wall) < steps:
            raise RuntimeError(f"expected {steps} steps, timed {len(self.wall)}")
        return self.wall[steps - 1] - self.wall[warmup], self.cpu[steps - 1] - self.cpu[warmup]


def interleaved(sides: dict, reps: int, warmup_rep: bool = False) -> dict:
    """Run each side's ``run()`` (-> (tokens, (wall seconds, CPU seconds))) ``reps`` times, alternating the
    order (A B, B A, ...); with ``warmup_rep`` the first repetition is a warm-up, not counted (where a run
    has no warm-up steps of its own). Returns, per side, (tokens per wall second, tokens per CPU second)
    of every counted repetition."""
    names = list(sides)
    out = {name: [] for name in names}
    for r in range(reps):
        for name in (names if r % 2 == 0 else names[::-1]):
            collect_garbage()
            tokens, (wall, cpu) = sides[name]()
            counted = r > 0 or not warmup_rep
            if counted:
                out[name].append((tokens / wall, tokens / cpu))
            print(f"  rep {r}{'' if counted else ' (warm-up)'} {name:>28s}: {tokens / wall:9.0f} tokens/s, "
                  f"{tokens / cpu:9.0f} per CPU-second", flush=True)
    return out


def summarise(rates: dict, baseline: str) -> dict:
    """Per side: median tokens/s (wall-clock, with its range) and per CPU-second, and the paired ratios
    ``baseline / side`` of each repetition (median and range): ``course_speedup`` from CPU time on the CPU
    (on a shared machine it moves far less with the load than wall-clock time; with one thread it is the
    wall-clock ratio of an idle core), from wall-clock time on a GPU; ``course_speedup_wall`` from
    wall-clock time everywhere."""
    basis = 0 if torch.cuda.is_available() else 1
    out = {}
    for name, values in rates.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        ratios = [b[basis] / v[basis] for b, v in zip(rates[baseline], values)]
        ratios_wall = [b[0] / v[0] for b, v in zip(rates[baseline], values)]
        out[name] = {"tokens_per_s": statistics.median(wall), "tokens_per_s_min": min(wall),
                     "tokens_per_s_max": max(wall), "tokens_per_cpu_s": statistics.median(cpu),
                     "course_speedup": statistics.median(ratios), "course_speedup_min": min(ratios),
                     "course_speedup_max": max(ratios), "course_speedup_wall": statistics.median(ratios_wall),
                     "reps": len(values)}
    return out


# ---------------------------------------------------------------- memory

class LiveBytes(TorchDispatchMode):
    """Peak bytes of live CPU tensor storage while the mode is active: every storage an operator returns
    is counted when first seen and released when it is freed (a finalizer on the storage). The storages of
    ``ignore`` (the weights) are not counted; other storages that existed before are counted from their
    first use by an operator. Independent of the allocator, so the same work measures the same on any
    machine. Slow (Python on every operator): for a separate, untimed run."""

    def __init__(self, ignore=()):
        super().__init__()
        self.live: dict[int, int] = {}
        self.now = self.peak = 0
        self._ignored = [t.untyped_storage() for t in ignore]  # kept alive, so their ids stay theirs
        for storage in self._ignored:
            self.live[id(storage)] = 0

    def _free(self, key):
        self.now -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = id(storage)
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.now += storage.nbytes()
                    weakref.finalize(storage, self._free, key)
        self.peak = max(self.peak, self.now)
        return out


def peak_memory(fn, model) -> float:
    """Peak memory (MB) of ``fn()``: weights included, beyond them everything the run allocates
    (activations, logits, gradients, optimizer state). On CUDA the allocator's peak; on the CPU the
    peak of live tensor storage (``LiveBytes``), which does not depend on the allocator."""
    weights = sum(t.untyped_storage().nbytes() for t in {id(p): p for p in
                  list(model.parameters()) + list(model.buffers())}.values())
    collect_garbage()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    with LiveBytes(ignore=list(model.parameters()) + list(model.buffers())) as tracker:
        fn()
    return (weights + tracker.peak) / 2**20


# ---------------------------------------------------------------- command line and results

def arguments(description: str, default_shape=None) -> argparse.Namespace:
    """The benchmark's options; ``default_shape``: {"cpu": shape, "cuda": shape} (default: tiny and gpt2)."""
    default_shape = default_shape or {"cpu": "tiny", "cuda": "gpt2"}
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help=f"model shape (default: {default_shape['cuda']} on a GPU, "
                             f"{default_shape['cpu']} on the CPU)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per side, the first a warm-up")
    parser.add_argument("--quick", action="store_true", help="a few seconds: checks that the script runs")
    parser.add_argument("--out", default=None, help="append the result rows (JSON lines) to this file")
    args = parser.parse_args()
    args.shape = args.shape or default_shape[device()]
    return args


def emit(rows: list[dict], out: str | None):
    """Print the rows and append them to ``out`` (JSON lines), with the machine they ran on."""
    info = machine()
    for row in rows:
        row.update(info)
        speed = f"{row['tokens_per_s']:10.0f} tokens/s" if row.get("tokens_per_s") is not None else " " * 17
        memory = f"{row['peak_memory_mb']:8.1f} MB" if row.get("peak_memory_mb") is not None else ""
        ratio = f"course x{row['course_speedup']:.2f}" if row.get("course_speedup") is not None else ""
        speed += f" ({row['tokens_per_cpu_s']:.0f} per CPU-s)" if row.get("tokens_per_cpu_s") is not None else ""
        print(f"{row['benchmark']:>9s} {row['side']:>28s} {speed} {memory:>12s}  {ratio}")
    if out:
        with open(out, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
