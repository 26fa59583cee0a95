"""SFT (notebook 01) with TRL's ``SFTTrainer``: the corpus's texts as completions of their domain's instruction,
the loss on the completion only (the prompt masked), lengths as in 01.

    accelerate launch --config_file scale/configs/ddp.yaml scale/sft.py --model gpt2
"""

from common import parser, positive, model_and_tokenizer, train_and_record, trainer_options
from trl import SFTConfig, SFTTrainer

from course_utils.data import load_corpus, sft_dataset
from course_utils.profiles import get_profile
from course_utils.runs import SFT_MAX_LENGTH

CPU = get_profile("cpu")


def main():
    p = parser(__doc__, steps=CPU.steps, batch_size=CPU.batch_size, lr=CPU.lr, examples=CPU.n_train)
    args = positive(p, p.parse_args())
    model, tokenizer = model_and_tokenizer(args)
    corpus = load_corpus("train").shuffle(seed=args.seed).select(range(args.examples))
    data = sft_dataset(corpus).select_columns(["prompt", "completion"])
    config = SFTConfig(**trainer_options(args, "sft"), max_length=SFT_MAX_LENGTH, completion_only_loss=True)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    train_and_record(trainer, args)


if __name__ == "__main__":
    main()
