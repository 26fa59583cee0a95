"""PPO-ptx (Ouyang et al. 2022, eq. 2): the pretraining term ``ptx_loss`` against Hugging Face's causal-LM loss
and a hand case; ``ppo_step`` with ``ptx_coef=0`` is plain PPO (the same name, so the same checkpoints, and the
same updates), with ``ptx_coef > 0`` it pulls the pretraining NLL down; and the misuse of both."""

import copy

import pytest
import torch

from course_utils.ppo import ppo_step, ptx_loss
from course_utils.pretrain import heldout_loss, pack
from course_utils.reward_model import reward_model_from_policy
from course_utils.rl import RLConfig, train_rl

PROMPTS = ["Instruction: Write a movie.\nResponse:", "Instruction: Write a tweet.\nResponse:"]
TEXTS = [f"The {a} was {b}." for a in ("movie", "tweet", "book", "film") for b in ("good", "bad", "long")]


def test_ptx_loss_is_the_causal_lm_loss(make_tiny_lm, course_tokenizer):
    """The mean NLL of every token after the first, as transformers computes it with labels = input_ids."""
    model = make_tiny_lm(3)
    blocks = pack(TEXTS, course_tokenizer, block=12)
    with torch.no_grad():
        out = model(input_ids=blocks, labels=blocks)
        assert ptx_loss(out.logits, blocks).item() == pytest.approx(out.loss.item(), abs=1e-6)
        assert ptx_loss(out.logits, blocks).item() == pytest.approx(heldout_loss(model, blocks), abs=1e-5)


def test_ptx_loss_by_hand():
    """Uniform logits over V tokens: log V per token; a token given all the mass: 0 for it."""
    assert ptx_loss(torch.zeros(2, 4, 7), torch.randint(7, (2, 4))).item() == pytest.approx(torch.log(torch.tensor(7.)).item())
    logits = torch.full((1, 2, 3), -1e4)
    logits[0, 0, 2] = 0.0                                      # position 0 predicts token 2 with certainty
    logits[0, 1] = 0.0                                         # the last position predicts nothing in the loss
    assert ptx_loss(logits, torch.tensor([[1, 2]])).item() == pytest.approx(0.0, abs=1e-6)
    # the gradient flows to the logits that predict, not to the last position's
    logits = torch.zeros(1, 3, 4, requires_grad=True)
    ptx_loss(logits, torch.tensor([[0, 1, 2]])).backward()
    assert logits.grad[0, :2].abs().sum() > 0 and logits.grad[0, 2].abs().sum() == 0


def one_iteration(make_tiny_lm, course_tokenizer, **ptx):
    """One PPO iteration on tiny random models (the same start every call): the trained policy and its history."""
    policy = make_tiny_lm(0)
    reference, reward = copy.deepcopy(policy), reward_model_from_policy(make_tiny_lm(1))
    critic = copy.deepcopy(reward)
    step = ppo_step(policy, critic, reference, reward, course_tokenizer, samples_per_prompt=4, epochs=2,
                    minibatches=2, max_new_tokens=6, **ptx)
    history = train_rl({"policy": policy, "value": critic}, step, PROMPTS, RLConfig(2, 2, lr=3e-3),
                       state={"beta": 0.1})
    return policy, history, step


def test_ptx_coef_0_is_plain_ppo(make_tiny_lm, course_tokenizer):
    """The default and an explicit 0 give the same step name (the run's fingerprint) and the same weights."""
    plain, plain_history, plain_step = one_iteration(make_tiny_lm, course_tokenizer)
    zero, zero_history, zero_step = one_iteration(make_tiny_lm, course_tokenizer, ptx_coef=0.0)
    assert zero_step.__qualname__ == plain_step.__qualname__ and "ptx" not in plain_step.__qualname__
    assert zero_history == plain_history and "ptx_loss" not in plain_history[0]
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), zero.parameters()))


def test_ptx_pulls_the_pretraining_nll_down(make_tiny_lm, course_tokenizer):
    """Same rollouts' seeds and start: with γ > 0 the policy ends with a lower NLL on the pretraining blocks
    than plain PPO, and the step's name and metrics record the mix."""
    blocks = pack(TEXTS, course_tokenizer, block=12)
    plain, _, _ = one_iteration(make_tiny_lm, course_tokenizer)
    mixed, history, step = one_iteration(make_tiny_lm, course_tokenizer, ptx_coef=1.0, ptx_blocks=blocks,
                                         ptx_batch_size=4)
    start = heldout_loss(make_tiny_lm(0), blocks)
    assert heldout_loss(mixed, blocks) < min(start, heldout_loss(plain, blocks)) - 0.01
    assert f"ptx_coef=1.0, ptx_blocks={list(blocks.shape)}, ptx_batch_size=4" in step.__qualname__
    assert all(h["ptx_loss"] > 0 for h in history)


# ---------------------------------------------------------------- misuse

def test_ptx_loss_misuse():
    ids = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"ptx_loss: expected logits \[B, T, V\] and input_ids \[B, T\]"):
        ptx_loss(torch.zeros(1, 4, 5), ids)
    with pytest.raises(ValueError, match="ptx_loss: input_ids must hold at least 2 tokens"):
        ptx_loss(torch.zeros(1, 1, 5), ids[:, :1])
    with pytest.raises(ValueError, match=r"ptx_loss: input_ids must be token ids in \[0, 5\)"):
        ptx_loss(torch.zeros(1, 3, 5), torch.tensor([[0, 1, 5]]))
    with pytest.raises(ValueError, match=r"ptx_loss: logits\[0\]\[1\]\[2\] is nan"):
        logits = torch.zeros(1, 3, 5)
        logits[0, 1, 2] = float("nan")
        ptx_loss(logits, ids)
    with pytest.raises((TypeError, ValueError), match="ptx_loss: input_ids"):
        ptx_loss(torch.zeros(1, 3, 5), ids.float())
    with pytest.raises((TypeError, ValueError), match="ptx_loss: logits"):
        ptx_loss(torch.zeros(1, 3, 5, dtype=torch.long), ids)


@pytest.mark.parametrize("ptx, error, message", [
    (dict(ptx_coef=-0.1), ValueError, "ppo_step: ptx_coef"),
    (dict(ptx_coef=float("nan")), ValueError, "ppo_step: ptx_coef"),
    (dict(ptx_coef=0.5), ValueError, "ptx_coef > 0 needs ptx_blocks"),
    (dict(ptx_blocks="BLOCKS"), ValueError, "ptx_blocks given but ptx_coef is 0"),
    (dict(ptx_coef=0.5, ptx_blocks="BLOCKS", ptx_batch_size=0), ValueError, "ppo_step: ptx_batch_size"),
    (dict(ptx_coef=0.5, ptx_blocks=torch.zeros(2, 8)), (TypeError, ValueError), "ppo_step: ptx_blocks"),
    (dict(ptx_coef=0.5, ptx_blocks=torch.zeros(8, dtype=torch.long)), (TypeError, ValueError), "ppo_step: ptx_blocks"),
    (dict(ptx_coef=0.5, ptx_blocks=torch.zeros(0, 8, dtype=torch.long)), ValueError, "at least one block"),
    (dict(ptx_coef=0.5, ptx_blocks=torch.full((2, 8), 10_000)), ValueError, "ppo_step: ptx_blocks holds token id"),
    (dict(ptx_coef=0.5, ptx_blocks=torch.zeros(2, 65, dtype=torch.long)), ValueError, "exceed the model's context"),
])
def test_ppo_step_ptx_misuse(make_tiny_lm, course_tokenizer, ptx, error, message):
    if isinstance(ptx.get("ptx_blocks"), str):
        ptx = dict(ptx, ptx_blocks=pack(TEXTS, course_tokenizer, block=12))
    policy = make_tiny_lm(0)
    reward = reward_model_from_policy(make_tiny_lm(1))
    with pytest.raises(error, match=message):
        ppo_step(policy, copy.deepcopy(reward), copy.deepcopy(policy), reward, course_tokenizer, **ptx)
