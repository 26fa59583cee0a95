"""DPO (notebook 07) with TRL's ``DPOTrainer``: human preference pairs from the corpus, β and lengths as in 07.

    accelerate launch --config_file scale/configs/ddp.yaml scale/dpo.py --model runs/scale-sft
"""

from common import parser, positive, model_and_tokenizer, train_and_record, trainer_options
from trl import DPOConfig, DPOTrainer

from course_utils.data import load_corpus
from course_utils.preferences import human_preference_pairs
from course_utils.runs import DPO_BATCH, DPO_BETA, DPO_LR, DPO_MAX_LENGTH, DPO_PAIRS, DPO_STEPS


def main():
    p = parser(__doc__, steps=DPO_STEPS["cpu"], batch_size=DPO_BATCH["cpu"], lr=DPO_LR["cpu"],
               examples=DPO_PAIRS["cpu"])
    p.add_argument("--beta", type=float, default=DPO_BETA, help="DPO's β (larger: closer to the reference)")
    args = positive(p, p.parse_args())
    model, tokenizer = model_and_tokenizer(args)
    pairs = human_preference_pairs(load_corpus("train"), args.examples, seed=args.seed)
    pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
    config = DPOConfig(**trainer_options(args, "dpo"), beta=args.beta, loss_type=["sigmoid"],
                       max_length=DPO_MAX_LENGTH)
    trainer = DPOTrainer(model=model, args=config, train_dataset=pairs, processing_class=tokenizer)
    train_and_record(trainer, args)


if __name__ == "__main__":
    main()
