"""SimPO (Meng et al. 2024): the loss on hand-made cases, its length normalisation and margin, the step, and
agreement with TRL 1.16's implementation (``CPOTrainer`` with ``loss_type="simpo"``) on the same batch."""

import math
import warnings

import pytest
import torch

from course_utils.batching import IGNORE_INDEX, collate_preference, encode_preference
from course_utils.data import format_prompt
from course_utils.dpo import dpo_loss
from course_utils.logprobs import sequence_logprobs
from course_utils.simpo import simpo_loss, simpo_objective, simpo_step

PROMPT = format_prompt("Write a movie review.")
PAIRS = [(" The film was great fun.", " The plot was boring."),
         (" A great movie.", " The actors were awful and the film was boring today."),
         (" Boring.", " Fun fun fun, the movie was great."),
         (" The actors were great.", " Awful.")]


def test_simpo_loss_by_hand():
    chosen, rejected = torch.tensor([-10.0, -6.0, -3.0]), torch.tensor([-12.0, -4.0, -9.0])
    n_chosen, n_rejected = torch.tensor([5.0, 2.0, 3.0]), torch.tensor([4.0, 4.0, 3.0])
    beta, gamma = 2.0, 0.5
    expected = [math.log(1 + math.exp(-(beta * c / a - beta * r / b - gamma)))
                for c, r, a, b in zip(chosen.tolist(), rejected.tolist(), n_chosen.tolist(), n_rejected.tolist())]
    assert simpo_loss(chosen, rejected, n_chosen, n_rejected, beta, gamma).tolist() == pytest.approx(expected)


def test_simpo_is_length_normalised_and_the_margin_shifts_it():
    # the same average log-prob per token: a tie, whatever the lengths (summed, DPO-like, would favour the short one)
    chosen, rejected = torch.tensor([-20.0]), torch.tensor([-5.0])
    n_chosen, n_rejected = torch.tensor([20]), torch.tensor([5])
    assert simpo_loss(chosen, rejected, n_chosen, n_rejected, 2.0, 0.0).item() == pytest.approx(math.log(2))
    # γ demands a win by γ: a tie now costs -log σ(-γ)
    assert simpo_loss(chosen, rejected, n_chosen, n_rejected, 2.0, 1.5).item() == pytest.approx(
        math.log(1 + math.exp(1.5)))
    # one-token responses and γ = 0: DPO's loss with a reference of log-prob 0
    zero = torch.zeros(3)
    c, r = torch.tensor([-1.0, -3.0, -2.0]), torch.tensor([-2.0, -1.0, -2.0])
    torch.testing.assert_close(simpo_loss(c, r, torch.ones(3), torch.ones(3), 0.7, 0.0),
                               dpo_loss(c, r, zero, zero, beta=0.7))
    # huge margins stay finite
    assert simpo_loss(torch.tensor([0.0]), torch.tensor([-1e4]), torch.ones(1), torch.ones(1)).item() == 0.0


def batch(tokenizer):
    rows = [encode_preference(tokenizer, PROMPT, c, r, 64) for c, r in PAIRS]
    return collate_preference(rows, tokenizer.pad_token_id)


def test_simpo_step_uses_the_mean_log_prob_per_response_token(course_tokenizer, make_tiny_lm):
    policy, b = make_tiny_lm(seed=3), batch(course_tokenizer)
    with torch.no_grad():
        loss, metrics = simpo_step(policy, b, beta=2.5, gamma=1.0)
        mean = {side: sequence_logprobs(policy, b[f"{side}_input_ids"], b[f"{side}_attention_mask"],
                                        b[f"{side}_completion_mask"], average=True) for side in ("chosen", "rejected")}
    expected = -torch.nn.functional.logsigmoid(2.5 * (mean["chosen"] - mean["rejected"]) - 1.0).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert metrics["logps/chosen"].item() == pytest.approx(mean["chosen"].mean().item(), abs=1e-6)
    assert metrics["rewards/margins"].item() == pytest.approx(2.5 * (mean["chosen"] - mean["rejected"]).mean().item(),
                                                              abs=1e-5)
    assert simpo_objective(2.5, 1.0).__qualname__ == "simpo_step(beta=2.5, gamma=1.0)"


def test_simpo_step_trains(course_tokenizer, make_tiny_lm):
    from course_utils.batching import encode_preference_dataset
    from course_utils.training import TrainConfig, train

    rows = encode_preference_dataset(course_tokenizer, [{"prompt": PROMPT, "chosen": c, "rejected": r}
                                                        for c, r in PAIRS], 64)
    policy = make_tiny_lm(seed=1)
    history = train(policy, simpo_objective(2.0, 0.5), rows, lambda r: collate_preference(r, course_tokenizer.pad_token_id),
                    TrainConfig(steps=12, batch_size=4, lr=3e-3, log_every=1))
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["rewards/margins"] > history[0]["rewards/margins"]


def trl_loss(policy, b, tokenizer, tmp_path, cpo_alpha, beta, gamma):
    """TRL's CPOTrainer (loss_type="simpo") on the very token ids of ``b``: the labels are the ids with -100 on
    the prompt and the padding, as its tokenize_row makes them."""
    from datasets import Dataset
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    args = CPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, loss_type="simpo",
                     cpo_alpha=cpo_alpha, beta=beta, simpo_gamma=gamma, max_length=None)
    text = Dataset.from_list([{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = CPOTrainer(model=policy, args=args, train_dataset=text, processing_class=tokenizer)
    inputs = {}
    for side in ("chosen", "rejected"):
        ids = b[f"{side}_input_ids"]
        inputs[f"{side}_input_ids"] = ids
        inputs[f"{side}_attention_mask"] = b[f"{side}_attention_mask"]
        inputs[f"{side}_labels"] = ids.masked_fill(b[f"{side}_completion_mask"] == 0, IGNORE_INDEX)
    with torch.no_grad():
        return trainer.compute_loss(policy, inputs).item()


def test_simpo_step_equals_trl_cpo_trainer_simpo(course_tokenizer, make_tiny_lm, tmp_path):
    """With cpo_alpha=0 TRL's SimPO is the paper's loss and equals the course's to 1e-5. Its default cpo_alpha=1
    adds CPO's behaviour-cloning term: exactly the mean NLL per chosen response token of the batch."""
    policy, b = make_tiny_lm(seed=4).train(), batch(course_tokenizer)
    beta, gamma = 2.0, 0.8
    with torch.no_grad():
        ours = simpo_step(policy, b, beta, gamma)[0].item()
        chosen = sequence_logprobs(policy, b["chosen_input_ids"], b["chosen_attention_mask"],
                                   b["chosen_completion_mask"])
    nll = -(chosen.sum() / b["chosen_completion_mask"][:, 1:].sum()).item()
    assert trl_loss(policy, b, course_tokenizer, tmp_path, 0.0, beta, gamma) == pytest.approx(ours, abs=1e-5)
    assert trl_loss(policy, b, course_tokenizer, tmp_path, 1.0, beta, gamma) == pytest.approx(ours + nll, abs=1e-5)
    assert nll > 1.0   # the two TRL settings differ by a visible amount
