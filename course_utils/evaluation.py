"""Comparing policies on the same prompts: log-probabilities of their samples, the KL
to a reference policy estimated from them, the judge's scores, win rates, diversity,
and bootstrap intervals.

KL(π ‖ π_ref) = E_{y~π}[log π(y|x) - log π_ref(y|x)], estimated by the mean of that
log-ratio over responses sampled from π (Schulman's "k1" estimator: unbiased, can be
negative on a small sample). Each response is scored as it was generated: with its
end token if the model ended it, without one if it ran out of tokens.

A trained policy is evaluated once per setting: ``stored_evaluation`` keeps ``evaluate_policy``'s result beside
the run (``<run>/evaluations/<key>.json``), keyed by the setting, the policy's weights and the judge, and every
later call with the same ones reads it. ``evaluation_line`` prints one line per stored evaluation, so that a
test can check that the same policy shows the same numbers in every notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import weakref
from pathlib import Path

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


def paired_bootstrap_ci(values, other, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """The mean difference of two paired samples, ``values[i] - other[i]`` (two policies' scores on the same
    prompt i, [N] each), with a percentile bootstrap interval that resamples the N pairs together (Efron &
    Tibshirani 1993, ch. 13): ``(estimate, low, high)``. The i-th resample is ``d[idx[i]].mean()``, with
    ``d = values - other`` and ``idx = np.random.default_rng(seed).integers(N, size=(n_boot, N))``. Resampling the
    pairs keeps what the two scores of one prompt share, which two independent resamples would count as noise."""
    a, b = _check_pairs("paired_bootstrap_ci", ("values", values), ("other", other), n_boot, level, seed)
    return _pair_bootstrap(a - b, n_boot, level, seed)


def _check_pairs(where: str, first: tuple, second: tuple, n_boot, level, seed) -> tuple:
    """Two paired samples of scores, ``(name, values)`` each, and the bootstrap's settings, checked at ``where``."""
    a, b = _check_scores(where, *first), _check_scores(where, *second)
    if a.shape != b.shape:
        raise ValueError(f"{where}: {first[0]} and {second[0]} must be paired (one entry per prompt each), got "
                         f"{a.size} and {b.size} entries")
    _checks.integer(where, "n_boot", n_boot, minimum=1)
    _checks.integer(where, "seed", seed, minimum=0)
    if isinstance(level, bool) or not isinstance(level, float) or not 0 < level < 1:
        raise ValueError(f"{where}: level must be a float in (0, 1), got {level!r}")
    return a, b


def _pair_bootstrap(per_pair: np.ndarray, n_boot: int, level: float, seed: int) -> tuple:
    """Mean of ``per_pair`` with a percentile bootstrap interval over the pairs: ``(estimate, low, high)``."""
    stats = per_pair[np.random.default_rng(seed).integers(per_pair.size, size=(n_boot, per_pair.size))].mean(-1)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(per_pair.mean()), float(low), float(high)


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
    a, b = _check_pairs("win_rate", ("scores", scores), ("baseline", baseline), n_boot, level, seed)
    return _pair_bootstrap((a > b) + 0.5 * (a == b), n_boot, level, seed)


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


def _check_setting(where: str, reference, tokenizer, judge, domains, seed, batch_size, reward_model) -> None:
    """The arguments that ``evaluate_policy`` and ``stored_evaluation`` share, checked at either door."""
    from .judge import Judge

    _checks.model(where, "reference", reference)
    _checks.tokenizer(where, "tokenizer", tokenizer)
    if not isinstance(judge, Judge):
        raise TypeError(f"{where}: judge must be a judge.Judge (Judge.load()), got {type(judge).__name__}")
    if isinstance(domains, str) or not isinstance(domains, (list, tuple)) or not domains:
        raise TypeError(f"{where}: domains must be a non-empty list of domain names, got {domains!r:.60}")
    unknown = sorted({str(d) for d in domains if d not in DOMAINS})
    if unknown:
        raise ValueError(f"{where}: domains must be among {list(DOMAINS)}, got {unknown}")
    _checks.integer(where, "seed", seed, minimum=0)
    _checks.integer(where, "batch_size", batch_size, minimum=1)
    if reward_model is not None:
        _checks.model(where, "reward_model", reward_model)


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
    from .reward_model import score_responses

    _check_setting("evaluate_policy", reference, tokenizer, judge, domains, seed, batch_size, reward_model)
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


# ---------------------------------------------------------------- one evaluation per policy and setting

EVAL_SEED = 12345   # the course's evaluation seed: fresh samples that no training step used
_LISTS = {"prompts": str, "domains": str, "responses": str, "finished": bool, "judge": float, "log_ratio": float,
          "reward": float, "words": int}
# texts the judge scores to fingerprint what it does (a change in its code or files changes their scores)
_JUDGE_PROBES = (("A warm, funny and moving film.", "movie"), ("worst purchase ever , it broke in a day", "product"),
                 ("great great great great :) :)", "tweet"), ("The council's plan is careful and fair.", "editorial"))
_judge_fingerprints = weakref.WeakKeyDictionary()


def _weights(model) -> str:
    from .training import _digest
    return _digest(dict(model.state_dict()))


def judge_fingerprint(judge) -> str:
    """A digest of what the judge is: its weights, its sentiment model, and its scores of a few fixed texts (so
    that a change in its files or in its scoring code gives another fingerprint). Computed once per judge."""
    from .judge import Judge
    from .training import _digest
    if not isinstance(judge, Judge):
        raise TypeError(f"judge_fingerprint: judge must be a judge.Judge (Judge.load()), got {type(judge).__name__}")
    if judge not in _judge_fingerprints:
        texts, domains = zip(*_JUDGE_PROBES)
        probes = np.round(np.asarray(judge.score(list(texts), domains=list(domains))["score"], dtype=float), 6)
        _judge_fingerprints[judge] = _digest(_weights(judge.model), vars(judge.sentiment), probes.tolist())
    return _judge_fingerprints[judge]


def _payload_digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _decoded(payload: dict) -> dict:
    """The arrays of ``evaluate_policy`` from their stored lists (the same types whether just made or read)."""
    out = {k: list(payload[k]) for k in ("prompts", "domains", "responses", "finished")}
    out.update({k: np.asarray(payload[k], dtype=float) for k in ("judge", "log_ratio", "reward") if k in payload})
    out["words"] = np.asarray(payload["words"], dtype=int)
    out.update(run=payload["run"], setting=payload["setting"], policy=payload["policy"], judge_id=payload["judge_id"],
               key=payload["key"])
    return out


def _read(file: Path, expected: dict) -> dict:
    """The stored evaluation in ``file``, refused with a clear error when damaged or not the one expected."""
    def refuse(why):
        return ValueError(f"stored_evaluation: {file} is damaged ({why}); delete it, and the next call evaluates "
                          "the policy again")
    try:
        stored = json.loads(file.read_text())
        payload, digest = stored["payload"], stored["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise refuse(f"not a stored evaluation: {type(err).__name__}") from None
    if not isinstance(payload, dict) or _payload_digest(payload) != digest:
        raise refuse("its checksum does not match its contents")
    for name, value in expected.items():
        if payload.get(name) != value:
            raise refuse(f"it holds {name} {payload.get(name)!r:.80}, expected {value!r:.80}")
    n = len(payload.get("prompts", ()))
    for name, kind in _LISTS.items():
        if name in payload and (len(payload[name]) != n or not all(isinstance(v, kind) for v in payload[name])):
            raise refuse(f"its {name} are not {n} values of type {kind.__name__}")
    return payload


def stored_evaluation(run, model, reference, tokenizer, judge, domains, seed: int = EVAL_SEED,
                      max_new_tokens: int = 64, reward_model=None, batch_size: int = 64) -> dict:
    """``evaluate_policy(model, reference, tokenizer, judge, domains, seed, max_new_tokens, reward_model,
    batch_size)``, made once and stored beside the run: in ``<run>/evaluations/<key>.json``, ``run`` the policy's
    run folder (``runs.run_of(model)`` for a policy a loader returned). A later call with the same setting, the
    same weights and the same judge reads that file and samples nothing, so every notebook that reports the
    policy shows the same numbers.

    The key is a digest of the setting (``domains``, ``seed``, ``max_new_tokens``, ``batch_size``, the device,
    the weights of ``reference`` and ``reward_model``), of ``model``'s weights and of the judge
    (``judge_fingerprint``): another setting, a retrained policy or a changed judge gets a new evaluation, never
    a stale one. The file is written atomically, with a checksum that is verified on every read (a damaged file
    is refused with a ``ValueError`` that names it).

    Returns ``evaluate_policy``'s dict (lists and float arrays, the same whether made or read) with ``run``
    (the folder's name), ``setting``, ``policy`` and ``judge_id`` (digests) and ``key`` added."""
    if not isinstance(run, (str, os.PathLike)) or not str(run).strip():
        raise TypeError(f"stored_evaluation: run must be the policy's run folder (a path; runs.run_of(model)), "
                        f"got {run!r:.60}")
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"stored_evaluation: run={str(run)!r} is not a folder; pass the folder of the "
                                "policy's run (runs.run_of(model) for a policy a loader returned)")
    _checks.model("stored_evaluation", "model", model)
    _check_setting("stored_evaluation", reference, tokenizer, judge, domains, seed, batch_size, reward_model)
    _checks.integer("stored_evaluation", "max_new_tokens", max_new_tokens, minimum=1)
    from .training import _digest
    setting = _digest({"domains": list(domains), "seed": seed, "max_new_tokens": max_new_tokens,
                       "batch_size": batch_size, "device": next(model.parameters()).device.type,
                       "reference": _weights(reference),
                       "reward model": None if reward_model is None else _weights(reward_model)})[:16]
    expected = {"run": run.name, "setting": setting, "policy": _weights(model)[:16],
                "judge_id": judge_fingerprint(judge)[:16]}
    expected["key"] = _digest(expected["setting"], expected["policy"], expected["judge_id"])[:16]
    file = run / "evaluations" / f"{expected['key']}.json"
    if file.exists():
        return _decoded(dict(_read(file, {k: v for k, v in expected.items() if k != "run"}), run=run.name))
    made = evaluate_policy(model, reference, tokenizer, judge, list(domains), seed=seed,
                           max_new_tokens=max_new_tokens, reward_model=reward_model, batch_size=batch_size)
    payload = dict(expected, **{k: [_LISTS[k](v) for v in made[k]] for k in _LISTS if k in made})
    file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=file.parent, suffix=".tmp", delete=False) as out:
        json.dump({"sha256": _payload_digest(payload), "payload": payload}, out)
    os.replace(out.name, file)
    return _decoded(payload)


def evaluation_line(evaluation: dict) -> str:
    """One line that names a stored evaluation and its headline numbers, for a notebook to print:

        evaluation <run> <setting>: policy <digest>, judged by <digest>: judge +0.123, KL 1.234 nats, proxy +0.456, n 400

    ``tests/test_one_number_per_policy.py`` reads these lines in every committed notebook: one run (its name less
    the notebook's number) and one setting must show one line everywhere."""
    if not isinstance(evaluation, dict) or not {"run", "setting", "policy", "judge_id"} <= set(evaluation):
        raise TypeError("evaluation_line: evaluation must be what stored_evaluation returned (a dict with run, "
                        f"setting, policy and judge_id), got {type(evaluation).__name__}")
    proxy = f", proxy {evaluation['reward'].mean():+.3f}" if "reward" in evaluation else ""
    return (f"evaluation {evaluation['run']} {evaluation['setting']}: policy {evaluation['policy']}, judged by "
            f"{evaluation['judge_id']}: judge {evaluation['judge'].mean():+.3f}, KL {evaluation['log_ratio'].mean():.3f}"
            f" nats{proxy}, n {len(evaluation['judge'])}")
