"""Models that a notebook needs from an earlier one, by one rule.

A notebook that needs, say, notebook 01's SFT policy calls ``sft_policy(profile,
"02")``. That loads notebook 01's finished run from ``runs/`` when it is there and
was made by the same code and data (the training loop's checkpoint check decides:
the same config, examples and objective); otherwise it trains the model with the
same recipe, at the profile's budget, under the calling notebook's own run
directory (``runs/02-sft-<profile>``). A notebook never writes into another's run
directory, so notebooks can run side by side, and each runs on its own in a fresh
kernel. Before it trains, it says what it trains because the earlier run is missing,
and how long the notebook that made it took in this profile (``training_note``).

Every policy a loader returns remembers the run folder it came from (``run_of``), where
``evaluation.stored_evaluation`` keeps its evaluation. ``seed=2, 3, ...`` trains the same
recipe with another training seed, under the calling notebook's run directory
(``runs/09-leave-one-out-seed2-cpu``); seed 1 is the earlier notebook's own run.

Where runs live is one setting: ``$COURSE_RUNS_DIR`` (for example a folder on your
Google Drive in Colab, so that runs outlive the session), else ``runs/`` beside the
notebook (``runs_root``).

The recipes here are the ones the earlier notebooks show step by step; when a
notebook's cell and its recipe drift apart, the check notices (different
examples or config) and the model is retrained rather than silently reused.
"""

from __future__ import annotations

import copy
import os
import weakref
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from . import _checks
from .batching import collate_preference, collate_sft, encode_preference_dataset, encode_sft_dataset
from .data import DOMAINS, INSTRUCTIONS, format_prompt, load_corpus, sft_dataset
from .dpo import add_reference_logprobs, collate_dpo, dpo_objective, without_dropout
from .losses import sft_step
from .models import load_policy
from .orpo import orpo_objective
from .policy_gradient import ADVANTAGES, reinforce_step
from .ppo import ppo_step
from .preferences import human_preference_pairs
from .profiles import Profile
from .raft import raft_step
from .reward_model import reward_model_from_policy, reward_step
from .rl import RLConfig, finished_rl_run, train_rl
from .training import TrainConfig, _digest, finished_run, train

RUNS_DIR_VARIABLE = "COURSE_RUNS_DIR"
_RUN_OF = weakref.WeakKeyDictionary()   # model -> the run folder its loader loaded or trained it in
# each notebook whose runs the loaders train: the wall-clock time of the whole notebook (its other cells
# included) on the 2-core CPU machine, per profile: cpu as committed (notebook metadata, course.seconds;
# tests/test_runs_dir.py checks them), smoke as the README's column (nbval, one notebook after another). The gpu
# profile has not been timed.
NOTEBOOK_SECONDS = {"01": {"smoke": 78, "cpu": 185}, "02": {"smoke": 96, "cpu": 965}, "03": {"smoke": 69, "cpu": 449},
                    "04": {"smoke": 46, "cpu": 467}, "05": {"smoke": 47, "cpu": 619}, "07": {"smoke": 52, "cpu": 296},
                    "08": {"smoke": 54, "cpu": 149}}
SFT_MAX_LENGTH = 96       # notebook 01: prompt (21 tokens) + response + end
# notebook 02's reward model, per profile: tokens per text (prompt + response; smoke truncates the longest
# tenth of the texts to fit a minute), optimiser steps (each pair seen once) and learning rate
RM_MAX_LENGTH = {"smoke": 64, "cpu": 96, "gpu": 96}
RM_STEPS = {"smoke": 40, "cpu": 400, "gpu": 1000}
RM_LR = {"smoke": 1e-3, "cpu": 1e-3, "gpu": 1e-4}
RM_BATCH = 32  # pairs per step
# notebook 04's policy-gradient runs: iterations, and samples per prompt per iteration (all four instructions
# are drawn at every iteration); learning rate, KL coefficient and response length for every profile
PG_ITERATIONS = {"smoke": 3, "cpu": 30, "gpu": 200}
PG_GROUP = {"smoke": 4, "cpu": 16, "gpu": 16}
PG_LR, PG_BETA, PG_MAX_NEW_TOKENS = 1e-4, 0.3, 48


def runs_root() -> Path:
    """Where runs live: ``$COURSE_RUNS_DIR`` if set (``~`` expanded), else ``runs`` (relative to the folder the
    notebook runs in). A setting that names a file is refused (runs are folders)."""
    root = Path(os.environ.get(RUNS_DIR_VARIABLE) or "runs").expanduser()
    if root.is_file():
        raise NotADirectoryError(f"runs_root: ${RUNS_DIR_VARIABLE}={str(root)!r} is a file; set it to a folder "
                                 "(it is made if missing), or unset it for runs/")
    return root


def training_note(profile, earlier: Path, what: str, notebook: str) -> str:
    """What a loader prints before it trains ``what`` because ``earlier`` (notebook ``notebook``'s run) is missing
    or was made by other code or data: the run, and how long notebook ``notebook`` took in this profile."""
    _check_profile("training_note", profile)
    _checks.string("training_note", "what", what)
    _checks.choice("training_note", "notebook", notebook, NOTEBOOK_SECONDS)
    seconds = NOTEBOOK_SECONDS[notebook].get(profile.name)
    if seconds is None:
        took = f"the {profile.name} profile has not been timed yet"
    else:
        took = (f"notebook {notebook}, which trains it among other things, took {seconds // 60}m{seconds % 60:02d}s "
                f"in the {profile.name} profile on a 2-core CPU")
    return (f"No finished run in {earlier} (or it was made by other code or data): training {what} here first; "
            f"{took}.")


def run_dir(notebook: str, name: str, profile) -> Path:
    """``<runs_root()>/<notebook>-<name>-<profile>``: where a notebook's run of ``name`` lives."""
    _check_profile("run_dir", profile)
    for arg, value in (("notebook", notebook), ("name", name)):
        _checks.string("run_dir", arg, value)
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"run_dir: {arg}={value!r} must be letters, digits, '-' or '_' (it names a folder)")
    return runs_root() / f"{notebook}-{name}-{profile.name}"


def run_of(model) -> Path:
    """The run folder of a model that a loader of this module returned: the earlier notebook's run when the
    loader loaded it from there, else the calling notebook's own (where ``evaluation.stored_evaluation`` keeps
    its evaluations). A copy of the model is not the run's model, and has none."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"run_of: model must be a model that a loader of course_utils.runs returned, got "
                        f"{type(model).__name__}")
    if model not in _RUN_OF:
        raise ValueError("run_of: model was not returned by a loader of course_utils.runs (a copy, or trained in "
                         "the notebook's cells); pass its run folder yourself: runs.run_dir(notebook, name, profile)")
    return _RUN_OF[model]


def _from_run(model, folder: Path):
    _RUN_OF[model] = Path(folder)
    return model


def _check_seed(where: str, seed) -> int:
    return _checks.integer(where, "seed", seed, minimum=1)


def _seeded(name: str, seed: int) -> str:
    """A run's name for training seed ``seed``: seed 1 is the recipe's own run, seed k its copy seeded k - 1."""
    return name if seed == 1 else f"{name}-seed{seed}"


def _check_profile(where: str, profile):
    if not isinstance(profile, Profile):
        raise TypeError(f"{where}: profile must be a Profile (from get_profile()), got {type(profile).__name__}")


def _from_earlier_or_train(profile, model, loss_fn, examples, collate, config, earlier: Path, own: Path):
    """Load the finished run in ``earlier`` if it matches, else train (resumably) in ``own``, saying so first
    (``earlier=None``: a run that only ``own`` holds, a seed of notebook 09). Returns the log and the folder used."""
    if earlier is not None:
        earlier_config = replace(config, checkpoint_dir=str(earlier))
        if finished_run(model, loss_fn, examples, collate, earlier_config):
            return train(model, loss_fn, examples, collate, earlier_config), earlier
    own_config = replace(config, checkpoint_dir=str(own))
    if earlier is not None and not finished_run(model, loss_fn, examples, collate, own_config):
        print(training_note(profile, earlier, f"{config.desc} ({config.steps} steps)", earlier.name.split("-")[0]))
    return train(model, loss_fn, examples, collate, own_config), own


def sft_recipe(profile, tokenizer):
    """Notebook 01's masked SFT run: its examples, collate function and config."""
    _check_profile("sft_recipe", profile)
    _checks.tokenizer("sft_recipe", "tokenizer", tokenizer)
    corpus = load_corpus("train").shuffle(seed=0).select(range(profile.n_train))
    examples = encode_sft_dataset(tokenizer, sft_dataset(corpus), SFT_MAX_LENGTH)
    config = TrainConfig(steps=profile.steps, batch_size=profile.batch_size, lr=profile.lr,
                         warmup_steps=profile.steps // 10, log_every=5, seed=0, desc="SFT (masked)")
    return examples, partial(collate_sft, pad_token_id=tokenizer.pad_token_id, mask_prompt=True), config


def sft_policy(profile, notebook: str, history: bool = False):
    """Notebook 01's SFT policy (prompt masked) and its tokenizer, in eval mode (with ``history=True``, also the
    run's history: ``train``'s list of logged steps)."""
    run_dir(notebook, "sft", profile)  # checks both arguments before any loading
    if not isinstance(history, bool):
        raise TypeError(f"sft_policy: history must be True or False, got {history!r}")
    model, tokenizer = load_policy(profile.model, profile.device)
    examples, collate, config = sft_recipe(profile, tokenizer)
    log, folder = _from_earlier_or_train(profile, model, sft_step, examples, collate, config,
                                         run_dir("01", "sft-masked", profile), run_dir(notebook, "sft", profile))
    _from_run(model.eval(), folder)
    return (model, tokenizer, log) if history else (model, tokenizer)


def _sft_given(where: str, profile, notebook: str, policy, tokenizer):
    """The SFT policy and tokenizer that a notebook passed, or notebook 01's (loaded or trained)."""
    if (policy is None) != (tokenizer is None):
        raise ValueError(f"{where}: pass policy and tokenizer together (the SFT policy and its tokenizer), "
                         "or neither")
    if policy is None:
        policy, tokenizer = sft_policy(profile, notebook)
    return policy, tokenizer


def reward_recipe(profile, tokenizer, length_bias: float = 0.0, steps: int | None = None):
    """Notebook 02's reward model run on human preference pairs (optionally length-biased).

    ``steps``: the optimiser steps, by default the profile's ``RM_STEPS``; fewer steps also draw fewer pairs
    (every pair is seen once), so ``steps`` sets how much preference data the model learns from (notebook 09's
    weaker proxies)."""
    _check_profile("reward_recipe", profile)
    _checks.tokenizer("reward_recipe", "tokenizer", tokenizer)
    _checks.number("reward_recipe", "length_bias", length_bias, nonnegative=True)
    steps = RM_STEPS[profile.name] if steps is None else _checks.integer("reward_recipe", "steps", steps, minimum=1)
    # enough pairs that every one is seen once (a fifth of random pairs tie and are dropped)
    pairs = human_preference_pairs(load_corpus("train"), steps * RM_BATCH * 5 // 4 + 64, seed=0,
                                   length_bias=length_bias)
    examples = encode_preference_dataset(tokenizer, pairs, RM_MAX_LENGTH[profile.name])
    config = TrainConfig(steps=steps, batch_size=RM_BATCH, lr=RM_LR[profile.name],
                         warmup_steps=steps // 10, log_every=5, seed=0,
                         desc="reward model" + (f" (length bias {length_bias})" if length_bias else "")
                         + (f" ({steps * RM_BATCH} pairs)" if steps != RM_STEPS[profile.name] else ""))
    return examples, partial(collate_preference, pad_token_id=tokenizer.pad_token_id), config


def reward_model(profile, notebook: str, policy=None, tokenizer=None, steps: int | None = None):
    """Notebook 02's reward model (unbiased labels), in eval mode, with its tokenizer;
    ``policy`` and ``tokenizer``: the SFT policy, if the notebook has it already.

    ``steps``: fewer optimiser steps (and pairs) than notebook 02's (``reward_recipe``): a weaker proxy, trained
    under ``runs/<notebook>-reward-<steps>steps-<profile>``."""
    _check_profile("reward_model", profile)
    if steps is not None:
        _checks.integer("reward_model", "steps", steps, minimum=1)
    name = "reward" if steps is None or steps == RM_STEPS[profile.name] else f"reward-{steps}steps"
    run_dir(notebook, name, profile)
    policy, tokenizer = _sft_given("reward_model", profile, notebook, policy, tokenizer)
    model = reward_model_from_policy(policy)
    examples, collate, config = reward_recipe(profile, tokenizer, steps=steps)
    _, folder = _from_earlier_or_train(profile, model, reward_step, examples, collate, config,
                                       run_dir("02", name, profile), run_dir(notebook, name, profile))
    return _from_run(model.eval(), folder), tokenizer


# notebook 07's DPO run on human preference pairs
DPO_MAX_LENGTH = 76       # prompt + response + end; longer pairs are left out (every response keeps its end token)
DPO_PAIRS = {"smoke": 120, "cpu": 1200, "gpu": 8000}   # pairs drawn; ties and long pairs are dropped
DPO_STEPS = {"smoke": 8, "cpu": 72, "gpu": 1000}
DPO_BATCH = {"smoke": 8, "cpu": 16, "gpu": 32}
DPO_LR = {"smoke": 1e-4, "cpu": 1e-4, "gpu": 5e-6}
DPO_BETA = 0.1


def encoded_pairs(profile, tokenizer, pairs=None):
    """Encoded preference pairs (``batching.encode_preference``): ``pairs`` (``prompt``/``chosen``/``rejected``
    rows; by default notebook 07's human pairs from the training split), those longer than ``DPO_MAX_LENGTH``
    tokens left out (every response keeps its end token); ``pair`` is each row's index in ``pairs``. DPO's
    examples add the reference's log-probs (``dpo_pairs``); ORPO's are these."""
    _check_profile("encoded_pairs", profile)
    _checks.tokenizer("encoded_pairs", "tokenizer", tokenizer)
    if pairs is None:
        pairs = human_preference_pairs(load_corpus("train"), DPO_PAIRS[profile.name], seed=0)
    encoded = encode_preference_dataset(tokenizer, pairs, DPO_MAX_LENGTH + 1)  # a pair cut at the limit is too long
    return [dict(row, pair=i) for i, row in enumerate(encoded)
            if max(len(row["chosen_input_ids"]), len(row["rejected_input_ids"])) <= DPO_MAX_LENGTH]


_DPO_PAIRS = {}   # (profile, tokenizer size, reference weights) -> notebook 07's pairs with the reference's log-probs


def dpo_pairs(profile, tokenizer, reference, pairs=None):
    """Encoded preference pairs for DPO (``encoded_pairs``) with the reference's log-probs added
    (``dpo.add_reference_logprobs``); ``pair`` is each row's index in ``pairs``. Notebook 07's own pairs
    (``pairs=None``) are computed once per reference (its weights) in a session: DPO, IPO and their seeds share them."""
    _check_profile("dpo_pairs", profile)
    _checks.tokenizer("dpo_pairs", "tokenizer", tokenizer)
    _checks.model("dpo_pairs", "reference", reference)
    if pairs is not None:
        return add_reference_logprobs(reference, encoded_pairs(profile, tokenizer, pairs), tokenizer.pad_token_id)
    key = (profile.name, len(tokenizer), _digest(dict(reference.state_dict())))
    if key not in _DPO_PAIRS:
        _DPO_PAIRS[key] = add_reference_logprobs(reference, encoded_pairs(profile, tokenizer), tokenizer.pad_token_id)
    return [dict(row) for row in _DPO_PAIRS[key]]


DPO_RUN_LOSSES = {"sigmoid": "dpo", "ipo": "ipo"}   # loss type: run name (IPO: τ = DPO_BETA, summed log-ratios)


def dpo_recipe(profile, tokenizer, loss_type: str = "sigmoid", seed: int = 1):
    """Notebook 07's DPO run: its collate function, config and objective (``dpo_pairs`` gives its examples).
    ``loss_type="ipo"``: the same run with notebook 07's IPO loss (τ = ``DPO_BETA``, the paper's summed form).
    ``seed``: the training seed (1: notebook 07's run; k: the loop seeded k - 1, another order of the pairs)."""
    _check_profile("dpo_recipe", profile)
    _checks.tokenizer("dpo_recipe", "tokenizer", tokenizer)
    _checks.choice("dpo_recipe", "loss_type", loss_type, DPO_RUN_LOSSES)
    _check_seed("dpo_recipe", seed)
    steps = DPO_STEPS[profile.name]
    config = TrainConfig(steps=steps, batch_size=DPO_BATCH[profile.name], lr=DPO_LR[profile.name],
                         warmup_steps=max(1, steps // 10), log_every=5, seed=seed - 1,
                         desc=f"{DPO_RUN_LOSSES[loss_type].upper()} (human pairs)")
    return partial(collate_dpo, pad_token_id=tokenizer.pad_token_id), config, dpo_objective(loss_type, DPO_BETA)


def dpo_policy(profile, notebook: str, policy=None, tokenizer=None, loss_type: str = "sigmoid", seed: int = 1):
    """Notebook 07's DPO policy (trained from the SFT policy on human pairs), in eval mode, with its tokenizer;
    ``policy`` and ``tokenizer``: the SFT policy, if the notebook has it already (it is not changed).
    ``loss_type="ipo"``: the same recipe with the IPO loss (``dpo_recipe``), under ``runs/<notebook>-ipo-<profile>``
    (notebook 07 trains IPO only on its small set of pairs, so there is no earlier run to load).
    ``seed``: the training seed (``dpo_recipe``); seeds above 1 are trained under ``runs/<notebook>-dpo-seed<k>-...``."""
    _checks.choice("dpo_policy", "loss_type", loss_type, DPO_RUN_LOSSES)
    _check_seed("dpo_policy", seed)
    name = _seeded(DPO_RUN_LOSSES[loss_type], seed)
    run_dir(notebook, name, profile)
    policy, tokenizer = _sft_given("dpo_policy", profile, notebook, policy, tokenizer)
    model = without_dropout(copy.deepcopy(policy))
    examples = dpo_pairs(profile, tokenizer, model)
    collate, config, objective = dpo_recipe(profile, tokenizer, loss_type, seed)
    _, folder = _from_earlier_or_train(profile, model, objective, examples, collate, config,
                                       run_dir("07", name, profile) if seed == 1 else None,
                                       run_dir(notebook, name, profile))
    return _from_run(model.eval(), folder), tokenizer


# notebook 03's reward-ranked fine-tuning: rounds, prompts per instruction per round, samples per prompt
# (smoke: the first of notebook 03's two rounds, to fit notebook 09's smoke budget)
RAFT_ROUNDS = {"smoke": 1, "cpu": 3, "gpu": 3}
RAFT_PROMPTS = {"smoke": 8, "cpu": 32, "gpu": 32}
RAFT_SAMPLES = 8


def raft_recipe(profile, seed: int = 1):
    """Notebook 03's RAFT run: its prompts (every instruction ``RAFT_PROMPTS`` times, in ``DOMAINS`` order),
    loop config (one iteration per round) and the settings of ``raft.raft_step``. In the ``smoke`` profile only
    the first of notebook 03's two rounds. ``seed``: the training seed (1: notebook 03's; k: seeded k - 1)."""
    _check_profile("raft_recipe", profile)
    _check_seed("raft_recipe", seed)
    prompts = [format_prompt(INSTRUCTIONS[d]) for d in DOMAINS for _ in range(RAFT_PROMPTS[profile.name])]
    config = RLConfig(iterations=RAFT_ROUNDS[profile.name], prompts_per_iteration=len(prompts), seed=seed - 1,
                      checkpoint_every=1, desc="RAFT")
    settings = dict(samples_per_prompt=RAFT_SAMPLES, max_new_tokens=profile.max_new_tokens, lr=profile.lr,
                    max_length=SFT_MAX_LENGTH)
    return prompts, config, settings


def raft_policy(profile, notebook: str, policy=None, tokenizer=None, reward=None, history: bool = False,
                seed: int = 1):
    """Notebook 03's RAFT policy (its rounds, seeds and settings: ``raft_recipe``), in eval mode (with
    ``history=True``: the policy and one dict of metrics per round).

    ``policy``/``tokenizer``/``reward``: the SFT policy, its tokenizer and notebook 02's reward model, if the
    notebook has them already (all three, or none; none is changed). Notebook 03 runs its rounds in its own
    cells and saves nothing, so the run is trained (resumably, a checkpoint per round) under ``notebook``'s own
    run directory, and loaded from there when it is finished. ``seed``: the training seed (``raft_recipe``),
    seeds above 1 under ``runs/<notebook>-raft-seed<k>-<profile>``."""
    _check_seed("raft_policy", seed)
    name = _seeded("raft", seed)
    run_dir(notebook, name, profile)
    if not isinstance(history, bool):
        raise TypeError(f"raft_policy: history must be True or False, got {history!r}")
    policy, tokenizer, reward = _sft_and_reward("raft_policy", profile, notebook, policy, tokenizer, reward)
    trained = copy.deepcopy(policy)
    prompts, config, settings = raft_recipe(profile, seed)
    step = raft_step(trained, reward, tokenizer, prompts, **settings)
    run = _rl_from_earlier_or_own(profile, {"policy": trained}, step, prompts, config, {},
                                  {"reward_model": reward}, run_dir("03", "raft", profile) if seed == 1 else None,
                                  run_dir(notebook, name, profile))
    log = train_rl({"policy": trained}, step, prompts, run, frozen={"reward_model": reward})
    _from_run(trained.eval(), Path(run.checkpoint_dir))
    return (trained, log) if history else trained


# notebook 08's ORPO run: from the base model, in one stage, on notebook 07's human pairs (``encoded_pairs``)
ORPO_STEPS = {"smoke": 12, "cpu": 150, "gpu": 2000}
ORPO_BATCH = DPO_BATCH
ORPO_LR = {"smoke": 3e-4, "cpu": 3e-4, "gpu": 5e-5}
ORPO_LAMBDA = 0.5


def orpo_recipe(profile, tokenizer):
    """Notebook 08's ORPO run: its collate function, config and objective (``encoded_pairs`` gives its examples)."""
    _check_profile("orpo_recipe", profile)
    _checks.tokenizer("orpo_recipe", "tokenizer", tokenizer)
    steps = ORPO_STEPS[profile.name]
    config = TrainConfig(steps=steps, batch_size=ORPO_BATCH[profile.name], lr=ORPO_LR[profile.name],
                         warmup_steps=max(1, steps // 10), log_every=5, seed=0, desc="ORPO (human pairs)")
    return partial(collate_preference, pad_token_id=tokenizer.pad_token_id), config, orpo_objective(ORPO_LAMBDA)


def orpo_policy(profile, notebook: str, policy=None, tokenizer=None):
    """Notebook 08's ORPO policy (trained from the BASE model, no SFT stage, on human pairs), in eval mode, with
    its tokenizer; ``policy`` and ``tokenizer``: the base model and its tokenizer, if the notebook has them
    already (it is not changed; dropout is switched off in the trained copy, as TRL's ``ORPOTrainer`` does).
    Loaded from notebook 08's finished run when it matches, else trained under ``notebook``'s own run."""
    run_dir(notebook, "orpo", profile)
    if (policy is None) != (tokenizer is None):
        raise ValueError("orpo_policy: pass policy and tokenizer together (the base model and its tokenizer), "
                         "or neither")
    if policy is None:
        policy, tokenizer = load_policy(profile.model, profile.device)
    _checks.model("orpo_policy", "policy", policy)
    _checks.tokenizer("orpo_policy", "tokenizer", tokenizer)
    model = without_dropout(copy.deepcopy(policy))
    collate, config, objective = orpo_recipe(profile, tokenizer)
    _, folder = _from_earlier_or_train(profile, model, objective, encoded_pairs(profile, tokenizer), collate, config,
                                       run_dir("08", "orpo", profile), run_dir(notebook, "orpo", profile))
    return _from_run(model.eval(), folder), tokenizer


def policy_gradient_recipe(profile, method: str, seed: int = 1):
    """Notebook 04's REINFORCE run with the baseline ``method`` (``policy_gradient.ADVANTAGES``):
    its prompts, loop config and the settings of ``policy_gradient.reinforce_step``.
    ``seed``: the training seed (1: notebook 04's run; k: the loop seeded k - 1, other samples)."""
    _check_profile("policy_gradient_recipe", profile)
    _checks.choice("policy_gradient_recipe", "method", method, ADVANTAGES)
    _check_seed("policy_gradient_recipe", seed)
    prompts = [format_prompt(INSTRUCTIONS[d]) for d in DOMAINS]
    config = RLConfig(iterations=PG_ITERATIONS[profile.name], prompts_per_iteration=len(prompts), lr=PG_LR,
                      seed=seed - 1, checkpoint_every=5, desc=f"REINFORCE ({method.replace('_', ' ')})")
    settings = dict(method=method, group_size=PG_GROUP[profile.name], beta=PG_BETA, max_new_tokens=PG_MAX_NEW_TOKENS)
    return prompts, config, settings


def _rl_from_earlier_or_own(profile, models, step, prompts, config, state, frozen, earlier: Path, own: Path):
    """The config of the RL run to load or resume: ``earlier`` if finished and matching, else ``own`` (having said
    what it trains, unless ``own`` is finished already; ``earlier=None``: only ``own``, a seed of notebook 09)."""
    for folder in (earlier, own):
        run = replace(config, checkpoint_dir=str(folder))
        if folder is not None and finished_rl_run(models, step, prompts, run, dict(state), frozen):
            return run
    if earlier is not None:
        print(training_note(profile, earlier, f"{config.desc} ({config.iterations} iterations)",
                            earlier.name.split("-")[0]))
    return run


def _sft_and_reward(where: str, profile, notebook: str, policy, tokenizer, reward):
    given = [m is not None for m in (policy, tokenizer, reward)]
    if any(given) and not all(given):
        raise ValueError(f"{where}: pass policy, tokenizer and reward (the reward model) together, or none")
    if policy is None:
        policy, tokenizer = sft_policy(profile, notebook)
        reward, _ = reward_model(profile, notebook, policy, tokenizer)
    return policy, tokenizer, reward


def policy_gradient_policy(profile, notebook: str, method: str, policy=None, tokenizer=None, reward=None,
                           history: bool = False, seed: int = 1):
    """Notebook 04's policy trained with REINFORCE and the baseline ``method``, in eval mode
    (with ``history=True``: the policy and the run's history, one dict per iteration).

    ``policy``/``tokenizer``/``reward``: the SFT policy (the reference), its tokenizer and
    notebook 02's reward model, if the notebook has them already (all three, or none).
    Loaded from notebook 04's finished run when it matches, else trained under ``notebook``'s own run.
    ``seed``: the training seed (``policy_gradient_recipe``); seeds above 1 are trained under
    ``runs/<notebook>-<method>-seed<k>-<profile>``."""
    _checks.choice("policy_gradient_policy", "method", method, ADVANTAGES)
    _check_seed("policy_gradient_policy", seed)
    name = _seeded(method.replace("_", "-"), seed)
    run_dir(notebook, name, profile)
    if not isinstance(history, bool):
        raise TypeError(f"policy_gradient_policy: history must be True or False, got {history!r}")
    policy, tokenizer, reward = _sft_and_reward("policy_gradient_policy", profile, notebook, policy, tokenizer,
                                                reward)
    trained = copy.deepcopy(policy)
    prompts, config, settings = policy_gradient_recipe(profile, method, seed)
    step = reinforce_step(trained, policy, reward, tokenizer, **settings)
    state = {"baseline": 0.0} if method == "moving_average" else {}
    models, frozen = {"policy": trained}, {"reference": policy, "reward_model": reward}
    run = _rl_from_earlier_or_own(profile, models, step, prompts, config, state, frozen,
                                  run_dir("04", name, profile) if seed == 1 else None, run_dir(notebook, name, profile))
    log = train_rl(models, step, prompts, run, state, frozen)
    _from_run(trained.eval(), Path(run.checkpoint_dir))
    return (trained, log) if history else trained


# notebook 05's PPO run: the same instructions, samples per iteration, learning rate, initial β and response
# length as notebook 04's runs, so that both sample about as many tokens; several minibatch epochs per rollout
PPO_ITERATIONS = PG_ITERATIONS
PPO_SETTINGS = dict(kl_target=1.0, horizon=1000, gamma=1.0, lam=0.95, clip=0.2, value_clip=0.2, value_coef=0.1,
                    entropy_coef=0.0, epochs=2, minibatches=2, max_new_tokens=PG_MAX_NEW_TOKENS)


def ppo_recipe(profile, seed: int = 1):
    """Notebook 05's PPO run: its prompts, loop config, the settings of ``ppo.ppo_step`` and the initial
    state (the KL coefficient β, which the adaptive controller then moves). ``seed``: the training seed
    (1: notebook 05's run; k: the loop seeded k - 1)."""
    _check_profile("ppo_recipe", profile)
    _check_seed("ppo_recipe", seed)
    prompts = [format_prompt(INSTRUCTIONS[d]) for d in DOMAINS]
    config = RLConfig(iterations=PPO_ITERATIONS[profile.name], prompts_per_iteration=len(prompts), lr=PG_LR,
                      seed=seed - 1, checkpoint_every=5, desc="PPO")
    return prompts, config, dict(PPO_SETTINGS, samples_per_prompt=PG_GROUP[profile.name]), {"beta": PG_BETA}


def ppo_policy(profile, notebook: str, policy=None, tokenizer=None, reward=None, seed: int = 1):
    """Notebook 05's policy trained with PPO (and its value model), in eval mode: ``(policy, value_model)``.

    ``policy``/``tokenizer``/``reward``: the SFT policy (the reference), its tokenizer and notebook 02's
    reward model (the value model starts as its copy), if the notebook has them already (all three, or none).
    Loaded from notebook 05's finished run when it matches, else trained under ``notebook``'s own run.
    ``seed``: the training seed (``ppo_recipe``); seeds above 1 under ``runs/<notebook>-ppo-seed<k>-<profile>``."""
    _check_seed("ppo_policy", seed)
    name = _seeded("ppo", seed)
    run_dir(notebook, name, profile)
    policy, tokenizer, reward = _sft_and_reward("ppo_policy", profile, notebook, policy, tokenizer, reward)
    trained, critic = copy.deepcopy(policy), copy.deepcopy(reward)
    prompts, config, settings, state = ppo_recipe(profile, seed)
    step = ppo_step(trained, critic, policy, reward, tokenizer, **settings)
    models, frozen = {"policy": trained, "value": critic}, {"reference": policy, "reward_model": reward}
    run = _rl_from_earlier_or_own(profile, models, step, prompts, config, state, frozen,
                                  run_dir("05", "ppo", profile) if seed == 1 else None, run_dir(notebook, name, profile))
    train_rl(models, step, prompts, run, state, frozen)
    return _from_run(trained.eval(), Path(run.checkpoint_dir)), critic.eval()
