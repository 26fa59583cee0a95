"""The training loop: reproducible batches, schedule, accumulation, atomic checkpoints and resume."""

import dataclasses

import numpy as np
import pytest
import torch

from course_utils import training
from course_utils.training import TrainConfig, batch_indices, lr_at, train

X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
EXAMPLES = [{"x": x, "y": y} for x, y in zip(X, Y)]


def collate(rows):
    return {"x": torch.stack([r["x"] for r in rows]), "y": torch.stack([r["y"] for r in rows])}


def mse(model, batch):
    loss = ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
    return loss, {"abs_error": loss.sqrt()}


def linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1)


def test_each_epoch_reads_every_example_once_in_a_seeded_order():
    epoch = [i for k in range(8) for i in batch_indices(64, 8, seed=1, k=k)]
    assert sorted(epoch) == list(range(64))
    assert epoch == [i for k in range(8) for i in batch_indices(64, 8, seed=1, k=k)]
    assert batch_indices(64, 8, seed=1, k=8) != batch_indices(64, 8, seed=1, k=0)  # a new permutation
    with pytest.raises(ValueError, match="larger than"):
        batch_indices(4, 8, seed=0, k=0)


def test_schedule_warms_up_then_decays_to_a_tenth():
    config = TrainConfig(steps=100, lr=1.0, warmup_steps=10)
    assert lr_at(0, config) == pytest.approx(0.1)
    assert lr_at(9, config) == pytest.approx(1.0)
    assert lr_at(10, config) == pytest.approx(1.0)
    assert lr_at(100, config) == pytest.approx(0.1)
    assert all(lr_at(s, config) >= lr_at(s + 1, config) for s in range(10, 99))


def test_any_non_negative_seed_trains():
    """The loop seeds step k with seed * 1_000_003 + k, past NumPy's 2**32 limit for seeds above 4294."""
    history = train(linear(), mse, EXAMPLES, collate, TrainConfig(steps=2, batch_size=8, seed=10_000))
    assert len(history) == 2


def test_training_reduces_the_loss_and_logs_metrics():
    model = linear()
    history = train(model, mse, EXAMPLES, collate, TrainConfig(steps=60, batch_size=16, lr=0.1, log_every=1))
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    assert {"step", "lr", "loss", "abs_error"} <= set(history[-1])
    assert not model.training  # handed back in eval mode


def test_gradient_accumulation_equals_the_large_batch():
    big, small = linear(), linear()
    train(big, mse, EXAMPLES, collate, TrainConfig(steps=5, batch_size=16, lr=0.05))
    train(small, mse, EXAMPLES, collate, TrainConfig(steps=5, batch_size=8, grad_accum=2, lr=0.05))
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b)


def ctrl_c_after(monkeypatch, n_steps):
    """Press Ctrl-C after ``n_steps`` optimiser steps (the loop advances its progress bar once a step)."""
    real, calls = training.Progress.update, {"n": 0}

    def update(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n_steps:
            raise KeyboardInterrupt
    monkeypatch.setattr(training.Progress, "update", update)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, capsys, monkeypatch):
    config = TrainConfig(steps=12, batch_size=8, lr=0.05, checkpoint_dir=str(tmp_path), checkpoint_every=100)
    reference = linear()
    reference_history = train(reference, mse, EXAMPLES, collate, TrainConfig(steps=12, batch_size=8, lr=0.05))

    with monkeypatch.context() as m:
        ctrl_c_after(m, 7)
        with pytest.raises(KeyboardInterrupt):
            train(linear(), mse, EXAMPLES, collate, config)
    assert "Interrupted after 7 steps" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "checkpoint.pt.tmp").exists()

    resumed = linear()  # a fresh process builds the same initial model; the checkpoint supplies the rest
    history = train(resumed, mse, EXAMPLES, collate, config)
    assert "Resuming from" in capsys.readouterr().out
    for a, b in zip(reference.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    assert history == reference_history


def test_the_interrupted_model_itself_can_continue(tmp_path, monkeypatch):
    """In a notebook the same model object is often passed again after Ctrl-C: its weights are the
    checkpoint's, so it continues the run (and a fresh model could still resume it afterwards)."""
    config = TrainConfig(steps=12, batch_size=8, lr=0.05, checkpoint_dir=str(tmp_path))
    reference = linear()
    train(reference, mse, EXAMPLES, collate, dataclasses.replace(config, checkpoint_dir=None))
    model = linear()
    with monkeypatch.context() as m:
        ctrl_c_after(m, 5)
        with pytest.raises(KeyboardInterrupt):
            train(model, mse, EXAMPLES, collate, config)
    train(model, mse, EXAMPLES, collate, config)
    for a, b in zip(reference.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)
    fresh = linear()
    train(fresh, mse, EXAMPLES, collate, config)  # the finished run, loaded
    for a, b in zip(reference.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b)


def test_a_finished_run_is_loaded_and_says_so(tmp_path, capsys):
    config = TrainConfig(steps=6, batch_size=8, lr=0.05, checkpoint_dir=str(tmp_path))
    first = linear()
    history = train(first, mse, EXAMPLES, collate, config)
    capsys.readouterr()
    again = linear()
    assert train(again, mse, EXAMPLES, collate, dataclasses.replace(config, desc="renamed")) == history
    assert "Loaded the finished run" in capsys.readouterr().out
    for a, b in zip(first.parameters(), again.parameters()):
        torch.testing.assert_close(a, b)
    assert not again.training


def test_eval_metrics_of_any_number_type_survive_a_checkpoint(tmp_path, capsys):
    def evaluate(model):
        return {"np_metric": np.float64(0.25), "tensor_metric": torch.tensor(0.5)}
    config = TrainConfig(steps=4, batch_size=8, checkpoint_dir=str(tmp_path))
    history = train(linear(), mse, EXAMPLES, collate, config, eval_fn=evaluate, eval_every=2)
    again = train(linear(), mse, EXAMPLES, collate, config, eval_fn=evaluate, eval_every=2)
    assert "Loaded the finished run" in capsys.readouterr().out
    assert again == history and again[-1]["np_metric"] == 0.25


def mae(model, batch):
    return (model(batch["x"]).squeeze(-1) - batch["y"]).abs().mean(), {}


def collate_scaled(rows):
    return {"x": torch.stack([r["x"] for r in rows]), "y": 2 * torch.stack([r["y"] for r in rows])}


@pytest.mark.parametrize("change, message", [
    (dict(config=TrainConfig(steps=4, batch_size=8, lr=0.5)), r"config\.lr \(0\.001 there, 0\.5 here\)"),
    (dict(examples=EXAMPLES[:-1]), "the training examples"),
    (dict(examples=[{**e, "y": e["y"] + (i == 5)} for i, e in enumerate(EXAMPLES)]), "the training examples"),
    (dict(loss_fn=mae), r"the objective \(test_training\.mse there, test_training\.mae here\)"),
    (dict(collate=collate_scaled), "the collated batch"),
    (dict(model=linear(seed=1)), "the initial weights"),
])
def test_a_checkpoint_of_another_run_is_refused_and_kept(tmp_path, change, message):
    """The same checkpoint_dir with other data, objective, collate, config or initial model: the run is
    not silently replaced by the old one, nor the old one overwritten."""
    run = dict(model=linear(), loss_fn=mse, examples=EXAMPLES, collate=collate,
               config=TrainConfig(steps=4, batch_size=8))
    train(**{**run, "config": dataclasses.replace(run["config"], checkpoint_dir=str(tmp_path))})
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    other = {**run, **change}
    other["config"] = dataclasses.replace(other["config"], checkpoint_dir=str(tmp_path))
    before = [p.detach().clone() for p in other["model"].parameters()]
    with pytest.raises(ValueError, match=message) as info:
        train(**other)
    assert f"Delete {tmp_path}" in str(info.value)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    for a, b in zip(before, other["model"].parameters()):
        torch.testing.assert_close(a, b)


def test_an_interrupted_run_with_other_data_is_not_resumed(tmp_path, monkeypatch):
    config = TrainConfig(steps=12, batch_size=8, lr=0.05, checkpoint_dir=str(tmp_path))
    with monkeypatch.context() as m:
        ctrl_c_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train(linear(), mse, EXAMPLES, collate, config)
    with pytest.raises(ValueError, match="the training examples"):
        train(linear(), mse, EXAMPLES[::-1], collate, config)
