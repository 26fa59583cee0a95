"""Rebuild and measure the judge (``course_utils.judge``).

    python -m course_utils.judge.train        # writes course_utils/checkpoints/judge

A rebuild script, as ``pretrain`` is: its one public entry point is ``main`` (the
command line, which argparse checks); the steps below are private to it.

Three parts are fitted, from training-split data only:

- the judge's sentiment, ``sentiment.SentimentRidge`` fitted to the texts' mean
  ratings, and on its features the linear domain model, ``domain.DomainLinear``
  (a few minutes together; ``--sentiment-only`` refits both beside an existing transformer);
- the transformer, which starts from the tiny base's backbone and learns:

  - the ratings: cross-entropy of its 9 rating columns against each text's histogram
    of individual ratings, -sum_v h(v) log p(v | text), so every individual rating counts;
  - the domain: cross-entropy of its 4 domain columns (real corpus texts only);
  - well-formedness: binary cross-entropy of its ``well_formed`` column, real texts 1,
    degenerate texts made from training-split texts by ``degenerate.TRAIN_FAMILIES`` 0;
  - optionally (``--lexicon``) the human ratings of the 7,500 words and emoticons of
    VADER's lexicon as extra one-word texts (their ratings only: no domain, no
    well-formedness label; VADER's scoring rules are never used). It cost validation
    agreement in every domain, so the shipped judge is trained without it.

Measured on the validation and test splits (``preferences``, equation 2): the
agreement of the judge score (each text requested as its own domain), of the same
judge without the degeneracy penalty (its ``sentiment``), of the transformer's own
rating columns (their expected rating), of VADER, of the texts' mean rating and the
ceiling; domain accuracy; and the degenerate battery: per rule
family, the share of degenerate texts scoring below the median score of the real
positive texts (mean rating above +1) of their requested domain; and the judge score's
lead over VADER per domain with a 95 % paired bootstrap interval (texts resampled: a
small split shows how little it can decide).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ..data import DOMAINS, load_corpus
from .degenerate import TRAIN_FAMILIES, battery, corrupt
from . import (DOMAIN_LABELS, DOMAIN_POWERS, ECHO_ALLOWANCE, FLOOR, JUDGE_DIR, LABELS, ON_DOMAIN_GATE, RATING_LABELS,
               REPETITION_WIDTH, STUTTER_ALLOWANCE, WELL_FORMED_GATE, Judge, encode, pad_right, vader_scores)
from .domain import FILE as DOMAIN_FILE
from .domain import DomainLinear
from ..preferences import (PAIR_SEED, agreement_by_domain, ceiling_by_domain, pairwise_agreement, rating_histograms,
                          same_domain_pairs)
from .sentiment import FILE as SENTIMENT_FILE
from .sentiment import SentimentRidge

N_PAIRS = 20_000   # pairs per domain in the shipped measurements
N_RATINGS = len(RATING_LABELS)
N_DOMAINS = len(DOMAIN_LABELS)


# ---------------------------------------------------------------- examples and batches

def _corpus_examples(corpus, tokenizer) -> list[dict]:
    """Real texts: rating histogram, domain, well-formed."""
    hist = rating_histograms(list(corpus["ratings"]))
    return [{"input_ids": encode(tokenizer, t), "hist": h, "domain": DOMAINS.index(d), "ok": 1.0}
            for t, h, d in zip(corpus["text"], hist, corpus["domain"])]


def _lexicon_examples(tokenizer) -> list[dict]:
    """VADER's lexicon as extra texts: each word or emoticon with the histogram of the ten
    human ratings it received (Hutto & Gilbert, 2014); no domain, no well-formedness label."""
    import vaderSentiment
    rows = []
    for line in (Path(vaderSentiment.__file__).parent / "vader_lexicon.txt").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or not fields[0].strip():
            continue
        hist = rating_histograms([ast.literal_eval(fields[3].strip())])[0]
        rows.append({"input_ids": encode(tokenizer, fields[0]), "hist": hist, "domain": -100, "ok": -1.0})
    return rows


def _negative_examples(texts, tokenizer, n: int, seed: int = 0) -> list[dict]:
    """``n`` degenerate texts made from ``texts`` (training split) by the training families."""
    return [{"input_ids": encode(tokenizer, c["text"]), "hist": None, "domain": -100, "ok": 0.0}
            for c in corrupt(list(texts), TRAIN_FAMILIES, n, seed)]


def _length_batches(examples: list[dict], batch_size: int, epochs: int, seed: int = 0,
                   window: int = 50) -> list[list[dict]]:
    """Batch by length: per epoch, shuffle (seeded), cut into windows of ``window``
    batches, sort each window by length and cut it into batches. Batches then pad to
    similar lengths, while their order, drawn by ``train``, stays random."""
    batches = []
    for epoch in range(epochs):
        perm = np.random.default_rng([seed, epoch]).permutation(len(examples))
        span = batch_size * window
        for start in range(0, len(perm) - batch_size + 1, span):
            chunk = sorted(perm[start:start + span], key=lambda i: len(examples[i]["input_ids"]))
            batches += [[examples[i] for i in chunk[j:j + batch_size]]
                        for j in range(0, len(chunk) - batch_size + 1, batch_size)]
    return batches


def _make_collate(pad_id: int):
    """Collate for ``train``: each item is a whole batch (from ``length_batches``)."""
    def collate(items):
        rows = [r for item in items for r in item]
        batch = pad_right([r["input_ids"] for r in rows], pad_id)
        batch["hist"] = torch.tensor(np.stack([r["hist"] if r["hist"] is not None else np.full(N_RATINGS, np.nan)
                                               for r in rows]), dtype=torch.float32)
        batch["domain"] = torch.tensor([r["domain"] for r in rows], dtype=torch.long)
        batch["ok"] = torch.tensor([r["ok"] for r in rows], dtype=torch.float32)
        return batch
    return collate


def _make_loss(domain_weight: float = 1.0, well_formed_weight: float = 1.0):
    """Rating cross-entropy against the rating histogram (rows with ratings) +
    ``domain_weight`` x domain cross-entropy (real texts) + ``well_formed_weight`` x
    well-formedness BCE (real and degenerate texts)."""
    def judge_loss(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        rated = ~torch.isnan(batch["hist"][:, 0])
        rating = -(batch["hist"][rated] * torch.log_softmax(logits[rated, :N_RATINGS], dim=-1)).sum(-1).mean() \
            if rated.any() else logits.new_zeros(())   # a batch may hold degenerate texts only
        has_domain = batch["domain"] >= 0
        dom_logits = logits[:, N_RATINGS:N_RATINGS + N_DOMAINS]
        ce = torch.nn.functional.cross_entropy(dom_logits[has_domain], batch["domain"][has_domain]) \
            if has_domain.any() else logits.new_zeros(())
        labelled = batch["ok"] >= 0
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[labelled, -1], batch["ok"][labelled]) \
            if labelled.any() else logits.new_zeros(())
        loss = rating + domain_weight * ce + well_formed_weight * bce
        return loss, {"rating": rating.detach(), "domain_ce": ce.detach(), "well_formed_bce": bce.detach()}
    return judge_loss


def _new_judge_model(base, n_layer: int = 0):
    """A fresh judge: ``base``'s backbone with a 14-column head (``judge.LABELS``, random
    init). With ``n_layer`` a multiple of the base's depth, each base block is repeated in
    place (block i initialises blocks k*i .. k*i + k - 1): a deeper judge that starts from
    the base's features."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(str(base), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                                        label2id={l: i for i, l in enumerate(LABELS)})
    if config.pad_token_id is None:
        raise ValueError("new_judge_model: the base model's config has no pad_token_id")
    depth = config.n_layer
    if n_layer and n_layer % depth:
        raise ValueError(f"new_judge_model: n_layer must be a multiple of the base's {depth} layers, got {n_layer}")
    config.n_layer = n_layer or depth
    model = AutoModelForSequenceClassification.from_pretrained(str(base), config=config, dtype=torch.float32)
    if config.n_layer != depth:
        blocks = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32).transformer.h
        k = config.n_layer // depth
        for j, block in enumerate(model.transformer.h):
            block.load_state_dict(blocks[j // k].state_dict())
    return model


# ---------------------------------------------------------------- measurement

def _evaluate(judge: Judge, corpus, pairs, with_references: bool = False) -> dict:
    """Per-domain agreement (equation 2 of ``preferences``) of the judge score (each text
    requested as its own domain) and of its unpenalised sentiment; with references also
    of the ceiling, the texts' mean rating and VADER, on the same pairs, and the judge
    score's lead over VADER with its bootstrap interval; domain accuracy."""
    texts, domains = list(corpus["text"]), np.asarray(corpus["domain"])
    scores = judge.score(texts, domains=domains.tolist())
    ratings = rating_histograms(list(corpus["ratings"]))
    head = torch.softmax(judge.logits(texts)[:, :N_RATINGS], dim=-1).double().numpy() @ np.arange(-4.0, 5.0)
    out = {"judge": agreement_by_domain(scores["score"], ratings, domains, pairs),
           "judge_without_penalty": agreement_by_domain(scores["sentiment"], ratings, domains, pairs),
           "transformer_rating_columns": agreement_by_domain(head, ratings, domains, pairs)}
    if with_references:
        out["ceiling"] = ceiling_by_domain(ratings, domains, pairs)
        out["mean_rating"] = agreement_by_domain(np.asarray(corpus["mean_rating"]), ratings, domains, pairs)
        vader = vader_scores(texts)
        out["vader"] = agreement_by_domain(vader, ratings, domains, pairs)
        out["judge_lead_over_vader"] = {
            d: _lead_interval(scores["score"], vader, ratings, pairs[domains[pairs[:, 0]] == d]) for d in DOMAINS}
    predicted = np.asarray(scores["domain"])
    out["domain_accuracy"] = {d: float((predicted[domains == d] == d).mean()) for d in DOMAINS}
    out["domain_accuracy"]["all"] = float((predicted == domains).mean())
    out["well_formed_mean"] = float(scores["well_formed"].mean())
    return out


def _lead_interval(scores_a, scores_b, ratings, pairs, n_boot: int = 1000, seed: int = 0) -> dict:
    """How much better ``scores_a`` agrees with one-rater labels than ``scores_b`` on
    ``pairs`` (equation 2 of ``preferences``; pairs index one set of texts), with a 95 %
    paired bootstrap interval: the texts are resampled with replacement and each pair
    keeps its positions, so the pairs move with the texts they join; pairs that land on
    one text twice are dropped. Both predictors are measured on the same resamples."""
    texts = np.unique(pairs)
    position = np.searchsorted(texts, pairs)
    rng = np.random.default_rng(seed)
    leads = []
    for _ in range(n_boot):
        p = texts[rng.integers(len(texts), size=len(texts))][position]
        p = p[p[:, 0] != p[:, 1]]
        leads.append(pairwise_agreement(scores_a, ratings, p) - pairwise_agreement(scores_b, ratings, p))
    lead = pairwise_agreement(scores_a, ratings, pairs) - pairwise_agreement(scores_b, ratings, pairs)
    low, high = np.percentile(leads, [2.5, 97.5])
    return {"lead": float(lead), "low": float(low), "high": float(high)}


def _positive_medians(judge: Judge, corpus) -> dict:
    """Per domain: the median judge score of its real positive texts (mean rating above +1)."""
    domains, mean = np.asarray(corpus["domain"]), np.asarray(corpus["mean_rating"])
    keep = np.flatnonzero(mean > 1)
    scores = judge.score([corpus["text"][int(i)] for i in keep], domains=domains[keep].tolist())["score"]
    return {d: float(np.median(scores[domains[keep] == d])) for d in DOMAINS}


def _battery_results(judge: Judge, corpus, per_family: int = 200, seed: int = 1) -> dict:
    """The degenerate battery made from ``corpus`` (the test split): per family, the share
    of items scoring below their requested domain's real-positive median, and the
    items' median score; pooled over all families, over the held-out families and over
    the repetition families (held out too), and the lowest family's share."""
    items = battery(list(corpus["text"]), list(corpus["domain"]), list(corpus["mean_rating"]), per_family, seed)
    medians = _positive_medians(judge, corpus)
    scores = judge.score([it["text"] for it in items], domains=[it["domain"] for it in items])["score"]
    below = np.array([s < medians[it["domain"]] for s, it in zip(scores, items)])
    families = np.array([it["family"] for it in items])
    heldout = np.array([it["heldout"] for it in items])
    repetition = np.array([it["repetition"] for it in items])
    out = {"positive_median": medians, "per_family": {}}
    for f in dict.fromkeys(families.tolist()):
        m = families == f
        out["per_family"][f] = {"heldout": bool(heldout[m][0]), "repetition": bool(repetition[m][0]),
                                "below_median": float(below[m].mean()), "median_score": float(np.median(scores[m]))}
    out["all"] = float(below.mean())
    out["heldout_families"] = float(below[heldout].mean())
    out["repetition_families"] = float(below[repetition].mean())
    out["lowest_family"] = min(r["below_median"] for r in out["per_family"].values())
    return out


def _print_table(m: dict):
    rows = [("ceiling (majority side)", "ceiling"), ("judge score", "judge"),
            ("judge without penalty", "judge_without_penalty"),
            ("transformer's rating columns", "transformer_rating_columns"),
            ("texts' mean human rating", "mean_rating"), ("VADER compound", "vader")]
    print(f"{'predictor':30s}" + "".join(f"{d:>11s}" for d in DOMAINS))
    for name, key in rows:
        if key in m:
            print(f"{name:30s}" + "".join(f"{m[key][d]:11.3f}" for d in DOMAINS))
    print(f"{'domain accuracy (judge)':30s}" + "".join(f"{m['domain_accuracy'][d]:11.3f}" for d in DOMAINS)
          + f"   all {m['domain_accuracy']['all']:.3f}")
    if "judge_lead_over_vader" in m:
        print("judge score - VADER, 95% bootstrap interval: " + ", ".join(
            f"{d} {r['lead']:+.3f} ({r['low']:+.3f}..{r['high']:+.3f})" for d, r in m["judge_lead_over_vader"].items()))


def _print_battery(b: dict):
    for f, r in b["per_family"].items():
        kind = "repetition" if r["repetition"] else "held-out" if r["heldout"] else "training"
        print(f"  {f:20s} {kind:10s} below median {r['below_median']:.3f}  median score {r['median_score']:+.2f}")
    print(f"  all {b['all']:.3f}, held-out families {b['heldout_families']:.3f}, repetition families "
          f"{b['repetition_families']:.3f}, lowest family {b['lowest_family']:.3f}; real-positive medians "
          + " ".join(f"{d} {v:+.2f}" for d, v in b["positive_median"].items()))


# ---------------------------------------------------------------- main

def main(argv=None):
    from transformers import AutoTokenizer

    from ..models import TINY_BASE, save_small
    from ..training import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--domain-weight", type=float, default=1.0)
    parser.add_argument("--well-formed-weight", type=float, default=1.0)
    parser.add_argument("--negatives", type=float, default=0.5, help="degenerate texts per real training text")
    parser.add_argument("--lexicon", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--layers", type=int, default=0, help="judge depth, a multiple of the base's (0: the base's)")
    parser.add_argument("--alpha", type=float, default=2.0, help="the sentiment ridge's penalty")
    parser.add_argument("--sentiment-only", action="store_true",
                        help="refit the sentiment ridge and the linear domain model beside the transformer in "
                             "--out, then measure; "
                             "no transformer training")
    parser.add_argument("--cross-validate", action="store_true",
                        help="measure the sentiment ridge against VADER by 5-fold cross-validation over the "
                             "training and validation splits; adds it to metrics.json in --out")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--base", default=str(TINY_BASE))
    parser.add_argument("--out", default=str(JUDGE_DIR))
    parser.add_argument("--checkpoint-dir", default="runs/judge")
    parser.add_argument("--skip-test", action="store_true", help="stop after validation (for tuning)")
    parser.add_argument("--measure-only", action="store_true",
                        help="re-measure the judge in --out (e.g. after changing the score's gates) and update "
                             "its metrics.json; no training")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.measure_only or args.sentiment_only or args.cross_validate:
        file = Path(args.out) / "metrics.json"
        metrics = json.loads(file.read_text())
        if args.cross_validate:
            _write_metrics(file, metrics | {"cross_validation": _cross_validate(args.alpha)})
            return
        if args.sentiment_only:
            metrics |= {"alpha": args.alpha, "sentiment_seconds": _fit_sentiment(args.alpha, args.out)}
        _write_metrics(file, metrics | _measure(args.out, args.skip_test))
        return

    # checked before any slow work (TrainConfig refuses steps < 1, a negative lr, ...)
    config = TrainConfig(steps=args.steps, batch_size=1, lr=args.lr, warmup_steps=args.warmup_steps,
                         weight_decay=args.weight_decay, checkpoint_dir=args.checkpoint_dir, checkpoint_every=200,
                         log_every=50, desc="judge")
    t0 = time.time()
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    tokenizer.padding_side = "right"
    train_set, val_set = load_corpus("train"), load_corpus("validation")
    examples = _corpus_examples(train_set, tokenizer)
    n_real = len(examples)
    examples += _negative_examples(train_set["text"], tokenizer, int(args.negatives * n_real))
    if args.lexicon:
        examples += _lexicon_examples(tokenizer)
    model = _new_judge_model(args.base, args.layers)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {n_real} training texts "
          f"({sum(len(r) for r in train_set['ratings']):,} individual ratings), {len(examples)} examples in all")
    batches = _length_batches(examples, args.batch_size, epochs=-(-args.steps * args.batch_size // len(examples)),
                             seed=config.seed)
    history = train(model, _make_loss(args.domain_weight, args.well_formed_weight), batches,
                    _make_collate(tokenizer.pad_token_id), config)
    train_seconds = time.time() - t0
    save_small(model, tokenizer, args.out)
    sentiment_seconds = _fit_sentiment(args.alpha, args.out)
    metrics = {
        "rebuild": _rebuild_command(parser, args),
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay, "domain_weight": args.domain_weight,
        "well_formed_weight": args.well_formed_weight, "negatives_per_text": args.negatives,
        "lexicon": args.lexicon, "layers": model.config.n_layer, "train_texts": n_real, "train_examples": len(examples),
        "train_seconds": round(train_seconds), "alpha": args.alpha, "sentiment_seconds": sentiment_seconds,
        "machine": f"{os.cpu_count()}-core CPU ({platform.machine()})" if not torch.cuda.is_available()
        else torch.cuda.get_device_name(0),
        "torch_threads": torch.get_num_threads(), "train_loss_last": history[-1]["loss"],
    }
    metrics |= _measure(args.out, args.skip_test)
    _write_metrics(Path(args.out) / "metrics.json", metrics)
    print(f"trained in {train_seconds + sentiment_seconds:.0f} s; wrote {args.out} "
          f"({metrics['checkpoint_bytes'] / 1e6:.1f} MB)")


def _fit_sentiment(alpha: float, out) -> int:
    """Fit the sentiment ridge, then the linear domain model on its features, on the
    training split; save both into ``out``; their seconds."""
    t0 = time.time()
    train_set = load_corpus("train")
    texts, domains = list(train_set["text"]), list(train_set["domain"])
    sentiment = SentimentRidge.fit(texts, domains, train_set["mean_rating"], alpha=alpha)
    sentiment.save(out)
    DomainLinear.fit(texts, domains, sentiment.idf).save(out)
    return round(time.time() - t0)


def _cross_validate(alpha: float, folds: int = 5, seed: int = 0) -> dict:
    """The sentiment ridge and VADER over the training and validation splits together, by
    ``folds``-fold cross-validation: per domain, the mean over folds of each one's
    agreement on its held-out fold, and the standard error of the ridge's mean. More
    texts than the test split has (3,756 tweets against 444), for a steadier comparison."""
    from datasets import concatenate_datasets
    data = concatenate_datasets([load_corpus("train"), load_corpus("validation")])
    texts, domains, mean = list(data["text"]), list(data["domain"]), np.asarray(data["mean_rating"])
    ratings, vader = rating_histograms(list(data["ratings"])), vader_scores(texts)
    fold = np.random.default_rng(seed).integers(0, folds, len(texts))
    per_fold = {"sentiment": [], "vader": []}
    for k in range(folds):
        train, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = SentimentRidge.fit([texts[i] for i in train], [domains[i] for i in train], mean[train], alpha=alpha)
        held_domains = [domains[i] for i in held]
        pairs = same_domain_pairs(held_domains, N_PAIRS, PAIR_SEED)
        for name, scores in (("sentiment", model.predict([texts[i] for i in held], held_domains)),
                             ("vader", vader[held])):
            per_fold[name].append(agreement_by_domain(scores, ratings[held], held_domains, pairs))
    out = {"folds": folds, "seed": seed, "texts": len(texts)}
    for name, rows in per_fold.items():
        out[name] = {d: float(np.mean([r[d] for r in rows])) for d in DOMAINS}
    out["sentiment_standard_error"] = {d: float(np.std([r[d] for r in per_fold["sentiment"]]) / np.sqrt(folds - 1))
                                       for d in DOMAINS}
    print(f"{folds}-fold cross-validation over {len(texts)} training and validation texts:")
    for name in per_fold:
        print(f"{name:12s}" + "".join(f"{out[name][d]:11.3f}" for d in DOMAINS))
    return out


def _write_metrics(file: Path, metrics: dict) -> None:
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, file)  # atomic, like the model files beside it


def _rebuild_command(parser, args) -> str:
    """The command line that trains this judge again: the options that shape the model
    and differ from their defaults (not where it is written, nor the thread count)."""
    skip = {"out", "checkpoint_dir", "threads", "skip_test", "measure_only", "sentiment_only", "cross_validate",
            "help"}
    options = []
    for k, v in vars(args).items():
        if k not in skip and v != parser.get_default(k):
            flag = k.replace("_", "-")
            options.append((f"--{flag}" if v else f"--no-{flag}") if isinstance(v, bool) else f"--{flag} {v}")
    return " ".join(["python -m course_utils.judge.train"] + options)


def _measure(path, skip_test: bool = False) -> dict:
    """Everything metrics.json states about the judge saved in ``path`` (the bf16
    checkpoint, reloaded in fp32, as it ships): agreement and battery on the validation
    split and, unless ``skip_test``, on the test split."""
    judge = Judge.load(path=path)
    out = {"score": {"floor": FLOOR, "well_formed_gate": WELL_FORMED_GATE, "on_domain_gate": ON_DOMAIN_GATE,
                     "domain_powers": DOMAIN_POWERS, "stutter_allowance": STUTTER_ALLOWANCE,
                     "echo_allowance": ECHO_ALLOWANCE, "repetition_width": REPETITION_WIDTH},
           "pairs": {"per_domain": N_PAIRS, "seed": PAIR_SEED,
                     "label": "one random rater per text, ties dropped; exact expectation (preferences eq. 2)"}}
    splits = ("validation",) if skip_test else ("validation", "test")
    for split in splits:
        corpus = load_corpus(split)
        out[split] = _evaluate(judge, corpus, same_domain_pairs(corpus["domain"], N_PAIRS, PAIR_SEED),
                              with_references=True)
        out[f"{split}_battery"] = _battery_results(judge, corpus)
        print(f"{split} split:")
        _print_table(out[split])
        print(f"degenerate battery ({split}-split texts):")
        _print_battery(out[f"{split}_battery"])
    out["checkpoint_bytes"] = (Path(path) / "model.safetensors").stat().st_size
    out["sentiment_bytes"] = (Path(path) / SENTIMENT_FILE).stat().st_size
    out["domain_linear_bytes"] = (Path(path) / DOMAIN_FILE).stat().st_size
    return out


if __name__ == "__main__":
    main()
