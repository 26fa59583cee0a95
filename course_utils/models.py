"""Tokenizer and models: the course's tiny GPT-2, GPT-2 (124M) from the Hub, and
scalar-head models (reward, value, judge) on the same backbone.

Every model is a plain ``transformers`` model, so a course checkpoint opens with
``from_pretrained`` in transformers and TRL alike.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from . import _checks
from ._checks import CheckpointError

hf_logging.disable_progress_bar()  # a bar per checkpoint load is noise in a notebook

CHECKPOINTS = Path(__file__).parent / "checkpoints"
TINY_BASE = CHECKPOINTS / "tiny-base"

EOS = "<|endoftext|>"  # begins and ends every text, as in GPT-2
PAD = "<|pad|>"        # a token of its own, so padding is never mistaken for the end

# The tiny preset: GPT-2's architecture at a size that trains on two CPU cores.
TINY_CONFIG = dict(vocab_size=4096, n_positions=128, n_embd=256, n_layer=4, n_head=4,
                   resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)


def train_tokenizer(texts, vocab_size: int = TINY_CONFIG["vocab_size"]) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts`` (a list of strings)."""
    _checks.sequence("train_tokenizer", "texts", texts, "texts")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"train_tokenizer: texts[{bad}] must be a string, got {type(texts[bad]).__name__}")
    _checks.integer("train_tokenizer", "vocab_size", vocab_size, minimum=258)  # 256 bytes + end + pad
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
    """The tiny preset's ``GPT2Config`` with ``tokenizer``'s special tokens."""
    _checks.tokenizer("tiny_config", "tokenizer", tokenizer)
    return GPT2Config(**TINY_CONFIG, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


def load_tokenizer(name: str = "tiny"):
    """The tokenizer of ``"tiny"``, ``"gpt2"`` or a local directory.

    Left padding, so that batched generation continues every prompt from its end.
    GPT-2 has no pad token; it pads with its end token, and masks say what is real.
    """
    source = _source("load_tokenizer", name)
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, RuntimeError) as err:
        if not Path(source).is_dir():
            raise  # a Hub name: transformers says what it could not reach
        raise CheckpointError(f"load_tokenizer: could not load the tokenizer files (tokenizer.json, "
                              f"tokenizer_config.json) in {source} ({type(err).__name__}: {_first_line(err)}); "
                              f"{_how_to_rebuild(source)}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_policy(name: str = "tiny", device: str = "cpu"):
    """A causal LM and its tokenizer: ``"tiny"`` (shipped), ``"gpt2"`` or a local path.

    ``"gpt2"`` comes from the Hugging Face Hub; where the Hub cannot be reached the
    course says so and falls back to the tiny model.
    """
    source = _source("load_policy", name)
    _checks.device("load_policy", "device", device)
    try:
        tok = load_tokenizer(name)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except CheckpointError:
        raise
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        if Path(source).is_dir():  # a local model: say which files are bad and how to get good ones
            raise CheckpointError(f"load_policy: could not load the model files (config.json, model.safetensors) "
                                  f"in {source} ({type(err).__name__}: {_first_line(err)}); "
                                  f"{_how_to_rebuild(source)}") from err
        if name != "gpt2" or not isinstance(err, OSError):
            raise  # a Hub name: transformers says what it could not reach
        warnings.warn(f"Could not load 'gpt2' from the Hugging Face Hub ({str(err).splitlines()[0]}); "
                      "falling back to the course's tiny model.", stacklevel=2)
        return load_policy("tiny", device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    _name_the_loss(model)
    return model.to(device), tok


def new_tiny_model(tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    """A freshly initialised tiny GPT-2 (seeded) for ``tokenizer``."""
    _checks.integer("new_tiny_model", "seed", seed, minimum=0)
    config = tiny_config(tokenizer)
    torch.manual_seed(seed)
    return _name_the_loss(GPT2LMHeadModel(config))


def _name_the_loss(model):
    """transformers infers a model's loss from its class name; ``GPT2LMHeadModel`` does not end in
    ``ForCausalLM``, so every call with ``labels=`` warns "`loss_type=None` was set in the config
    but it is unrecognized" and then uses the causal-LM loss. Naming that loss silences nothing else."""
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"
    return model


def _source(where: str, name) -> str:
    """``"tiny"`` -> the shipped checkpoint; a local path must exist; anything else is a Hub name."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    _checks.string(where, "name", name)
    if name == "tiny":
        return str(TINY_BASE)
    path = Path(name).expanduser()
    if (path.is_absolute() or name.startswith((".", "~"))) and not path.is_dir():
        raise FileNotFoundError(f"{where}: name={name!r} is not a directory; pass 'tiny', 'gpt2' or the "
                                "directory a model was saved to (save_small / save_pretrained)")
    return str(path) if path.is_dir() else name


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else "no detail"


def _how_to_rebuild(source: str) -> str:
    if Path(source) == TINY_BASE:
        return ("restore the shipped files with `git checkout course_utils/checkpoints/tiny-base` "
                "or rebuild them with `python -m course_utils.pretrain`")
    return "delete the directory and save the model again"


def save_small(model, tokenizer, path):
    """Save the weights as bf16 safetensors: half the bytes, so the shipped files stay
    under 10 MB. The config says float32, so ``from_pretrained`` (plain, or with
    ``dtype=torch.float32``) loads them back in fp32.

    Written atomically: everything goes to a temporary directory beside ``path``
    first. A new ``path`` is that directory renamed; into an existing one each file
    is moved with an atomic rename, and files ``save_small`` does not write are kept.
    """
    _checks.model("save_small", "model", model)
    if not hasattr(model, "save_pretrained"):
        raise TypeError(f"save_small: model must be a transformers model (with save_pretrained), "
                        f"got {type(model).__name__}")
    _checks.tokenizer("save_small", "tokenizer", tokenizer)
    path = _checks.path("save_small", "path", path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"save_small: path={str(path)!r} is a file; pass a directory (new or existing)")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # beside path: the renames stay on one filesystem
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crash
    tmp.mkdir(parents=True)
    try:
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config["dtype"] = "float32"  # what from_pretrained loads into; the bf16 values are exact in fp32
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if not path.exists():
            os.replace(tmp, path)
            return
        for file in sorted(tmp.iterdir(), key=lambda f: f.name == "config.json"):  # the config last
            os.replace(file, path / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
