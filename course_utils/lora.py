"""LoRA (Hu et al. 2021): train a low-rank change of each weight matrix, freeze the rest.

A frozen weight W [d_out, d_in] gets two small trainable matrices, A [r, d_in] and B [d_out, r] with r ≪ d:

    h = W x + (α / r) B A x                                            (Hu et al. 2021, eq. 3)

B starts at zero, so the adapted model starts exactly at the base model. Only A and B are trained: their
gradients and AdamW's two moments are a small fraction of the full model's. For DPO this brings one more saving:
the base model with the adapters switched off *is* the reference, so no second copy of the model is kept
(``adapter_reference_logprobs``). The adapters come from ``peft`` (``LoraConfig``, ``get_peft_model``).
"""

from __future__ import annotations

import copy
import warnings

import torch

from . import _checks
from .costs import activation_bytes
from .dpo import add_reference_logprobs
from .training import TrainConfig, make_optimizer

GPT2_TARGETS = ("c_attn", "c_proj", "c_fc")   # GPT-2's attention and MLP matrices (Conv1D layers)


def lora_forward(x, weight, lora_A, lora_B, alpha: float) -> torch.Tensor:
    """One LoRA layer: W x + (α/r) B A x, for x [..., d_in], weight W [d_out, d_in], lora_A [r, d_in],
    lora_B [d_out, r]; returns [..., d_out] (no bias; r is A's number of rows)."""
    for name, value, dims in (("x", x, None), ("weight", weight, 2), ("lora_A", lora_A, 2), ("lora_B", lora_B, 2)):
        _checks.tensor("lora_forward", name, value, dims=dims, floating=True)
    alpha = _checks.number("lora_forward", "alpha", alpha, positive=True)
    r = lora_A.shape[0]
    if (x.dim() == 0 or x.shape[-1] != weight.shape[1] or lora_A.shape[1] != weight.shape[1]
            or lora_B.shape != (weight.shape[0], r)):
        raise ValueError(f"lora_forward: need x [..., d_in], weight [d_out, d_in], lora_A [r, d_in], lora_B "
                         f"[d_out, r]; got {tuple(x.shape)}, {tuple(weight.shape)}, {tuple(lora_A.shape)}, "
                         f"{tuple(lora_B.shape)}")
    return x @ weight.T + (alpha / r) * (x @ lora_A.T) @ lora_B.T


def lora_model(model, r: int = 8, alpha: float = 16.0, target_modules=GPT2_TARGETS, dropout: float = 0.0,
               seed: int = 0):
    """A ``peft`` model with LoRA adapters of rank ``r`` and scale ``alpha`` on ``target_modules`` of a COPY of
    ``model`` (which is not changed): only the adapters are trainable, and the new model computes exactly what
    ``model`` does until they are trained (B starts at 0). A's random start is drawn with ``seed`` (torch's global
    generator is left as it was), so the same call makes the same model and a checkpointed run can be loaded."""
    from peft import LoraConfig, get_peft_model

    _checks.model("lora_model", "model", model)
    r = _checks.integer("lora_model", "r", r, minimum=1)
    alpha = _checks.number("lora_model", "alpha", alpha, positive=True)
    dropout = _checks.number("lora_model", "dropout", dropout, nonnegative=True)
    seed = _checks.integer("lora_model", "seed", seed, minimum=0)
    if dropout >= 1:
        raise ValueError(f"lora_model: dropout must be in [0, 1), got {dropout}")
    if isinstance(target_modules, str) or not isinstance(target_modules, (list, tuple)) or not target_modules:
        raise TypeError(f"lora_model: target_modules must be a non-empty list of module names, got {target_modules!r}")
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ValueError(f"lora_model: the model has no modules named {missing}; GPT-2's are {list(GPT2_TARGETS)}")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        fan_in_fan_out=type(model).__name__.startswith("GPT2"), bias="none")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # peft 0.21 calls a method that transformers 5.23 has renamed; nothing the course can act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(seed)
        return get_peft_model(copy.deepcopy(model), config)


def _check_peft(where: str, model):
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise TypeError(f"{where}: model must be a peft model with adapters (from lora_model), "
                        f"got {type(model).__name__}")


def adapter_reference_logprobs(model, rows, pad_token_id: int, batch_size: int = 64) -> list[dict]:
    """``dpo.add_reference_logprobs`` with the reference = ``model`` with its adapters switched off (peft's
    ``disable_adapter()``): the base model, without a second copy of it in memory."""
    _check_peft("adapter_reference_logprobs", model)
    with model.disable_adapter():
        return add_reference_logprobs(model, rows, pad_token_id, batch_size)


def parameter_counts(model) -> dict:
    """``{"trainable": ..., "total": ...}``: numbers of parameters (elements) with and without
    ``requires_grad``."""
    _checks.model("parameter_counts", "model", model)
    params = list(model.parameters())
    return {"trainable": sum(p.numel() for p in params if p.requires_grad), "total": sum(p.numel() for p in params)}


def training_footprint(model, loss_fn, batch: dict, lr: float = 1e-4) -> dict:
    """What one training step of ``loss_fn`` on ``batch`` keeps in memory, measured on a copy of ``model``
    (which is not changed), with the course's AdamW (``training.make_optimizer``):

    - ``trainable`` and ``total`` parameters (``parameter_counts``);
    - ``weights`` bytes (every parameter), ``gradients`` bytes (the tensors in ``.grad`` after the backward pass),
      ``optimizer state`` bytes (every tensor in AdamW's state after the step: two moments per trainable
      parameter and a step count);
    - ``activations``: bytes that autograd saves for the backward pass (``costs.activation_bytes``);
    - ``step``: weights + gradients + optimizer state + activations, what the step holds at its fullest on any
      device (temporaries aside);
    - ``peak``: on CUDA, the most memory allocated on the device during the step, temporaries and anything else
      there included (``torch.cuda.max_memory_allocated``); elsewhere None (PyTorch keeps no allocation
      statistics for the CPU)."""
    _checks.model("training_footprint", "model", model)
    if not callable(loss_fn):
        raise TypeError(f"training_footprint: loss_fn must be a function (model, batch) -> (loss, metrics), "
                        f"got {type(loss_fn).__name__}")
    if not isinstance(batch, dict):
        raise TypeError(f"training_footprint: batch must be a dict of tensors (what collate returns), "
                        f"got {type(batch).__name__}")
    lr = _checks.number("training_footprint", "lr", lr, positive=True)
    trained = copy.deepcopy(model).train()
    device = next(trained.parameters()).device
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    activations = activation_bytes(loss_fn, trained, batch)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    optimizer = make_optimizer(trained, TrainConfig(steps=1, lr=lr))
    loss, _ = loss_fn(trained, batch)
    loss.backward()
    gradients = sum(p.grad.numel() * p.grad.element_size() for p in trained.parameters() if p.grad is not None)
    optimizer.step()
    state = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
                if torch.is_tensor(v))
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    weights = sum(p.numel() * p.element_size() for p in trained.parameters())
    return {**parameter_counts(trained), "weights": weights, "gradients": gradients, "optimizer state": state,
            "activations": activations, "step": weights + gradients + state + activations, "peak": peak}
