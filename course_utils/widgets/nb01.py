"""Notebook 01: temperature and top-p over the tiny base model's next-token distribution after one prefix."""

from functools import lru_cache

import numpy as np
import torch

from ..exercises.nb01 import sampling_probs
from . import Widget

PREFIX = "This movie is"
SHOWN = 10  # the most likely tokens at temperature 1, drawn one bar each; the rest share one bar


@lru_cache(maxsize=1)
def next_token_logits():
    """The tiny base model's logits [V] for the token after ``PREFIX``, and the ``SHOWN`` most likely tokens'
    ids and text (computed once: the committed model, on the CPU)."""
    from ..models import load_policy

    model, tokenizer = load_policy("tiny", "cpu")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokenizer(PREFIX)["input_ids"]])).logits[0, -1].double()
    top = logits.topk(SHOWN).indices
    return logits, top, [tokenizer.decode([int(t)]).strip() for t in top]


def _draw(ax, temperature, top_p):
    """Bars of the sampling distribution (the ``SHOWN`` tokens, then all others together) over outlines of the
    model's own distribution (temperature 1, nothing removed); returns (tokens kept, entropy in nats)."""
    logits, top, names = next_token_logits()
    x = np.arange(SHOWN + 1)
    sampled = sampling_probs(logits, temperature, top_p)
    for probs, style in ((sampled, dict(color="C0", label="sampled from")),
                         (logits.softmax(-1), dict(fill=False, edgecolor="gray", label="the model (temperature 1)"))):
        shown = probs[top].numpy()
        ax.bar(x, np.append(shown, 1 - shown.sum()), **style)
    ax.set_xticks(x, names + ["all others"], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(fontsize=7, loc="upper center")
    nonzero = sampled[sampled > 0]
    return int(len(nonzero)), float(-(nonzero * nonzero.log()).sum())


def temperature(value, ax):
    """The next-token distribution after ``PREFIX`` at temperature ``value`` (no top-p)."""
    _, entropy = _draw(ax, value, 1.0)
    ax.set_title(f"'{PREFIX} …' at temperature {value:.2g}\nentropy {entropy:.2f} nats", fontsize=9)


def top_p(value, ax):
    """The next-token distribution after ``PREFIX`` at temperature 1, top-p ``value`` (gray: removed)."""
    kept, entropy = _draw(ax, 1.0, value)
    ax.set_title(f"'{PREFIX} …' with top-p {value:.2f}\n{kept} of {len(next_token_logits()[0])} tokens kept, "
                 f"entropy {entropy:.2f} nats", fontsize=9)


WIDGETS = [Widget("sampling_temperature", "01", temperature, "temperature", low=0.1, high=3.0, step=0.05,
                  value=1.0, settings=(0.3, 0.7, 1.0, 2.0)),
           Widget("sampling_top_p", "01", top_p, "top-p", low=0.05, high=1.0, step=0.05, value=0.9,
                  settings=(0.2, 0.5, 0.9))]
