"""One evaluation per policy and setting (evaluation.stored_evaluation): made once, stored beside the run, read
back unchanged by a second call that samples nothing; a damaged file refused; another setting, other weights or
another judge never served a stale file. And runs.run_of, the run folder of a policy a loader returned."""

import copy
import functools
import json

import numpy as np
import pytest
import torch

from course_utils import evaluation, runs
from course_utils.judge import Judge
from course_utils.models import load_policy
from course_utils.profiles import get_profile

DOMAINS = ["movie", "tweet", "product"]


@functools.cache
def models():
    policy, tokenizer = load_policy("tiny")
    reference = copy.deepcopy(policy)
    with torch.no_grad():  # a policy that differs from its reference, so its log-ratios are not all zero
        for p in policy.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    return policy.eval(), reference.eval(), tokenizer


@functools.cache
def judge():
    return Judge.load()


def stored(run, **kwargs):
    policy, reference, tokenizer = models()
    args = dict(model=policy, reference=reference, tokenizer=tokenizer, judge=judge(), domains=DOMAINS,
                seed=3, max_new_tokens=6)
    return evaluation.stored_evaluation(run, **{**args, **kwargs})


def no_sampling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("evaluate_policy was called: the stored evaluation was not read")
    monkeypatch.setattr(evaluation, "evaluate_policy", refuse)


def test_the_first_call_evaluates_and_stores_the_second_reads_it(tmp_path, monkeypatch):
    first = stored(tmp_path)
    policy, reference, tokenizer = models()
    fresh = evaluation.evaluate_policy(policy, reference, tokenizer, judge(), DOMAINS, seed=3, max_new_tokens=6)
    assert first["responses"] == fresh["responses"] and first["finished"] == fresh["finished"]
    np.testing.assert_array_equal(first["judge"], fresh["judge"])
    np.testing.assert_array_equal(first["log_ratio"], fresh["log_ratio"])
    assert (first["log_ratio"] != 0).any()
    files = list((tmp_path / "evaluations").iterdir())
    assert [f.name for f in files] == [f"{first['key']}.json"]          # one file, nothing temporary left
    no_sampling(monkeypatch)
    second = stored(tmp_path)
    assert second["responses"] == first["responses"]
    for name in ("judge", "log_ratio", "words"):
        np.testing.assert_array_equal(second[name], first[name])
        assert second[name].dtype == first[name].dtype
    assert evaluation.evaluation_line(second) == evaluation.evaluation_line(first)


def test_the_proxy_is_stored_when_a_reward_model_scores(tmp_path, monkeypatch):
    from course_utils.reward_model import reward_model_from_policy
    rm = reward_model_from_policy(models()[1]).eval()
    with_proxy = stored(tmp_path, reward_model=rm)
    without = stored(tmp_path)
    assert "reward" in with_proxy and "reward" not in without
    assert with_proxy["key"] != without["key"]                        # a reward model is part of the setting
    no_sampling(monkeypatch)
    np.testing.assert_array_equal(stored(tmp_path, reward_model=rm)["reward"], with_proxy["reward"])
    assert ", proxy " in evaluation.evaluation_line(with_proxy) and ", proxy " not in evaluation.evaluation_line(without)


def test_another_setting_other_weights_or_another_judge_are_evaluated_anew(tmp_path, monkeypatch):
    base = stored(tmp_path)
    assert stored(tmp_path, seed=4)["key"] != base["key"]
    assert stored(tmp_path, domains=DOMAINS[:2])["key"] != base["key"]
    assert stored(tmp_path, max_new_tokens=5)["key"] != base["key"]
    other = copy.deepcopy(models()[0])
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    retrained = stored(tmp_path, model=other)
    assert retrained["key"] != base["key"] and retrained["policy"] != base["policy"]
    assert retrained["setting"] == base["setting"]
    # a judge whose scores differ (its scoring changed) gets another fingerprint, and another evaluation
    changed = Judge.load()
    with torch.no_grad():
        changed.model.score.weight.mul_(1.5)
    assert evaluation.judge_fingerprint(changed) != evaluation.judge_fingerprint(judge())
    rejudged = stored(tmp_path, judge=changed)
    assert rejudged["key"] != base["key"] and rejudged["responses"] == base["responses"]
    assert len(list((tmp_path / "evaluations").iterdir())) == 6


def test_a_damaged_file_is_refused_with_its_name(tmp_path):
    base = stored(tmp_path)
    file = tmp_path / "evaluations" / f"{base['key']}.json"
    stored_text = file.read_text()
    data = json.loads(stored_text)
    data["payload"]["judge"][0] += 1.0                                   # a changed number: the checksum fails
    file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{file.name}.*damaged.*checksum"):
        stored(tmp_path)
    file.write_text(stored_text[: len(stored_text) // 2])                # cut short: not JSON
    with pytest.raises(ValueError, match="damaged.*delete it"):
        stored(tmp_path)
    data = json.loads(stored_text)                                       # consistent, but not this evaluation
    data["payload"]["policy"] = "0" * 16
    data["sha256"] = evaluation._payload_digest(data["payload"])
    file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="damaged.*policy"):
        stored(tmp_path)
    file.unlink()
    assert stored(tmp_path)["responses"] == base["responses"]         # deleted: evaluated again, the same samples


def test_the_line_names_the_run_the_setting_and_the_numbers(tmp_path):
    run = tmp_path / "04-leave-one-out-cpu"
    run.mkdir()
    e = stored(run)
    line = evaluation.evaluation_line(e)
    assert line.startswith(f"evaluation 04-leave-one-out-cpu {e['setting']}: policy {e['policy']}, judged by "
                           f"{e['judge_id']}: ")
    assert f"judge {e['judge'].mean():+.3f}, KL {e['log_ratio'].mean():.3f} nats, n 3" in line


def no_data(monkeypatch):
    """The loaders without their data (the training is replaced in each test): only where they look matters."""
    monkeypatch.setattr(runs, "sft_recipe", lambda profile, tokenizer: ([], None, None))
    monkeypatch.setattr(runs, "dpo_pairs", lambda *args: [])


def test_run_of_names_the_folder_a_loader_used(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RUNS_DIR_VARIABLE, str(tmp_path))
    no_data(monkeypatch)
    smoke = get_profile("smoke")
    monkeypatch.setattr(runs, "_from_earlier_or_train", lambda profile, model, *a: (None, a[-1]))
    policy, _ = runs.sft_policy(smoke, "09")                            # "trained" in the notebook's own folder
    assert runs.run_of(policy) == tmp_path / "09-sft-smoke"
    monkeypatch.setattr(runs, "_from_earlier_or_train", lambda profile, model, *a: (None, a[-2]))
    loaded, _ = runs.dpo_policy(smoke, "09", policy, load_policy("tiny")[1])
    assert runs.run_of(loaded) == tmp_path / "07-dpo-smoke"             # loaded from notebook 07's run
    with pytest.raises(ValueError, match="run_of.*copy"):
        runs.run_of(copy.deepcopy(loaded))


def test_seeds_above_one_are_their_own_runs_of_the_same_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RUNS_DIR_VARIABLE, str(tmp_path))
    smoke = get_profile("smoke")
    tokenizer = load_policy("tiny")[1]
    assert runs.dpo_recipe(smoke, tokenizer)[1].seed == 0                # seed 1: notebook 07's own run
    assert runs.dpo_recipe(smoke, tokenizer, seed=3)[1].seed == 2
    assert runs.policy_gradient_recipe(smoke, "leave_one_out", seed=2)[1].seed == 1
    assert runs.ppo_recipe(smoke, seed=2)[1].seed == 1 and runs.raft_recipe(smoke, seed=3)[1].seed == 2
    folders = []
    no_data(monkeypatch)
    monkeypatch.setattr(runs, "_from_earlier_or_train", lambda profile, model, *a: folders.append(a[-2:]) or
                        (None, a[-1]))
    policy, tokenizer = load_policy("tiny")
    seeded, _ = runs.dpo_policy(smoke, "09", policy, tokenizer, seed=2)
    assert folders == [(None, tmp_path / "09-dpo-seed2-smoke")]         # no earlier run to load: trained here
    assert runs.run_of(seeded) == tmp_path / "09-dpo-seed2-smoke"


def test_dpo_pairs_are_computed_once_per_reference(monkeypatch):
    smoke, (policy, _, tokenizer) = get_profile("smoke"), models()
    calls = []
    monkeypatch.setattr(runs, "_DPO_PAIRS", {})
    monkeypatch.setattr(runs, "encoded_pairs", lambda profile, tokenizer, pairs=None: [{"pair": 0}, {"pair": 1}])
    monkeypatch.setattr(runs, "add_reference_logprobs", lambda reference, rows, pad: calls.append(reference) or
                        [dict(row, ref_chosen_logps=-1.0, ref_rejected_logps=-2.0) for row in rows])
    first = runs.dpo_pairs(smoke, tokenizer, policy)
    second = runs.dpo_pairs(smoke, tokenizer, copy.deepcopy(policy))     # the same weights: not computed again
    assert second == first and second[0] is not first[0] and len(calls) == 1
    second[0]["pair"] = 7                                                 # a caller's change stays its own
    assert runs.dpo_pairs(smoke, tokenizer, policy)[0]["pair"] == 0
    runs.dpo_pairs(smoke, tokenizer, models()[1])                         # another reference: computed
    runs.dpo_pairs(smoke, tokenizer, policy, pairs=[{"prompt": "p"}])     # pairs of the caller's: always computed
    assert len(calls) == 3
