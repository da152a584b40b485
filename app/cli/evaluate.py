"""`llada eval`: score a model on held-out demo tasks (arithmetic, word lists, books)."""

from __future__ import annotations

import argparse
import json

from app.cli.options import add_model_options, add_sampler_options, check_sampler_settings, load_backend_model, sampler_kwargs
from app.evaluate import evaluate, format_scores, held_out_items
from llada_train.demo_tasks import TASKS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score a model on held-out demo tasks",
        description="Score a model on held-out generated items of the demo tasks "
                    f"({', '.join(TASKS)}) with any sampler settings.")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument("--items", type=int, default=50, help="held-out items per task")
    parser.add_argument("--json", action="store_true")
    add_model_options(parser)
    add_sampler_options(parser, gen_length=32, steps=32, block_length=32)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_sampler_settings(args)
    items = held_out_items([t.strip() for t in args.tasks.split(",") if t.strip()], args.items)
    _, backend, model, tokenizer = load_backend_model(args)
    scores = evaluate(backend, model, tokenizer, items, sampler_kwargs(args))
    if args.json:
        print(json.dumps({name: {"accuracy": s.accuracy, "correct": s.correct, "total": s.total,
                                 "nfe": s.nfe, "seconds": round(s.seconds, 3)}
                          for name, s in scores.items()}))
    else:
        print(format_scores(scores))
    return 0
