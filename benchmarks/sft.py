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


def batches(n: int, batch_size: int, steps: int, lengths=None) -> list[list[int]]:
    """The example indices of each step, as the course's loop draws them (seed 0; grouped by ``lengths``)."""
    from course_utils.training import batch_indices
    return [batch_indices(n, batch_size, 0, k, lengths) for k in range(steps)]


# Each side: (model, data, tokenizer, batch size, steps, clock) -> a function that trains. Whatever a
# side sets up before training (a Trainer, its dataset) is done before it is timed or measured.

def course_side(model, rows, tok, batch_size, steps, clock, step_options=None, config_options=None):
    """The course's loop; ``step_options`` for ``sft_step`` (chunked=True), ``config_options`` for
    ``TrainConfig`` (group_by_length=True)."""
    from course_utils.batching import collate_sft
    from course_utils.losses import sft_step
    from course_utils.training import TrainConfig, train

    def sft_step_timed(m, batch):  # the course's objective, with a timestamp at the start of every step
        clock.tick()
        return sft_step(m, batch, **(step_options or {}))

    config = TrainConfig(steps=steps, batch_size=batch_size, lr=LR, warmup_steps=1, log_every=10, seed=0,
                         **(config_options or {}))

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
    from course_utils.training import example_length

    args = common.arguments(__doc__.splitlines()[0])
    dev = common.device()
    tok = common.tokenizer()
    batch_size = 4 if args.quick else BATCH[args.shape]
    steps, warmup = (3, 1) if args.quick else (STEPS, WARMUP)
    reps = args.reps or (1 if args.quick else 3)
    n = batch_size * 8
    rows = (common.sft_rows(tok, n, 96) if LENGTH[args.shape] is None
            else common.long_sft_rows(tok, n, LENGTH[args.shape]))
    order = batches(n, batch_size, steps)
    grouped = batches(n, batch_size, steps, [example_length(r) for r in rows])
    ordered = [rows[i] for idx in order for i in idx]
    init = common.new_model(args.shape, tok).state_dict()

    def fresh():
        model = common.new_model(args.shape, tok, device=dev)
        model.load_state_dict(init)
        return model

    def timed_tokens(batches_):
        """Real (unpadded) tokens of the timed steps, and the padded positions they fill."""
        timed = batches_[warmup:steps - 1]
        return (sum(len(rows[i]["input_ids"]) for idx in timed for i in idx),
                sum(max(len(rows[i]["input_ids"]) for i in idx) * len(idx) for idx in timed))

    # name: (side, its data, the batches it reads, extra options); the first three sides do identical work
    runs = {"course": (course_side, rows, order, {}),
            "TRL SFTTrainer": (trl_side, ordered, order, {}),
            "transformers Trainer": (hf_side, ordered, order, {})}
    if dev == "cpu":  # on CUDA the course's default already is chunked
        runs["course, chunked=True"] = (course_side, rows, order, {"step_options": {"chunked": True}})
    runs["course, group_by_length"] = (course_side, rows, grouped, {"config_options": {"group_by_length": True}})

    def timed(name):
        side, data, batches_, options = runs[name]

        def run():
            clock = common.Clock()
            side(fresh(), data, tok, batch_size, steps, clock, **options)()
            return timed_tokens(batches_)[0], clock.seconds(warmup, steps)
        return run

    tokens, padded = timed_tokens(order)
    seq = tokens / ((steps - 1 - warmup) * batch_size)
    print(f"SFT: {args.shape} shape, batch {batch_size}, {seq:.0f} tokens per sequence ({1 - tokens / padded:.0%} "
          f"padding; {1 - timed_tokens(grouped)[0] / timed_tokens(grouped)[1]:.0%} with group_by_length), "
          f"{steps - 1 - warmup} timed steps per repetition, {reps} repetitions on {dev}", flush=True)
    summary = common.summarise(common.interleaved({name: timed(name) for name in runs}, reps), "course")

    memory = {}
    for name, (side, data, _, options) in runs.items():  # two steps: the second has the optimizer's state too
        model = fresh()
        memory[name] = common.peak_memory(side(model, data, tok, batch_size, 2, common.Clock(), **options), model)

    config = common.model_config(args.shape, tok)
    peak = common.bf16_peak_tflops()
    adamw = "AdamW " + ("fused" if dev == "cuda" else "for-loop (PyTorch's CPU default)")
    settings = {
        "course": f"training.train + losses.sft_step (chunked log-probs on CUDA, full logits on the CPU); {adamw}",
        "TRL SFTTrainer": "completion_only_loss, its fused LM head (default), no gradient checkpointing (default "
                          "on), AdamW fused (transformers' default)",
        "transformers Trainer": "the model's own loss from the labels, AdamW fused (transformers' default)",
        "course, chunked=True": f"sft_step(chunked=True): the CUDA default, opt-in on the CPU; {adamw}",
        "course, group_by_length": "TrainConfig(group_by_length=True): other batches (less padding), the same "
                                   f"examples; {adamw}",
    }
    rows_out = []
    for name, (_, _, batches_, _) in runs.items():
        s = summary[name]
        seq_side = timed_tokens(batches_)[0] / ((steps - 1 - warmup) * batch_size)
        mfu = (common.train_flops_per_token(config, seq_side) * s["tokens_per_s"] / (peak * 1e12)) if peak else None
        rows_out.append({"benchmark": "sft", "side": name, "shape": args.shape, "device": dev,
                         "precision": "bf16 autocast" if dev == "cuda" else "fp32", "batch": batch_size,
                         "tokens_per_sequence": round(seq_side, 1), "peak_memory_mb": round(memory[name], 1),
                         "mfu": None if mfu is None else round(mfu, 4), "settings": settings[name],
                         **{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}})
    common.emit(rows_out, args.out)


if __name__ == "__main__":
    main()
