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
    assert (get_profile().name, get_profile().device) == ("cpu", "cpu")


def test_on_cuda_the_automatic_choice_runs_the_cpu_recipes_on_the_gpu(monkeypatch, capsys):
    """A Colab GPU runtime gets the cpu profile (every assert in it has been run) on the GPU, and no note."""
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    profile = get_profile()
    assert (profile.name, profile.model, profile.device) == ("cpu", "tiny", "cuda")
    assert profile.steps == get_profile("cpu").steps
    assert "gpu profile" not in capsys.readouterr().out


def test_the_gpu_profile_is_opt_in_and_says_it_is_unmeasured(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    assert (get_profile().name, get_profile().model) == ("gpu", "gpt2")
    assert "has not yet been measured on a GPU" in capsys.readouterr().out


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
