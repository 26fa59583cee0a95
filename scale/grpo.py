"""GRPO (notebook 04's group-normalised baseline) with TRL's ``GRPOTrainer``: the course's four instructions,
a group of samples per prompt, rewarded by the course's judge (``course_utils.judge.Judge``) against the
requested domain, with notebook 04's KL coefficient, learning rate and response length.

    accelerate launch --config_file scale/configs/ddp.yaml scale/grpo.py --model runs/scale-sft

On GPUs, ``--vllm`` generates with vLLM inside each process (``pip install vllm``).
"""

from common import parser, positive, model_and_tokenizer, prompts_by_domain, train_and_record, trainer_options
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from course_utils.data import DOMAINS
from course_utils.judge import Judge
from course_utils.runs import PG_BETA, PG_GROUP, PG_ITERATIONS, PG_LR, PG_MAX_NEW_TOKENS


def judge_reward(judge: Judge):
    """TRL's reward-function signature: the judge's score of each completion, as a text of its prompt's domain."""
    def judge_score(prompts, completions, domain, **_):
        return judge.score(list(completions), list(domain))["score"].tolist()
    return judge_score


def main():
    group = PG_GROUP["cpu"]
    p = parser(__doc__, steps=PG_ITERATIONS["cpu"], batch_size=len(DOMAINS) * group, lr=PG_LR,
               examples=len(DOMAINS) * PG_ITERATIONS["cpu"])
    p.add_argument("--group", type=int, default=group, help="samples per prompt (GRPO's group)")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM (GPU only)")
    args = positive(p, p.parse_args())
    model, tokenizer = model_and_tokenizer(args)
    domains = [DOMAINS[i % len(DOMAINS)] for i in range(args.examples)]
    data = Dataset.from_dict({"prompt": prompts_by_domain(domains), "domain": domains})
    config = GRPOConfig(**trainer_options(args, "grpo"), num_generations=args.group, beta=PG_BETA,
                        max_completion_length=PG_MAX_NEW_TOKENS, temperature=1.0, loss_type="grpo",
                        scale_rewards="group", use_vllm=args.vllm, vllm_mode="colocate")
    trainer = GRPOTrainer(model=model, reward_funcs=judge_reward(Judge.load()), args=config, train_dataset=data,
                          processing_class=tokenizer)
    train_and_record(trainer, args)


if __name__ == "__main__":
    main()
