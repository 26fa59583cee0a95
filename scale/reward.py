"""The reward model (notebook 02) with TRL's ``RewardTrainer``: the Bradley–Terry loss on human preference pairs,
the backbone from ``--model`` (the SFT model) with a new scalar head, lengths and learning rate as in 02.

    accelerate launch --config_file scale/configs/ddp.yaml scale/reward.py --model runs/scale-sft
"""

from common import parser, positive, model_and_tokenizer, train_and_record, trainer_options
from trl import RewardConfig, RewardTrainer

from course_utils.data import load_corpus
from course_utils.preferences import human_preference_pairs
from course_utils.reward_model import reward_model_from_policy
from course_utils.runs import RM_BATCH, RM_LR, RM_MAX_LENGTH, RM_STEPS


def main():
    steps = RM_STEPS["cpu"]
    p = parser(__doc__, steps=steps, batch_size=RM_BATCH, lr=RM_LR["cpu"],
               examples=steps * RM_BATCH * 5 // 4 + 64)  # as notebook 02: every pair seen once, after ties
    args = positive(p, p.parse_args())
    policy, tokenizer = model_and_tokenizer(args)
    model = reward_model_from_policy(policy, seed=args.seed)
    pairs = human_preference_pairs(load_corpus("train"), args.examples, seed=args.seed)
    pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
    config = RewardConfig(**trainer_options(args, "reward"), max_length=RM_MAX_LENGTH["cpu"])
    trainer = RewardTrainer(model=model, args=config, train_dataset=pairs, processing_class=tokenizer)
    train_and_record(trainer, args)


if __name__ == "__main__":
    main()
