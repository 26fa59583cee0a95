"""activation_bytes counts exactly what autograd saves for backward (the parameters left out), grows with the
batch, trains nothing and restores the mode; training_state_bytes is AdamW's four numbers per parameter."""

import copy

import torch

from course_utils.costs import activation_bytes, training_state_bytes


class Linear(torch.nn.Module):
    """y = tanh(x W): backward needs x (for W's gradient) and tanh's output."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(8, 3))

    def forward(self, x):
        return torch.tanh(x @ self.weight)


def loss_fn(model, batch):
    return model(batch["x"]).sum(), {}


def test_activation_bytes_of_a_known_graph():
    model = Linear().eval()
    x = torch.randn(5, 8)
    # saved: x (5 x 8) for W's gradient, tanh's output (5 x 3); W itself is a parameter and left out
    assert activation_bytes(loss_fn, model, {"x": x}) == (5 * 8 + 5 * 3) * 4
    assert activation_bytes(loss_fn, model, {"x": torch.randn(50, 8)}) == (50 * 8 + 50 * 3) * 4
    assert not model.training and model.weight.grad is None  # mode restored, nothing trained


def test_activation_bytes_grow_with_the_batch_on_a_language_model(make_tiny_lm):
    from course_utils.losses import sft_step

    model = make_tiny_lm()
    before = copy.deepcopy(model.state_dict())

    def batch(n):
        ids = torch.randint(0, 100, (n, 12))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    small, large = activation_bytes(sft_step, model, batch(2)), activation_bytes(sft_step, model, batch(8))
    assert 3.5 * small < large < 4.5 * small
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_training_state_bytes():
    model = Linear()
    assert training_state_bytes(model) == 4 * 8 * 3 * 4
    model.weight.requires_grad_(False)
    assert training_state_bytes(model) == 0
