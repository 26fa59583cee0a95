"""SFT: the course's loop (``training.train`` + ``losses.sft_step``) against TRL's ``SFTTrainer`` and a
plain transformers ``Trainer``, on identical work.

Identical: the same initial weights, the same token ids in the same batches (the Trainers read the
examples in the order the course's seeded sampler draws them, ``train_sampling_strategy="sequential"``),
right-padded to the longest in each batch, the loss over response tokens only, AdamW (betas 0.9/0.95,
no weight decay, gradient clipping at 1.0), the same precision (fp32 on the CPU, bf16 autocast on a GPU).
TRL at its best: no gradient checkpointing (its default is on; it only trades speed for memory), its
fused LM head (log-probs in chunks, TRL's default), transformers' default fused AdamW.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from functools import partial

import torch

import common

BATCH = {"tiny": 32, "gpt2": 8}
LENGTH = {"tiny": None, "gpt2": 1024}   # None: the SFT data's own lengths (notebook 01: at most 96 tokens)
STEPS, WARMUP = 7, 2                    # steps per repetition; the first WARMUP are not timed
LR = 3e-4


def batches(n: int, batch_size: int, steps: int) -> list[list[int]]:
    """The example indices of each step, as the course's loop draws them (seed 0)."""
    from course_utils.training import batch_indices
    return [batch_indices(n, batch_size, 0, k) for k in range(steps)]


# Each side: (model, data, tokenizer, batch size, steps, clock) -> a function that trains. Whatever a
# side sets up before training (a Trainer, its dataset) is done before it is timed or measured.

def course_side(model, rows, tok, batch_size, steps, clock, **step_options):
    from course_utils.batching import collate_sft
    from course_utils.losses import sft_step
    from course_utils.training import TrainConfig, train

    def sft_step_timed(m, batch):  # the course's objective, with a timestamp at the start of every step
        clock.tick()
        return sft_step(m, batch, **step_options)

    config = TrainConfig(steps=steps, batch_size=batch_size, lr=LR, warmup_steps=1, log_every=10, seed=0)

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            train(model, sft_step_timed, rows, partial(collate_sft, pad_token_id=tok.pad_token_id), config)
    return run


class _Tick:
    """A TrainerCallback (built lazily: transformers is imported by the caller) that ticks a Clock."""

    @staticmethod
    def make(clock):
        from transformers import TrainerCallback

        class Tick(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                clock.tick()
        return Tick()


def trainer_args(config_cls, batch_size, steps, **extra):
    on_gpu = torch.cuda.is_available()
    return config_cls(output_dir=tempfile.mkdtemp(prefix="bench-"), per_device_train_batch_size=batch_size,
                      max_steps=steps, learning_rate=LR, warmup_steps=1, lr_scheduler_type="cosine",
                      adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0, max_grad_norm=1.0,
                      gradient_checkpointing=False, bf16=on_gpu, use_cpu=not on_gpu, report_to=[],
                      save_strategy="no", logging_steps=10, disable_tqdm=True, seed=0,
                      train_sampling_strategy="sequential", dataloader_num_workers=0, **extra)


def quietly(fn):
    """``fn()`` with its prints and warnings (progress, deprecations) out of the benchmark's output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn()


def trl_side(model, ordered, tok, batch_size, steps, clock):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = Dataset.from_list([{"input_ids": r["input_ids"], "completion_mask": r["completion_mask"]} for r in ordered])
    args = trainer_args(SFTConfig, batch_size, steps, completion_only_loss=True, max_length=None)
    trainer = quietly(lambda: SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                         callbacks=[_Tick.make(clock)]))
    return lambda: quietly(trainer.train)


def hf_side(model, ordered, tok, batch_size, steps, clock):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from course_utils.batching import collate_sft

    data = Dataset.from_list([{"input_ids": r["input_ids"], "completion_mask": r["completion_mask"]} for r in ordered])

    def collate(rows):  # the course's padding and labels; the model computes its own loss from labels
        batch = collate_sft(rows, tok.pad_token_id)
        return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}

    args = trainer_args(TrainingArguments, batch_size, steps, remove_unused_columns=False)
    trainer = quietly(lambda: Trainer(model=model, args=args, train_dataset=data, data_collator=collate,
                                      callbacks=[_Tick.make(clock)]))
    return lambda: quietly(trainer.train)


def main():
    args = common.arguments(__doc__.splitlines()[0])
    dev = common.device()
    tok = common.tokenizer()
    batch_size = 4 if args.quick else BATCH[args.shape]
    steps, warmup = (4, 1) if args.quick else (STEPS, WARMUP)
    reps = args.reps or (2 if args.quick else 3)
    n = batch_size * 8
    rows = (common.sft_rows(tok, n, 96) if LENGTH[args.shape] is None
            else common.long_sft_rows(tok, n, LENGTH[args.shape]))
    order = batches(n, batch_size, steps)
    ordered = [rows[i] for idx in order for i in idx]
    tokens = sum(len(rows[i]["input_ids"]) for idx in order[warmup:steps - 1] for i in idx)
    padded = sum(max(len(rows[i]["input_ids"]) for i in idx) * len(idx) for idx in order[warmup:steps - 1])
    init = common.new_model(args.shape, tok).state_dict()

    def fresh():
        model = common.new_model(args.shape, tok, device=dev)
        model.load_state_dict(init)
        return model

    runs = {"course": (course_side, rows), "TRL SFTTrainer": (trl_side, ordered),
            "transformers Trainer": (hf_side, ordered)}

    def timed(name):
        side, data = runs[name]

        def run():
            clock = common.Clock()
            side(fresh(), data, tok, batch_size, steps, clock)()
            return tokens, clock.seconds(warmup, steps)
        return run

    print(f"SFT: {args.shape} shape, batch {batch_size}, {tokens / ((steps - 1 - warmup) * batch_size):.0f} tokens "
          f"per sequence ({1 - tokens / padded:.0%} padding), {steps - 1 - warmup} timed steps per repetition, "
          f"{reps} repetitions on {dev}", flush=True)
    rates = common.interleaved({name: timed(name) for name in runs}, reps)
    summary = common.summarise(rates, "course")

    memory = {}
    for name, (side, data) in runs.items():  # two steps: the second has the optimizer's state too
        model = fresh()
        memory[name] = common.peak_memory(side(model, data, tok, batch_size, 2, common.Clock()), model)

    config = common.model_config(args.shape, tok)
    seq = tokens / ((steps - 1 - warmup) * batch_size)
    peak = common.bf16_peak_tflops()
    settings = {
        "course": "training.train + losses.sft_step; AdamW " + ("fused" if dev == "cuda" else "(for-loop)"),
        "TRL SFTTrainer": "completion_only_loss, fused LM head (default), no gradient checkpointing, "
                          "AdamW fused (transformers default)",
        "transformers Trainer": "model's own loss from labels, AdamW fused (transformers default)",
    }
    rows_out = []
    for name in runs:
        s = summary[name]
        mfu = (common.train_flops_per_token(config, seq) * s["tokens_per_s"] / (peak * 1e12)) if peak else None
        rows_out.append({"benchmark": "sft", "side": name, "shape": args.shape, "device": dev,
                         "precision": "bf16 autocast" if dev == "cuda" else "fp32", "batch": batch_size,
                         "tokens_per_sequence": round(seq, 1), "peak_memory_mb": round(memory[name], 1),
                         "mfu": None if mfu is None else round(mfu, 4), "settings": settings[name],
                         **{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}})
    common.emit(rows_out, args.out)


if __name__ == "__main__":
    main()
