"""Comparing policies on the same prompts: log-probabilities of their samples, the KL
to a reference policy estimated from them, the judge's scores, win rates, diversity,
and bootstrap intervals.

KL(π ‖ π_ref) = E_{y~π}[log π(y|x) - log π_ref(y|x)], estimated by the mean of that
log-ratio over responses sampled from π (Schulman's "k1" estimator: unbiased, can be
negative on a small sample). Each response is scored as it was generated: with its
end token if the model ended it, without one if it ran out of tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _checks
from .batching import collate_sft
from .data import DOMAINS, INSTRUCTIONS, format_prompt
from .logprobs import sequence_logprobs


@torch.no_grad()
def sample_logprobs(model, tokenizer, prompts, responses, finished, max_length: int = 128,
                    batch_size: int = 64) -> np.ndarray:
    """log π(y | x) (summed over response tokens) of each sampled response, in eval mode
    (the model's mode is restored). ``finished[i]``: whether response i ended with the end
    token, which is then scored too. An empty finished response is the end token alone.

    The response is re-tokenised from its text, which can split it differently from the
    tokens the model sampled (rarely, for byte-level BPE); the rollouts of notebook 04 on
    keep the sampled tokens instead."""
    _checks.tokenizer("sample_logprobs", "tokenizer", tokenizer)
    _checks.integer("sample_logprobs", "batch_size", batch_size, minimum=1)
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("sample_logprobs: prompts and responses must be lists of strings, not one string")
    if not len(prompts) == len(responses) == len(finished):
        raise ValueError(f"sample_logprobs: prompts, responses and finished must have one length, got "
                         f"{len(prompts)}, {len(responses)}, {len(finished)}")
    rows = []
    for i, (p, r, done) in enumerate(zip(prompts, responses, finished)):
        if not isinstance(p, str) or not p.strip() or not isinstance(r, str):
            raise ValueError(f"sample_logprobs: prompt {i} must be a non-empty string and response {i} a string")
        prompt_ids = tokenizer(p, verbose=False)["input_ids"]
        response_ids = tokenizer(r, add_special_tokens=False, verbose=False)["input_ids"] if r else []
        response_ids += [tokenizer.eos_token_id] if done else []
        if not response_ids:
            raise ValueError(f"sample_logprobs: response {i} is empty and unfinished: nothing to score")
        if len(prompt_ids) >= max_length:
            raise ValueError(f"sample_logprobs: prompt {i} has {len(prompt_ids)} tokens, max_length={max_length}")
        rows.append({"input_ids": (prompt_ids + response_ids)[:max_length],
                     "completion_mask": ([0] * len(prompt_ids) + [1] * len(response_ids))[:max_length]})
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros(len(rows))
    try:
        for start in range(0, len(rows), batch_size):
            batch = collate_sft(rows[start:start + batch_size], tokenizer.pad_token_id)
            logps = sequence_logprobs(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                      batch["completion_mask"].to(device))
            out[start:start + len(logps)] = logps.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def bootstrap_ci(values, other=None, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """Mean of ``values``, or the difference of means ``values - other`` of two independent
    samples, with a percentile bootstrap interval (each sample resampled with
    replacement ``n_boot`` times): ``(estimate, low, high)``."""
    a = _check_scores("bootstrap_ci", "values", values)
    _checks.integer("bootstrap_ci", "n_boot", n_boot, minimum=1)
    _checks.integer("bootstrap_ci", "seed", seed, minimum=0)
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    if other is None:
        stats = a[rng.integers(a.size, size=(n_boot, a.size))].mean(-1)
        estimate = a.mean()
    else:
        b = _check_scores("bootstrap_ci", "other", other)
        stats = (a[rng.integers(a.size, size=(n_boot, a.size))].mean(-1)
                 - b[rng.integers(b.size, size=(n_boot, b.size))].mean(-1))
        estimate = a.mean() - b.mean()
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(estimate), float(low), float(high)


def _check_scores(where: str, name: str, values) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a list (or 1-D array) of numbers, got {type(values).__name__}") \
            from None
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"{where}: {name} must be a 1-D array of at least 2 finite numbers, got shape {a.shape}")
    return _checks.finite(where, name, a)


def win_rate(scores, baseline, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """How often a policy's response beats the baseline's response to the same prompt, ties counted half:

        win rate = (1/N) Σ_i ( 1[s_i > b_i] + ½ · 1[s_i = b_i] ),

    ``scores[i]`` and ``baseline[i]`` the judge's scores of the two responses to prompt i ([N] each). Returns
    ``(estimate, low, high)``, the interval a percentile bootstrap over the N prompts (pairs resampled
    together). 0.5 is a draw: the policy is as good as the baseline on this measure."""
    a = _check_scores("win_rate", "scores", scores)
    b = _check_scores("win_rate", "baseline", baseline)
    if a.shape != b.shape:
        raise ValueError(f"win_rate: scores and baseline must be paired (one entry per prompt each), got "
                         f"{a.size} and {b.size} entries")
    _checks.integer("win_rate", "n_boot", n_boot, minimum=1)
    _checks.integer("win_rate", "seed", seed, minimum=0)
    if not isinstance(level, float) or not 0 < level < 1:
        raise ValueError(f"win_rate: level must be a float in (0, 1), got {level!r}")
    wins = (a > b) + 0.5 * (a == b)
    stats = wins[np.random.default_rng(seed).integers(wins.size, size=(n_boot, wins.size))].mean(-1)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(wins.mean()), float(low), float(high)


def distinct_n(responses, n: int = 2) -> float:
    """distinct-n (Li et al. 2016): the number of distinct word n-grams in all of ``responses`` together,
    divided by the number of n-grams (words split at whitespace). 1 when no n-gram repeats; near 0 when the
    responses repeat themselves or each other (a collapsed policy). It falls as more text is pooled, so
    compare it between equal numbers of responses. A response shorter than n words adds no n-gram; 0.0
    when no response has n words."""
    if isinstance(responses, str) or not hasattr(responses, "__iter__"):
        raise TypeError(f"distinct_n: responses must be a list of strings, got {type(responses).__name__}")
    responses = list(responses)
    if any(not isinstance(r, str) for r in responses):
        raise TypeError("distinct_n: responses must be a list of strings")
    _checks.integer("distinct_n", "n", n, minimum=1)
    grams = [tuple(words[i:i + n]) for words in (r.split() for r in responses) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def evaluate_policy(model, reference, tokenizer, judge, domains, seed: int = 12345, max_new_tokens: int = 64,
                    reward_model=None, batch_size: int = 64) -> dict:
    """One fresh sample from ``model`` per entry of ``domains`` (that domain's instruction, temperature 1; the
    samples of ``generation.generate`` with ``seed`` and ``batch_size``) and what the course measures of it:

    - ``prompts``, ``domains``, ``responses`` and ``finished`` (whether the response ended with the end token);
    - ``judge``: the judge's score of each response, against the domain it was asked for;
    - ``log_ratio``: log π(y|x) - log π_ref(y|x) of the sampled tokens (the end token included when the response
      has it): π's from the sampler's own pass, π_ref's from one forward pass of ``reference`` over the rollout
      (no re-tokenisation of the text). Its mean estimates KL(π ‖ π_ref) (k1, unbiased); exactly 0 when
      ``reference`` is ``model``;
    - ``reward``: the reward model's score r_φ(x, y), only with ``reward_model`` (the proxy);
    - ``words``: each response's number of words.

    Arrays of one entry per sample. Every policy evaluated with the same ``domains`` and ``seed`` starts from the
    same random numbers. Models run in eval mode and are handed back in the mode they came in."""
    from .generation import _check_prompts, decode, response_logprobs, rollout
    from .judge import Judge
    from .reward_model import score_responses

    _checks.model("evaluate_policy", "reference", reference)
    _checks.tokenizer("evaluate_policy", "tokenizer", tokenizer)
    if not isinstance(judge, Judge):
        raise TypeError(f"evaluate_policy: judge must be a judge.Judge (Judge.load()), got {type(judge).__name__}")
    if isinstance(domains, str) or not isinstance(domains, (list, tuple)) or not domains:
        raise TypeError(f"evaluate_policy: domains must be a non-empty list of domain names, got {domains!r:.60}")
    unknown = sorted({str(d) for d in domains if d not in DOMAINS})
    if unknown:
        raise ValueError(f"evaluate_policy: domains must be among {list(DOMAINS)}, got {unknown}")
    _checks.integer("evaluate_policy", "seed", seed, minimum=0)
    _checks.integer("evaluate_policy", "batch_size", batch_size, minimum=1)
    if reward_model is not None:
        _checks.model("evaluate_policy", "reward_model", reward_model)
    prompts = [format_prompt(INSTRUCTIONS[d]) for d in domains]
    _check_prompts("evaluate_policy", model, tokenizer, prompts, max_new_tokens)
    out = {"prompts": prompts, "domains": list(domains), "responses": [], "finished": []}
    log_ratio = []
    was_training = reference.training
    reference.eval()
    try:
        for k, start in enumerate(range(0, len(prompts), batch_size)):
            sampled = rollout(model, tokenizer, prompts[start:start + batch_size], max_new_tokens, seed=seed + k)
            out["responses"] += decode(tokenizer, sampled)
            out["finished"] += sampled.finished.tolist()
            if reference is model:
                log_ratio.append(torch.zeros(len(sampled.finished)))
            else:
                with torch.no_grad():
                    reference_logps = response_logprobs(reference, sampled)
                log_ratio.append(((sampled.logprobs - reference_logps) * sampled.response_mask).sum(-1).cpu())
    finally:
        reference.train(was_training)
    out["log_ratio"] = torch.cat(log_ratio).double().numpy()
    out["judge"] = judge.score(out["responses"], domains=list(domains))["score"]
    if reward_model is not None:
        out["reward"] = score_responses(reward_model, tokenizer, prompts, out["responses"])
    out["words"] = np.array([len(r.split()) for r in out["responses"]])
    return out
