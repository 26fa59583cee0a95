"""KTO (Ethayarajh et al. 2024) with TRL's ``KTOTrainer``: unpaired labels, one rater's thumbs up or down on one
text (``course_utils.kto.single_rater_labels``), β, lengths and optimiser as the course's DPO run.

    accelerate launch --config_file scale/configs/ddp.yaml scale/kto.py --model runs/scale-sft
"""

from common import parser, positive, model_and_tokenizer, train_and_record, trainer_options
from trl import KTOConfig, KTOTrainer

from course_utils.data import load_corpus
from course_utils.kto import single_rater_labels
from course_utils.runs import DPO_BATCH, DPO_BETA, DPO_LR, DPO_MAX_LENGTH, DPO_PAIRS, DPO_STEPS


def main():
    p = parser(__doc__, steps=DPO_STEPS["cpu"], batch_size=DPO_BATCH["cpu"], lr=DPO_LR["cpu"],
               examples=2 * DPO_PAIRS["cpu"])  # as many texts as DPO's pairs hold
    p.add_argument("--beta", type=float, default=DPO_BETA, help="KTO's β (larger: closer to the reference)")
    args = positive(p, p.parse_args())
    model, tokenizer = model_and_tokenizer(args)
    data = single_rater_labels(load_corpus("train"), args.examples, seed=args.seed)
    desirable = sum(data["label"])
    if desirable in (0, len(data)):
        p.error(f"--examples {args.examples} gave {desirable} desirable texts of {len(data)}: KTO needs both kinds")
    # the paper's advice: λ_D n_D / (λ_U n_U) in [1, 4/3]; here the two classes weigh the same in all
    config = KTOConfig(**trainer_options(args, "kto"), beta=args.beta, max_length=DPO_MAX_LENGTH,
                       desirable_weight=1.0, undesirable_weight=desirable / (len(data) - desirable))
    trainer = KTOTrainer(model=model, args=config, train_dataset=data.select_columns(["prompt", "completion", "label"]),
                         processing_class=tokenizer)
    train_and_record(trainer, args)


if __name__ == "__main__":
    main()
