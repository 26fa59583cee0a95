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
from collections.abc import Mapping
import warnings
from pathlib import Path

from datasets import Dataset

from . import _checks

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
    """Where the corpus is cached: ``$COURSE_DATA_DIR`` (if set and not empty) or ``~/.cache/preference-course``."""
    path = Path(os.environ.get("COURSE_DATA_DIR", "").strip() or Path.home() / ".cache" / "preference-course")
    if path.exists() and not path.is_dir():
        raise ValueError(f"cache_dir: COURSE_DATA_DIR={str(path)!r} is a file, not a directory; "
                         "point it at a directory (it is created if missing) or unset it")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(cache: Path | None = None) -> Path:
    """Return the path of the verified sdist, downloading it with pip if needed.

    A download is verified before it is moved into ``cache``, so a file there is
    only ever a complete one (or one put there by hand, verified on every call)."""
    cache = _checks.path("fetch_sdist", "cache", cache) if cache is not None else cache_dir()
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"fetch_sdist: cache={str(cache)!r} is a file, not a directory")
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
            if _sha256(got) != SDIST_SHA256:
                raise CorpusError(f"pip downloaded {SDIST} with sha256 {_sha256(got)}, expected {SDIST_SHA256}.\n"
                                  + HOW_TO_FETCH_BY_HAND.format(cache=cache))
            part = target.with_name(f"{target.name}.part-{os.getpid()}")
            shutil.copyfile(got, part)  # into the cache's filesystem first, then an atomic rename
            os.replace(part, target)
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
    for name, value in [("texts_file", texts_file), ("ratings_file", ratings_file)]:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"parse_domain: {name} must be the file's bytes (open it with 'rb'), "
                            f"got {type(value).__name__}")
    _checks.choice("parse_domain", "domain", domain, DOMAINS)
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
    _checks.string("split_of", "record_id", record_id)
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


def _write_cache(parsed: Path, records: list[dict]):
    """Write the parsed corpus and, beside it, its row count and sha256; each file atomically
    (a temporary file renamed into place), the check last, so a crash leaves a cache that fails it."""
    payload = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    check = json.dumps({"rows": len(records), "sha256": hashlib.sha256(payload).hexdigest()})
    for target, content in [(parsed, payload), (_check_file(parsed), check.encode())]:
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")  # two processes may rebuild at once
        tmp.write_bytes(content)
        os.replace(tmp, target)


def _check_file(parsed: Path) -> Path:
    return parsed.with_name(parsed.name + ".check.json")


def _read_cache(parsed: Path) -> tuple[list[dict] | None, str]:
    """The cached records, or ``None`` and why the cache cannot be trusted."""
    if not parsed.exists():
        return None, ""
    try:
        check = json.loads(_check_file(parsed).read_text())
        rows, digest = int(check["rows"]), str(check["sha256"])
    except FileNotFoundError:
        return None, f"its check file {_check_file(parsed).name} is missing"
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"its check file {_check_file(parsed).name} is unreadable"
    payload = parsed.read_bytes()
    if hashlib.sha256(payload).hexdigest() != digest:
        return None, "its sha256 does not match the one written with it (truncated or altered)"
    records = [json.loads(line) for line in payload.decode("utf-8").splitlines()]
    if len(records) != rows or rows != sum(EXPECTED_COUNTS.values()):
        return None, f"it holds {len(records)} rows, expected {sum(EXPECTED_COUNTS.values())}"
    return records, ""


def load_corpus(split: str | None = None, domains=DOMAINS, cache: Path | None = None) -> Dataset:
    """The corpus as a ``datasets.Dataset`` with columns
    ``id, domain, text, mean_rating, ratings, split``.

    ``split`` is ``"train"``, ``"validation"``, ``"test"`` or ``None`` for all;
    ``domains`` a list of domain names (default: all four).

    The parsed copy (``corpus.jsonl``) is verified on every read against the row
    count and sha256 written beside it; a missing, truncated or altered copy is
    rebuilt from the verified sdist (with a warning if it existed, also when only its check
    file is missing: such a copy cannot be verified). If it cannot be
    rebuilt, ``CorpusError`` names the file and the command that rebuilds it.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"load_corpus: split must be one of {list(SPLITS)} or None, not {split!r}")
    if isinstance(domains, str) or not isinstance(domains, (list, tuple, set, frozenset)):
        raise TypeError(f"load_corpus: domains must be a list of domain names such as {list(DOMAINS)}, "
                        f"got {domains!r}" + ("; wrap a single domain in a list" if isinstance(domains, str) else ""))
    if not domains:
        raise ValueError(f"load_corpus: domains is empty; choose from {list(DOMAINS)}")
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise ValueError(f"load_corpus: unknown domains {unknown}; the domains are {list(DOMAINS)}")
    cache = _checks.path("load_corpus", "cache", cache) if cache is not None else cache_dir()
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"load_corpus: cache={str(cache)!r} is a file, not a directory")
    parsed = cache / "corpus.jsonl"
    records, problem = _read_cache(parsed)
    if records is None:
        existed = bool(problem)
        try:
            records = _parse_sdist(fetch_sdist(cache))
        except CorpusError as err:
            if not existed:
                raise
            raise CorpusError(f"The corpus cache {parsed} is damaged ({problem}) and could not be rebuilt:\n{err}\n"
                              "Once the sdist can be had, rebuild it with: python -m course_utils.data") from err
        _write_cache(parsed, records)
        if existed:
            warnings.warn(f"The corpus cache {parsed} was damaged ({problem}); rebuilt it from {SDIST}.",
                          stacklevel=2)
    keep = [r for r in records if r["domain"] in domains and (split is None or r["split"] == split)]
    return Dataset.from_list(keep)


# ---------------------------------------------------------------- SFT data

def format_prompt(instruction: str) -> str:
    """The instruction/response template shared by every notebook."""
    _checks.string("format_prompt", "instruction", instruction)
    return f"Instruction: {instruction}\nResponse:"


def sft_dataset(corpus: Dataset) -> Dataset:
    """Prompt/completion pairs for SFT in TRL's standard columns.

    The prompt names the domain only (``"Write a movie review."``); the completion
    is the human-written text with a leading space. The end-of-text token is added
    at tokenisation time, so the model learns where a response stops.
    """
    _checks.sequence("sft_dataset", "corpus", corpus, "corpus rows (from load_corpus)")
    rows = []
    for i, r in enumerate(corpus):
        if not isinstance(r, Mapping) or not {"domain", "text"} <= set(r):
            raise ValueError(f"sft_dataset: corpus row {i} needs 'domain' and 'text' columns "
                             f"(as load_corpus gives), got {r if not isinstance(r, Mapping) else sorted(r)!r}")
        if not isinstance(r["text"], str):
            raise TypeError(f"sft_dataset: corpus row {i}: text must be a string, got {type(r['text']).__name__}")
        if r["domain"] not in INSTRUCTIONS:
            raise ValueError(f"sft_dataset: corpus row {i} has domain {r['domain']!r}; "
                             f"the domains are {list(DOMAINS)}")
        row = {"prompt": format_prompt(INSTRUCTIONS[r["domain"]]), "completion": " " + r["text"],
               "domain": r["domain"]}
        check_prompt_completion(row, where=f"sft_dataset: corpus row {i}")
        rows.append(row)
    return Dataset.from_list(rows)


def _require(row: dict, columns, where: str):
    if not isinstance(row, Mapping):
        raise TypeError(f"{where}: row must be a dict with columns {list(columns)}, got {type(row).__name__}")
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
