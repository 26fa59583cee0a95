"""Tokenizer and models: the course's tiny GPT-2, GPT-2 (124M) from the Hub, and
scalar-head models (reward, value, judge) on the same backbone.

Every model is a plain ``transformers`` model, so a course checkpoint opens with
``from_pretrained`` in transformers and TRL alike.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer,
                          GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast)
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()  # a bar per checkpoint load is noise in a notebook

CHECKPOINTS = Path(__file__).parent / "checkpoints"
TINY_BASE = CHECKPOINTS / "tiny-base"
JUDGE = CHECKPOINTS / "judge"

EOS = "<|endoftext|>"  # begins and ends every text, as in GPT-2
PAD = "<|pad|>"        # a token of its own, so padding is never mistaken for the end

# The tiny preset: GPT-2's architecture at a size that trains on two CPU cores.
TINY_CONFIG = dict(vocab_size=4096, n_positions=128, n_embd=256, n_layer=4, n_head=4,
                   resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)


def train_tokenizer(texts, vocab_size: int = TINY_CONFIG["vocab_size"]) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=PAD,
                                   model_max_length=TINY_CONFIG["n_positions"])


def tiny_config(tokenizer) -> GPT2Config:
    return GPT2Config(**TINY_CONFIG, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


def load_tokenizer(name: str = "tiny"):
    """The tokenizer of ``"tiny"``, ``"gpt2"`` or a local directory.

    Left padding, so that batched generation continues every prompt from its end.
    GPT-2 has no pad token; it pads with its end token, and masks say what is real.
    """
    tok = AutoTokenizer.from_pretrained(str(TINY_BASE) if name == "tiny" else name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_policy(name: str = "tiny", device: str = "cpu"):
    """A causal LM and its tokenizer: ``"tiny"`` (shipped), ``"gpt2"`` or a local path.

    ``"gpt2"`` comes from the Hugging Face Hub; where the Hub cannot be reached the
    course says so and falls back to the tiny model.
    """
    try:
        source = str(TINY_BASE) if name == "tiny" else name
        tok = load_tokenizer(name)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except OSError as err:
        if name != "gpt2":
            raise
        warnings.warn(f"Could not load 'gpt2' from the Hugging Face Hub ({str(err).splitlines()[0]}); "
                      "falling back to the course's tiny model.", stacklevel=2)
        return load_policy("tiny", device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(device), tok


def load_judge(device: str = "cpu"):
    """The judge (gold reward model) and its tokenizer; see ``course_utils.judge``."""
    tok = AutoTokenizer.from_pretrained(str(JUDGE))
    tok.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(str(JUDGE), dtype=torch.float32)
    return model.to(device).eval(), tok


def new_tiny_model(tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(tiny_config(tokenizer))


def save_small(model, tokenizer, path):
    """Save the weights as bf16 safetensors: half the bytes, so the shipped files stay
    under 10 MB. ``from_pretrained(..., dtype=torch.float32)`` loads them back in fp32."""
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(path)
    tokenizer.save_pretrained(path)
