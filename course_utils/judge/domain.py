"""The judge's second opinion on a text's domain: a linear classifier on its n-grams.

The transformer's domain columns read a text as a whole, and a short text of one domain
can look like another to them ("I love this phone, works great." as a movie review:
0.53). A linear model that sees every n-gram directly knows that "phone" belongs to
product reviews. Its probabilities are

    p(d | x) = softmax(W^T f(x) + b)_d,

with f(x) the sentiment model's TF-IDF word and character n-grams (``sentiment``: the
same hashing and the same IDF, without the lexicon), fitted on the training split by
L-BFGS on the mean cross-entropy plus ``l2 ||W||^2``. ``Judge.score`` combines it with the
transformer's columns as a product of two experts (each tempered to the power 1/2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import DOMAINS
from .sentiment import HASH_BITS, _load_tensors, _save_tensors, _tfidf_matrix

FILE = "domain_linear.safetensors"


def _check_texts(texts, where: str) -> None:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)) \
            or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{where}: texts must be a list of strings")


class DomainLinear:
    """``DomainLinear.fit(texts, domains, idf).predict_proba(texts)``: ``[N, 4]``, columns ``DOMAINS``."""

    def __init__(self, weights: torch.Tensor, bias: torch.Tensor, idf: torch.Tensor, l2: float):
        width = 1 << HASH_BITS
        if weights.shape != (width, len(DOMAINS)) or bias.shape != (len(DOMAINS),) or idf.shape != (width,):
            raise ValueError(f"DomainLinear: weights {tuple(weights.shape)}, bias {tuple(bias.shape)} and idf "
                             f"{tuple(idf.shape)} do not fit this code's features ({HASH_BITS}-bit hashing, "
                             f"{len(DOMAINS)} domains); `python -m course_utils.judge.train --sentiment-only` "
                             "refits it")
        self.weights, self.bias, self.idf, self.l2 = weights.float(), bias.float(), idf.double(), l2

    @classmethod
    def fit(cls, texts: list[str], domains: list[str], idf: torch.Tensor, l2: float = 1e-5,
            max_iter: int = 300) -> "DomainLinear":
        """Minimise mean_i -log p(d_i | x_i) + l2 ||W||^2 by L-BFGS (``idf``: the sentiment
        model's, ``SentimentRidge.idf``)."""
        _check_texts(texts, "DomainLinear.fit")
        if isinstance(domains, (str, bytes)) or not isinstance(domains, (list, tuple)) or len(domains) != len(texts):
            raise ValueError("DomainLinear.fit: domains must be a list of domain names, one per text")
        unknown = sorted({str(d) for d in domains if d not in DOMAINS})
        if unknown:
            raise ValueError(f"DomainLinear.fit: domains must be among {DOMAINS}, got {unknown}")
        if len(set(domains)) < 2:
            raise ValueError("DomainLinear.fit: domains must hold at least two different domains")
        if not isinstance(idf, torch.Tensor) or idf.shape != (1 << HASH_BITS,):
            raise ValueError(f"DomainLinear.fit: idf must be a tensor of shape ({1 << HASH_BITS},), "
                             "the sentiment model's (SentimentRidge.idf)")
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 > 0:
            raise ValueError(f"DomainLinear.fit: l2 must be a positive number, got {l2!r}")
        x = _tfidf_matrix(list(texts), idf).float()
        y = torch.tensor([DOMAINS.index(d) for d in domains])
        weights = torch.zeros(x.shape[1], len(DOMAINS), requires_grad=True)
        bias = torch.zeros(len(DOMAINS), requires_grad=True)
        opt = torch.optim.LBFGS([weights, bias], max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

        def objective():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(torch.sparse.mm(x, weights) + bias, y) \
                + l2 * weights.pow(2).sum()
            loss.backward()
            return loss

        opt.step(objective)
        return cls(weights.detach(), bias.detach(), idf, float(l2))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """``[N, 4]`` probabilities of each text's domain, columns in ``DOMAINS`` order."""
        _check_texts(texts, "DomainLinear.predict_proba")
        if not texts:
            return np.zeros((0, len(DOMAINS)))
        logits = torch.sparse.mm(_tfidf_matrix(list(texts), self.idf).float(), self.weights) + self.bias
        return torch.softmax(logits.double(), dim=-1).numpy()

    def save(self, folder) -> None:
        """Write ``FILE`` into ``folder`` atomically (fp16 weights)."""
        _save_tensors("DomainLinear.save", folder, FILE,
                      {"weights": self.weights.half(), "bias": self.bias, "idf": self.idf.float()},
                      {"l2": str(self.l2), "hash_bits": str(HASH_BITS), "domains": ",".join(DOMAINS)})

    @classmethod
    def load(cls, folder) -> "DomainLinear":
        """The model that ``save`` wrote into ``folder``, its file checked as it is read."""
        meta, tensors = _load_tensors("DomainLinear.load", folder, FILE, ("weights", "bias", "idf"), "domain model",
                                      "python -m course_utils.judge.train --sentiment-only")
        path = Path(folder) / FILE
        if meta.get("hash_bits") != str(HASH_BITS) or meta.get("domains") != ",".join(DOMAINS):
            raise ValueError(f"DomainLinear.load: {path} was fitted for {meta.get('hash_bits')}-bit hashing and "
                             f"domains {meta.get('domains')}; this code uses {HASH_BITS} bits and {DOMAINS}")
        return cls(tensors["weights"], tensors["bias"], tensors["idf"], float(meta["l2"]))
