"""`llada train OUT`: train (or resume) a small LLaDA on Bible text and instruction tasks."""

from __future__ import annotations

import argparse
import sys

from llada_train.config import TrainConfig

DEFAULTS = TrainConfig()


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a small LLaDA (the demo model)",
        description="Train a small LLaDA from scratch with LLaDA's objective: pre-training on the "
                    "King James Bible (Debian's bible-kjv) and SFT on generated tasks. Running it "
                    "again on the same folder resumes. Writes the official checkpoint layout.")
    parser.add_argument("out", help="checkpoint folder (created, or resumed)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--seq-len", type=int, default=DEFAULTS.seq_len,
                        help="pre-training chunk length and the longest SFT row")
    parser.add_argument("--answer-length", type=int, default=DEFAULTS.answer_length,
                        help="SFT answer region in tokens; also the folder's default answer "
                             "length, block and steps (sampler_defaults.json)")
    parser.add_argument("--block-length", type=int, default=DEFAULTS.block_length,
                        help="the folder's default block length; must divide --answer-length "
                             "(0 = one block, the whole answer)")
    parser.add_argument("--save-dtype", choices=["bfloat16", "float32"], default=DEFAULTS.save_dtype,
                        help="dtype of model.safetensors (training runs in float32 regardless)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr)
    parser.add_argument("--warmup", type=int, default=DEFAULTS.warmup)
    parser.add_argument("--pretrain-fraction", type=float, default=DEFAULTS.pretrain_fraction,
                        help="share of steps spent on pre-training text")
    parser.add_argument("--stop-weight", type=float, default=DEFAULTS.stop_weight,
                        help="SFT loss weight of the end of turn that ends each answer, so a small "
                             "model learns where long answers stop (1 = LLaDA's objective)")
    parser.add_argument("--suffix-share", type=float, default=DEFAULTS.suffix_share,
                        help="share of SFT rows whose answer is also masked from a random "
                             "position on, as generation unmasks it left to right, so long "
                             "answers learn where to end (0 = LLaDA's objective)")
    parser.add_argument("--multi-turn-share", type=float, default=DEFAULTS.multi_turn_share,
                        help="share of SFT rows that are the last turn of a conversation of the "
                             "tasks, every earlier turn (right answers) in its prompt as the "
                             "window and llada chat build it (0 = first turns only)")
    parser.add_argument("--max-turns", type=int, default=DEFAULTS.max_turns,
                        help="the most turns of those conversations (2 or more)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--save-every", type=int, default=DEFAULTS.save_every)
    parser.add_argument("--d-model", type=int, default=DEFAULTS.model["d_model"])
    parser.add_argument("--layers", type=int, default=DEFAULTS.model["n_layers"])
    parser.add_argument("--heads", type=int, default=DEFAULTS.model["n_heads"])
    parser.add_argument("--hidden", type=int, default=DEFAULTS.model["mlp_hidden_size"])
    parser.add_argument("--bpe-vocab", type=int, default=DEFAULTS.model["bpe_vocab"])
    parser.add_argument("--rope-theta", type=float, default=DEFAULTS.model["rope_theta"])
    parser.add_argument("--task-weights", type=task_weights, default=DEFAULTS.task_weights,
                        metavar="TASK=W,...",
                        help="SFT task mix (default: %(default)s)")
    parser.add_argument("--init-from", metavar="FOLDER", default=None,
                        help="start from this trained folder's weights and tokenizer (a second "
                             "stage, e.g. SFT after pre-training) instead of random weights")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop (and save) after this many steps of the --steps schedule")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.set_defaults(run=run)


def task_weights(text: str) -> dict[str, float]:
    """"add2=8,sort=1" -> {"add2": 8.0, "sort": 1.0}."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        task, _, weight = part.partition("=")
        try:
            weights[task.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not TASK=WEIGHT") from None
    if not weights:
        raise argparse.ArgumentTypeError("give at least one TASK=WEIGHT")
    return weights


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.session.backends import require

    require("torch", "llada train")

    from llada_train.trainer import train

    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
        answer_length=args.answer_length, block_length=args.block_length,
        save_dtype=args.save_dtype, lr=args.lr, warmup=args.warmup,
        pretrain_fraction=args.pretrain_fraction, stop_weight=args.stop_weight,
        suffix_share=args.suffix_share, multi_turn_share=args.multi_turn_share,
        max_turns=args.max_turns, seed=args.seed,
        save_every=args.save_every, threads=args.threads,
        model={"d_model": args.d_model, "n_layers": args.layers, "n_heads": args.heads,
               "mlp_hidden_size": args.hidden, "bpe_vocab": args.bpe_vocab,
               "rope_theta": args.rope_theta},
        task_weights=args.task_weights, init_from=args.init_from,
    )
    total = config.steps if args.stop_after is None else min(args.stop_after, config.steps)
    bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)

    def progress(step: int, loss: float, seconds: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.refresh()

    try:
        folder = train(args.out, config, progress, stop_after=args.stop_after)
    finally:
        bar.close()
    print(f"trained checkpoint in {folder} (loss log: {folder / 'train_log.jsonl'})")
    return 0
