"""Notebook 01, supervised fine-tuning: the labels with -100, the masked SFT loss, the sampling distribution."""

import torch
import torch.nn.functional as F

from .. import _checks
from ..batching import IGNORE_INDEX, collate_sft
from ..generation import _check_sampling, _processed
from ..losses import sft_loss
from ._runner import Case, Exercise, Mistake


def sft_labels(input_ids, attention_mask, prompt_lengths):
    """The labels that ``collate_sft`` makes, from a right-padded batch: ``input_ids`` [B, T] and
    ``attention_mask`` [B, T] (1 on real tokens), ``prompt_lengths`` [B] (prompt tokens per row) -> [B, T],
    the token ids with -100 on the prompt and on the padding."""
    for name, value in (("input_ids", input_ids), ("attention_mask", attention_mask)):
        _checks.tensor("sft_labels", name, value, dims=2, ids=True)
    _checks.tensor("sft_labels", "prompt_lengths", prompt_lengths, dims=1, ids=True)
    if attention_mask.shape != input_ids.shape or prompt_lengths.shape != input_ids.shape[:1]:
        raise ValueError(f"sft_labels: expected input_ids and attention_mask [B, T] and prompt_lengths [B], got "
                         f"{tuple(input_ids.shape)}, {tuple(attention_mask.shape)} and {tuple(prompt_lengths.shape)}")
    if (prompt_lengths < 0).any() or (prompt_lengths > attention_mask.sum(1)).any():
        raise ValueError("sft_labels: prompt_lengths must lie between 0 and each row's number of real tokens, "
                         f"got {prompt_lengths.tolist()} for rows of {attention_mask.sum(1).tolist()} tokens")
    rows = []
    for ids, mask, prompt in zip(input_ids.tolist(), attention_mask.tolist(), prompt_lengths.tolist()):
        length = sum(mask)
        rows.append({"input_ids": ids[:length], "completion_mask": [0] * prompt + [1] * (length - prompt)})
    labels = collate_sft(rows, pad_token_id=0)["labels"]
    return F.pad(labels, (0, input_ids.shape[1] - labels.shape[1]), value=IGNORE_INDEX)


def sampling_probs(logits, temperature, top_p):
    """The distribution that ``generation.rollout`` samples the next token from: ``logits`` [..., V]
    divided by ``temperature``, then only the smallest set of most likely tokens whose probability
    reaches ``top_p`` kept, renormalised -> [..., V] probabilities (0 outside the kept set)."""
    _checks.finite("sampling_probs", "logits", _checks.tensor("sampling_probs", "logits", logits, floating=True),
                   allow_inf=True)
    _check_sampling("sampling_probs", temperature, None, top_p)
    return _processed(logits, temperature, None, top_p, None).softmax(-1)


def _labels_cases():
    # two rows: prompt 3 + response 3; prompt 2 + response 2, then 2 padding tokens (pad id 0)
    ids = torch.tensor([[5, 6, 7, 8, 9, 2], [5, 6, 11, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    g = torch.Generator().manual_seed(1)
    big = torch.randint(3, 50, (3, 9), generator=g)
    big_mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [1] * 4 + [0] * 5])
    return [Case((ids, mask, torch.tensor([3, 2])), label="two rows, the second padded"),
            Case((big * big_mask, big_mask, torch.tensor([4, 5, 1])), label="three rows, prompts of 4, 5 and 1 tokens"),
            Case((ids[:1], mask[:1], torch.tensor([3])), label="one row, no padding"),
            Case((torch.tensor([[4, 4, 4, 2], [4, 4, 2, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
                  torch.tensor([3, 2])), label="one-token responses: only the end token is trained on")]


def _positions(input_ids):
    return torch.arange(input_ids.shape[1]).expand_as(input_ids)


def _padding_left_in(input_ids, attention_mask, prompt_lengths):
    return input_ids.masked_fill(_positions(input_ids) < prompt_lengths[:, None], IGNORE_INDEX)


def _prompt_left_in(input_ids, attention_mask, prompt_lengths):
    return input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)


def _zero_not_ignore(input_ids, attention_mask, prompt_lengths):
    keep = (_positions(input_ids) >= prompt_lengths[:, None]) & (attention_mask == 1)
    return input_ids * keep


def _prompt_off_by_one(input_ids, attention_mask, prompt_lengths):
    keep = (_positions(input_ids) > prompt_lengths[:, None]) & (attention_mask == 1)
    return input_ids.masked_fill(~keep, IGNORE_INDEX)


def _loss_cases():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 11, generator=g)
    labels = torch.tensor([[-100, -100, -100, 4, 7, 2], [-100, -100, 9, 2, -100, -100]])
    unmasked = torch.tensor([[3, 1, 5, 4, 7, 2], [3, 1, 9, 2, -100, -100]])
    three = torch.randn(3, 8, 11, generator=g, dtype=torch.float64)
    three_labels = torch.tensor([[-100, -100, 1, 2, 3, 4, 5, 6], [-100, -100, -100, -100, -100, -100, 7, 8],
                                 [-100, -100, -100, -100, -100, -100, -100, -100]])
    return [Case((logits, labels), label="two rows, prompt and padding at -100"),
            Case((logits, unmasked), label="the prompt labelled too (the first label is never predicted)"),
            Case((three, three_labels), label="three rows, responses of 6, 2 and 0 tokens, float64"),
            Case((logits[:1, :3], torch.tensor([[-100, -100, 5]])), label="a single labelled token")]


def _shift(logits, labels):
    return logits[:, :-1], labels[:, 1:]


def _no_shift(logits, labels):
    keep = labels != IGNORE_INDEX
    logps = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return -(logps * keep).sum() / keep.sum()


def _per_sequence_mean(logits, labels):
    logits, labels = _shift(logits, labels)
    keep = labels != IGNORE_INDEX
    logps = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    per_row = (logps * keep).sum(1) / keep.sum(1).clamp(min=1)
    return -per_row[keep.any(1)].mean()


def _logits_as_logprobs(logits, labels):
    logits, labels = _shift(logits, labels)
    keep = labels != IGNORE_INDEX
    return -(logits.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * keep).sum() / keep.sum()


def _sum_not_mean(logits, labels):
    logits, labels = _shift(logits, labels)
    keep = labels != IGNORE_INDEX
    return -(logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0] * keep).sum()


def _ignored_as_token_zero(logits, labels):
    logits, labels = _shift(logits, labels)
    return -logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None]).mean()


def _sampling_cases():
    g = torch.Generator().manual_seed(2)
    logits = torch.tensor([3.0, 1.5, 1.0, 0.2, -0.5, -1.0, -2.0, -4.0], dtype=torch.float64)
    batch = torch.randn(3, 20, generator=g, dtype=torch.float64) * 2
    return [Case((logits, 1.0, 0.9), label="eight tokens, temperature 1, top-p 0.9"),
            Case((logits, 0.5, 0.8), label="temperature 0.5 sharpens first, then top-p 0.8"),
            Case((logits, 2.0, 1.0), label="temperature 2, no top-p (top_p = 1 keeps every token)"),
            Case((batch, 1.3, 0.6), label="three rows of 20 logits, temperature 1.3, top-p 0.6"),
            Case((logits.float(), 1.0, 0.05), label="top-p 0.05: only the most likely token is left, float32")]


def _temperature_multiplies(logits, temperature, top_p):
    return sampling_probs(logits * temperature, 1.0, top_p)


def _nucleus_before_temperature(logits, temperature, top_p):
    keep = sampling_probs(logits, 1.0, top_p) > 0
    return (logits / temperature).masked_fill(~keep, -float("inf")).softmax(-1)


def _not_renormalised(logits, temperature, top_p):
    probs = (logits / temperature).softmax(-1)
    return probs * (sampling_probs(logits, temperature, top_p) > 0)


def _crossing_token_dropped(logits, temperature, top_p):
    probs = (logits / temperature).softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=True)
    drop = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, sorted_probs.cumsum(-1) >= top_p)
    drop = drop & (probs < probs.max(-1, keepdim=True).values)  # the top token is always kept
    kept = probs.masked_fill(drop, 0)
    return kept / kept.sum(-1, keepdim=True)


EXERCISES = [
    Exercise(
        name="sft_labels", notebook="01", reference=sft_labels, cases=_labels_cases,
        mistakes=(Mistake(_padding_left_in, "set the padding to -100 too: where attention_mask is 0"),
                  Mistake(_prompt_left_in, "set the prompt's labels to -100: positions t < prompt_length"),
                  Mistake(_zero_not_ignore, "use -100 for the ignored positions: 0 is a real token id, "
                                            "which the loss would train on"),
                  Mistake(_prompt_off_by_one, "the response starts at position prompt_length (positions count "
                                              "from 0): keep its first token; the loss does the shift"))),
    Exercise(
        name="sft_loss", notebook="01", reference=sft_loss, cases=_loss_cases, grad=True,
        mistakes=(Mistake(_no_shift, "shift by one: the logits at position t predict the label at t + 1 "
                                     "(logits[:, :-1] against labels[:, 1:])"),
                  Mistake(_per_sequence_mean, "divide by the number of response tokens in the whole batch, "
                                              "not by each row's count: a token mean, not a mean of row means"),
                  Mistake(_logits_as_logprobs, "take log_softmax of the logits first: logits are not "
                                               "log-probabilities"),
                  Mistake(_sum_not_mean, "divide the sum by the number of labelled tokens: the loss is a mean"),
                  Mistake(_ignored_as_token_zero, "leave out the positions labelled -100 (prompt and padding): "
                                                  "count only labels != -100"))),
    Exercise(
        name="sampling_probs", notebook="01", reference=sampling_probs, cases=_sampling_cases,
        mistakes=(Mistake(_temperature_multiplies, "divide the logits by the temperature: a high temperature "
                                                   "flattens the distribution"),
                  Mistake(_nucleus_before_temperature, "apply the temperature first, then choose the top-p set "
                                                       "on the tempered probabilities"),
                  Mistake(_not_renormalised, "renormalise: the kept tokens' probabilities must sum to one"),
                  Mistake(_crossing_token_dropped, "keep the token that crosses top_p: the kept set is the "
                                                   "smallest whose probability reaches top_p"))),
]
