"""Profiles: the automatic choice, bad names, and the sizes scaling in one direction."""

import dataclasses

import pytest

from course_utils.profiles import PROFILES, get_profile


def test_ci_defaults_to_smoke_and_a_cpu_machine_to_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert get_profile().name == "smoke"
    monkeypatch.delenv("CI")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert get_profile().name == "cpu"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert get_profile().name == "gpu"


def test_environment_variable_wins_and_is_case_insensitive(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("COURSE_PROFILE", "CPU")
    assert get_profile().name == "cpu"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        get_profile()


def test_profiles_grow_from_smoke_to_cpu_and_only_gpu_uses_gpt2(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    smoke, cpu, gpu = (get_profile(name) for name in PROFILES)
    assert smoke.steps < cpu.steps and smoke.n_eval < cpu.n_eval and smoke.n_train < cpu.n_train
    assert (smoke.model, cpu.model, gpu.model) == ("tiny", "tiny", "gpt2")
    assert not cpu.bf16  # autocast only on CUDA
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.steps = 1
