"""Repetition, measured from what it is: how much of a text says again what it has already said.

A text that repeats itself (whole, a sentence or a phrase of it, two or more times) says
nothing that it did not say once. The judge therefore scores the text with its repeats
collapsed (``collapse``) and pulls the score toward the floor by how much of the text
repeats, against what real texts of the domain show. Two kinds are measured apart,
because people write them at very different rates:

- ``stutter_share``: copies of a phrase said again directly after itself ("a great feel
  great feel", "Let's go! Let's go!"). Real movie reviews, product reviews and editorials
  almost never do it (1 text in 700 to 1,000 of the training split), tweets more often (1 in 125);
- ``echo_share``: a run of ``NGRAM`` words said again further on ("... Just got upgraded.
  ... Just got upgraded."), which quotes and retweets do too.

Because a text said k times collapses to the same words as the text said once, and its
shares only grow, repetition can never raise a judge score (``Judge.score``; a test holds
this over every test-split text).

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


def _echo(keys: list[str]) -> float:
    """The share of words covered by an ``NGRAM``-word run (of two or more different words)
    seen earlier in the text."""
    seen, covered = set(), [False] * len(keys)
    for i in range(len(keys) - NGRAM + 1):
        gram = tuple(keys[i:i + NGRAM])
        if gram in seen and len(set(gram)) > 1:
            covered[i:i + NGRAM] = [True] * NGRAM
        seen.add(gram)
    return sum(covered) / len(keys)


def stutter_share(text: str) -> float:
    """The share (0..1) of the text's words that are copies of a phrase (a block of two or
    more different words) said again directly after itself, the copies ``collapse``
    removes. A word said again on its own ("so so good", "yay yay yay", ":) :)") is
    collapsed but not counted: people write that. 0 for an empty text."""
    if not isinstance(text, str):
        raise TypeError(f"stutter_share: text must be a string, got {type(text).__name__}")
    return measure(text)[1]


def echo_share(text: str) -> float:
    """The share (0..1) of the text's words covered by a ``NGRAM``-word run (of two or more
    different words) that the text said earlier, next to it or further back. 0 for a text
    without such a run and for an empty text."""
    if not isinstance(text, str):
        raise TypeError(f"echo_share: text must be a string, got {type(text).__name__}")
    return measure(text)[2]


def measure(text: str) -> tuple[str, float, float]:
    """``(collapse(text), stutter_share(text), echo_share(text))`` in one pass, as
    ``Judge.score`` needs them."""
    if not isinstance(text, str):
        raise TypeError(f"measure: text must be a string, got {type(text).__name__}")
    kept, n, phrases = _collapsed(text)
    if not n:
        return "", 0.0, 0.0
    return " ".join(kept), phrases / n, _echo(_keys(text.split()))
