"""The corpus loader, its splits and the SFT dataset builder."""

import collections
import shutil
import subprocess

import pytest

from course_utils import data
from course_utils.data import (DOMAINS, EXPECTED_COUNTS, INSTRUCTIONS, CorpusError, load_corpus, parse_domain,
                               sft_dataset, split_of)

TEXTS = b"1_1\t0.5\tA fine film.\r\n1_2\t-1.0\tCaf\xe9 was awful.\r\n"  # Windows-1252 byte for e-acute
RATINGS = b"\xef\xbb\xbf1_1\t0.5\t0.5\t[1, 0]\r\n1_2\t-1.0\t0.0\t[-1, -1, -1]\r\n"


def test_parse_handles_crlf_bom_and_non_utf8_bytes():
    records = parse_domain(TEXTS, RATINGS, "movie")  # RATINGS starts with a UTF-8 byte-order mark
    assert [r["id"] for r in records] == ["movie/1_1", "movie/1_2"]
    assert records[1]["text"] == "Café was awful."
    assert records[0]["ratings"] == [1, 0] and records[0]["mean_rating"] == 0.5
    assert not any("\r" in r["text"] for r in records)


def test_mean_rating_is_recomputed_from_the_individual_ratings():
    texts = b"7\t3.0\tGreat.\n"
    ratings = b"7\t3.0\t0.0\t[2, 4, 4]\n"
    (record,) = parse_domain(texts, ratings, "tweet")
    assert record["mean_rating"] == pytest.approx(10 / 3)


@pytest.mark.parametrize("texts, ratings, message", [
    (b"1\t0\tok\n", b"2\t0\t0\t[1]\n", "has no ratings"),
    (b"1\t0\tok\n", b"1\t0\t0\t[1, 7]\n", "-4..4"),
    (b"1\t0\tok\n", b"1\t0\t0\t[1, 2\n", "unreadable"),
    (b"1\t0\n", b"1\t0\t0\t[1]\n", "tab-separated"),
    (b"1\t0\t \n", b"1\t0\t0\t[1]\n", "empty"),
])
def test_parse_rejects_bad_records_clearly(texts, ratings, message):
    with pytest.raises(CorpusError, match=message):
        parse_domain(texts, ratings, "movie")


def test_corpus_has_every_text_and_every_rating():
    corpus = load_corpus()
    counts = collections.Counter(corpus["domain"])
    assert counts == EXPECTED_COUNTS
    assert sum(counts.values()) == 23703
    n_ratings = [len(r) for r in corpus["ratings"]]
    assert min(n_ratings) == 15 and max(n_ratings) == 99
    assert len(set(corpus["id"])) == len(corpus)


def test_splits_are_fixed_disjoint_and_about_80_10_10():
    sizes = {s: len(load_corpus(s)) for s in data.SPLITS}
    assert sum(sizes.values()) == 23703
    assert 0.78 < sizes["train"] / 23703 < 0.82
    assert 0.09 < sizes["test"] / 23703 < 0.11
    ids = {s: set(load_corpus(s)["id"]) for s in data.SPLITS}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["validation"]
    # the split is a function of the id alone: the same answer every time, everywhere
    assert split_of("movie/1") == split_of("movie/1") == load_corpus()[0]["split"]


def test_load_corpus_rejects_unknown_split_or_domain():
    with pytest.raises(ValueError, match="split must be one of"):
        load_corpus("dev")
    with pytest.raises(ValueError, match="unknown domains"):
        load_corpus(domains=["poems"])


def test_fetch_failure_says_how_to_get_the_file_by_hand(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "ERROR: Could not find a version")
    monkeypatch.setattr(data.subprocess, "run", no_network)
    with pytest.raises(CorpusError, match="pip download --no-deps --no-binary :all: vaderSentiment==3.3.2"):
        load_corpus(cache=tmp_path)


def test_a_corrupt_download_is_refused(tmp_path):
    (tmp_path / data.SDIST).write_bytes(b"not the archive")
    with pytest.raises(CorpusError, match="sha256"):
        data.fetch_sdist(tmp_path)


def test_sft_instructions_name_the_domain_only():
    corpus = load_corpus("validation")
    sft = sft_dataset(corpus.select(range(200)))
    assert set(sft.column_names) >= {"prompt", "completion", "domain"}
    for row, source in zip(sft, corpus.select(range(200))):
        assert row["prompt"] == data.format_prompt(INSTRUCTIONS[source["domain"]])
        assert row["completion"] == " " + source["text"]
    sentiment_words = {"positive", "negative", "good", "bad", "happy", "sad", "praise", "complain"}
    for instruction in INSTRUCTIONS.values():
        assert not set(instruction.lower().strip(".").split()) & sentiment_words
    assert set(INSTRUCTIONS) == set(DOMAINS)


@pytest.mark.parametrize("row, message", [
    ({"prompt": "Write a tweet."}, "missing column"),
    ({"prompt": "", "completion": " hi"}, "'prompt' is empty"),
    ({"prompt": "Write a tweet.", "completion": "   "}, "'completion' is empty"),
    ({"prompt": "Write a tweet.", "completion": 3}, "must be a string"),
])
def test_bad_prompt_completion_records_are_rejected(row, message):
    with pytest.raises(ValueError, match=message):
        data.check_prompt_completion(row)


@pytest.mark.parametrize("row, message", [
    ({"prompt": "p", "chosen": "a"}, "missing column"),
    ({"prompt": "p", "chosen": "", "rejected": "b"}, "'chosen' is empty"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "same text"),
])
def test_bad_preference_records_are_rejected(row, message):
    with pytest.raises(ValueError, match=message):
        data.check_preference(row)


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    """A temporary cache holding a copy of the verified sdist and a corpus.jsonl built from it."""
    cache = tmp_path_factory.mktemp("cache")
    shutil.copy(data.fetch_sdist(), cache / data.SDIST)
    load_corpus(cache=cache)
    return cache


@pytest.fixture
def cache_with_sdist(built_cache, tmp_path):
    """A copy of ``built_cache`` for one test to damage."""
    for f in built_cache.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "garble", "no check file"])
def test_a_damaged_cache_is_detected_and_rebuilt(cache_with_sdist, damage):
    parsed = cache_with_sdist / "corpus.jsonl"
    good = parsed.read_bytes()
    if damage == "truncate":  # a copy cut short at a line end: it still parses, with fewer rows
        parsed.write_bytes(good[:good.index(b"\n", len(good) // 2) + 1])
    elif damage == "garble":
        parsed.write_bytes(good[:1000] + b"\xff\xfe" + good[1002:])
    else:  # a copy whose check file is gone: it cannot be verified, so it is rebuilt, with the warning
        (cache_with_sdist / "corpus.jsonl.check.json").unlink()
    reason = {"truncate": "sha256", "garble": "sha256", "no check file": "check file corpus.jsonl.check.json is missing"}
    with pytest.warns(UserWarning, match=rf"corpus\.jsonl was damaged \(its {reason[damage]}"):
        corpus = load_corpus(cache=cache_with_sdist)
    assert len(corpus) == 23703
    assert parsed.read_bytes() == good
    assert sorted(p.name for p in cache_with_sdist.iterdir()) == ["corpus.jsonl", "corpus.jsonl.check.json",
                                                                  data.SDIST]  # no temporary file left
