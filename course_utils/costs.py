"""What a training step holds in memory, counted the same way for every objective and on every device.

A step's memory is the training state (the parameters, their gradients and AdamW's two moments: four numbers
per parameter) plus the activations that autograd keeps from the forward pass for the backward pass. At one
model size the first is the same for SFT, DPO and ORPO; the second grows with the number of sequences and
tokens a step runs through the model, and is what tells the objectives apart. ``activation_bytes`` counts it
exactly, with ``torch.autograd.graph.saved_tensors_hooks``: the bytes of every distinct storage that the
forward pass saves for backward, the model's own parameters left out. Unlike the process's resident memory,
this does not depend on what the allocator kept from earlier work, so it can be compared between runs on a
CPU. (On CUDA, ``torch.cuda.max_memory_allocated`` measures the peak itself, temporaries included.)
"""

from __future__ import annotations

import torch

from . import _checks


def training_state_bytes(model) -> int:
    """Bytes of the training state of ``model`` under AdamW: its trainable parameters, their gradients and the
    optimiser's two moments (4 x the parameters' bytes). A frozen model (a reference) holds only its weights."""
    _checks.model("training_state_bytes", "model", model)
    return 4 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def activation_bytes(loss_fn, model, batch: dict) -> int:
    """Bytes of the tensors that autograd saves for the backward pass of ``loss_fn(model, batch)`` (the
    ``training.train`` contract: ``(loss, metrics)``), in training mode, each storage counted once and the
    model's parameters left out. Nothing is trained: no backward pass runs, the graph is freed, and the model's
    mode is restored."""
    if not callable(loss_fn):
        raise TypeError(f"activation_bytes: loss_fn must be a function (model, batch) -> (loss, metrics), got "
                        f"{type(loss_fn).__name__}")
    _checks.model("activation_bytes", "model", model)
    if not isinstance(batch, dict) or not batch:
        raise TypeError(f"activation_bytes: batch must be a non-empty dict of tensors (what collate returns), got "
                        f"{type(batch).__name__ if not isinstance(batch, dict) else 'an empty dict'}")
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[(tensor.device, storage.data_ptr())] = storage.nbytes()
        return tensor

    was_training = model.training
    model.train()
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = loss_fn(model, batch)
        del out
    finally:
        model.train(was_training)
    return sum(saved.values())
