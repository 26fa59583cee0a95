"""The fast paths give the numbers of the plain ones (CPU tests).

- Chunked log-probs (``logprobs.selected_logprobs``; ``chunked=True`` in ``sequence_logprobs``,
  ``losses.sft_step`` and ``dpo.dpo_step``, the default on CUDA) score only the response positions,
  from the last hidden states, a chunk at a time, and never form the full [B, T, V] logits: the same
  log-probs, losses and gradients as the plain log-softmax over the full logits, with one chunk or
  many (then checkpointed).
- Length-grouped batches (``TrainConfig(group_by_length=True)``) read every example once per epoch,
  with a fraction of the padding, and score each example as the plain batches do.
- What runs where (``gpu``): bf16 autocast, TF32 and compiled blocks on CUDA only; on the CPU
  nothing changes (checked here), on CUDA each is chosen (checked with CUDA faked)."""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import GPT2Config, GPT2ForSequenceClassification

from course_utils import gpu, logprobs, training
from course_utils.batching import collate_preference, collate_sft, encode_preference, encode_prompt_completion
from course_utils.data import format_prompt
from course_utils.dpo import collate_dpo, dpo_step
from course_utils.logprobs import selected_logprobs, sequence_logprobs
from course_utils.losses import sft_step
from course_utils.training import TrainConfig, batch_indices, train

ROWS = [(format_prompt("Write a movie review."), " The film was great, the actors fun.", " Boring."),
        (format_prompt("Write a tweet."), " Fun today!", " The city council was awful today."),
        (format_prompt("Write a product review."), " The product broke. Awful.", " It works, a great product.")]


@pytest.fixture
def sft_batch(course_tokenizer):
    rows = [encode_prompt_completion(course_tokenizer, p, c, max_length=64) for p, c, _ in ROWS]
    return collate_sft(rows, pad_token_id=course_tokenizer.pad_token_id)


@pytest.fixture
def dpo_batch(course_tokenizer):
    rows = [dict(encode_preference(course_tokenizer, p, c, r, max_length=64), ref_chosen_logps=-30.0 - i,
                 ref_rejected_logps=-28.0 + i) for i, (p, c, r) in enumerate(ROWS)]
    return collate_dpo(rows, course_tokenizer.pad_token_id)


@pytest.fixture(params=[2**24, 5], ids=["one chunk", "chunks of 5 positions"])
def chunk_tokens(request, monkeypatch, course_tokenizer):
    """The chunked path's logits per chunk: all positions at once, or 5 at a time (checkpointed)."""
    monkeypatch.setattr(logprobs, "CHUNK_LOGITS", request.param if request.param == 2**24
                        else request.param * len(course_tokenizer))
    return request.param


def grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def both_ways(model, fn):
    """``fn(chunked)`` -> a scalar, run plain and chunked: (values, gradients) of each."""
    out = {}
    for chunked in (False, True):
        model.zero_grad(set_to_none=True)
        value = fn(chunked)
        value.backward()
        out[chunked] = (value.detach(), grads(model))
    return out


def assert_same(out, atol):
    (plain, plain_grads), (fast, fast_grads) = out[False], out[True]
    torch.testing.assert_close(fast, plain, atol=atol, rtol=0)
    assert plain_grads.keys() == fast_grads.keys() and plain_grads
    for name in plain_grads:
        torch.testing.assert_close(fast_grads[name], plain_grads[name], atol=atol, rtol=1e-5, msg=name)


def test_sequence_logprobs_chunked_equals_plain(make_tiny_lm, sft_batch, chunk_tokens):
    model = make_tiny_lm(seed=1).double()
    ids, attention, completion = sft_batch["input_ids"], sft_batch["attention_mask"], sft_batch["completion_mask"]
    with torch.no_grad():
        plain = sequence_logprobs(model, ids, attention, completion, chunked=False)
        fast = sequence_logprobs(model, ids, attention, completion, chunked=True)
    torch.testing.assert_close(fast, plain, atol=1e-10, rtol=0)
    out = both_ways(model, lambda c: sequence_logprobs(model, ids, attention, completion, chunked=c).sum())
    assert_same(out, atol=1e-10)
    mean = sequence_logprobs(model, ids, attention, completion, average=True, chunked=True)
    torch.testing.assert_close(mean, fast / completion[:, 1:].sum(-1), atol=1e-10, rtol=0)


def test_sft_step_chunked_equals_plain_in_float32(make_tiny_lm, sft_batch, chunk_tokens):
    """In float32 too (the precision the course trains in), dropout on: the same random masks both ways."""
    model = make_tiny_lm(seed=2).train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.1

    def loss(chunked):
        torch.manual_seed(0)
        value, metrics = sft_step(model, sft_batch, chunked=chunked)
        assert metrics["tokens"] == int((sft_batch["labels"][:, 1:] != -100).sum())
        return value

    assert_same(both_ways(model, loss), atol=1e-5)


def test_dpo_step_chunked_equals_plain(make_tiny_lm, dpo_batch, chunk_tokens):
    model = make_tiny_lm(seed=3).double()
    for loss_type in ("sigmoid", "ipo_mean"):
        out = {}
        for chunked in (False, True):
            model.zero_grad(set_to_none=True)
            loss, metrics = dpo_step(model, dpo_batch, loss_type, beta=0.5, chunked=chunked)
            loss.backward()
            out[chunked] = (loss.detach(), grads(model), metrics)
        assert_same({k: v[:2] for k, v in out.items()}, atol=1e-10)
        for key, value in out[False][2].items():
            torch.testing.assert_close(out[True][2][key], value, atol=1e-10, rtol=0, msg=key)


class LargestTensor(TorchDispatchMode):
    """The most elements of any tensor an operator made whose last dimension is ``width``."""

    def __init__(self, width):
        super().__init__()
        self.width, self.largest = width, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == self.width:
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("grad", [False, True])
def test_chunked_path_never_forms_the_full_logits(make_tiny_lm, sft_batch, monkeypatch, grad):
    model = make_tiny_lm(seed=4)
    vocab = model.config.vocab_size
    monkeypatch.setattr(logprobs, "CHUNK_LOGITS", 7 * vocab)
    ids, attention, completion = sft_batch["input_ids"], sft_batch["attention_mask"], sft_batch["completion_mask"]
    with torch.set_grad_enabled(grad):
        with LargestTensor(vocab) as plain:
            value = sequence_logprobs(model, ids, attention, completion, chunked=False).sum()
            if grad:
                value.backward()
        with LargestTensor(vocab) as fast:
            value = sequence_logprobs(model, ids, attention, completion, chunked=True).sum()
            if grad:
                value.backward()
    assert plain.largest >= ids.numel() * vocab  # the plain path holds [B, T, V]
    # the chunked one at most a chunk of positions at a time (and the output layer's weight, [V, H])
    assert fast.largest <= max(7 * vocab, model.lm_head.weight.numel())


def test_selected_logprobs_is_log_softmax_of_the_logits():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=True).double()
    hidden, targets = torch.randn(13, 8, dtype=torch.float64), torch.randint(0, 11, (13,))
    expected = head(hidden).log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)
    for chunk in (1, 4, 13, 100):
        torch.testing.assert_close(selected_logprobs(hidden, head, targets, chunk), expected, atol=1e-12, rtol=0)
    assert selected_logprobs(hidden[:0], head, targets[:0]).shape == (0,)


def test_chunked_only_by_default_on_cuda_and_only_for_known_heads(make_tiny_lm):
    assert logprobs._chunked_by_default("cuda") and not logprobs._chunked_by_default("cpu")
    lm = make_tiny_lm()
    assert not logprobs._use_chunked("test", lm, None)      # CPU: plain, as the course's CPU results were computed
    assert logprobs._use_chunked("test", lm, True) and not logprobs._use_chunked("test", lm, False)
    classifier = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20))
    assert not logprobs._use_chunked("test", classifier, True)  # no known output layer: the plain path


# ---------------------------------------------------------------- length-grouped batches

def sft_like_lengths(n=320, seed=0):
    """Lengths like the SFT data's: 12 to 96 tokens, many short."""
    rng = np.random.default_rng(seed)
    return [12 + min(84, int(x)) for x in rng.exponential(25, n)]


def test_group_by_length_reads_every_example_once_per_epoch_and_cuts_padding():
    lengths = sft_like_lengths()
    n, batch = len(lengths), 16
    plain = [batch_indices(n, batch, 3, k) for k in range(n // batch)]
    grouped = [batch_indices(n, batch, 3, k, lengths) for k in range(n // batch)]
    assert sorted(i for b in grouped for i in b) == sorted(i for b in plain for i in b) == list(range(n))
    assert grouped == [batch_indices(n, batch, 3, k, lengths) for k in range(n // batch)]  # seeded: resumable
    assert [batch_indices(n, batch, 3, k + n // batch, lengths) for k in range(3)] != grouped[:3]  # a new epoch

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert padding(grouped) < 0.2 * padding(plain)


def test_group_by_length_regroups_but_scores_the_same(make_tiny_lm, course_tokenizer):
    """Grouping changes which examples share a batch, nothing else: over an epoch, the summed response NLL
    of the grouped batches equals that of the plain ones (padding does not change an example's loss)."""
    words = ["great", "boring", "fun", "awful", "the", "plot", "was", "actors"]
    rows = [encode_prompt_completion(course_tokenizer, format_prompt("Write a movie review."),
                                     " " + " ".join(words[(i + j) % 8] for j in range(1 + i % 13)), 64)
            for i in range(48)]
    model = make_tiny_lm(seed=5).double()
    lengths = [training.example_length(r) for r in rows]

    def epoch_nll(group):
        total = 0.0
        for k in range(48 // 8):
            batch = collate_sft([rows[i] for i in batch_indices(48, 8, 0, k, lengths if group else None)],
                                course_tokenizer.pad_token_id)
            with torch.no_grad():
                loss, metrics = sft_step(model, batch)
            total += loss.item() * metrics["tokens"]
        return total

    assert epoch_nll(True) == pytest.approx(epoch_nll(False), rel=1e-12)


def test_example_length_is_the_longest_input_ids():
    assert training.example_length({"input_ids": [1, 2, 3], "completion_mask": [0, 1, 1]}) == 3
    assert training.example_length({"chosen_input_ids": [1] * 4, "rejected_input_ids": [1] * 7, "x": [0] * 9}) == 7


def test_group_by_length_is_part_of_the_run_and_compile_is_not(tmp_path):
    """A checkpoint of a grouped run is not resumed by a plain one; compile (speed only) changes nothing; a
    checkpoint written before these fields existed still resumes (it ran with their defaults)."""
    model = torch.nn.Linear(3, 1)
    fingerprint = training._run_fingerprint(model, "loss", [{"x": 1}] * 4, {"x": torch.ones(1)},
                                            TrainConfig(steps=2, batch_size=2))
    for changed, differs in [({"group_by_length": True}, True), ({"compile": True}, False)]:
        other = training._run_fingerprint(model, "loss", [{"x": 1}] * 4, {"x": torch.ones(1)},
                                          TrainConfig(steps=2, batch_size=2, **changed))
        assert bool(training._differences(fingerprint, other)) == differs, changed
    old = dict(fingerprint, config={k: v for k, v in fingerprint["config"].items() if k != "group_by_length"})
    assert training._differences(old, fingerprint) == []


def test_train_with_group_by_length_trains():
    rows = [{"input_ids": list(range(2 + i % 7)), "x": torch.randn(3), "y": torch.randn(())} for i in range(32)]
    history = train(torch.nn.Linear(3, 1), lambda m, b: (((m(b["x"]).squeeze(-1) - b["y"]) ** 2).mean(), {}), rows,
                    lambda rs: {"x": torch.stack([r["x"] for r in rs]), "y": torch.stack([r["y"] for r in rs])},
                    TrainConfig(steps=6, batch_size=4, group_by_length=True, log_every=1))
    assert len(history) == 6


# ---------------------------------------------------------------- what runs where: CUDA only

def test_on_the_cpu_the_gpu_helpers_change_nothing(make_tiny_lm):
    model = make_tiny_lm()
    precision = torch.get_float32_matmul_precision()
    assert not gpu.bf16_supported("cpu") and not gpu.bf16_supported(model)
    assert not gpu.allow_tf32("cpu") and torch.get_float32_matmul_precision() == precision
    with gpu.autocast(model):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")
    with gpu.compiled_blocks(model) as compiled:
        assert not compiled
        assert all(getattr(b, "_compiled_call_impl", None) is None for b in model.transformer.h)


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")  # the autocast is made, never entered
def test_on_cuda_the_gpu_helpers_choose_the_fast_paths(make_tiny_lm, monkeypatch):
    """The selection, with CUDA faked (no GPU here): bf16 autocast, TF32, compiled blocks undone afterwards."""
    model = make_tiny_lm()
    monkeypatch.setattr(gpu, "_device_type", lambda where, device: "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (8, 0))  # an A100
    context = gpu.autocast(model)
    assert isinstance(context, torch.autocast) and context.device == "cuda" and context.fast_dtype == torch.bfloat16
    compiled_calls = []
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, *a, **k: (compiled_calls.append(self), setattr(self, "_compiled_call_impl", 1)))
    with gpu.compiled_blocks(model) as compiled:
        assert compiled and compiled_calls == list(model.transformer.h)
        assert all(b._compiled_call_impl == 1 for b in model.transformer.h)
    assert all(b._compiled_call_impl is None for b in model.transformer.h)  # eager again after training
    with gpu.compiled_blocks(model, enabled=False) as compiled:
        assert not compiled
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda p: compiled_calls.append(p))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert gpu.allow_tf32("cuda") and compiled_calls[-1] == "high" and torch.backends.cudnn.allow_tf32


def test_the_course_models_use_scaled_dot_product_attention():
    """transformers picks SDPA (flash attention on a GPU) for GPT-2 by itself; the course's loaders keep it."""
    from course_utils.models import load_policy
    assert load_policy("tiny")[0].config._attn_implementation == "sdpa"


# ---------------------------------------------------------------- bit for bit the same

def test_scoring_without_a_kv_cache_changes_no_bit(make_tiny_lm, sft_batch):
    """sft_step passes use_cache=False (no cache built and thrown away); the loss and gradients are those of a
    forward pass that builds the cache, bit for bit (dropout on, seeded alike)."""
    from course_utils.losses import sft_loss
    model = make_tiny_lm(seed=6).train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.1
    out = []
    for fn in (lambda: sft_step(model, sft_batch, chunked=False)[0],
               lambda: sft_loss(model(input_ids=sft_batch["input_ids"], attention_mask=sft_batch["attention_mask"],
                                      use_cache=True).logits, sft_batch["labels"])):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        loss = fn()
        loss.backward()
        out.append((loss.detach(), grads(model)))
    assert torch.equal(out[0][0], out[1][0])
    assert all(torch.equal(out[0][1][name], out[1][1][name]) for name in out[0][1])


@pytest.mark.parametrize("temperature, top_k, top_p, never", [(1.0, None, None, [1]), (1.0, None, None, None),
                                                               (0.7, 5, 0.9, [1]), (1.3, None, 0.5, None)])
def test_the_sampler_processes_logits_as_before(temperature, top_k, top_p, never):
    """One copy of the logits per token (index_fill, no division at temperature 1): bit for bit the logits the
    two-copy version (clone, assign, divide) gave, so the samples and log-probs are the same."""
    from course_utils.generation import _processed
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))

    def before(x):
        x = x.clone()
        if never is not None:
            x[:, never] = -float("inf")
        x = x / temperature
        if top_k is not None:
            x = x.masked_fill(x < torch.topk(x, top_k, dim=-1).values[:, -1:], -float("inf"))
        if top_p is not None:
            sorted_x, order = torch.sort(x, descending=True, dim=-1)
            above = sorted_x.softmax(-1).cumsum(-1) - sorted_x.softmax(-1)
            x = x.masked_fill(torch.zeros_like(x, dtype=torch.bool).scatter(-1, order, above >= top_p), -float("inf"))
        return x

    original = logits.clone()
    assert torch.equal(_processed(logits, temperature, top_k, top_p, never), before(logits))
    assert torch.equal(logits, original)  # the model's logits are not changed in place
