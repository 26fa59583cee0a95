"""What the course does differently on a GPU, in one place.

On CUDA the same code runs faster, and on the CPU nothing here changes a number:

- ``precision(device)``: what the matrix products run in. ``"bf16"`` on CUDA cards with native bf16
  (compute capability 8.0 or more: A100, L4, H100, RTX 30xx on); ``"fp16"`` on cards of capability 7.x
  (V100, and the T4 of a free Colab runtime), with the loss scaled (``grad_scaler``) because fp16's range is
  narrow; ``"fp32"`` on older cards, the CPU and MPS. Not ``torch.cuda.is_bf16_supported()``: by default it
  counts emulated bf16 too and says True on a T4, where bf16 would run slowly in emulation;
- ``autocast(device)``: autocast in that precision (matrix products in bf16 or fp16, weights, optimizer
  and reductions in float32); in fp32 a context that does nothing;
- ``grad_scaler(device)``: loss scaling for fp16 autocast; elsewhere a scaler that changes nothing;
- ``allow_tf32(device)``: on CUDA, float32 matrix products outside autocast in TF32;
- ``compiled_blocks(model)``: ``torch.compile`` on each transformer block (opt-in:
  ``TrainConfig(compile=True)``), which fuses GPT-2's many small element-wise kernels.

Also on CUDA by default elsewhere: fused AdamW (``training.make_optimizer``), chunked log-probs
that never form the full logits (``logprobs``), and scaled-dot-product (flash) attention, which
transformers picks for GPT-2 by itself (``attn_implementation="sdpa"``).
"""

from __future__ import annotations

import contextlib

import torch

from . import _checks


def _device_type(where: str, device) -> str:
    if isinstance(device, torch.nn.Module):
        parameter = next(device.parameters(), None)
        if parameter is None:
            raise ValueError(f"{where}: device is a model without parameters; pass a device or a model")
        return parameter.device.type
    _checks.device(where, "device", device)
    return torch.device(device).type


_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision(device) -> str:
    """``"bf16"``, ``"fp16"`` or ``"fp32"``: the autocast precision on ``device`` (a device, its name, or a
    model: the device of its weights). bf16 only where the card computes it natively (compute capability
    8.0 or more); fp16 on capability 7.x (tensor cores in fp16: V100, T4); fp32 on older cards and off CUDA."""
    return _precision("precision", device)


def _precision(where: str, device) -> str:
    if _device_type(where, device) != "cuda":
        return "fp32"
    if isinstance(device, torch.nn.Module):
        device = next(device.parameters()).device
    major, _ = torch.cuda.get_device_capability(torch.device(device))
    return "bf16" if major >= 8 else "fp16" if major == 7 else "fp32"


def bf16_supported(device) -> bool:
    """Whether ``device`` (a device, its name, or a model: the device of its weights) is a CUDA card with
    native bf16 (compute capability 8.0 or more; a T4's emulated bf16 does not count)."""
    return _precision("bf16_supported", device) == "bf16"


def autocast(device):
    """Autocast in ``precision(device)`` (``device``: a device, its name, or a model): bf16 or fp16 on CUDA;
    in fp32 a context that changes nothing (the CPU computes in float32, as the course's CPU results were)."""
    dtype = _AUTOCAST_DTYPES.get(_precision("autocast", device))
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def grad_scaler(device) -> torch.amp.GradScaler:
    """A ``torch.amp.GradScaler`` that scales the loss where ``device`` (a device, its name, or a model) trains
    in fp16 (small gradients would underflow to zero otherwise); elsewhere a disabled one, whose ``scale``,
    ``unscale_``, ``step`` and ``update`` are plain ``loss``, nothing, ``optimizer.step()`` and nothing."""
    return torch.amp.GradScaler("cuda", enabled=_precision("grad_scaler", device) == "fp16")


def allow_tf32(device) -> bool:
    """On CUDA, let float32 matrix products use TF32 (``torch.set_float32_matmul_precision("high")``, global,
    as transformers' ``tf32=True`` does); returns whether it did. On the CPU nothing changes."""
    if _device_type("allow_tf32", device) != "cuda":
        return False
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    return True


def compiled_blocks(model, enabled: bool = True):
    """A context in which each transformer block of a GPT-2 model on CUDA runs ``torch.compile``d, as before
    afterwards; ``with compiled_blocks(model) as compiled:`` (``compiled``: whether it compiled).

    Blocks, not the whole model: the model stays the same object of the same class (so the chunked log-probs
    still find its output layer), and one compiled block serves all blocks of a shape. Sequence lengths vary
    between batches, so shapes are compiled dynamic after the first recompilation (PyTorch's default). With
    ``enabled=False``, on the CPU, and for models without ``transformer.h``, nothing changes."""
    _checks.model("compiled_blocks", "model", model)
    if not isinstance(enabled, bool):
        raise TypeError(f"compiled_blocks: enabled must be True or False, got {enabled!r}")
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    use = enabled and _device_type("compiled_blocks", model) == "cuda" and isinstance(blocks, torch.nn.ModuleList)
    return _compiling(list(blocks) if use else [])


@contextlib.contextmanager
def _compiling(blocks):
    for block in blocks:
        block.compile()
    try:
        yield bool(blocks)
    finally:
        for block in blocks:
            block._compiled_call_impl = None  # what nn.Module.compile set: the block runs eagerly again
