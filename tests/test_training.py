"""The training loop: reproducible batches, schedule, accumulation, atomic checkpoints and resume."""

import pytest
import torch

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


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, capsys):
    config = TrainConfig(steps=12, batch_size=8, lr=0.05, checkpoint_dir=str(tmp_path), checkpoint_every=100)
    reference = linear()
    train(reference, mse, EXAMPLES, collate, TrainConfig(steps=12, batch_size=8, lr=0.05))

    calls = {"n": 0}

    def interrupted_after_7(model, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return mse(model, batch)

    model = linear()
    with pytest.raises(KeyboardInterrupt):
        train(model, interrupted_after_7, EXAMPLES, collate, config)
    assert "Interrupted after 7 steps" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "checkpoint.pt.tmp").exists()

    resumed = linear(seed=123)  # a fresh process would start from other weights
    history = train(resumed, mse, EXAMPLES, collate, config)
    for a, b in zip(reference.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    assert history[-1]["step"] == 11


def test_resuming_with_another_config_is_refused(tmp_path):
    train(linear(), mse, EXAMPLES, collate, TrainConfig(steps=2, batch_size=8, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="another config"):
        train(linear(), mse, EXAMPLES, collate, TrainConfig(steps=2, batch_size=8, lr=0.5, checkpoint_dir=str(tmp_path)))
