"""What the scripts in ``scale/`` share: the command line, the course's model and data, and the run's record.

Each script trains one of the course's recipes with TRL's trainer for it; ``accelerate launch`` runs it on one
process or many (see ``docs/scaling_out.md`` for the commands). The defaults are the course's ``cpu`` profile
on its tiny model; ``--model gpt2`` takes GPT-2 (124M) from the Hugging Face Hub.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from course_utils.data import INSTRUCTIONS, format_prompt
from course_utils.models import load_policy


def parser(doc: str, steps: int, batch_size: int, lr: float, examples: int) -> argparse.ArgumentParser:
    """The command line every script takes, described by the first paragraph of the script's ``doc``; its
    defaults are the recipe's."""
    p = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    p.add_argument("--model", default="tiny",
                   help="'tiny' (the course's tiny model, offline), 'gpt2' (from the Hub) or a checkpoint folder, "
                        "e.g. the output of scale/sft.py")
    p.add_argument("--output-dir", default=None, help="where the model and record.json go (default: runs/scale-<recipe>)")
    p.add_argument("--steps", type=int, default=steps, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help="examples per process per step; the global batch is this times the processes "
                        "times --grad-accum")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    p.add_argument("--examples", type=int, default=examples, help="training examples drawn from the corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", action="store_true", help="train on the CPU (DDP over gloo) even where a GPU is")
    return p


def positive(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Reject non-positive counts and rates on the command line, naming the option."""
    for name in ("steps", "batch_size", "grad_accum", "lr", "examples"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    return args


def model_and_tokenizer(args):
    """The causal LM and tokenizer that ``--model`` names, in fp32 on the CPU (the trainer moves it)."""
    return load_policy(args.model)


def trainer_options(args, recipe: str) -> dict:
    """The options that every TRL config here shares: steps, batches, schedule, precision, logging."""
    bf16 = not args.cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return dict(output_dir=args.output_dir or f"runs/scale-{recipe}", max_steps=args.steps,
                per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
                learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=args.steps // 10,
                seed=args.seed, data_seed=args.seed, use_cpu=args.cpu, bf16=bf16, logging_steps=1,
                save_strategy="no", report_to=[], disable_tqdm=True)


def prompts_by_domain(domains) -> list[str]:
    """The course's prompt for each domain: ``Instruction: Write a movie review.\\nResponse:``."""
    return [format_prompt(INSTRUCTIONS[d]) for d in domains]


def train_and_record(trainer, args) -> None:
    """Train, save the model, and write ``record.json`` (the logged losses, the processes) on the main process."""
    trainer.train()
    trainer.save_model(trainer.args.output_dir)
    if trainer.accelerator.is_main_process:
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        record = {"processes": trainer.accelerator.num_processes,
                  "distributed_type": str(trainer.accelerator.distributed_type), "losses": losses,
                  "global_batch": args.batch_size * args.grad_accum * trainer.accelerator.num_processes}
        Path(trainer.args.output_dir, "record.json").write_text(json.dumps(record, indent=1))
        print(json.dumps(record))
