"""The judge: the course's stand-in for human evaluation of generated text.

A "gold" reward model in the sense of Gao et al. (2022), "Scaling Laws for Reward
Model Overoptimization": trained on every training-split rating, stronger than any
proxy reward model a notebook trains, and measured against held-out human labels
(``course_utils.preferences``). VADER's compound score (Hutto & Gilbert, 2014) is
reported beside it as a second, independent opinion; it is not an input of the judge.
``python -m course_utils.judge.train`` rebuilds it (see ``course_utils.judge.train``).

The judge has three fitted parts, saved side by side in ``JUDGE_DIR``:

- its sentiment, a ridge regression on the text's word and character n-grams and the
  AFINN lexicon, one copy of the features per domain (``course_utils.judge.sentiment``):
  the predicted mean human rating of the text as a text of its domain;
- a linear classifier on the same n-grams, a second opinion on the text's domain
  (``course_utils.judge.domain``);
- a ``GPT2ForSequenceClassification`` that tells the domain and whether the text is
  real writing. Its output columns are named in ``config.id2label``:

- ``rating:-4`` ... ``rating:+4``: logits of the rating one random rater gives the
  text, trained beside the other columns (the judge's sentiment until the ridge
  regression agreed with people more often; ``judge.train`` reports both);
- ``domain:movie`` ... ``domain:editorial``: which domain the text belongs to;
- ``well_formed``: logit of the probability that the text is real human writing
  rather than degenerate text (repeated words, shuffled words, text cut off by a
  length limit, strings of punctuation or of random characters, text flooded with
  sentiment words: see ``course_utils.judge.degenerate``).

The transformer's input is the text (whitespace stripped) followed by the end-of-text token, as a
generated response ends; the head reads the last real token, that end token.
``Judge.score`` combines the columns, the two opinions on the domain, and a part measured
without any fitting, how much of the text repeats itself (``course_utils.judge.repetition``),
into the judge score that notebooks report.

The package holds the judge's pieces: ``sentiment`` (the ridge regression), ``domain``,
``repetition``, ``degenerate`` (the rules of degenerate text, for training negatives and the
battery) and ``train`` (the rebuild script).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import _checks
from ..data import DOMAINS
from .domain import DomainLinear
from .repetition import measure as measure_repetition
from .sentiment import SentimentRidge

JUDGE_DIR = Path(__file__).parent.parent / "checkpoints" / "judge"
MAX_LENGTH = 128                  # tokens, the end token included
RATING_LABELS = tuple(f"rating:{v:+d}" for v in range(-4, 5))
DOMAIN_LABELS = tuple(f"domain:{d}" for d in DOMAINS)
WELL_FORMED = "well_formed"
LABELS = RATING_LABELS + DOMAIN_LABELS + (WELL_FORMED,)
FLOOR = -5.0                      # one below the rating scale: where degenerate text is sent
# The gates, chosen on the validation split: the most degenerate text sent to the floor while the penalty costs
# at most 0.01 agreement with people in every domain (``judge.train`` measures both on both splits).
# P(well-formed) at or above which a text of the domain keeps its whole sentiment (tweets, informal, need a low one)
WELL_FORMED_GATE = {"movie": 0.1, "tweet": 0.02, "product": 0.1, "editorial": 0.1}
ON_DOMAIN_GATE = 0.03             # likewise P(requested domain), the two opinions combined
# The two opinions on the domain, p(d) ∝ p_transformer(d)^a p_linear(d)^b: (a, b) the quarter steps with the lowest
# validation log-loss of the true domain (0.118, against 0.154 for the transformer alone and 0.267 for the linear model).
DOMAIN_POWERS = (0.5, 0.75)
# Repetition: the shares of a text that stutter and that echo (``repetition``) which real texts of the domain reach
# (the 99.5th percentile of the training split's movie reviews and tweets, the 99.8th of its product reviews and
# editorials), and how much more sends a text to the floor.
STUTTER_ALLOWANCE = {"movie": 0.0, "tweet": 0.125, "product": 0.0, "editorial": 0.0}
ECHO_ALLOWANCE = {"movie": 0.0, "tweet": 0.251, "product": 0.172, "editorial": 0.08}
REPETITION_WIDTH = 0.1


# ---------------------------------------------------------------- VADER, the second opinion

_VADER = None


def vader_scores(texts) -> np.ndarray:
    """VADER's compound score (-1..+1) of each text; the lexicon ships with ``vaderSentiment``."""
    global _VADER
    _check_texts(texts, "vader_scores")
    if _VADER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        _VADER = SentimentIntensityAnalyzer()
    return np.array([_VADER.polarity_scores(t)["compound"] for t in texts], dtype=float)


# ---------------------------------------------------------------- inputs

def _check_texts(texts, where: str) -> None:
    """A list of strings, or any sequence of them (a tuple, a ``datasets`` column), not one string."""
    if isinstance(texts, (str, bytes, dict)) or not hasattr(texts, "__len__") or not hasattr(texts, "__iter__"):
        raise TypeError(f"{where}: texts must be a list of strings, got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{where}: texts must be a list of strings, texts[{i}] is {type(t).__name__}")


def encode(tokenizer, text: str, max_length: int = MAX_LENGTH) -> list[int]:
    """Token ids of the stripped text followed by the end token; a long text is cut,
    its end token kept. An empty text is the end token alone."""
    if not isinstance(text, str):
        raise TypeError(f"encode: text must be a string, got {type(text).__name__}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"encode: max_length must be a positive integer, got {max_length!r}")
    ids = tokenizer(text.strip(), add_special_tokens=False, verbose=False)["input_ids"] if text.strip() else []
    return ids[:max_length - 1] + [tokenizer.eos_token_id]


def pad_right(seqs: list[list[int]], pad_id: int) -> dict:
    """Pad to the longest sequence, on the right: the head reads the last non-pad token."""
    if not isinstance(seqs, (list, tuple)) or not seqs or not all(isinstance(s, (list, tuple)) and s for s in seqs):
        raise ValueError("pad_right: seqs must be a non-empty list of non-empty token-id lists")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


# ---------------------------------------------------------------- the judge

class Judge:
    """The shipped judge: ``Judge.load().score(texts, domains)``."""

    def __init__(self, model, tokenizer, sentiment: SentimentRidge, domain: DomainLinear):
        if not isinstance(sentiment, SentimentRidge):
            raise TypeError(f"Judge: sentiment must be a SentimentRidge, got {type(sentiment).__name__}")
        if not isinstance(domain, DomainLinear):
            raise TypeError(f"Judge: domain must be a DomainLinear, got {type(domain).__name__}")
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        if tuple(id2label[i] for i in range(len(id2label))) != LABELS:
            raise ValueError(f"Judge: model is not a judge, its output columns are {list(id2label.values())}")
        if model.config.pad_token_id is None or model.config.pad_token_id == tokenizer.eos_token_id:
            raise ValueError("Judge: the model needs a pad token distinct from its end token")
        self.model, self.tokenizer, self.sentiment, self.domain = model.eval(), tokenizer, sentiment, domain
        self.domains = DOMAINS

    @classmethod
    def load(cls, device: str = "cpu", path=JUDGE_DIR) -> "Judge":
        """The shipped judge (or the one saved in ``path``), in fp32 on ``device``."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        _checks.device("Judge.load", "device", device)
        if not Path(path).is_dir():
            raise FileNotFoundError(f"Judge.load: path {path} is not a directory; "
                                    "`python -m course_utils.judge.train` writes the judge")
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        tokenizer.padding_side = "right"
        model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch.float32)
        return cls(model.to(device), tokenizer, SentimentRidge.load(path), DomainLinear.load(path))

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """``[N, 14]`` raw outputs (columns: ``LABELS``), in the input's order. Texts are
        batched by length."""
        _check_texts(texts, "Judge.logits")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Judge.logits: batch_size must be a positive integer, got {batch_size!r}")
        self.model.eval()
        device = next(self.model.parameters()).device
        seqs = [encode(self.tokenizer, t) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = torch.zeros((len(seqs), len(LABELS)))
        for i in range(0, len(order), batch_size):
            chunk = order[i:i + batch_size]
            batch = pad_right([seqs[j] for j in chunk], self.model.config.pad_token_id)
            out[chunk] = self.model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
        return out

    def score(self, texts: list[str], domains: list[str] | None = None, batch_size: int = 64) -> dict:
        """Judge ``texts`` (optionally each against the domain it was asked for).

        Returns a dict of arrays, one entry per text:

        - ``sentiment``: the judge's estimate of the mean human rating (-4..+4), the
          ridge regression's prediction for the text as a text of its requested domain
          (of its most likely domain when no domains are given), clipped to the scale;
        - ``domain``: the most likely domain's name; ``domain_probs``: ``[N, 4]``, the two
          opinions on the domain combined as a product of tempered experts,
          ``p(d) ∝ p_transformer(d)^a p_linear(d)^b`` with ``(a, b) = DOMAIN_POWERS``
          (``domain.DomainLinear`` is the linear one);
        - ``well_formed``: P(real human writing), from the ``well_formed`` column;
        - ``on_domain`` (only when ``domains`` is given): ``domain_probs`` of the requested domain;
        - ``stutter_share`` and ``echo_share``: how much of the text says a phrase again directly
          after itself, and says a run of words again further on (``repetition``);
        - ``score``: the gold reward that notebooks report,

              score = FLOOR + q (sentiment - FLOOR),
              q = min(1, well_formed / WELL_FORMED_GATE[d]) * min(1, on_domain / ON_DOMAIN_GATE)
                  * clip(1 - (stutter_share - STUTTER_ALLOWANCE[d]) / REPETITION_WIDTH, 0, 1)
                  * clip(1 - (echo_share - ECHO_ALLOWANCE[d]) / REPETITION_WIDTH, 0, 1),

          with FLOOR = -5, one below the rating scale (the on-domain factor is 1 when no
          domains are given; d the requested, else the most likely, domain). A text the judge
          takes for real writing of the requested domain that repeats itself no more than real
          texts of that domain do (q = 1) scores its sentiment, so real texts are ranked by
          sentiment alone; degenerate, off-domain or self-repeating text (q near 0) is sent to
          the bottom of the scale, however positive its words. The gates are set low so that
          few real texts are penalised: see ``metrics.json`` for what the penalty costs.

        Every column but the two shares is computed on the text with its repeats collapsed
        (``repetition.collapse``): a text said k times is judged as the text said once, then
        pulled down by its larger shares, so repetition never raises a score.
        """
        _check_texts(texts, "Judge.score")
        if domains is not None:
            if not isinstance(domains, (list, tuple)):
                raise TypeError(f"Judge.score: domains must be a list of domain names or None, "
                                f"got {type(domains).__name__}")
            if len(domains) != len(texts):
                raise ValueError(f"Judge.score: domains has {len(domains)} entries but texts has {len(texts)}")
            unknown = sorted({str(d) for d in domains if d not in DOMAINS})
            if unknown:
                raise ValueError(f"Judge.score: domains must be among {DOMAINS}, got {unknown}")
        texts = list(texts)
        collapsed, stutter, echo = zip(*map(measure_repetition, texts)) if texts else ((), (), ())
        unique = {t: i for i, t in enumerate(dict.fromkeys(collapsed))}   # each distinct text runs once
        rows = [unique[t] for t in collapsed]
        logits = self.logits(list(unique), batch_size)[rows] if texts else torch.zeros((0, len(LABELS)))
        transformer = torch.softmax(logits[:, len(RATING_LABELS):-1], dim=-1).double().numpy()
        linear = self.domain.predict_proba(list(unique))[rows]
        domain_probs = transformer ** DOMAIN_POWERS[0] * linear ** DOMAIN_POWERS[1]
        domain_probs /= domain_probs.sum(axis=1, keepdims=True) if texts else 1.0
        out = {"domain": [DOMAINS[k] for k in domain_probs.argmax(-1)] if texts else [],
               "domain_probs": domain_probs,
               "well_formed": torch.sigmoid(logits[:, -1]).double().numpy(),
               "stutter_share": np.array(stutter, dtype=float), "echo_share": np.array(echo, dtype=float)}
        as_domain = list(domains) if domains is not None else out["domain"]
        asked = list(zip(collapsed, as_domain))
        unique = {pair: i for i, pair in enumerate(dict.fromkeys(asked))}   # and each distinct (text, domain) once
        sentiment = self.sentiment.predict([t for t, _ in unique], [d for _, d in unique]) if texts else np.zeros(0)
        out["sentiment"] = np.clip(sentiment[[unique[pair] for pair in asked]], -4.0, 4.0)
        q = np.minimum(1.0, out["well_formed"] / [WELL_FORMED_GATE[d] for d in as_domain])
        for share, allowance in (("stutter_share", STUTTER_ALLOWANCE), ("echo_share", ECHO_ALLOWANCE)):
            q = q * np.clip(1.0 - (out[share] - [allowance[d] for d in as_domain]) / REPETITION_WIDTH, 0.0, 1.0)
        if domains is not None:
            out["on_domain"] = domain_probs[np.arange(len(texts)), [DOMAINS.index(d) for d in domains]] \
                if texts else np.zeros(0)
            q = q * np.minimum(1.0, out["on_domain"] / ON_DOMAIN_GATE)
        out["score"] = FLOOR + q * (out["sentiment"] - FLOOR)
        return out
