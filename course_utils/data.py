"""The course corpus: 23,703 short texts rated for sentiment by human raters.

Hutto & Gilbert (2014), "VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text", ICWSM-14. The rating files ship inside the source
distribution of ``vaderSentiment==3.3.2`` on PyPI (MIT licence). Every text was
rated on a -4..+4 scale by 15 to 99 independent people, and every individual
rating is kept: that is what lets the course simulate human labelers honestly.

``load_corpus()`` downloads the sdist with pip, checks its sha256, extracts the
four domains and caches a parsed copy; later calls read the cache.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from datasets import Dataset

SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"

# domain name used by the course -> file prefix inside the archive
DOMAIN_FILES = {
    "movie": "movieReviewSnippets",
    "tweet": "tweets",
    "product": "amazonReviewSnippets",
    "editorial": "nytEditorialSnippets",
}
DOMAINS = tuple(DOMAIN_FILES)
EXPECTED_COUNTS = {"movie": 10605, "tweet": 4200, "product": 3708, "editorial": 5190}

# SFT instructions name the domain only, never the sentiment.
INSTRUCTIONS = {
    "movie": "Write a movie review.",
    "tweet": "Write a tweet.",
    "product": "Write a product review.",
    "editorial": "Write a newspaper editorial.",
}
SPLIT_SEED = "preference-course-v1"
SPLITS = ("train", "validation", "test")  # 80/10/10, see split_of

HOW_TO_FETCH_BY_HAND = (
    "Fetch it by hand on a machine that reaches PyPI:\n"
    "    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR\n"
    "then copy DIR/" + SDIST + " into {cache} (or set COURSE_DATA_DIR to DIR)."
)


class CorpusError(RuntimeError):
    """The corpus could not be fetched, verified or parsed."""


def cache_dir() -> Path:
    """Where the corpus is cached: ``$COURSE_DATA_DIR`` or ``~/.cache/preference-course``."""
    return Path(os.environ.get("COURSE_DATA_DIR", Path.home() / ".cache" / "preference-course"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(cache: Path | None = None) -> Path:
    """Return the path of the verified sdist, downloading it with pip if needed."""
    cache = Path(cache or cache_dir())
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / SDIST
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--no-binary", ":all:", "vaderSentiment==3.3.2", "-d", tmp]
            result = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / SDIST
            if result.returncode != 0 or not got.exists():
                raise CorpusError(
                    "Could not download the VADER corpus with pip "
                    f"(pip said: {result.stderr.strip()[-400:] or 'nothing'}).\n"
                    + HOW_TO_FETCH_BY_HAND.format(cache=cache))
            shutil.move(str(got), target)
    digest = _sha256(target)
    if digest != SDIST_SHA256:
        raise CorpusError(
            f"{target} has sha256 {digest}, expected {SDIST_SHA256}. "
            "Delete it and try again.\n" + HOW_TO_FETCH_BY_HAND.format(cache=cache))
    return target


def _decode(raw: bytes) -> str:
    """Decode one file: drop a byte-order mark; read non-UTF-8 bytes as Windows-1252."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace").lstrip("\ufeff")


def _rows(text: str, n_fields: int, where: str) -> list[list[str]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):  # handles CRLF
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != n_fields:
            raise CorpusError(f"{where}, line {lineno}: expected {n_fields} tab-separated fields, got {len(fields)}")
        rows.append([f.strip() for f in fields])
    return rows


def parse_domain(texts_file: bytes, ratings_file: bytes, domain: str) -> list[dict]:
    """Parse one domain's ``*_GroundTruth.txt`` (id, mean, text) and
    ``*_anonDataRatings.txt`` (id, mean, sd, [ratings]) into records.

    The mean rating is recomputed from the individual ratings: for 199 tweets the
    mean printed in the ground-truth file disagrees with the ratings listed for
    them, and the course draws simulated labels from the listed ratings.
    """
    texts = _rows(_decode(texts_file), 3, f"{domain} texts")
    ratings = {}
    for row in _rows(_decode(ratings_file), 4, f"{domain} ratings"):
        try:
            values = [int(v) for v in ast.literal_eval(row[3])]
        except (ValueError, SyntaxError) as err:
            raise CorpusError(f"{domain} ratings, id {row[0]}: unreadable rating list {row[3][:40]!r}") from err
        if not values or any(v < -4 or v > 4 for v in values):
            raise CorpusError(f"{domain} ratings, id {row[0]}: ratings must be integers in -4..4")
        ratings[row[0]] = values
    records = []
    for text_id, _, text in texts:
        if text_id not in ratings:
            raise CorpusError(f"{domain}: text {text_id} has no ratings")
        if not text:
            raise CorpusError(f"{domain}: text {text_id} is empty")
        values = ratings[text_id]
        records.append({"id": f"{domain}/{text_id}", "domain": domain, "text": text,
                        "mean_rating": sum(values) / len(values), "ratings": values})
    return records


def split_of(record_id: str) -> str:
    """The fixed split of a text: a seeded hash of its id, so every notebook agrees."""
    h = hashlib.sha256(f"{SPLIT_SEED}:{record_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < 0.8:
        return "train"
    return "validation" if u < 0.9 else "test"


def _parse_sdist(sdist: Path) -> list[dict]:
    with tarfile.open(sdist) as outer:
        inner_bytes = outer.extractfile(f"vaderSentiment-3.3.2/{INNER_ARCHIVE}").read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        def read(name):
            return inner.extractfile(f"hutto_ICWSM_2014/{name}").read()
        records = []
        for domain, prefix in DOMAIN_FILES.items():
            rows = parse_domain(read(f"{prefix}_GroundTruth.txt"), read(f"{prefix}_anonDataRatings.txt"), domain)
            if len(rows) != EXPECTED_COUNTS[domain]:
                raise CorpusError(f"{domain}: parsed {len(rows)} texts, expected {EXPECTED_COUNTS[domain]}")
            records.extend(rows)
    for r in records:
        r["split"] = split_of(r["id"])
    return records


def load_corpus(split: str | None = None, domains=DOMAINS, cache: Path | None = None) -> Dataset:
    """The corpus as a ``datasets.Dataset`` with columns
    ``id, domain, text, mean_rating, ratings, split``.

    ``split`` is ``"train"``, ``"validation"``, ``"test"`` or ``None`` for all.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)} or None, not {split!r}")
    unknown = set(domains) - set(DOMAINS)
    if unknown:
        raise ValueError(f"unknown domains {sorted(unknown)}; the domains are {list(DOMAINS)}")
    cache = Path(cache or cache_dir())
    parsed = cache / "corpus.jsonl"
    if not parsed.exists():
        records = _parse_sdist(fetch_sdist(cache))
        tmp = parsed.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, parsed)
    with open(parsed, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    keep = [r for r in records if r["domain"] in domains and (split is None or r["split"] == split)]
    return Dataset.from_list(keep)


# ---------------------------------------------------------------- SFT data

def format_prompt(instruction: str) -> str:
    """The instruction/response template shared by every notebook."""
    return f"Instruction: {instruction}\nResponse:"


def sft_dataset(corpus: Dataset) -> Dataset:
    """Prompt/completion pairs for SFT in TRL's standard columns.

    The prompt names the domain only (``"Write a movie review."``); the completion
    is the human-written text with a leading space. The end-of-text token is added
    at tokenisation time, so the model learns where a response stops.
    """
    rows = [{"prompt": format_prompt(INSTRUCTIONS[r["domain"]]), "completion": " " + r["text"],
             "domain": r["domain"]} for r in corpus]
    for i, row in enumerate(rows):
        check_prompt_completion(row, where=f"row {i}")
    return Dataset.from_list(rows)


def _require(row: dict, columns, where: str):
    missing = [c for c in columns if c not in row]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; expected {list(columns)}")
    for c in columns:
        if not isinstance(row[c], str):
            raise ValueError(f"{where}: column {c!r} must be a string, got {type(row[c]).__name__}")
        if not row[c].strip():
            raise ValueError(f"{where}: column {c!r} is empty")


def check_prompt_completion(row: dict, where: str = "record"):
    """Reject a prompt/completion record with a missing or empty field."""
    _require(row, ("prompt", "completion"), where)


def check_preference(row: dict, where: str = "record"):
    """Reject a preference record (TRL's ``prompt, chosen, rejected``) that cannot train."""
    _require(row, ("prompt", "chosen", "rejected"), where)
    if row["chosen"] == row["rejected"]:
        raise ValueError(f"{where}: chosen and rejected are the same text")


if __name__ == "__main__":  # `python -m course_utils.data`: fetch, cache and summarise
    corpus = load_corpus()
    print(f"{len(corpus)} texts cached in {cache_dir()}")
    texts, ratings = {d: 0 for d in DOMAINS}, {d: 0 for d in DOMAINS}
    for domain, rs in zip(corpus["domain"], corpus["ratings"]):
        texts[domain] += 1
        ratings[domain] += len(rs)
    for domain in DOMAINS:
        print(f"  {domain:10s} {texts[domain]:6d} texts, {ratings[domain]:7d} individual ratings")
