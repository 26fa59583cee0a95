"""DPO: the course's DPO (``dpo.add_reference_logprobs`` once, then ``training.train`` with
``dpo.dpo_objective``) against TRL's ``DPOTrainer`` with ``precompute_ref_log_probs=True``, on identical work.

Identical: the same initial weights (the reference is the initial policy on both sides, its
log-probs computed once before training), the same preference pairs tokenised to the same ids
(checked), read in the same batches (TRL reads them in the order the course's sampler draws them),
chosen and rejected in one forward pass padded to one length, the sigmoid loss with β = 0.1,
dropout off, AdamW (betas 0.9/0.95, no weight decay, clipping at 1.0), the same precision.
TRL at its best: reference log-probs precomputed, no gradient checkpointing, its fused LM head
(its default); ``padding_free`` is disabled in the pinned TRL (1.16 says so and falls back to padding).
"""

from __future__ import annotations

import contextlib
import io
from functools import partial

import torch

import common
from sft import _Tick, batches, quietly, trainer_args

PAIRS_PER_BATCH = {"tiny": 16, "gpt2": 8}
MAX_LENGTH = {"tiny": 76, "gpt2": 512}   # tiny: notebook 07's DPO_MAX_LENGTH, human pairs; gpt2: long pairs
STEPS, WARMUP = 7, 2
LR, BETA = 1e-4, 0.1


def encoded_pairs(tok, n: int, max_length: int, reference, long: bool = False) -> tuple[list[dict], list[dict]]:
    """Pairs encoded as the course encodes them (``runs.dpo_pairs``: longer ones left out), with the
    reference log-probs added; and the same pairs as text, for TRL. ``long``: pairs that fill ``max_length``."""
    from course_utils.batching import encode_preference_dataset
    from course_utils.dpo import add_reference_logprobs

    texts = (common.long_preference_texts(tok, n, max_length) if long
             else common.preference_texts(int(n * 1.5) + 16))
    encoded = encode_preference_dataset(tok, texts, max_length + 1)
    keep = [i for i, r in enumerate(encoded)
            if max(len(r["chosen_input_ids"]), len(r["rejected_input_ids"])) <= max_length][:n]
    if len(keep) < n:
        raise RuntimeError(f"only {len(keep)} pairs fit {max_length} tokens; need {n}")
    rows = add_reference_logprobs(reference, [encoded[i] for i in keep], tok.pad_token_id)
    return rows, [texts[i] for i in keep]


def course_side(model, rows, tok, batch_size, steps, clock, step_options=None):
    """The course's loop; ``step_options`` for ``dpo_step`` (chunked=True)."""
    from course_utils.dpo import collate_dpo, dpo_step
    from course_utils.training import TrainConfig, train

    def dpo_timed(m, batch):  # the course's objective, with a timestamp at the start of every step
        clock.tick()
        return dpo_step(m, batch, "sigmoid", BETA, **(step_options or {}))

    config = TrainConfig(steps=steps, batch_size=batch_size, lr=LR, warmup_steps=1, log_every=10, seed=0)

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            train(model, dpo_timed, rows, partial(collate_dpo, pad_token_id=tok.pad_token_id), config)
    return run


def trl_trainer(model, ordered_texts, tok, batch_size, steps, clock):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = trainer_args(DPOConfig, batch_size, steps, beta=BETA, loss_type=["sigmoid"], max_length=None,
                        precompute_ref_log_probs=True, precompute_ref_batch_size=64)
    return quietly(lambda: DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(ordered_texts),
                                      processing_class=tok, callbacks=[_Tick.make(clock)]))


def trl_side(model, ordered_texts, tok, batch_size, steps, clock):
    trainer = trl_trainer(model, ordered_texts, tok, batch_size, steps, clock)
    return lambda: quietly(trainer.train)


def check_same_ids(trainer, ordered_rows):
    """TRL's tokenised pairs are the course's token ids."""
    for trl_row, row in zip(trainer.train_dataset, ordered_rows):
        assert trl_row["prompt_ids"] + trl_row["chosen_ids"] == row["chosen_input_ids"]
        assert trl_row["prompt_ids"] + trl_row["rejected_ids"] == row["rejected_input_ids"]
        assert abs(trl_row["ref_chosen_logps"] - row["ref_chosen_logps"]) < 1e-3


def main():
    args = common.arguments(__doc__.splitlines()[0])
    dev = common.device()
    tok = common.tokenizer()
    batch_size = 4 if args.quick else PAIRS_PER_BATCH[args.shape]
    steps, warmup = (3, 1) if args.quick else (STEPS, WARMUP)
    reps = args.reps or (1 if args.quick else 3)
    n = batch_size * 8
    init = common.new_model(args.shape, tok, dropout=False).state_dict()

    def fresh():
        model = common.new_model(args.shape, tok, dropout=False, device=dev)
        model.load_state_dict(init)
        return model

    rows, texts = encoded_pairs(tok, n, MAX_LENGTH[args.shape], fresh(), long=args.shape != "tiny")
    order = batches(n, batch_size, steps)
    ordered_rows = [rows[i] for idx in order for i in idx]
    ordered_texts = [texts[i] for idx in order for i in idx]
    check_same_ids(trl_trainer(fresh(), ordered_texts, tok, batch_size, steps, common.Clock()), ordered_rows)

    def pair_tokens(i):
        return len(rows[i]["chosen_input_ids"]) + len(rows[i]["rejected_input_ids"])

    tokens = sum(pair_tokens(i) for idx in order[warmup:steps - 1] for i in idx)
    padded = sum(2 * len(idx) * max(max(len(rows[i]["chosen_input_ids"]), len(rows[i]["rejected_input_ids"]))
                                    for i in idx) for idx in order[warmup:steps - 1])
    runs = {"course": (course_side, rows, {}), "TRL DPOTrainer": (trl_side, ordered_texts, {})}
    if dev == "cpu":  # on CUDA the course's default already is chunked
        runs["course, chunked=True"] = (course_side, rows, {"step_options": {"chunked": True}})

    def timed(name):
        side, data, options = runs[name]

        def run():
            clock = common.Clock()
            side(fresh(), data, tok, batch_size, steps, clock, **options)()
            return tokens, clock.seconds(warmup, steps)
        return run

    seq = tokens / ((steps - 1 - warmup) * batch_size * 2)
    print(f"DPO: {args.shape} shape, {batch_size} pairs per batch, {seq:.0f} tokens per sequence "
          f"({1 - tokens / padded:.0%} padding), {steps - 1 - warmup} timed steps per repetition, {reps} repetitions "
          f"on {dev}", flush=True)
    summary = common.summarise(common.interleaved({name: timed(name) for name in runs}, reps), "course")
    memory = {}
    for name, (side, data, options) in runs.items():  # two steps: the second has the optimizer's state too
        model = fresh()
        memory[name] = common.peak_memory(side(model, data, tok, batch_size, 2, common.Clock(), **options), model)
    adamw = "AdamW " + ("fused" if dev == "cuda" else "for-loop (PyTorch's CPU default)")
    settings = {
        "course": "add_reference_logprobs once; training.train + dpo_step('sigmoid', beta 0.1) (chunked log-probs "
                  f"on CUDA, full logits on the CPU); {adamw}",
        "TRL DPOTrainer": "precompute_ref_log_probs, its fused LM head (default), no gradient checkpointing (default "
                          "on), padding_free unavailable in 1.16, AdamW fused (transformers' default)",
        "course, chunked=True": f"dpo_step(chunked=True): the CUDA default, opt-in on the CPU; {adamw}",
    }
    common.emit([{"benchmark": "dpo", "side": name, "shape": args.shape, "device": dev,
                  "precision": "bf16 autocast" if dev == "cuda" else "fp32", "batch": batch_size,
                  "tokens_per_sequence": round(seq, 1), "peak_memory_mb": round(memory[name], 1),
                  "settings": settings[name],
                  **{k: round(v, 3) if isinstance(v, float) else v for k, v in summary[name].items()}}
                 for name in runs], args.out)


if __name__ == "__main__":
    main()
