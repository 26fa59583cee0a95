"""The RL loop: a run interrupted mid-training resumes from its last checkpoint and ends where
an uninterrupted run with the same seed ends; a finished run is loaded; another run's
checkpoint is refused."""

from dataclasses import replace

import pytest
import torch

from course_utils.data import format_prompt
from course_utils.generation import response_logprobs, rollout
from course_utils.policy_gradient import advantages, reinforce_loss, update_baseline
from course_utils.rl import RLConfig, clip_and_step, iteration_seed, train_rl

PROMPTS = [format_prompt(f"Write a {w}.") for w in ["movie", "tweet", "film", "plot", "city", "product"]]


class Interrupt(Exception):
    pass


def make_step(policy, tokenizer, stop_at=None):
    """REINFORCE with a moving-average baseline; the reward: how many times "great" was sampled."""
    calls = []

    def step(prompts, optimizer, state, seed):
        if stop_at is not None and len(calls) == stop_at:
            raise KeyboardInterrupt  # as if Ctrl-C, or the machine went down, in the middle of the run
        calls.append(seed)
        out = rollout(policy, tokenizer, prompts * 2, max_new_tokens=6, seed=seed)
        great = tokenizer.convert_tokens_to_ids("great")
        reward = ((out.responses == great) & out.response_mask.bool()).sum(-1).float() + 0.1 * torch.randn(len(out.responses))
        adv = advantages(reward, "moving_average", baseline=state["baseline"])
        loss = reinforce_loss(response_logprobs(policy, out), adv, out.response_mask)
        loss.backward()
        clip_and_step(optimizer, policy.parameters(), 1.0)
        state["baseline"] = update_baseline(state["baseline"], reward)
        return {"reward": reward.mean(), "loss": loss}
    return step


def run(make_tiny_lm, tokenizer, config, stop_at=None):
    policy = make_tiny_lm(seed=0)
    state = {"baseline": 0.0}
    step = make_step(policy, tokenizer, stop_at)
    step.__qualname__ = "reinforce_step"   # the same objective for every run of this test
    return policy, train_rl({"policy": policy}, step, PROMPTS, config, state=state), state


def test_an_interrupted_run_resumes_and_ends_where_an_uninterrupted_one_ends(make_tiny_lm, course_tokenizer,
                                                                              tmp_path, capsys):
    config = RLConfig(iterations=5, prompts_per_iteration=3, lr=1e-2, seed=7, checkpoint_every=2)
    reference, ref_history, ref_state = run(make_tiny_lm, course_tokenizer, config)

    resumable = replace(config, checkpoint_dir=str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt):
        run(make_tiny_lm, course_tokenizer, resumable, stop_at=3)   # checkpoint after 2; dies during the 4th
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    resumed, history, state = run(make_tiny_lm, course_tokenizer, resumable)   # a fresh process: fresh models
    assert "Resuming" in capsys.readouterr().out
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert history == ref_history and state == ref_state
    assert [h["iteration"] for h in history] == list(range(5))
    assert ref_history[-1]["baseline"] != 0.0

    loaded, again, _ = run(make_tiny_lm, course_tokenizer, resumable)
    assert "Loaded the finished run" in capsys.readouterr().out and again == history
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), resumed.state_dict().values()))


def test_another_runs_checkpoint_is_refused(make_tiny_lm, course_tokenizer, tmp_path):
    config = RLConfig(iterations=2, prompts_per_iteration=3, lr=1e-2, checkpoint_dir=str(tmp_path / "run"))
    run(make_tiny_lm, course_tokenizer, config)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"another run: config\.lr"):
        run(make_tiny_lm, course_tokenizer, replace(config, lr=1e-3))
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before


def test_each_iteration_gets_its_own_seed_and_the_history_records_metrics_and_state(make_tiny_lm, course_tokenizer):
    config = RLConfig(iterations=3, prompts_per_iteration=2, seed=1)
    seeds = []

    def step(prompts, optimizer, state, seed):
        seeds.append(seed)
        state["beta"] = state["beta"] * 2
        return {"n": len(prompts)}
    history = train_rl({"policy": make_tiny_lm()}, step, PROMPTS, config, state={"beta": 0.5})
    assert seeds == [iteration_seed(config, k) for k in range(3)] and len(set(seeds)) == 3
    assert history == [{"iteration": k, "n": 2.0, "beta": 0.5 * 2 ** (k + 1)} for k in range(3)]


def test_ppo_recipe_samples_what_rloo_samples():
    """Notebook 05 compares PPO with notebook 04's RLOO at one sampling budget: the same instructions,
    iterations, samples per instruction, response length, learning rate and initial β."""
    from course_utils.profiles import get_profile
    from course_utils.runs import policy_gradient_recipe, ppo_recipe
    for name in ("smoke", "cpu"):
        prompts, config, settings, state = ppo_recipe(get_profile(name))
        pg_prompts, pg_config, pg_settings = policy_gradient_recipe(get_profile(name), "leave_one_out")
        assert prompts == pg_prompts and config.iterations == pg_config.iterations and config.lr == pg_config.lr
        assert settings["samples_per_prompt"] == pg_settings["group_size"]
        assert settings["max_new_tokens"] == pg_settings["max_new_tokens"] and state == {"beta": pg_settings["beta"]}
        assert settings["epochs"] * settings["minibatches"] > 1      # several updates per rollout
