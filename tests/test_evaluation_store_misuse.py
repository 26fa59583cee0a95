"""Bad input to the evaluation store (evaluation.stored_evaluation, evaluation_line, judge_fingerprint), to the
paired bootstrap and to runs.run_of: a clear error at the door, naming the argument, and nothing written."""

import functools
import hashlib
import tempfile
from pathlib import Path

import pytest

from course_utils import evaluation, runs
from course_utils.judge import Judge
from misuse import Case, lm, tiny

RUN = Path(tempfile.mkdtemp(prefix="course-store-misuse-"))


@functools.cache
def judge():
    return Judge.load()


def store(**kwargs):
    args = dict(run=RUN, model=lm(), reference=tiny()[0], tokenizer=tiny()[1], judge=judge(),
                domains=["movie", "tweet"], max_new_tokens=4)
    return evaluation.stored_evaluation(**{**args, **kwargs})


def written():
    """Every file under the run folder, and the model's mode: a refused call writes nothing and changes nothing."""
    return lm().training, {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in RUN.rglob("*") if f.is_file()}


CASES = [
    Case("evaluation.stored_evaluation", lambda: store(run=None), TypeError, "run", unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(run=RUN / "missing"), FileNotFoundError, "run.*not a folder",
         unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(model="policy"), TypeError, "model", unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(judge=None), TypeError, "judge", unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(domains="movie"), TypeError, "domains", unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(domains=["poem"]), ValueError, "domains.*poem",
         unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(seed=-1), ValueError, "seed", unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(max_new_tokens=0), ValueError, "max_new_tokens",
         unchanged=written),
    Case("evaluation.stored_evaluation", lambda: store(reward_model="proxy"), TypeError, "reward_model",
         unchanged=written),
    Case("evaluation.evaluation_line", lambda: evaluation.evaluation_line({"judge": [1.0]}), TypeError,
         "evaluation"),
    Case("evaluation.evaluation_line", lambda: evaluation.evaluation_line("RLOO"), TypeError, "evaluation"),
    Case("evaluation.judge_fingerprint", lambda: evaluation.judge_fingerprint("judge"), TypeError, "judge"),
    Case("evaluation.paired_bootstrap_ci", lambda: evaluation.paired_bootstrap_ci([1.0, 2.0, 3.0], [1.0, 2.0]),
         ValueError, "paired"),
    Case("evaluation.paired_bootstrap_ci", lambda: evaluation.paired_bootstrap_ci(["a", "b"], [0.0, 1.0]), TypeError,
         "values"),
    Case("evaluation.paired_bootstrap_ci", lambda: evaluation.paired_bootstrap_ci([0.0, 1.0], [0.0, float("nan")]),
         ValueError, "other"),
    Case("evaluation.paired_bootstrap_ci", lambda: evaluation.paired_bootstrap_ci([0.0, 1.0], [1.0, 0.0], level=95),
         ValueError, "level"),
    Case("evaluation.paired_bootstrap_ci", lambda: evaluation.paired_bootstrap_ci([0.0, 1.0], [1.0, 0.0], n_boot=0),
         ValueError, "n_boot"),
    Case("runs.run_of", lambda: runs.run_of("runs/04-rloo-cpu"), TypeError, "model"),
    Case("runs.run_of", lambda: runs.run_of(lm()), ValueError, "model.*not returned by a loader"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.target}: {c.names[:30]}")
def test_misuse(case):
    case.run()
