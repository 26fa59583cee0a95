"""Shared fixtures: the course's tokenizer trained on a toy corpus, and tiny random GPT-2s."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.data import format_prompt
from course_utils.models import train_tokenizer

WORDS = ["great", "awful", "movie", "film", "plot", "actors", "boring", "fun", "tweet", "today",
         "product", "works", "broke", "editorial", "city", "council", "the", "was", "is", "a"]


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run faster on one thread than on two that compete with other work."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def course_tokenizer():
    """A byte-level BPE (vocab 300) trained on a few hundred short course-style strings."""
    texts = [format_prompt(f"Write a {w}.") for w in WORDS]
    texts += [f" The {a} {b} was {c}." for a in WORDS for b in WORDS[:10] for c in WORDS[:2]]
    return train_tokenizer(texts, vocab_size=300)


@pytest.fixture
def make_tiny_lm(course_tokenizer):
    """``make_tiny_lm(seed=0)``: a tiny random GPT-2 without dropout, in eval mode."""
    def make(seed: int = 0) -> GPT2LMHeadModel:
        torch.manual_seed(seed)
        config = GPT2Config(vocab_size=len(course_tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            bos_token_id=course_tokenizer.bos_token_id, eos_token_id=course_tokenizer.eos_token_id,
                            pad_token_id=course_tokenizer.pad_token_id)
        return GPT2LMHeadModel(config).eval()
    return make
