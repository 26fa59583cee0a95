"""The judge: the course's stand-in for human evaluation, and how to measure it.

    python -m course_utils.judge            # trains and writes course_utils/checkpoints/judge

A "gold" reward model in the sense of Gao et al. (2022), "Scaling Laws for Reward
Model Overoptimization": trained on every training-split rating, stronger than any
proxy a notebook trains, and checked against held-out human labels. VADER's
compound score (Hutto & Gilbert, 2014) is reported beside it as a second,
independent opinion.

The judge is a ``GPT2ForSequenceClassification`` on the tiny base's backbone with
five output columns (``config.id2label`` names them):

- column 0, ``sentiment``: regression to a text's mean human rating (-4..+4);
- columns 1..4, ``domain:movie`` ... ``domain:editorial``: domain logits, so the
  course can check whether "Write a movie review." produced a movie review.

Its input is the text (whitespace stripped) followed by the end-of-text token, as
a generated response ends; the head reads the last real token, that end token.

How it is measured: pairs of held-out texts of the same domain, each labelled by
one random rater per text, ties dropped. Everything below is exact (expected
values over the raters), not sampled:

- ``prefer_probability(ra, rb)``: the chance that such a label prefers A;
- ``pairwise_agreement(scores, ratings, pairs)``: a predictor's expected agreement
  with that label (a predictor tie counts one half), averaged over the pairs;
- ``ceiling(ratings, pairs)``: the agreement of the majority side, max(p, 1 - p),
  which no predictor can beat: the raters disagree among themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .data import DOMAINS, load_corpus

RATING_VALUES = np.arange(-4, 5)  # the rating scale: integers -4..+4
MAX_LENGTH = 128                  # tokens, the end token included
N_PAIRS = 20_000                  # pairs per domain in the shipped measurements
PAIR_SEED = 0
SENTIMENT = "sentiment"
DOMAIN_LABELS = tuple(f"domain:{d}" for d in DOMAINS)


# ---------------------------------------------------------------- pairwise agreement

def rating_histograms(ratings) -> np.ndarray:
    """``[N, 9]`` array: the share of each text's raters who gave -4, -3, ..., +4."""
    hist = np.zeros((len(ratings), len(RATING_VALUES)))
    for i, rs in enumerate(ratings):
        rs = np.asarray(rs, dtype=int)
        if rs.size == 0 or rs.min() < -4 or rs.max() > 4:
            raise ValueError(f"text {i}: ratings must be a non-empty list of integers in -4..4")
        hist[i] = np.bincount(rs + 4, minlength=len(RATING_VALUES)) / rs.size
    return hist


def _as_histograms(ratings) -> np.ndarray:
    """Rating lists -> histograms; histograms (a float ``[N, 9]`` array) pass through."""
    if isinstance(ratings, np.ndarray) and ratings.dtype.kind == "f" and ratings.ndim == 2 \
            and ratings.shape[1] == len(RATING_VALUES):
        return ratings
    return rating_histograms(ratings)


def _win_loss(hist_a: np.ndarray, hist_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(ra > rb) and P(ra < rb) for rows of rating histograms, raters drawn independently."""
    above = np.cumsum(hist_a, axis=-1)                      # above[.., j] = P(ra <= j)
    a_gt = 1.0 - above                                      # P(ra > j)
    a_lt = np.concatenate([np.zeros_like(above[..., :1]), above[..., :-1]], axis=-1)  # P(ra < j)
    return (a_gt * hist_b).sum(-1), (a_lt * hist_b).sum(-1)


def pair_probabilities(ratings, pairs) -> np.ndarray:
    """For each pair ``(a, b)``: the probability that a single-rater label prefers ``a``
    (see ``prefer_probability``); ``nan`` where every draw ties."""
    hist = _as_histograms(ratings)
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    win, loss = _win_loss(hist[pairs[:, 0]], hist[pairs[:, 1]])
    decided = win + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(decided > 1e-12, win / np.where(decided > 1e-12, decided, 1.0), np.nan)
    return p


def prefer_probability(ratings_a, ratings_b) -> float:
    """Probability that one random rater of A and one random rater of B give A the
    higher rating, among draws that do not tie: P(ra > rb) / (P(ra > rb) + P(ra < rb)).

    ``nan`` when every draw ties (e.g. ``[0]`` vs ``[0]``): such a pair has no label.
    """
    return float(pair_probabilities([list(ratings_a), list(ratings_b)], [[0, 1]])[0])


def pairwise_agreement(scores, ratings, pairs) -> float:
    """Expected agreement of a predictor (higher score = preferred) with a single-rater
    label, averaged over the ``pairs`` that can be labelled at all. A predictor tie
    counts 0.5. ``ratings``: one list of individual ratings per text (or their
    ``rating_histograms``); ``pairs``: ``[M, 2]`` indices into ``scores``/``ratings``."""
    scores = np.asarray(scores, dtype=float)
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    p = pair_probabilities(ratings, pairs)
    keep = ~np.isnan(p)
    if not keep.any():
        return float("nan")
    sa, sb = scores[pairs[keep, 0]], scores[pairs[keep, 1]]
    agree = np.where(sa > sb, p[keep], np.where(sa < sb, 1.0 - p[keep], 0.5))
    return float(agree.mean())


def ceiling(ratings, pairs) -> float:
    """The best achievable ``pairwise_agreement``: always side with the majority of raters."""
    p = pair_probabilities(ratings, pairs)
    p = p[~np.isnan(p)]
    return float(np.maximum(p, 1.0 - p).mean()) if p.size else float("nan")


def same_domain_pairs(domains, n_pairs: int, seed: int = PAIR_SEED) -> np.ndarray:
    """``n_pairs`` random pairs of distinct texts per domain (drawn with replacement),
    as an ``[n_domains * n_pairs, 2]`` array of indices into ``domains``. Domains come
    in order of first appearance; each has its own seeded stream, so one domain's pairs
    do not depend on the others."""
    domains = np.asarray(domains)
    order = list(dict.fromkeys(domains.tolist()))
    out = []
    for k, d in enumerate(order):
        idx = np.flatnonzero(domains == d)
        if len(idx) < 2:
            raise ValueError(f"domain {d!r} has {len(idx)} text(s); a pair needs two")
        rng = np.random.default_rng([seed, k])
        a = rng.integers(len(idx), size=n_pairs)
        b = (a + 1 + rng.integers(len(idx) - 1, size=n_pairs)) % len(idx)  # uniform over the others
        out.append(np.stack([idx[a], idx[b]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=int)


def agreement_by_domain(scores, ratings, domains, pairs) -> dict:
    """``pairwise_agreement`` per domain (pairs are within one domain), DOMAINS order."""
    domains = np.asarray(domains)
    pairs = np.asarray(pairs, dtype=int)
    hist = rating_histograms(ratings)
    return {d: pairwise_agreement(scores, hist, pairs[domains[pairs[:, 0]] == d])
            for d in DOMAINS if (domains == d).any()}


def ceiling_by_domain(ratings, domains, pairs) -> dict:
    domains = np.asarray(domains)
    pairs = np.asarray(pairs, dtype=int)
    hist = rating_histograms(ratings)
    return {d: ceiling(hist, pairs[domains[pairs[:, 0]] == d]) for d in DOMAINS if (domains == d).any()}


# ---------------------------------------------------------------- VADER

_VADER = None


def vader_scores(texts) -> np.ndarray:
    """VADER's compound score (-1..+1) of each text; the lexicon ships with ``vaderSentiment``."""
    global _VADER
    if _VADER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        _VADER = SentimentIntensityAnalyzer()
    return np.array([_VADER.polarity_scores(t)["compound"] for t in texts], dtype=float)


# ---------------------------------------------------------------- the judge model

def encode(tokenizer, text: str, max_length: int = MAX_LENGTH) -> list[int]:
    """Token ids of the stripped text followed by the end token; a long text is cut,
    its end token kept. An empty text is the end token alone."""
    ids = tokenizer(text.strip(), add_special_tokens=False, verbose=False)["input_ids"] if text.strip() else []
    return ids[:max_length - 1] + [tokenizer.eos_token_id]


def pad_right(seqs: list[list[int]], pad_id: int) -> dict:
    """Pad to the longest sequence, on the right: the head reads the last non-pad token."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def new_judge_model(base=None):
    """A fresh judge: the tiny base's backbone with a 5-column head (random init)."""
    from transformers import AutoModelForSequenceClassification

    from .models import TINY_BASE
    labels = (SENTIMENT,) + DOMAIN_LABELS
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base or TINY_BASE), num_labels=len(labels), dtype=torch.float32,
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    if model.config.pad_token_id is None:
        raise ValueError("the base model's config has no pad_token_id; the head could not find the last real token")
    return model


class Judge:
    """The shipped judge. ``Judge.load().score(texts)`` ->
    ``dict(sentiment=[N] predicted mean human rating, domain=[N] names, domain_probs=[N, 4])``."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.domains = tuple(id2label[i].removeprefix("domain:") for i in range(1, len(id2label)))
        if id2label[0] != SENTIMENT or self.domains != DOMAINS:
            raise ValueError(f"not a judge: its columns are {id2label}")
        if model.config.pad_token_id is None or model.config.pad_token_id == tokenizer.eos_token_id:
            raise ValueError("the judge needs a pad token distinct from its end token")

    @classmethod
    def load(cls, device: str = "cpu") -> "Judge":
        from .models import load_judge
        return cls(*load_judge(device))

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """``[N, 5]`` raw outputs, in the input's order. Texts are batched by length."""
        if isinstance(texts, str):
            raise TypeError("score() takes a list of texts, not one string")
        self.model.eval()
        device = next(self.model.parameters()).device
        seqs = [encode(self.tokenizer, t) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = torch.zeros((len(seqs), self.model.config.num_labels))
        for i in range(0, len(order), batch_size):
            chunk = order[i:i + batch_size]
            batch = pad_right([seqs[j] for j in chunk], self.model.config.pad_token_id)
            logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
            out[chunk] = logits.float().cpu()
        return out

    def score(self, texts: list[str], batch_size: int = 64) -> dict:
        logits = self.logits(texts, batch_size)
        probs = torch.softmax(logits[:, 1:], dim=-1).numpy()
        return {"sentiment": logits[:, 0].numpy().astype(np.float64),
                "domain": [self.domains[k] for k in probs.argmax(-1)] if len(probs) else [],
                "domain_probs": probs}


# ---------------------------------------------------------------- training

def judge_examples(corpus, tokenizer) -> list[dict]:
    return [{"input_ids": encode(tokenizer, t), "target": m, "domain": DOMAINS.index(d)}
            for t, m, d in zip(corpus["text"], corpus["mean_rating"], corpus["domain"])]


def length_batches(examples: list[dict], batch_size: int, epochs: int, seed: int = 0,
                   window: int = 50) -> list[list[dict]]:
    """Batch by length: per epoch, shuffle (seeded), cut into windows of ``window``
    batches, sort each window by length and cut it into batches. Batches then pad to
    similar lengths (half the tokens of random batches here), while their order,
    drawn by ``train``, stays random. Each epoch has its own shuffle."""
    batches = []
    for epoch in range(epochs):
        perm = np.random.default_rng([seed, epoch]).permutation(len(examples))
        span = batch_size * window
        for start in range(0, len(perm) - batch_size + 1, span):
            chunk = sorted(perm[start:start + span], key=lambda i: len(examples[i]["input_ids"]))
            batches += [[examples[i] for i in chunk[j:j + batch_size]]
                        for j in range(0, len(chunk) - batch_size + 1, batch_size)]
    return batches


def make_collate(pad_id: int):
    """Collate for ``train``: each item is a whole batch (from ``length_batches``)."""
    def collate(items):
        rows = [r for item in items for r in item]
        batch = pad_right([r["input_ids"] for r in rows], pad_id)
        batch["target"] = torch.tensor([r["target"] for r in rows], dtype=torch.float32)
        batch["domain"] = torch.tensor([r["domain"] for r in rows], dtype=torch.long)
        return batch
    return collate


def make_loss(domain_weight: float = 1.0):
    """MSE of column 0 to the mean human rating (each text weighs the same) plus
    ``domain_weight`` x cross-entropy of columns 1..4 against the domain."""
    def judge_loss(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        mse = torch.nn.functional.mse_loss(logits[:, 0], batch["target"])
        ce = torch.nn.functional.cross_entropy(logits[:, 1:], batch["domain"])
        acc = (logits[:, 1:].argmax(-1) == batch["domain"]).float().mean()
        return mse + domain_weight * ce, {"mse": mse.detach(), "ce": ce.detach(), "domain_acc": acc}
    return judge_loss


def evaluate(judge: Judge, corpus, pairs, with_references: bool = False) -> dict:
    """Per-domain agreement of the judge (and, optionally, of the ceiling, the texts'
    mean human rating and VADER, on the same pairs) plus domain accuracy."""
    scores = judge.score(list(corpus["text"]))
    ratings, domains = list(corpus["ratings"]), np.asarray(corpus["domain"])
    out = {"judge": agreement_by_domain(scores["sentiment"], ratings, domains, pairs)}
    if with_references:
        out["ceiling"] = ceiling_by_domain(ratings, domains, pairs)
        out["mean_rating"] = agreement_by_domain(np.asarray(corpus["mean_rating"]), ratings, domains, pairs)
        out["vader"] = agreement_by_domain(vader_scores(corpus["text"]), ratings, domains, pairs)
    predicted = np.asarray(scores["domain"])
    out["domain_accuracy"] = {d: float((predicted[domains == d] == d).mean()) for d in DOMAINS}
    out["domain_accuracy"]["all"] = float((predicted == domains).mean())
    out["sentiment_mse"] = float(((scores["sentiment"] - np.asarray(corpus["mean_rating"])) ** 2).mean())
    return out


def print_table(m: dict):
    rows = [("ceiling (majority side)", "ceiling"), ("judge", "judge"),
            ("texts' mean human rating", "mean_rating"), ("VADER compound", "vader")]
    print(f"{'predictor':28s}" + "".join(f"{d:>11s}" for d in DOMAINS))
    for name, key in rows:
        if key in m:
            print(f"{name:28s}" + "".join(f"{m[key][d]:11.3f}" for d in DOMAINS))
    print(f"{'domain accuracy (judge)':28s}" + "".join(f"{m['domain_accuracy'][d]:11.3f}" for d in DOMAINS)
          + f"   all {m['domain_accuracy']['all']:.3f}")


def main(argv=None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .models import JUDGE, TINY_BASE, save_small
    from .training import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--domain-weight", type=float, default=1.0)
    parser.add_argument("--eval-every", type=int, default=0, help="validation agreement every N steps (0: at the end)")
    parser.add_argument("--base", default=str(TINY_BASE))
    parser.add_argument("--out", default=str(JUDGE))
    parser.add_argument("--checkpoint-dir", default="runs/judge")
    parser.add_argument("--skip-test", action="store_true", help="stop after validation (for tuning)")
    args = parser.parse_args(argv)

    t0 = time.time()
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    tokenizer.padding_side = "right"
    train_set, val_set = load_corpus("train"), load_corpus("validation")
    examples = judge_examples(train_set, tokenizer)
    model = new_judge_model(args.base)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(examples)} training texts "
          f"({sum(len(r) for r in train_set['ratings']):,} individual ratings)")
    val_pairs = same_domain_pairs(val_set["domain"], N_PAIRS, PAIR_SEED)

    def eval_fn(m):
        v = evaluate(Judge(m, tokenizer), val_set, val_pairs)
        return {f"val_{d}": a for d, a in v["judge"].items()} | {"val_domain_acc": v["domain_accuracy"]["all"],
                                                                  "val_mse": v["sentiment_mse"]}

    config = TrainConfig(steps=args.steps, batch_size=1, lr=args.lr, warmup_steps=args.warmup_steps,
                         weight_decay=args.weight_decay, checkpoint_dir=args.checkpoint_dir, checkpoint_every=200,
                         log_every=50, desc="judge")
    batches = length_batches(examples, args.batch_size, epochs=-(-args.steps * args.batch_size // len(examples)),
                             seed=config.seed)
    history = train(model, make_loss(args.domain_weight), batches, make_collate(tokenizer.pad_token_id), config,
                    eval_fn=eval_fn if args.eval_every else None, eval_every=args.eval_every)
    train_seconds = time.time() - t0
    for h in history:
        if "val_movie" in h:
            print(f"step {h['step'] + 1:5d}  val agreement " + " ".join(f"{d} {h['val_' + d]:.3f}" for d in DOMAINS)
                  + f"  domain acc {h['val_domain_acc']:.3f}  mse {h['val_mse']:.3f}")
    save_small(model, tokenizer, args.out)

    # measure what ships: the bf16 checkpoint, reloaded in fp32
    shipped = AutoModelForSequenceClassification.from_pretrained(args.out, dtype=torch.float32)
    judge = Judge(shipped, tokenizer)
    val = evaluate(judge, val_set, val_pairs, with_references=True)
    print("validation split:")
    print_table(val)
    metrics = {
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay, "domain_weight": args.domain_weight,
        "train_texts": len(examples), "train_seconds": round(train_seconds),
        "machine": f"{os.cpu_count()}-core CPU ({platform.machine()})" if not torch.cuda.is_available()
        else torch.cuda.get_device_name(0),
        "torch_threads": torch.get_num_threads(), "train_loss_last": history[-1]["loss"],
        "validation": val,
    }
    if not args.skip_test:
        test_set = load_corpus("test")
        test_pairs = same_domain_pairs(test_set["domain"], N_PAIRS, PAIR_SEED)
        test = evaluate(judge, test_set, test_pairs, with_references=True)
        metrics["test"] = test
        metrics["pairs"] = {"split": "test", "per_domain": N_PAIRS, "seed": PAIR_SEED,
                            "label": "one random rater per text, ties dropped; exact expectation"}
        print("test split:")
        print_table(test)
    metrics["checkpoint_bytes"] = (Path(args.out) / "model.safetensors").stat().st_size
    (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"trained in {train_seconds:.0f} s; wrote {args.out} ({metrics['checkpoint_bytes'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
