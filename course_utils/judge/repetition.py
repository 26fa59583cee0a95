"""Repetition, measured from what it is: how much of a text says again what it has already said.

A text that repeats itself (whole, a sentence or a phrase of it, two or more times) says
nothing that it did not say once. The judge therefore scores the text with its repeats
collapsed (``collapse``) and pulls the score toward the floor by the share of the text that
repeats (``repeated_share``), against what real texts of the domain show. Because a text
said k times collapses to the same words as the text said once, and its repeated share
only grows, repetition can never raise a judge score (``Judge.score``; a test holds this
over every test-split text).

Words are compared by their letters and digits, lower-cased (``"Great!"`` repeats
``"great"``); a word of punctuation only is compared as it is.
"""

from __future__ import annotations

import re

_NOT_ALNUM = re.compile(r"[\W_]+")
NGRAM = 4           # a repeat elsewhere in the text counts once it runs for this many words


def _keys(words: list[str]) -> list[str]:
    return [(_NOT_ALNUM.sub("", w).lower() or w) for w in words]


def _root(keys: list[str]) -> int:
    """The length of the shortest block whose repetition makes up all of ``keys``."""
    n = len(keys)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and keys == keys[:p] * (n // p):
            return p
    return n


def _collapse_keys(keys: list[str]) -> tuple[list[int], int]:
    """Positions kept when every block immediately followed by a copy of itself ("a b a b",
    "so so") loses the copy, longest blocks first, until no such pair is left; and how many
    of the removed words were copies of a phrase (a block of two or more different words)."""
    kept, phrases = list(range(len(keys))), 0
    changed = True
    while changed:
        changed = False
        current = [keys[i] for i in kept]
        n = len(current)
        for length in range(n // 2, 0, -1):
            for i in range(n - 2 * length + 1):
                if current[i:i + length] == current[i + length:i + 2 * length]:
                    phrases += length if len(set(current[i:i + length])) > 1 else 0
                    del kept[i + length:i + 2 * length]
                    changed = True
                    break
            if changed:
                break
    return kept, phrases


def _collapsed(text: str) -> tuple[list[str], int, int]:
    """The words ``collapse`` keeps, the text's word count, and how many removed words were
    copies of a phrase."""
    words = text.split()
    keys = _keys(words)
    p = _root(keys)
    phrases = len(words) - p if len(set(keys[:p])) > 1 else 0
    kept, inner = _collapse_keys(keys[:p])
    return [words[i] for i in kept], len(words), phrases + inner


def collapse(text: str) -> str:
    """``text`` with its repeats collapsed: a text made of copies of one block becomes that
    block; then every block directly followed by its copy keeps one. Words are rejoined by
    single spaces (so a text without repeats comes back with its whitespace normalised)."""
    if not isinstance(text, str):
        raise TypeError(f"collapse: text must be a string, got {type(text).__name__}")
    return " ".join(_collapsed(text)[0])


def repeated_share(text: str) -> float:
    """The share (0..1) of the text's words that say a phrase again: copies of a block of two
    or more different words that ``collapse`` removes, or words covered by a ``NGRAM``-word
    run (of two or more different words) seen earlier in the text, whichever is larger.
    A word said again on its own ("so so good", "yay yay yay", ":) :)") is collapsed but not
    counted: people write that. 0 for a text without repeats and for an empty text."""
    if not isinstance(text, str):
        raise TypeError(f"repeated_share: text must be a string, got {type(text).__name__}")
    return measure(text)[1]


def measure(text: str) -> tuple[str, float]:
    """``(collapse(text), repeated_share(text))`` in one pass, as ``Judge.score`` needs them."""
    if not isinstance(text, str):
        raise TypeError(f"measure: text must be a string, got {type(text).__name__}")
    kept, n, phrases = _collapsed(text)
    if not n:
        return "", 0.0
    keys = _keys(text.split())
    seen, covered = set(), [False] * n
    for i in range(n - NGRAM + 1):
        gram = tuple(keys[i:i + NGRAM])
        if gram in seen and len(set(gram)) > 1:
            covered[i:i + NGRAM] = [True] * NGRAM
        seen.add(gram)
    return " ".join(kept), max(phrases / n, sum(covered) / n)
