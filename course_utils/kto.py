"""Kahneman–Tversky Optimisation (KTO; Ethayarajh et al. 2024): preference tuning from unpaired labels.

DPO needs pairs: two responses to one prompt and which one won. KTO needs only a thumbs-up or thumbs-down on
single responses, which is what the course's corpus holds before it is paired: one rater's rating of one text.
With h(x, y) = log π_θ(y|x) - log π_ref(y|x) (log-probs summed over the response) and a reference point z0,

    desirable y:    L = λ_D (1 - σ(β (h - z0)))
    undesirable y:  L = λ_U (1 - σ(β (z0 - h)))                 (Ethayarajh et al. 2024, eq. 8: λ_y - v(x, y))

z0 is the KL(π_θ ‖ π_ref) of the batch, estimated from *mismatched* pairs (x_i with the response of another
example, y_{i-1}): z0 = max(0, mean_i [log π_θ(y_{i-1}|x_i) - log π_ref(y_{i-1}|x_i)]), with no gradient through
it. A desirable response gains only by rising above what the policy's drift gives every response anyway.
λ_D and λ_U weigh the two kinds; the paper keeps λ_D n_D / (λ_U n_U) within [1, 4/3].

This follows TRL's ``KTOTrainer`` (trl 1.16, ``loss_type="kto"``): each example's mismatched partner is the
previous example's completion (cyclically), fixed when the data are prepared, and the reference log-probs of both
are computed once (``add_kto_reference_logprobs``). tests/test_kto.py checks the loss against TRL's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import _checks
from .batching import _check_pad, _check_rows, _pad_right, encode_prompt_completion
from .data import DOMAINS, INSTRUCTIONS, format_prompt
from .dpo import _check_batch
from .logprobs import sequence_logprobs

DESIRABLE_ABOVE = 0   # a single rating > 0 is a thumbs-up, < 0 a thumbs-down; 0 ("neutral") carries no label
_KL = "KL_"


def kto_reference_point(policy_kl_logps, ref_kl_logps) -> torch.Tensor:
    """z0, KTO's reference point: max(0, mean_i [log π_θ(y'_i|x_i) - log π_ref(y'_i|x_i)]) over the batch's
    mismatched pairs (x_i, y'_i), detached (no gradient flows through z0, as in the paper and TRL).
    [B], [B] -> 0-dim tensor. The mean of log-ratios estimates KL(π_θ ‖ π_ref), which cannot be negative."""
    _checks.vectors("kto_reference_point", ("policy_kl_logps", "ref_kl_logps"), policy_kl_logps, ref_kl_logps)
    return (policy_kl_logps - ref_kl_logps).mean().clamp(min=0).detach()


def kto_loss(policy_logps, ref_logps, desirable, z0, beta: float = 0.1, desirable_weight: float = 1.0,
             undesirable_weight: float = 1.0) -> torch.Tensor:
    """The KTO loss of each example (Ethayarajh et al. 2024, eq. 8), h = log π_θ(y|x) - log π_ref(y|x):

        desirable:    λ_D (1 - σ(β (h - z0))),      undesirable:  λ_U (1 - σ(β (z0 - h)))

    policy_logps, ref_logps: [B] (summed over response tokens); desirable: [B] bool (True: thumbs-up);
    z0: the reference point (``kto_reference_point``), a number or 0-dim tensor >= 0. Returns [B]; the batch loss
    is its ``.mean()`` (TRL's). Each term lies in [0, λ]: a loss that saturates, unlike DPO's."""
    _checks.vectors("kto_loss", ("policy_logps", "ref_logps"), policy_logps, ref_logps)
    if not torch.is_tensor(desirable) or desirable.dtype != torch.bool or desirable.shape != policy_logps.shape:
        raise TypeError(f"kto_loss: desirable must be a bool tensor of shape {tuple(policy_logps.shape)} "
                        f"(True for a thumbs-up), got {desirable.dtype if torch.is_tensor(desirable) else type(desirable).__name__}")
    if torch.is_tensor(z0):
        if z0.numel() != 1 or not z0.is_floating_point():
            raise ValueError(f"kto_loss: z0 must be one number (a 0-dim float tensor), got shape {tuple(z0.shape)}")
        z0_value = float(z0)
    else:
        z0_value = _checks.number("kto_loss", "z0", z0)
    if not np.isfinite(z0_value) or z0_value < 0:
        raise ValueError(f"kto_loss: z0 (an estimate of KL, clamped at 0) must be finite and >= 0, got {z0_value}")
    beta = _checks.number("kto_loss", "beta", beta, positive=True)
    lam_d = _checks.number("kto_loss", "desirable_weight", desirable_weight, positive=True)
    lam_u = _checks.number("kto_loss", "undesirable_weight", undesirable_weight, positive=True)
    h = policy_logps - ref_logps
    z0 = z0.to(h) if torch.is_tensor(z0) else torch.tensor(z0_value, dtype=h.dtype, device=h.device)
    up = lam_d * (1 - torch.sigmoid(beta * (h - z0)))
    down = lam_u * (1 - torch.sigmoid(beta * (z0 - h)))
    return torch.where(desirable.to(h.device), up, down)


# ---------------------------------------------------------------- the data: one rater's rating of one text

def single_rater_labels(corpus, n_texts: int, seed: int = 0):
    """Unpaired labels from the corpus: ``n_texts`` random texts (seeded), each with ONE of its raters' ratings
    drawn at random. A rating above 0 makes the text desirable, below 0 undesirable; a 0 (neutral) is dropped, so
    fewer rows come back. A ``datasets.Dataset`` with TRL's unpaired columns ``prompt`` (the domain's instruction),
    ``completion`` (the text with a leading space) and ``label`` (True: desirable), plus ``rating`` and
    ``domain``. The label is as noisy as one person is: ``p_desirable`` is the share of the text's raters
    above 0 among those not at 0."""
    from datasets import Dataset

    for column in ("text", "domain", "ratings"):
        if column not in getattr(corpus, "column_names", []):
            raise ValueError(f"single_rater_labels: corpus must be a load_corpus() Dataset with a {column!r} "
                             f"column, got columns {getattr(corpus, 'column_names', None)}")
    n_texts = _checks.integer("single_rater_labels", "n_texts", n_texts, minimum=1)
    seed = _checks.integer("single_rater_labels", "seed", seed, minimum=0)
    if n_texts > len(corpus):
        raise ValueError(f"single_rater_labels: n_texts={n_texts} is more than the corpus's {len(corpus)} texts")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(corpus), size=n_texts, replace=False)
    texts, domains, ratings = corpus["text"], corpus["domain"], corpus["ratings"]
    rows = []
    for i in chosen.tolist():
        r = ratings[i]
        rating = int(r[rng.integers(len(r))])
        if rating == DESIRABLE_ABOVE:
            continue
        up, down = sum(x > DESIRABLE_ABOVE for x in r), sum(x < DESIRABLE_ABOVE for x in r)
        rows.append({"prompt": format_prompt(INSTRUCTIONS[domains[i]]), "completion": " " + texts[i],
                     "label": rating > DESIRABLE_ABOVE, "rating": rating, "domain": domains[i],
                     "p_desirable": up / (up + down)})
    dataset = Dataset.from_list(rows)
    dataset.info.description = f"{n_texts} texts drawn, {n_texts - len(rows)} neutral ratings (0) dropped"
    return dataset


def pairs_from_single_ratings(labels):
    """DPO pairs built from the same ratings as ``single_rater_labels``: within each domain, consecutive texts are
    paired (1st with 2nd, 3rd with 4th, ...), and the one with the higher drawn rating is chosen; pairs of equal
    ratings are dropped. Every text is used once, with the one rating KTO sees. TRL's ``prompt``/``chosen``/
    ``rejected`` columns, plus ``domain``."""
    from datasets import Dataset

    for column in ("prompt", "completion", "rating", "domain"):
        if column not in getattr(labels, "column_names", []):
            raise ValueError(f"pairs_from_single_ratings: labels must come from single_rater_labels (a Dataset with "
                             f"{column!r}), got columns {getattr(labels, 'column_names', None)}")
    rows = []
    for domain in DOMAINS:
        mine = [row for row in labels if row["domain"] == domain]
        for a, b in zip(mine[0::2], mine[1::2]):
            if a["rating"] != b["rating"]:
                win, lose = (a, b) if a["rating"] > b["rating"] else (b, a)
                rows.append({"prompt": a["prompt"], "chosen": win["completion"], "rejected": lose["completion"],
                             "domain": domain})
    if not rows:
        raise ValueError("pairs_from_single_ratings: no pair of texts of one domain with different ratings")
    return Dataset.from_list(rows)


def encode_unpaired(tokenizer, rows, max_length: int) -> list[dict]:
    """Encode unpaired examples (``prompt``, ``completion``, ``label``) with ``encode_prompt_completion``, each with
    its mismatched pair for z0: the prompt of row i with the completion of row i-1 (row 0 takes the last row's),
    as TRL's ``KTOTrainer`` pairs them. Rows longer than ``max_length`` tokens are left out first; a mismatched
    pair longer than that (a longer prompt) is cut to it. Returns dicts with ``input_ids``, ``completion_mask``, ``KL_input_ids``, ``KL_completion_mask``,
    ``label`` (bool) and ``example`` (the row's index in ``rows``)."""
    _checks.tokenizer("encode_unpaired", "tokenizer", tokenizer)
    _checks.sequence("encode_unpaired", "rows", rows, "unpaired examples (prompt, completion, label)")
    max_length = _checks.integer("encode_unpaired", "max_length", max_length, minimum=2)
    encoded = []
    for i in range(len(rows)):
        row = rows[i]
        if not isinstance(row, dict) or not isinstance(row.get("label"), bool):
            raise ValueError(f"encode_unpaired: rows, example {i} needs 'prompt', 'completion' and a bool 'label' "
                             "(True: desirable)")
        enc = encode_prompt_completion(tokenizer, row["prompt"], row["completion"], max_length + 1, f"rows, example {i}")
        if len(enc["input_ids"]) <= max_length:
            encoded.append(dict(enc, label=row["label"], example=i, prompt=row["prompt"], completion=row["completion"]))
    if len(encoded) < 2:
        raise ValueError(f"encode_unpaired: {len(encoded)} example(s) fit max_length={max_length}; z0 needs at least 2")
    out = []
    for i, row in enumerate(encoded):
        other = encoded[i - 1]
        kl = encode_prompt_completion(tokenizer, row["prompt"], other["completion"], max_length)
        out.append({"input_ids": row["input_ids"], "completion_mask": row["completion_mask"],
                    "KL_input_ids": kl["input_ids"], "KL_completion_mask": kl["completion_mask"],
                    "label": row["label"], "example": row["example"]})
    return out


@torch.no_grad()
def add_kto_reference_logprobs(reference, rows, pad_token_id: int, batch_size: int = 64) -> list[dict]:
    """Each row of ``encode_unpaired`` with ``ref_logps`` (log π_ref(y|x)) and ``ref_KL_logps`` (of its mismatched
    pair) added, as floats: the reference is frozen, so both are computed once (TRL's ``precompute_ref_log_probs``).
    Runs in eval mode and restores the model's mode; new dicts come back, in order."""
    _checks.model("add_kto_reference_logprobs", "reference", reference)
    _checks.sequence("add_kto_reference_logprobs", "rows", rows, "encoded unpaired examples")
    _checks.integer("add_kto_reference_logprobs", "batch_size", batch_size, minimum=1)
    rows = list(rows)
    _check_rows("add_kto_reference_logprobs", rows, ("", _KL))
    _check_pad("add_kto_reference_logprobs", pad_token_id)
    device = next(reference.parameters()).device
    was_training = reference.training
    reference.eval()
    out = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            values = [_logps(reference, chunk, prefix, pad_token_id, device).tolist() for prefix in ("", _KL)]
            out += [dict(row, ref_logps=float(a), ref_KL_logps=float(b)) for row, a, b in zip(chunk, *values)]
    finally:
        reference.train(was_training)
    return out


def _padded(rows, prefix: str, pad_token_id: int) -> dict:
    length = max(len(r[prefix + "input_ids"]) for r in rows)
    ids = [r[prefix + "input_ids"] for r in rows]
    return {prefix + "input_ids": _pad_right(ids, pad_token_id, length),
            prefix + "attention_mask": _pad_right([[1] * len(s) for s in ids], 0, length),
            prefix + "completion_mask": _pad_right([r[prefix + "completion_mask"] for r in rows], 0, length)}


def _logps(model, rows, prefix, pad_token_id, device):
    batch = {k: v.to(device) for k, v in _padded(rows, prefix, pad_token_id).items()}
    return sequence_logprobs(model, *(batch[prefix + k] for k in ("input_ids", "attention_mask", "completion_mask")))


def collate_kto(rows: list[dict], pad_token_id: int) -> dict:
    """A batch of unpaired examples: ``input_ids``, ``attention_mask``, ``completion_mask`` [B, T] and the same three
    for the mismatched pairs (``KL_`` prefix, [B, T']), right-padded; ``label`` [B] bool; ``ref_logps`` and
    ``ref_KL_logps`` [B] float32 (from ``add_kto_reference_logprobs``)."""
    _check_rows("collate_kto", rows, ("", _KL))
    _check_pad("collate_kto", pad_token_id)
    for key in ("label", "ref_logps", "ref_KL_logps"):
        if any(key not in row for row in rows):
            raise ValueError(f"collate_kto: rows lack {key!r}; encode with encode_unpaired and add the reference "
                             "log-probs once with add_kto_reference_logprobs")
    batch = {**_padded(rows, "", pad_token_id), **_padded(rows, _KL, pad_token_id)}
    batch["label"] = torch.tensor([bool(row["label"]) for row in rows])
    for key in ("ref_logps", "ref_KL_logps"):
        batch[key] = torch.tensor([float(row[key]) for row in rows], dtype=torch.float32)
    return batch


_KTO_KEYS = [p + k for p in ("", _KL) for k in ("input_ids", "attention_mask", "completion_mask")] + [
    "label", "ref_logps", "ref_KL_logps"]


def kto_step(model, batch: dict, beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0):
    """The KTO loss of a ``collate_kto`` batch: ``(loss, metrics)``, the ``loss_fn`` contract of ``training.train``.
    The policy scores the examples (with gradient) and their mismatched pairs (without: z0 is detached anyway).
    Metrics (TRL's names): ``kl`` (z0), ``rewards/chosen`` and ``rewards/rejected`` (mean β h of the desirable
    and undesirable examples; NaN where the batch has none), ``logps/chosen``, ``logps/rejected``."""
    _check_batch("kto_step", batch, _KTO_KEYS)
    _checks.model("kto_step", "model", model)
    logps = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    with torch.no_grad():
        kl_logps = sequence_logprobs(model, batch["KL_input_ids"], batch["KL_attention_mask"],
                                     batch["KL_completion_mask"])
    ref, ref_kl = batch["ref_logps"].to(logps), batch["ref_KL_logps"].to(logps)
    z0 = kto_reference_point(kl_logps, ref_kl)
    desirable = batch["label"].to(logps.device)
    losses = kto_loss(logps, ref, desirable, z0, beta, desirable_weight, undesirable_weight)
    with torch.no_grad():
        rewards = beta * (logps - ref)
        nan = torch.tensor(float("nan"), device=logps.device)
        metrics = {"kl": z0,
                   "rewards/chosen": rewards[desirable].mean() if desirable.any() else nan,
                   "rewards/rejected": rewards[~desirable].mean() if (~desirable).any() else nan,
                   "logps/chosen": logps[desirable].mean() if desirable.any() else nan,
                   "logps/rejected": logps[~desirable].mean() if (~desirable).any() else nan}
    return losses.mean(), metrics


def kto_objective(beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0):
    """``kto_step`` with its settings fixed: the ``loss_fn`` for ``training.train``, named after its settings so
    that a checkpoint of one setting is never loaded as another."""
    beta = _checks.number("kto_objective", "beta", beta, positive=True)
    lam_d = _checks.number("kto_objective", "desirable_weight", desirable_weight, positive=True)
    lam_u = _checks.number("kto_objective", "undesirable_weight", undesirable_weight, positive=True)

    def objective(model, batch):
        return kto_step(model, batch, beta, lam_d, lam_u)

    objective.__qualname__ = objective.__name__ = \
        f"kto_step(beta={beta!r}, desirable_weight={lam_d!r}, undesirable_weight={lam_u!r})"
    return objective
