"""Where runs live (one setting: $COURSE_RUNS_DIR) and what a loader says before it trains a missing run."""

from functools import partial
from pathlib import Path

import nbformat
import pytest

from course_utils import runs
from course_utils.batching import collate_sft, encode_prompt_completion
from course_utils.losses import sft_step
from course_utils.profiles import get_profile
from course_utils.progress import format_seconds
from course_utils.training import TrainConfig
from test_notebooks import readme_times

ROOT = Path(__file__).resolve().parent.parent


def test_runs_live_in_runs_unless_the_setting_says_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv(runs.RUNS_DIR_VARIABLE, raising=False)
    smoke = get_profile("smoke")
    assert runs.run_dir("02", "sft", smoke) == Path("runs/02-sft-smoke")
    monkeypatch.setenv(runs.RUNS_DIR_VARIABLE, str(tmp_path / "drive"))
    assert runs.run_dir("02", "sft", smoke) == tmp_path / "drive" / "02-sft-smoke"
    monkeypatch.setenv(runs.RUNS_DIR_VARIABLE, "~/course-runs")
    assert runs.runs_root() == Path.home() / "course-runs"


def test_the_notebook_times_are_the_committed_ones():
    """cpu: the committed execution's (its metadata); smoke: the README's column, as the notebook's opening says."""
    for notebook, seconds in runs.NOTEBOOK_SECONDS.items():
        path = next((ROOT / "notebooks").glob(f"{notebook}_*.ipynb"))
        assert seconds["cpu"] == nbformat.read(path, as_version=4).metadata["course"]["seconds"], path.name
        assert format_seconds(seconds["smoke"]) == readme_times(path)[0], path.name


def test_the_note_names_the_run_and_the_time_in_this_profile():
    note = runs.training_note(get_profile("cpu"), Path("runs/01-sft-masked-cpu"), "SFT (masked) (300 steps)", "01")
    assert "runs/01-sft-masked-cpu" in note and "SFT (masked) (300 steps)" in note
    assert f"{runs.NOTEBOOK_SECONDS['01']['cpu'] // 60}m{runs.NOTEBOOK_SECONDS['01']['cpu'] % 60:02d}s in the cpu profile" in note
    assert "not been timed" in runs.training_note(get_profile("gpu"), Path("runs/x"), "SFT", "01")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(profile="cpu"), TypeError, "profile"),
    (dict(what=""), ValueError, "what"),
    (dict(notebook="06"), ValueError, "notebook"),
])
def test_the_note_refuses_bad_input(kwargs, error, match):
    args = dict(profile=get_profile("smoke"), earlier=Path("runs/x"), what="SFT", notebook="01") | kwargs
    with pytest.raises(error, match=match):
        runs.training_note(**args)


def test_a_loader_says_what_it_trains_before_training_and_not_once_the_run_is_there(make_tiny_lm, course_tokenizer,
                                                                                    tmp_path, capsys):
    examples = [encode_prompt_completion(course_tokenizer, "Review:", " Great fun.", max_length=64)] * 4
    collate = partial(collate_sft, pad_token_id=course_tokenizer.pad_token_id)
    config = TrainConfig(steps=2, batch_size=2, desc="SFT (masked)")
    earlier, own = tmp_path / "01-sft-masked-smoke", tmp_path / "02-sft-smoke"
    for _ in range(2):
        runs._from_earlier_or_train(get_profile("smoke"), make_tiny_lm(), sft_step, examples, collate, config,
                                    earlier, own)
    out = capsys.readouterr().out
    assert out.count("training SFT (masked) (2 steps) here first") == 1, out
    took = format_seconds(runs.NOTEBOOK_SECONDS["01"]["smoke"])
    assert f"No finished run in {earlier}" in out and f"{took} in the smoke profile" in out
