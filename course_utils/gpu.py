"""What the course does differently on a GPU, in one place.

On CUDA the same code runs faster, and on the CPU nothing here changes a number:

- ``autocast(device)``: bf16 autocast on CUDA cards that support it (matrix products in bf16,
  weights, optimizer and reductions in float32); on the CPU a context that does nothing;
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


def bf16_supported(device) -> bool:
    """Whether ``device`` (a device, its name, or a model: the device of its weights) is a CUDA card with bf16."""
    return _device_type("bf16_supported", device) == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device):
    """bf16 autocast where ``device`` (a device, its name, or a model) is a CUDA card with bf16; elsewhere a
    context that changes nothing (the CPU computes in float32, as the course's CPU results were)."""
    if bf16_supported(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
