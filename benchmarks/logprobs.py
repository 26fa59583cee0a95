"""Log-probs of long responses: peak memory (and time) of the course's ``logprobs.sequence_logprobs``
against the plain ``log_softmax`` over the full logits, with equal results.

The plain way, ``model(...).logits.float().log_softmax(-1).gather(...)``, holds the whole [B, T, V]
logits and a float32 [B, T, V] log-softmax at once (and with gradients, autograd keeps the latter
until the backward pass). The course's default on the CPU takes the log-softmax one sequence at a
time from the full logits; its chunked path (``chunked=True``, the default on CUDA) never forms the
full logits (``logprobs.selected_logprobs``). Each is measured scoring a batch of long responses (the
context full) as a frozen reference does (no gradient) and as a trained policy does (forward and
backward).
"""

from __future__ import annotations

import torch

import common
from course_utils.logprobs import CHUNK_LOGITS

BATCH = {"tiny": 64, "tiny-gpt2-vocab": 2, "gpt2": 8}
DEFAULT_SHAPE = {"cpu": "tiny-gpt2-vocab", "cuda": "gpt2"}
SETTINGS = {"course": "sequence_logprobs(chunked=False): full logits, log-softmax one sequence at a time",
            "course, chunked": f"sequence_logprobs(chunked=True): response positions only, at most "
                               f"{CHUNK_LOGITS:,} logits at a time, checkpointed with gradients",
            "plain log_softmax": "full logits, float32 log_softmax of the batch, gather"}
LENGTH = {"tiny": 128, "tiny-gpt2-vocab": 512, "gpt2": 1024}   # long responses


def plain(model, batch):
    """Σ over response tokens of log softmax(logits)[next token], over the full float32 log-softmax."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = logits[:, :-1].float().log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return (logps * batch["completion_mask"][:, 1:]).sum(-1)


def course(model, batch, chunked=False):
    from course_utils.logprobs import sequence_logprobs
    return sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"],
                             chunked=chunked)


def course_chunked(model, batch):
    return course(model, batch, chunked=True)


def main():
    args = common.arguments(__doc__.splitlines()[0], default_shape=DEFAULT_SHAPE)
    if args.quick:
        args.shape = "tiny"
    dev = common.device()
    tok = common.tokenizer()
    batch_size = 4 if args.quick else BATCH[args.shape]
    length = 32 if args.quick else LENGTH[args.shape]
    reps = args.reps or (2 if args.quick else 3)
    from course_utils.batching import collate_sft
    batch = {k: v.to(dev) for k, v in collate_sft(common.long_sft_rows(tok, batch_size, length),
                                                  tok.pad_token_id).items()}
    model = common.new_model(args.shape, tok, dropout=False, device=dev).eval()
    sides = {"course": course, "course, chunked": course_chunked, "plain log_softmax": plain}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev == "cuda")

    def score(fn):          # a frozen reference: no gradient
        with torch.no_grad(), autocast:
            return fn(model, batch)

    def train(fn):          # a policy: forward and backward
        with autocast:
            fn(model, batch).sum().backward()
        model.zero_grad(set_to_none=True)

    with torch.no_grad():
        values = {name: score(fn) for name, fn in sides.items()}
    differ = max((values[name] - values["plain log_softmax"]).abs().max().item() for name in values)
    # float32: the same numbers; bf16 logits round differently as the products are tiled differently
    tolerance = 1e-3 if dev == "cpu" else 0.05 * length ** 0.5
    assert differ < tolerance, f"the course's log-probs differ from the plain ones by {differ} nats"
    tokens = batch_size * length
    print(f"log-probs: {args.shape} shape, {batch_size} responses of {length} tokens, vocabulary "
          f"{model.config.vocab_size}, {reps} repetitions on {dev}; largest difference {differ:.1e} nats", flush=True)
    rows = []
    for mode, run in (("no grad", score), ("forward+backward", train)):
        def timed(fn, run=run):
            def go():
                clock = common.Clock()
                clock.tick()
                run(fn)
                clock.tick()
                return tokens, clock.seconds(0, 2)
            return go
        rates = common.interleaved({n: timed(fn) for n, fn in sides.items()}, reps, warmup_rep=True)
        summary = common.summarise(rates, "course")
        for name, fn in sides.items():
            memory = common.peak_memory(lambda: run(fn), model)
            rows.append({"benchmark": f"logprobs ({mode})", "side": name, "shape": args.shape, "device": dev,
                         "precision": "bf16 autocast" if dev == "cuda" else "fp32", "batch": batch_size,
                         "tokens_per_sequence": length, "peak_memory_mb": round(memory, 1),
                         "max_abs_difference": differ,
                         "settings": SETTINGS[name],
                         **{k: round(v, 3) if isinstance(v, float) else v for k, v in summary[name].items()}})
    common.emit(rows, args.out)


if __name__ == "__main__":
    main()
