"""The judge's sentiment: a ridge regression on n-grams and a sentiment lexicon.

A text's sentiment is its predicted mean human rating (-4..+4), a linear function

    sentiment(x, d) = w . phi(x, d),      phi(x, d) = [f(x), f(x) 1[d=movie], ..., f(x) 1[d=editorial], 1[d]]

of features f(x) of the text, each in a shared copy and a copy for the text's domain d
("frustratingly easy" domain adaptation, Daume III 2007: a word can mean more, or
something else, in one domain), plus one intercept per domain. f(x) holds

- TF-IDF of the text's word 1-2-grams and of its character 2-5-grams within words
  (sublinear counts 1 + log c, smoothed IDF, each kind L2-normalised), hashed into
  ``2**HASH_BITS`` buckets with CRC-32, so no vocabulary is stored;
- four features from each of two sentiment lexicons: AFINN (Nielsen 2011: 3,382 English
  words and emoticons rated by hand from -5 to +5, shipped in the ``afinn`` package) and
  the opinion lexicon of Hu & Liu (2004: 6,785 words marked positive or negative, +1 or
  -1, mined from product reviews; shipped in the ``labMTsimple`` package). Per lexicon:
  the summed valence / the lexicon's top value (a word's sign flips after a negation in
  the three words before it), the counts of positive and of negative words, and the
  summed valence / sqrt(words). The lexicons rate words that the training texts never use.

The weights minimise the ridge objective on the training split's mean ratings,

    sum_i (w . phi_i - y_i)^2 + alpha ||w||^2     (the intercepts unpenalised),

solved by conjugate gradients on the normal equations (``fit``). Where the tiny
transformer judge has to learn every word from 19,005 texts, this model sees every
n-gram directly, and the lexicons cover words the texts never show: on held-out
texts it agrees with human labels more often (``judge.train`` measures both).
"""

from __future__ import annotations

import math
import os
import re
import zlib
from pathlib import Path

import numpy as np
import torch

from .. import _checks
from ..data import DOMAINS

HASH_BITS = 18
N_LEXICON = 8                                  # four features per lexicon
FILE = "sentiment_ridge.safetensors"
NEGATIONS = frozenset({"not", "no", "never", "cannot", "nothing", "nobody", "none", "neither", "nor", "without"})
_WORD = re.compile(r"(?u)\b\w\w+\b")          # words of two or more characters
_LEXICONS = None


def _lexicons() -> list[tuple[dict, float]]:
    """``[(word -> valence, the lexicon's top value)]``: AFINN-165's words and AFINN's
    emoticons (-5..+5, the ``afinn`` package), then Hu & Liu's opinion lexicon (+1 / -1,
    the ``labMTsimple`` package's copy). The packages are read as data, never imported."""
    global _LEXICONS
    if _LEXICONS is None:
        from importlib.util import find_spec
        afinn, opinion = {}, {}
        folder = Path(find_spec("afinn").origin).parent / "data"
        for name in ("AFINN-en-165.txt", "AFINN-emoticon-8.txt"):
            for line in (folder / name).read_text(encoding="utf-8").splitlines():
                term, _, value = line.rpartition("\t")
                if term and " " not in term:
                    afinn[term] = float(value)
        folder = Path(find_spec("labMTsimple").submodule_search_locations[0]) / "data" / "OL"
        for name, value in (("positive-words-clean.txt", 1.0), ("negative-words-clean.txt", -1.0)):
            opinion.update(dict.fromkeys((folder / name).read_text(encoding="ascii").split(), value))
        _LEXICONS = [(afinn, 5.0), (opinion, 1.0)]
    return _LEXICONS


def _lexicon_features(text: str) -> np.ndarray:
    """The ``N_LEXICON`` lexicon features of one text, four per lexicon (see the module docstring)."""
    tokens = text.lower().split()
    words = [t.strip(".,!?;:\"()[]*-") or t for t in tokens]
    negated = [any(w in NEGATIONS or w.endswith("n't") for w in words[max(0, i - 3):i]) for i in range(len(words))]
    out = []
    for table, top in _lexicons():
        total = positive = negative = 0.0
        for token, word, flip in zip(tokens, words, negated):
            value = table.get(token, table.get(word))
            if value is None:
                continue
            value = -value if flip else value
            total += value
            positive += value > 0
            negative += value < 0
        out += [total / top, positive, negative, total / top / math.sqrt(max(1, len(tokens)))]
    return np.array(out)


def _ngrams(text: str) -> tuple[list[str], list[str]]:
    """Word 1-2-grams and character 2-5-grams within space-padded words, lowercased."""
    text = text.lower()
    words = _WORD.findall(text)
    word_grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    char_grams = []
    for token in text.split():
        padded = f" {token} "
        for n in range(2, 6):
            char_grams += [padded[i:i + n] for i in range(max(1, len(padded) - n + 1))]
            if n >= len(padded):
                break
    return word_grams, char_grams


def _hashed_counts(text: str) -> list[dict]:
    """``[word bucket counts, character bucket counts]`` of one text."""
    out = []
    for kind, grams in zip("wc", _ngrams(text)):
        counts = {}
        for g in grams:
            h = zlib.crc32(f"{kind}{g}".encode("utf-8")) & ((1 << HASH_BITS) - 1)
            counts[h] = counts.get(h, 0) + 1
        out.append(counts)
    return out


def _idf(counts: list[list[dict]]) -> torch.Tensor:
    """Smoothed IDF per bucket, log((1 + n) / (1 + df)) + 1, over the texts' buckets of both kinds."""
    df = torch.zeros(1 << HASH_BITS, dtype=torch.float64)
    for text_counts in counts:
        for c in text_counts:
            df[list(c)] += 1
    return torch.log((1 + len(counts)) / (1 + df)) + 1


def _tfidf(text: str, idf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(x)`` without the lexicon: the buckets and float64 values of the text's TF-IDF word
    and character n-grams, each kind L2-normalised (a bucket can appear once per kind)."""
    idx, vals = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.float64)]
    for c in _hashed_counts(text):
        if c:
            i = torch.tensor(list(c))
            v = (1 + torch.log(torch.tensor(list(c.values()), dtype=torch.float64))) * idf[i].double()
            idx.append(i)
            vals.append(v / v.norm())
    return torch.cat(idx), torch.cat(vals)


def _tfidf_matrix(texts: list[str], idf: torch.Tensor) -> torch.Tensor:
    """``_tfidf`` of every text as a sparse ``[N, 2**HASH_BITS]`` float64 matrix."""
    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        i, v = _tfidf(text, idf)
        rows.append(torch.full((len(i),), r))
        cols.append(i)
        vals.append(v)
    return torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals),
                                   size=(len(texts), 1 << HASH_BITS), check_invariants=True).coalesce()


def _features(texts: list[str], domains: list[str], idf: torch.Tensor) -> torch.Tensor:
    """``phi`` of every text as a sparse ``[N, 5 * 2**HASH_BITS + 5 * N_LEXICON + 4]`` float64 matrix."""
    width = 1 << HASH_BITS
    rows, cols, vals = [], [], []
    base = 5 * width
    for text, domain in zip(texts, domains):
        k = DOMAINS.index(domain)
        idx, v = _tfidf(text, idf)
        row_cols, row_vals = [idx, idx + (1 + k) * width], [v, v]
        lex = torch.from_numpy(_lexicon_features(text))
        row_cols += [base + torch.arange(N_LEXICON), base + (1 + k) * N_LEXICON + torch.arange(N_LEXICON),
                     torch.tensor([base + 5 * N_LEXICON + k])]
        row_vals += [lex, lex, torch.ones(1, dtype=torch.float64)]
        cols.append(torch.cat(row_cols))
        vals.append(torch.cat(row_vals))
        rows.append(torch.full((len(cols[-1]),), len(rows)))
    return torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals),
                                   size=(len(texts), base + 5 * N_LEXICON + 4), check_invariants=True).coalesce()


def _check(texts, domains, where: str) -> None:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)) \
            or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{where}: texts must be a list of strings")
    if isinstance(domains, (str, bytes)) or not isinstance(domains, (list, tuple)) or len(domains) != len(texts):
        raise ValueError(f"{where}: domains must be a list of domain names, one per text")
    unknown = sorted({str(d) for d in domains if d not in DOMAINS})
    if unknown:
        raise ValueError(f"{where}: domains must be among {DOMAINS}, got {unknown}")


def _save_tensors(where: str, folder, file: str, tensors: dict, metadata: dict) -> None:
    """Write ``tensors`` into ``folder/file`` atomically: a temporary file, then a rename."""
    from safetensors.torch import save_file
    if not isinstance(folder, (str, os.PathLike)) or not Path(folder).is_dir():
        raise FileNotFoundError(f"{where}: folder {folder!r} is not an existing directory")
    path = Path(folder) / file
    tmp = path.with_name(f".{file}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _load_tensors(where: str, folder, file: str, names: tuple, what: str, rebuild: str) -> tuple[dict, dict]:
    """``(metadata, {name: tensor})`` of ``folder/file``, refused with a clear error when the file is
    missing, truncated or lacks one of ``names``."""
    from safetensors import safe_open
    path = Path(folder) / file
    if not path.is_file():
        raise FileNotFoundError(f"{where}: {path} does not exist; `{rebuild}` writes it")
    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata(), {name: f.get_tensor(name) for name in names}
    except Exception as e:  # a truncated or altered file
        raise ValueError(f"{where}: {path} is not a readable {what} ({e})") from None


class SentimentRidge:
    """``SentimentRidge.fit(texts, domains, ratings).predict(texts, domains)``."""

    def __init__(self, weights: torch.Tensor, idf: torch.Tensor, alpha: float):
        width = 1 << HASH_BITS
        if weights.shape != (5 * width + 5 * N_LEXICON + 4,) or idf.shape != (width,):
            raise ValueError(f"SentimentRidge: weights of shape {tuple(weights.shape)} and idf of shape "
                             f"{tuple(idf.shape)} do not fit this code's features ({HASH_BITS}-bit hashing, "
                             f"{N_LEXICON} lexicon features); `python -m course_utils.judge.train --sentiment-only` "
                             "refits them")
        self.weights, self.idf, self.alpha = weights.double(), idf.double(), alpha

    @classmethod
    def fit(cls, texts: list[str], domains: list[str], ratings, alpha: float = 2.0, tol: float = 1e-6,
            max_iter: int = 1000) -> "SentimentRidge":
        """Minimise sum_i (w . phi_i - y_i)^2 + alpha ||w||^2 (intercepts unpenalised) by
        conjugate gradients on (Phi^T Phi + alpha P) w = Phi^T y."""
        _check(texts, domains, "SentimentRidge.fit")
        y = torch.as_tensor(np.asarray(ratings, dtype=np.float64))
        if y.shape != (len(texts),):
            raise ValueError("SentimentRidge.fit: ratings must be one finite number per text")
        _checks.finite("SentimentRidge.fit", "ratings", y)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"SentimentRidge.fit: alpha must be a positive number, got {alpha!r}")
        idf = _idf([_hashed_counts(t) for t in texts])
        phi = _features(texts, domains, idf)
        phi_t = phi.t().coalesce()
        penalty = torch.full((phi.shape[1],), float(alpha), dtype=torch.float64)
        penalty[-4:] = 0.0                                     # the domains' intercepts
        apply = lambda v: phi_t @ (phi @ v) + penalty * v     # noqa: E731
        w = torch.zeros(phi.shape[1], dtype=torch.float64)
        r = phi_t @ y
        p, rr, target = r.clone(), r @ r, tol ** 2 * (r @ r)
        for _ in range(max_iter):
            if rr <= target:
                break
            ap = apply(p)
            step = rr / (p @ ap)
            w, r = w + step * p, r - step * ap
            rr, rr_old = r @ r, rr
            p = r + (rr / rr_old) * p
        return cls(w, idf.float(), float(alpha))

    def predict(self, texts: list[str], domains: list[str]) -> np.ndarray:
        """Predicted mean human rating of each text, as a text of its domain."""
        _check(texts, domains, "SentimentRidge.predict")
        if not texts:
            return np.zeros(0)
        return (_features(texts, domains, self.idf) @ self.weights).numpy()

    def save(self, folder) -> None:
        """Write ``FILE`` into ``folder`` atomically (fp16 weights; the IDF in fp32)."""
        _save_tensors("SentimentRidge.save", folder, FILE, {"weights": self.weights.half(), "idf": self.idf.float()},
                      {"alpha": str(self.alpha), "hash_bits": str(HASH_BITS)})

    @classmethod
    def load(cls, folder) -> "SentimentRidge":
        """The model that ``save`` wrote into ``folder``, its file checked as it is read."""
        meta, tensors = _load_tensors("SentimentRidge.load", folder, FILE, ("weights", "idf"), "sentiment model",
                                      "python -m course_utils.judge.train")
        weights, idf, path = tensors["weights"], tensors["idf"], Path(folder) / FILE
        if meta.get("hash_bits") != str(HASH_BITS):
            raise ValueError(f"SentimentRidge.load: {path} uses {meta.get('hash_bits')}-bit hashing, "
                             f"this code {HASH_BITS}")
        return cls(weights, idf, float(meta["alpha"]))
