"""Degenerate text: what a policy trained against a reward model may find, and the
judge must not reward.

Each rule family is a small function ``rule(text, rng, pool) -> str`` that corrupts a
real text (``rng``: a ``numpy`` generator; ``pool``: other real texts, for rules that
borrow words). Two sets of families:

- ``TRAIN_FAMILIES`` make the judge's negatives, from training-split texts only;
- ``HELDOUT_FAMILIES`` are never used in training: with the training families they
  make the held-out battery, from test-split texts, so that the battery measures
  whether the judge learned "not real writing" rather than a list of rules.

- ``REPETITION_FAMILIES`` say a real positive text, or a sentence or phrase of it, again:
  held out too, and reported apart. The judge measures repetition by what it is
  (``repetition``), never from these rules.

The battery also holds ``off_domain`` items, a real positive text of one domain requested
as another domain (the judge's two opinions on the domain must notice), and ``off_domain_repeat`` items,
the same said 2 to 3 times.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .. import _checks

PUNCTUATION = list("!?.,;:-*#~") + ["!!", "...", "?!", ":)", ":("]


def _rule(fn):
    """A rule family checks its arguments at the door, like every public function."""
    @functools.wraps(fn)
    def checked(text, rng, pool):
        if not isinstance(text, str):
            raise TypeError(f"{fn.__name__}: text must be a string, got {type(text).__name__}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{fn.__name__}: rng must be a numpy Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        if isinstance(pool, str) or not pool or not all(isinstance(t, str) for t in pool):
            raise ValueError(f"{fn.__name__}: pool must be a non-empty list of real texts")
        return fn(text, rng, pool)
    return checked


def _words(text: str) -> list[str]:
    return text.split() or ["the"]


# ---------------------------------------------------------------- training families

@_rule
def word_repeat(text, rng, pool):
    """One word of the text, repeated 3 to 12 times: "great great great great"."""
    word = str(rng.choice(_words(text))).strip(".,!?;:\"'()")
    return " ".join([word or "good"] * int(rng.integers(3, 13)))


@_rule
def shuffle_words(text, rng, pool):
    """The text's words in random order."""
    words = _words(text)
    return " ".join(words[i] for i in rng.permutation(len(words)))


@_rule
def truncate(text, rng, pool):
    """The text cut off where a length limit would cut it: after 20% to 70% of its
    characters, mid-word or mid-sentence."""
    return text[:max(1, int(len(text) * rng.uniform(0.2, 0.7)))].rstrip()


@_rule
def punctuation_string(text, rng, pool):
    """A string of 3 to 30 punctuation marks and emoticons."""
    n = int(rng.integers(3, 31))
    return "".join(str(rng.choice(PUNCTUATION)) + (" " if rng.random() < 0.3 else "") for _ in range(n)).strip()


@_rule
def random_characters(text, rng, pool):
    """5 to 60 random characters: letters, digits, symbols, accented and unknown
    code points (Latin-1, Greek, CJK, private use)."""
    ranges = [(0x21, 0x7e), (0xa1, 0xff), (0x391, 0x3c9), (0x4e00, 0x4fff), (0xe000, 0xe0ff)]
    chars = []
    for _ in range(int(rng.integers(5, 61))):
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        chars.append(chr(int(rng.integers(lo, hi + 1))) if rng.random() > 0.15 else " ")
    return "".join(chars).strip() or "\ue000"


@_rule
def sentiment_salad(text, rng, pool):
    """The text's words in order (at least 8: a short text borrows a pool text's), 40% to
    80% of them replaced by sentiment words of one sign, some followed by "!" or a smiley:
    "great camera! amazing i love easy good :) great". What a policy trained without a
    KL penalty writes to please a sentiment reward. The sentiment words are drawn from
    pool texts, as often as people use them; either sign, so that sentiment itself is
    never the mark of degenerate text."""
    from .sentiment import _lexicons
    valence = _lexicons()[0][0]
    sign = 1 if rng.random() < 0.5 else -1
    words = _words(text)
    if len(words) < 8:
        words = words + _words(pool[int(rng.integers(len(pool)))])
    found = []
    for _ in range(50):
        found += [w for w in (t.strip(".,!?;:\"'()").lower() for t in _words(pool[int(rng.integers(len(pool)))]))
                  if valence.get(w, 0) * sign >= 2]
    found = found or (["great"] if sign > 0 else ["awful"])
    marks = ["!", "!!", ".", " :)" if sign > 0 else " :("]
    share = rng.uniform(0.4, 0.8)
    return " ".join(str(rng.choice(found)) + (str(rng.choice(marks)) if rng.random() < 0.4 else "")
                    if rng.random() < share else w for w in words)


# ---------------------------------------------------------------- held-out families

@_rule
def phrase_loop(text, rng, pool):
    """A phrase of 2 to 5 consecutive words of the text, looped 3 to 8 times."""
    words = _words(text)
    n = int(min(len(words), rng.integers(2, 6)))
    start = int(rng.integers(0, len(words) - n + 1))
    return " ".join(words[start:start + n] * int(rng.integers(3, 9)))


@_rule
def emoji_string(text, rng, pool):
    """3 to 30 emoji, characters the corpus never uses."""
    return "".join(chr(int(rng.integers(0x1F600, 0x1F650))) for _ in range(int(rng.integers(3, 31))))


@_rule
def char_noise(text, rng, pool):
    """The text with 30% of its letters replaced by random letters."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(letters[int(rng.integers(26))] if c.isalpha() and rng.random() < 0.3 else c for c in text)


@_rule
def word_salad(text, rng, pool):
    """As many words as the text has, each drawn from a random other text of the pool."""
    n = len(_words(text))
    return " ".join(str(rng.choice(_words(pool[int(rng.integers(len(pool)))]))) for _ in range(n))


# ---------------------------------------------------------------- held-out repetition families
# Repetition is measured by what it is (``repetition``), never learned from these: they test that property.

def _sentences(text: str) -> list[str]:
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p]
    return parts or [text.strip() or "good"]


@_rule
def text_repeat(text, rng, pool):
    """The whole text said 2 to 4 times."""
    return " ".join([text.strip() or "good"] * int(rng.integers(2, 5)))


@_rule
def sentence_repeat(text, rng, pool):
    """One sentence of the text said 2 to 4 times where it stands, the rest as it was."""
    parts = _sentences(text)
    k = int(rng.integers(len(parts)))
    return " ".join(parts[:k] + [parts[k]] * int(rng.integers(2, 5)) + parts[k + 1:])


@_rule
def phrase_repeat(text, rng, pool):
    """A phrase of 2 to 5 consecutive words said 2 to 4 times where it stands, in the text."""
    words = _words(text)
    n = int(min(len(words), rng.integers(2, 6)))
    start = int(rng.integers(0, len(words) - n + 1))
    return " ".join(words[:start] + words[start:start + n] * int(rng.integers(2, 5)) + words[start + n:])


@_rule
def sentence_echo(text, rng, pool):
    """The text, then its first or its last sentence once more at the end."""
    parts = _sentences(text)
    return " ".join(parts + [parts[0] if rng.random() < 0.5 else parts[-1]])


TRAIN_FAMILIES = {f.__name__: f for f in (word_repeat, shuffle_words, truncate, punctuation_string, random_characters,
                                           sentiment_salad)}
HELDOUT_FAMILIES = {f.__name__: f for f in (phrase_loop, emoji_string, char_noise, word_salad)}
REPETITION_FAMILIES = {f.__name__: f for f in (text_repeat, sentence_repeat, phrase_repeat, sentence_echo)}


def corrupt(texts, families: dict, n: int, seed: int) -> list[dict]:
    """``n`` degenerate texts, each a random family (of ``families``) applied to a random
    text of ``texts`` (seeded): ``[{"text", "family", "source"}]``, ``source`` being the
    index of the text it was made from."""
    if isinstance(texts, str) or not texts:
        raise ValueError("corrupt: texts must be a non-empty list of strings")
    if not families or not all(callable(f) for f in families.values()):
        raise ValueError("corrupt: families must be a non-empty dict of name -> rule function")
    rng = np.random.default_rng(seed)
    names = list(families)
    out = []
    for _ in range(n):
        name, i = names[int(rng.integers(len(names)))], int(rng.integers(len(texts)))
        out.append({"text": families[name](texts[i], rng, texts), "family": name, "source": i})
    return out


def battery(texts, domains, mean_ratings, per_family: int = 200, seed: int = 1) -> list[dict]:
    """The held-out battery: ``per_family`` items of every family, each made from a random
    text of ``texts`` (a positive one, mean rating above +1, for the repetition families),
    requested as that text's domain; plus ``per_family`` ``off_domain`` and
    ``off_domain_repeat`` items: a positive text requested as a random other domain, once
    and said 2 to 3 times. ``[{"text", "family", "domain", "heldout", "repetition"}]``."""
    if not (len(texts) == len(domains) == len(mean_ratings)):
        raise ValueError("battery: texts, domains and mean_ratings must have the same length")
    _checks.finite("battery", "mean_ratings", np.asarray(mean_ratings, dtype=float))
    if len(set(domains)) < 2 or not (np.asarray(mean_ratings, dtype=float) > 1).any():
        raise ValueError("battery: the off_domain items need texts of at least two domains in domains and a positive "
                         "text (mean_ratings above +1) to ask for another domain")
    rng = np.random.default_rng(seed)
    texts, domains = list(texts), list(domains)
    positive = np.flatnonzero(np.asarray(mean_ratings) > 1)
    items = []
    for name, rule in {**TRAIN_FAMILIES, **HELDOUT_FAMILIES, **REPETITION_FAMILIES}.items():
        sources = rng.choice(positive, size=per_family) if name in REPETITION_FAMILIES \
            else rng.integers(len(texts), size=per_family)
        for i in sources:
            items.append({"text": rule(texts[i], rng, texts), "family": name, "domain": domains[i],
                          "heldout": name not in TRAIN_FAMILIES, "repetition": name in REPETITION_FAMILIES})
    all_domains = sorted(set(domains))
    for family, copies in (("off_domain", (1, 2)), ("off_domain_repeat", (2, 4))):
        for i in rng.choice(positive, size=per_family):
            others = [d for d in all_domains if d != domains[i]]
            items.append({"text": " ".join([texts[i]] * int(rng.integers(*copies))), "family": family,
                          "domain": others[int(rng.integers(len(others)))], "heldout": True,
                          "repetition": family == "off_domain_repeat"})
    return items
