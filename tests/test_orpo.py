"""ORPO: log1mexp, the log-odds, the odds-ratio term and its gradient (the paper's eqs. 7-10), the loss and its
metrics, the training step, notebook 08's recipe, and agreement with TRL's ORPOTrainer on identical token ids (the
odds-ratio term and the log-probs inside it equal; the NLL term differs: TRL's runs over the prompt too); from
text, TRL's ids start with a BOS token that the course's do not."""

import copy
import math
from decimal import Decimal, localcontext
from functools import partial

import pytest
import torch

from course_utils.batching import collate_preference, encode_preference
from course_utils.data import format_prompt
from course_utils.dpo import add_reference_logprobs, collate_dpo
from course_utils.logprobs import sequence_logprobs
from course_utils.orpo import (log1mexp, log_odds, log_odds_ratio, odds_ratio_loss, orpo_loss, orpo_metrics,
                               orpo_objective, orpo_step)
from course_utils.training import TrainConfig, finished_run, train

PROMPT = format_prompt("Write a movie review.")
PAIRS = [(" The film was great fun.", " The plot was boring."),
         (" A great movie.", " The actors were awful and the film was boring today."),
         (" Boring.", " Fun fun fun, the movie was great."),
         (" The actors were great.", " Awful.")]

# mean per-token log-probabilities: P = 0.5, 0.2, 0.9 (chosen) and 0.25, 0.2, 0.95 (rejected)
CHOSEN = torch.log(torch.tensor([0.5, 0.2, 0.9], dtype=torch.float64))
REJECTED = torch.log(torch.tensor([0.25, 0.2, 0.95], dtype=torch.float64))


def odds(p):
    return p / (1 - p)


def test_log1mexp_is_log_of_one_minus_exp_and_stable():
    x = torch.cat([-torch.logspace(-12, 2, 141, dtype=torch.float64), torch.tensor([-math.log(2)])])
    with localcontext() as exact:
        exact.prec = 60  # the reference in 60 digits, where 1 - exp(x) loses nothing
        reference = torch.tensor([float((1 - Decimal(v).exp()).ln()) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(x), reference, rtol=1e-13, atol=0)
    # the naive formula loses everything at both ends; log1mexp keeps full relative precision
    tiny = torch.tensor([-1e-10], dtype=torch.float32)
    assert log1mexp(tiny).item() == pytest.approx(math.log(1e-10), rel=1e-6)
    assert torch.log(1 - torch.exp(tiny)).item() == float("-inf")  # 1 - exp(-1e-10) rounds to 0 in float32
    far = torch.tensor([-40.0], dtype=torch.float32)
    assert log1mexp(far).item() == pytest.approx(-math.exp(-40.0), rel=1e-6)
    assert log1mexp(torch.tensor([0.0])).item() == float("-inf")


def test_log1mexp_gradient_is_finite_on_both_branches():
    x = torch.tensor([-5.0, -0.7, -0.69, -1e-3], dtype=torch.float64, requires_grad=True)
    log1mexp(x).sum().backward()
    torch.testing.assert_close(x.grad, -torch.exp(x.detach()) / (1 - torch.exp(x.detach())))


def test_log_odds_by_hand():
    p = torch.tensor([0.5, 0.2, 0.9, 1e-3], dtype=torch.float64)
    torch.testing.assert_close(log_odds(torch.log(p)), torch.log(odds(p)))
    assert log_odds(torch.log(torch.tensor([0.5]))).item() == pytest.approx(0.0, abs=1e-7)  # even odds
    # at the tiny model's perplexity (P ~ 0.01) the odds are nearly the probability itself
    assert log_odds(torch.tensor([-4.5])).item() == pytest.approx(-4.5 + math.exp(-4.5), abs=1e-4)


def test_odds_ratio_loss_by_hand():
    pc, pr = CHOSEN.exp(), REJECTED.exp()
    ratio = torch.log(odds(pc) / odds(pr))
    torch.testing.assert_close(log_odds_ratio(CHOSEN, REJECTED), ratio)
    torch.testing.assert_close(odds_ratio_loss(CHOSEN, REJECTED), -torch.log(torch.sigmoid(ratio)))
    assert odds_ratio_loss(CHOSEN, REJECTED)[1].item() == pytest.approx(math.log(2))  # equal odds
    # swapping the pair flips the ratio's sign: L(w, l) - L(l, w) = -log odds ratio
    torch.testing.assert_close(odds_ratio_loss(CHOSEN, REJECTED) - odds_ratio_loss(REJECTED, CHOSEN), -ratio)
    # log σ of a huge ratio stays finite
    assert odds_ratio_loss(torch.tensor([-1e-6]), torch.tensor([-50.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert odds_ratio_loss(torch.tensor([-50.0]), torch.tensor([-1e-6])).item() == pytest.approx(50 + math.log(1e6),
                                                                                                 rel=1e-3)


def test_odds_ratio_gradient_is_the_papers():
    """Hong et al. 2024, eqs. 8-10: ∇L_OR = δ(d)·h(d), δ = σ(-log odds ratio), h = ∇log P_w/(1-P_w) - ∇log P_l/(1-P_l)."""
    chosen, rejected = CHOSEN.clone().requires_grad_(), REJECTED.clone().requires_grad_()
    odds_ratio_loss(chosen, rejected).sum().backward()
    delta = torch.sigmoid(-log_odds_ratio(CHOSEN, REJECTED))
    torch.testing.assert_close(chosen.grad, -delta / (1 - CHOSEN.exp()))
    torch.testing.assert_close(rejected.grad, delta / (1 - REJECTED.exp()))


def test_orpo_loss_is_nll_plus_lambda_times_the_odds_ratio_term():
    lam = 0.3
    torch.testing.assert_close(orpo_loss(CHOSEN, REJECTED, lam), -CHOSEN + lam * odds_ratio_loss(CHOSEN, REJECTED))
    torch.testing.assert_close(orpo_loss(CHOSEN, REJECTED, 0.0), -CHOSEN)  # λ = 0: SFT on the chosen response
    assert orpo_loss(CHOSEN, REJECTED).shape == (3,)


def test_orpo_metrics_by_hand():
    m = orpo_metrics(CHOSEN, REJECTED)
    ratio = log_odds_ratio(CHOSEN, REJECTED)
    assert m["nll"].item() == pytest.approx(-CHOSEN.mean().item())
    assert m["or_loss"].item() == pytest.approx(odds_ratio_loss(CHOSEN, REJECTED).mean().item())
    assert m["log_odds_ratio"].item() == pytest.approx(ratio.mean().item())
    assert m["log_odds/chosen"].item() - m["log_odds/rejected"].item() == pytest.approx(ratio.mean().item())
    assert m["logps/chosen"].item() == pytest.approx(CHOSEN.mean().item())
    assert m["logps/rejected"].item() == pytest.approx(REJECTED.mean().item())
    assert m["accuracy"].item() == pytest.approx(1 / 3)  # ratios +, 0, -: only the first pair ranked right


def test_the_functions_refuse_what_is_not_a_log_probability():
    with pytest.raises(ValueError, match="chosen_logps.*<= 0"):
        odds_ratio_loss(torch.tensor([0.5]), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match="rejected_logps"):
        orpo_loss(CHOSEN, REJECTED[:2])
    with pytest.raises(ValueError, match="lam"):
        orpo_loss(CHOSEN, REJECTED, -0.1)
    with pytest.raises(ValueError, match="x"):
        log1mexp(torch.tensor([0.1]))


# ---------------------------------------------------------------- on a model

def encoded(tokenizer):
    return [encode_preference(tokenizer, PROMPT, c, r, max_length=64) for c, r in PAIRS]


def test_orpo_step_by_hand(make_tiny_lm, course_tokenizer):
    model = make_tiny_lm(seed=2)
    batch = collate_preference(encoded(course_tokenizer), course_tokenizer.pad_token_id)
    with torch.no_grad():
        loss, metrics = orpo_step(model, batch, lam=0.4)
        sides = [sequence_logprobs(model, batch[f"{s}_input_ids"], batch[f"{s}_attention_mask"],
                                   batch[f"{s}_completion_mask"], average=True) for s in ("chosen", "rejected")]
    assert loss.item() == pytest.approx(orpo_loss(*sides, 0.4).mean().item(), abs=1e-6)
    assert metrics["logps/chosen"].item() == pytest.approx(sides[0].mean().item(), abs=1e-6)
    # a collate_dpo batch (reference log-probs beside the ids) gives the same: ORPO ignores the reference
    rows = add_reference_logprobs(make_tiny_lm(seed=9), encoded(course_tokenizer), course_tokenizer.pad_token_id)
    with torch.no_grad():
        same, _ = orpo_step(model, collate_dpo(rows, course_tokenizer.pad_token_id), lam=0.4)
    assert same.item() == pytest.approx(loss.item(), abs=1e-6)


def test_training_raises_the_chosen_odds_and_names_lambda(make_tiny_lm, course_tokenizer, tmp_path):
    model = make_tiny_lm(seed=3)
    rows = encoded(course_tokenizer)
    collate = partial(collate_preference, pad_token_id=course_tokenizer.pad_token_id)
    objective = orpo_objective(1.0)
    assert objective.__qualname__ == "orpo_step(lam=1.0)"
    config = TrainConfig(steps=20, batch_size=4, lr=3e-3, log_every=1, checkpoint_dir=str(tmp_path))
    start = copy.deepcopy(model)
    history = train(model, objective, rows, collate, config)
    first, last = history[0], history[-1]
    assert last["nll"] < first["nll"] - 1            # the SFT term falls
    assert last["or_loss"] < first["or_loss"]        # and the odds-ratio term
    assert last["log_odds/chosen"] > last["log_odds/rejected"] and last["accuracy"] == 1.0
    assert finished_run(start, orpo_objective(1.0), rows, collate, config)
    assert not finished_run(start, orpo_objective(0.1), rows, collate, config)


def test_notebook_08_recipe_and_pairs(make_tiny_lm, course_tokenizer):
    from course_utils.profiles import get_profile
    from course_utils.runs import DPO_MAX_LENGTH, ORPO_LAMBDA, dpo_pairs, encoded_pairs, orpo_recipe

    profile = get_profile("smoke")
    pairs = [{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS]
    pairs.insert(1, {"prompt": PROMPT, "chosen": " great" * 100, "rejected": " boring"})  # too long: left out
    rows = encoded_pairs(profile, course_tokenizer, pairs=pairs)
    assert [row["pair"] for row in rows] == [0, 2, 3, 4]
    assert all(len(row["chosen_input_ids"]) <= DPO_MAX_LENGTH and "ref_chosen_logps" not in row for row in rows)
    with_reference = dpo_pairs(profile, course_tokenizer, make_tiny_lm(), pairs=pairs)
    assert [{k: v for k, v in r.items() if not k.startswith("ref_")} for r in with_reference] == rows
    collate, config, objective = orpo_recipe(profile, course_tokenizer)
    assert objective.__qualname__ == f"orpo_step(lam={ORPO_LAMBDA!r})"
    assert set(collate(rows[:2])) == {f"{s}_{k}" for s in ("chosen", "rejected")
                                      for k in ("input_ids", "attention_mask", "completion_mask")}
    assert config.steps >= 1


# ---------------------------------------------------------------- against TRL's ORPOTrainer

def trl_features(rows):
    """Our token ids in the form TRL's ``tokenize_row`` gives (prompt + response, labels -100 on the prompt)."""
    out = []
    for row in rows:
        feature = {}
        start = row["chosen_completion_mask"].index(1)
        feature["prompt_input_ids"] = row["chosen_input_ids"][:start]
        feature["prompt_attention_mask"] = [1] * start
        for side in ("chosen", "rejected"):
            ids = row[f"{side}_input_ids"]
            feature[f"{side}_input_ids"] = ids
            feature[f"{side}_attention_mask"] = [1] * len(ids)
            feature[f"{side}_labels"] = [-100] * start + ids[start:]
        out.append(feature)
    return out


def trl_trainer(model, tokenizer, lam, tmp_path):
    """TRL's ORPOTrainer on the text of ``PAIRS`` (its ``train_dataset`` is TRL's own tokenisation of them)."""
    from datasets import Dataset
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    text = Dataset.from_list([{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in PAIRS])
    # bf16=False: TRL's default (True) runs under bf16 autocast, on the CPU too; no gradient checkpointing
    args = ORPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, beta=lam, max_length=64,
                      activation_checkpointing=False, per_device_train_batch_size=len(PAIRS))
    return ORPOTrainer(model=model, args=args, train_dataset=text, processing_class=tokenizer)


def trl_loss_and_metrics(model, rows, tokenizer, lam, tmp_path, features=None):
    """TRL's loss and logged metrics on ``rows`` (our token ids), or on TRL's own ``features``."""
    trainer = trl_trainer(model, tokenizer, lam, tmp_path)
    batch = trainer.data_collator(features or trl_features(rows))
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
    return loss.item(), {k: v[-1] for k, v in trainer._stored_metrics["train"].items()}


def test_odds_ratio_term_and_log_probs_equal_trl_orpo_trainer(make_tiny_lm, course_tokenizer, tmp_path):
    """The same model and token ids: TRL's mean per-token log-probs, its log odds ratio (``log_odds_chosen``),
    its mean log σ(·) (``log_odds_ratio``, minus our ``or_loss``) and its accuracy equal ours."""
    model, lam = make_tiny_lm(seed=4).train(), 0.25
    rows = encoded(course_tokenizer)
    trl_loss, trl = trl_loss_and_metrics(model, rows, course_tokenizer, lam, tmp_path)
    with torch.no_grad():
        loss, ours = orpo_step(model, collate_preference(rows, course_tokenizer.pad_token_id), lam)
    assert ours["logps/chosen"].item() == pytest.approx(trl["logps/chosen"], abs=1e-5)
    assert ours["logps/rejected"].item() == pytest.approx(trl["logps/rejected"], abs=1e-5)
    assert ours["log_odds_ratio"].item() == pytest.approx(trl["log_odds_chosen"], abs=1e-5)
    assert ours["or_loss"].item() == pytest.approx(-trl["log_odds_ratio"], abs=1e-5)
    assert ours["accuracy"].item() == pytest.approx(trl["rewards/accuracies"], abs=1e-6)
    assert trl["rewards/chosen"] == pytest.approx(lam * trl["logps/chosen"], abs=1e-6)
    assert 0 < ours["accuracy"].item() < 1 and abs(ours["log_odds_ratio"].item()) > 1e-3  # not a trivial match
    # the loss: TRL's NLL term plus the same λ·OR term
    assert trl_loss == pytest.approx(trl["nll_loss"] + lam * ours["or_loss"].item(), abs=1e-5)


def test_trl_orpo_nll_runs_over_prompt_and_response(make_tiny_lm, course_tokenizer, tmp_path):
    """What the pinned TRL's NLL term is: the token mean, over the batch, of every real token after the first
    (prompt and response), not the chosen responses' mean NLL that the paper writes and the course keeps."""
    model = make_tiny_lm(seed=4)
    rows = encoded(course_tokenizer)
    _, trl = trl_loss_and_metrics(model, rows, course_tokenizer, 0.25, tmp_path)
    batch = collate_preference(rows, course_tokenizer.pad_token_id)
    ids, attention = batch["chosen_input_ids"], batch["chosen_attention_mask"]
    everything = attention.clone()
    everything[:, 0] = 0  # the first token is predicted by nothing
    with torch.no_grad():
        total = sequence_logprobs(model, ids, attention, everything).sum()
        ours = orpo_metrics(*[sequence_logprobs(model, batch[f"{s}_input_ids"], batch[f"{s}_attention_mask"],
                                                batch[f"{s}_completion_mask"], average=True)
                              for s in ("chosen", "rejected")])
    assert trl["nll_loss"] == pytest.approx(-total.item() / everything.sum().item(), abs=1e-5)
    assert abs(trl["nll_loss"] - ours["nll"].item()) > 1e-3  # the course's response-only NLL differs
    # the course's: each chosen response's mean token NLL (response tokens only), averaged over pairs
    with torch.no_grad():
        per_pair = -sequence_logprobs(model, ids, attention, batch["chosen_completion_mask"], average=True)
    assert ours["nll"].item() == pytest.approx(per_pair.mean().item(), abs=1e-6)


def test_trl_orpo_from_text_prepends_bos(make_tiny_lm, course_tokenizer, tmp_path):
    """The parity above holds on identical token ids. From text, TRL's pipeline (trl 1.16, ``tokenize_row``)
    prepends the BOS token to the prompt, which the course's ``encode_preference`` does not: its ids are
    [BOS] + ours, and its log odds ratio is the course's on those ids, not on the course's own."""
    model, lam = make_tiny_lm(seed=4), 0.25
    rows = encoded(course_tokenizer)
    trainer = trl_trainer(model, course_tokenizer, lam, tmp_path)
    features = [trainer.train_dataset[i] for i in range(len(rows))]
    bos = course_tokenizer.bos_token_id
    assert bos is not None
    for row, feature in zip(rows, features):
        for side in ("chosen", "rejected"):
            assert feature[f"{side}_input_ids"] == [bos] + row[f"{side}_input_ids"]
    _, trl = trl_loss_and_metrics(model, rows, course_tokenizer, lam, tmp_path, features=features)

    def ours(rows):
        with torch.no_grad():
            return orpo_step(model, collate_preference(rows, course_tokenizer.pad_token_id), lam)[1]["log_odds_ratio"]

    with_bos = [{**row, **{f"{side}_{key}": [first] + row[f"{side}_{key}"]
                           for side in ("chosen", "rejected")
                           for key, first in (("input_ids", bos), ("completion_mask", 0))}}
                for row in rows]
    assert ours(with_bos).item() == pytest.approx(trl["log_odds_chosen"], abs=1e-5)
    assert abs(ours(rows).item() - trl["log_odds_chosen"]) > 1e-3   # the BOS token changes every log-prob after it
