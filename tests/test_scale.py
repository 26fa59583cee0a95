"""scale/: the DPO script on two CPU processes (DDP over gloo) trains as one process does with the same global
batch, and the accelerate configs that the docs give (DDP, DeepSpeed ZeRO-2 and ZeRO-3, FSDP) parse.

How two CPU processes are launched, measured with the pinned accelerate 1.15.0: ``accelerate launch --cpu
--num_processes 2`` (or a ``MULTI_CPU`` config) goes to accelerate's simple launcher, which starts ONE process
unless an MPI hostfile is given. The DDP config (``distributed_type: MULTI_GPU``) goes to torch's launcher
(``torch.distributed.run``, what ``torchrun`` is), which starts two; the script's ``--cpu`` (TRL's
``use_cpu=True``, i.e. ``Accelerator(cpu=True)``) makes them a ``MULTI_CPU`` group over gloo. So the test runs
the very command of docs/scaling_out.md, ``accelerate launch --config_file scale/configs/ddp.yaml``.
"""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "scale" / "configs"
ACCELERATE = Path(sys.executable).parent / "accelerate"
# never the network; one thread a process, so the two processes share the two cores
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
           TOKENIZERS_PARALLELISM="false")
STEPS, GLOBAL_BATCH, LR = 4, 4, 1e-4
# fp32 sums taken in another order (two half-batch gradients all-reduced, against one full batch) differ in the
# last bits; Adam's normalisation can amplify that on coordinates whose gradient is near 0, by at most a small
# part of one step (lr). Measured here after 4 steps: losses 5e-7 apart, weights 4e-6 (they moved 2.5e-4).
LOSS_TOL = 1e-5
WEIGHT_TOL = 0.2 * LR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dpo_command(out: Path, processes: int) -> list[str]:
    """The DPO script on the tiny model, ``processes`` CPU processes sharing the global batch."""
    script = ["scale/dpo.py", "--cpu", "--steps", str(STEPS), "--batch-size", str(GLOBAL_BATCH // processes),
              "--lr", str(LR), "--examples", "48", "--output-dir", str(out)]
    if processes == 1:
        return [sys.executable, *script]
    return [str(ACCELERATE), "launch", "--config_file", str(CONFIGS / "ddp.yaml"), "--num_processes",
            str(processes), "--mixed_precision", "no", "--main_process_port", str(free_port()), *script]


OTHERS = {"sft": [], "reward": [], "kto": [], "grpo": ["--group", "2"]}


def others_command(out: Path) -> list[str]:
    """SFT, reward model, KTO and GRPO, two steps each, in one Python process (one start-up for the four)."""
    driver = ["import runpy, sys", "sys.path.insert(0, 'scale')"]
    for name, extra in OTHERS.items():
        argv = [f"scale/{name}.py", "--cpu", "--steps", "2", "--batch-size", "4", "--examples", "24",
                "--output-dir", str(out / name), *extra]
        driver += [f"sys.argv = {argv!r}", f"runpy.run_path({argv[0]!r}, run_name='__main__')"]
    return [sys.executable, "-c", "\n".join(driver)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three jobs, started together so that they share the machine's cores (each process has one thread);
    ``runs(name)`` waits for one and returns its output folder."""
    out = tmp_path_factory.mktemp("scale")
    commands = {"one": dpo_command(out / "one", 1), "two": dpo_command(out / "two", 2),
                "others": others_command(out / "others")}
    logs = {name: open(out / f"{name}.log", "w") for name in commands}    # files: a full pipe would stall a job
    jobs = {name: subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=logs[name], stderr=subprocess.STDOUT)
            for name, command in commands.items()}

    def wait(name: str) -> Path:
        jobs[name].wait(timeout=300)
        assert jobs[name].returncode == 0, (out / f"{name}.log").read_text()[-3000:]
        return out / name

    yield wait
    for name, job in jobs.items():
        if job.poll() is None:
            job.kill()
            job.wait()
        logs[name].close()


def test_dpo_on_two_cpu_processes_matches_one(runs):
    one_dir, two_dir = runs("one"), runs("two")
    one, two = (json.loads((d / "record.json").read_text()) for d in (one_dir, two_dir))
    assert (one["processes"], one["distributed_type"]) == (1, "DistributedType.NO")
    assert (two["processes"], two["distributed_type"]) == (2, "DistributedType.MULTI_CPU")
    assert one["global_batch"] == two["global_batch"] == GLOBAL_BATCH
    assert len(one["losses"]) == len(two["losses"]) == STEPS
    assert one["losses"] == pytest.approx(two["losses"], abs=LOSS_TOL)
    a, b = load_file(one_dir / "model.safetensors"), load_file(two_dir / "model.safetensors")
    start = load_file(ROOT / "course_utils" / "checkpoints" / "tiny-base" / "model.safetensors")
    assert a.keys() == b.keys()
    apart = max((a[k] - b[k]).abs().max().item() for k in a)
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    assert apart <= WEIGHT_TOL, f"the two runs' weights differ by up to {apart:.2e}"
    assert moved > 5 * WEIGHT_TOL, f"the weights moved only {moved:.2e}: the comparison could not fail"


def test_the_other_recipes_train_two_steps(runs):
    """SFT, reward model, KTO and GRPO: each script trains two steps on the tiny model, offline, and records
    finite losses and its model."""
    out = runs("others")
    for name in OTHERS:
        record = json.loads((out / name / "record.json").read_text())
        assert len(record["losses"]) == 2 and all(map(math.isfinite, record["losses"])), (name, record)
        assert (out / name / "model.safetensors").is_file()


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"),
                                        ("fsdp", "FSDP")])
def test_accelerate_configs_parse(name, kind):
    """accelerate's own parser (``ClusterConfig.from_yaml_file``, which rejects unknown top-level keys and
    types) reads every config, without DeepSpeed installed (it does not import it). It does not look inside
    ``deepspeed_config`` and ``fsdp_config``: ``accelerate launch`` copies those keys onto its own options, so
    each must be an option of accelerate's launch parser; a misspelt one would be ignored silently."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    path = CONFIGS / f"{name}.yaml"
    config = ClusterConfig.from_yaml_file(path)
    options = {action.dest for action in launch_command_parser()._actions}
    for key in {**config.deepspeed_config, **config.fsdp_config}:
        assert key in options, f"{path.name}: {key} is not an option of accelerate launch"
    assert config.distributed_type.value == kind
    assert config.num_processes >= 2 and config.mixed_precision == "bf16"
    raw = yaml.safe_load(path.read_text())
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-1]) == raw["deepspeed_config"]["zero_stage"]
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "GPT2Block"  # the tiny model's and GPT-2's


def test_docs_give_a_command_for_every_config():
    page = (ROOT / "docs" / "scaling_out.md").read_text()
    for config in CONFIGS.glob("*.yaml"):
        assert f"--config_file scale/configs/{config.name}" in page, config.name
