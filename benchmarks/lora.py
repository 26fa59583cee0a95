"""LoRA against full DPO: trainable parameters, gradients, optimiser state and the memory of one DPO step.

    python benchmarks/lora.py                     # GPT-2 (124M)'s shape: counts only, no step (seconds, any machine)
    python benchmarks/lora.py --step              # and one measured DPO step of each (on a GPU: the CUDA peak)
    python benchmarks/lora.py --shape tiny --step # the course's tiny model's shape

The model has random weights built from a ``GPT2Config`` (never downloaded): memory does not depend on the weights.
Counts are of the built model's parameters; AdamW's state is two fp32 moments per trainable parameter. With
``--step``, ``lora.training_footprint`` measures one step of ``dpo.dpo_objective`` on random pairs (the gradients and
the optimiser's state as allocated, the activations autograd saves and, on CUDA, the peak allocation); the
reference log-probs are computed once with the adapters off, so neither side keeps a second model.
"""

from __future__ import annotations

import argparse

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.dpo import collate_dpo, dpo_objective
from course_utils.lora import adapter_reference_logprobs, lora_model, parameter_counts, training_footprint
from course_utils.models import TINY_CONFIG

SHAPES = {"gpt2": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
          "tiny": {k: TINY_CONFIG[k] for k in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")}}
RANK, ALPHA = 16, 32.0


def random_pairs(model, vocab: int, n: int, length: int) -> list[dict]:
    """``n`` random preference pairs of ``length`` tokens (8 of prompt), with reference log-probs (adapters off)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(2, vocab, (2, length), generator=g).tolist()
        mask = [0] * 8 + [1] * (length - 8)
        rows.append({"chosen_input_ids": ids[0], "chosen_completion_mask": mask,
                     "rejected_input_ids": ids[0][:8] + ids[1][8:], "rejected_completion_mask": mask})
    return adapter_reference_logprobs(model, rows, pad_token_id=0)


def measure(shape: str = "gpt2", step: bool = False, pairs: int = 4, length: int = 128, device: str = "cpu") -> list:
    """One row per side: parameters, MiB of weights, gradients and optimiser state, and (``step``) the step."""
    torch.manual_seed(0)
    config = GPT2Config(**SHAPES[shape], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    full = GPT2LMHeadModel(config).to(device)
    adapted = lora_model(full, r=RANK, alpha=ALPHA)
    batch = collate_dpo(random_pairs(adapted, config.vocab_size, pairs, length), pad_token_id=0) if step else None
    rows = []
    for side, model in (("full DPO", full), (f"DPO + LoRA (r={RANK}, every c_attn, c_proj, c_fc)", adapted)):
        counts = parameter_counts(model)
        row = {"shape": shape, "side": side, **counts,
               "weights_mib": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
               "gradients_mib": 4 * counts["trainable"] / 2**20, "optimizer_state_mib": 8 * counts["trainable"] / 2**20}
        if step:
            measured = training_footprint(model, dpo_objective(), batch)
            row.update(gradients_mib=measured["gradients"] / 2**20,
                       optimizer_state_mib=measured["optimizer state"] / 2**20,
                       activations_mib=measured["activations"] / 2**20, step_mib=measured["step"] / 2**20,
                       peak_mib=None if measured["peak"] is None else measured["peak"] / 2**20)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2")
    parser.add_argument("--step", action="store_true", help="measure one DPO step of each side")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--length", type=int, default=128, help="tokens per response sequence")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    rows = measure(args.shape, args.step, args.pairs, args.length, args.device)
    for row in rows:
        print(", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v:,}" if isinstance(v, int)
                        else f"{k}={v}" for k, v in row.items()))
    full, lora = rows
    print(f"LoRA trains {lora['trainable'] / full['trainable']:.2%} of the parameters; its optimiser state is "
          f"{lora['optimizer_state_mib']:.1f} MiB against {full['optimizer_state_mib']:.1f} MiB")
    return rows


if __name__ == "__main__":
    main()
