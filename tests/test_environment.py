"""The ways of installing and testing the course agree with each other.

pyproject.toml (pip, Colab), environment.yml (conda) and the Makefile name the same
packages with the same pins; the installed versions are the pinned ones; and the
README's test command is what CI runs.
"""

import functools
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml  # PyYAML: a hard dependency of transformers and datasets
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def normalise(name: str) -> str:
    """Package names compare lowercase, with ``_`` and ``.`` as ``-`` (PEP 503)."""
    return canonicalize_name(name)


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return {normalise(r.name): r for r in map(Requirement, lines)}


def environment_requirements() -> dict[str, Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lines = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep.get("pip", [])
    # option lines (--extra-index-url, -e .) are not packages
    reqs = [Requirement(line) for line in pip_lines if not line.lstrip().startswith("-")]
    return {normalise(r.name): r for r in reqs}


def exact_pin(req: Requirement) -> str | None:
    pins = [s.version for s in req.specifier if s.operator == "=="]
    return pins[0] if pins else None


def makefile_torch_version() -> str:
    match = re.search(r"^TORCH_VERSION\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile sets no TORCH_VERSION"
    return match.group(1)


def test_pyproject_and_environment_name_the_same_packages():
    pyproject, environment = set(pyproject_requirements()), set(environment_requirements())
    assert pyproject == environment, (
        f"only in pyproject.toml: {sorted(pyproject - environment)}; "
        f"only in environment.yml: {sorted(environment - pyproject)}")


def test_pins_agree():
    pyproject, environment = pyproject_requirements(), environment_requirements()
    for name in pyproject.keys() & environment.keys():
        a, b = exact_pin(pyproject[name]), exact_pin(environment[name])
        if a and b:
            assert Version(a) == Version(b), f"{name}: pyproject.toml pins {a}, environment.yml pins {b}"
        # where one side pins, the pin must be allowed by the other side's range
        if b:
            assert pyproject[name].specifier.contains(b, prereleases=True), \
                f"{name}: environment.yml pins {b}, outside pyproject.toml's {pyproject[name].specifier}"
        if a:
            assert environment[name].specifier.contains(a, prereleases=True), \
                f"{name}: pyproject.toml pins {a}, outside environment.yml's {environment[name].specifier}"


def test_torch_pinned_the_same_in_makefile_and_environment():
    torch_env = exact_pin(environment_requirements()["torch"])
    assert torch_env, "environment.yml must pin torch exactly (CPU installs)"
    assert Version(makefile_torch_version()) == Version(torch_env), \
        f"Makefile installs torch {makefile_torch_version()}, environment.yml pins {torch_env}"
    assert pyproject_requirements()["torch"].specifier.contains(torch_env)


@pytest.mark.parametrize("name", sorted(n for n, r in pyproject_requirements().items() if exact_pin(r)))
def test_installed_versions_are_the_pinned_ones(name):
    try:
        installed = Version(version(name))
    except PackageNotFoundError:
        pytest.fail(f"{name} is not installed; run `make venv`")
    # compare public versions: the CPU torch wheel is 2.13.0+cpu
    assert installed.public == Version(exact_pin(pyproject_requirements()[name])).public


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "make test" in commands, ".ci/run must run `make test`"


def test_readme_test_command_is_make_test():
    readme = (ROOT / "README.md").read_text()
    code_blocks = re.findall(r"^```[^\n]*\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert any("make test" in block for block in code_blocks), \
        "README.md must give `make test` (what .ci/run runs) in a code block"


# ---------------------------------------------------------------- where `make venv` takes torch from

def torch_index(env_extra: dict, path: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_INDEX", "MAKEFLAGS", "MAKELEVEL")}
    env.update(env_extra, PATH=path)
    return subprocess.run(["make", "-s", "--no-print-directory", "torch-index", f"PYTHON={sys.executable}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def no_gpu_path(tmp_path):
    """A PATH with make and sh but no nvidia-smi (the machine's own PATH, where it has none)."""
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    return os.environ["PATH"]


@pytest.fixture
def gpu_path(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nvidia-smi").chmod(0o755)
    return f"{fake}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture
def local_index(tmp_path):
    """A package index that answers, served from a temporary folder."""
    (tmp_path / "index" / "torch").mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_torch_index_override_wins(gpu_path):
    assert torch_index({"TORCH_INDEX": "https://example.org/whl"}, gpu_path).stdout.strip() == "https://example.org/whl"


def test_torch_index_default_with_an_nvidia_gpu(gpu_path, local_index):
    assert torch_index({"TORCH_CPU_INDEX": local_index}, gpu_path).stdout.strip() == "default"


def test_torch_index_cpu_without_a_gpu(no_gpu_path, local_index):
    assert torch_index({"TORCH_CPU_INDEX": local_index}, no_gpu_path).stdout.strip() == local_index


def test_torch_index_falls_back_and_says_so_when_the_cpu_index_is_unreachable(no_gpu_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = torch_index({"TORCH_CPU_INDEX": f"http://127.0.0.1:{port}"}, no_gpu_path)
    assert out.stdout.strip() == "default"
    assert "cannot be reached" in out.stderr
