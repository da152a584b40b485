"""`llada eval`: score a model on held-out demo tasks (arithmetic, word lists, books; counting,
spelling and verses for a model with a 64-token answer), or on
lm-evaluation-harness tasks with `--lm-eval TASKS` (app/eval/lm_eval_llada.py)."""

from __future__ import annotations

import argparse
import json
import math

from app.cli.options import add_model_options, add_sampler_options, check_sampler_settings, load_model, sampler_kwargs
from app.eval.evaluate import (evaluate, evaluate_conversations, format_scores, held_out_conversations,
                          held_out_items)
from llada_train.demo_tasks import TASKS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score a model on held-out demo tasks",
        description="Score a model on held-out generated items of the demo tasks "
                    f"({', '.join(TASKS)}) with any sampler settings.")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument("--items", type=int, default=50, help="held-out items per task")
    parser.add_argument("--conversations", type=int, default=0, metavar="N",
                        help="also N conversations of the tasks interleaved, held-out items, each "
                             "turn's prompt holding the earlier turns and the model's own answers "
                             "as the window builds it; scored per task, turn 1 apart from later "
                             "turns")
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation (default 6)")
    parser.add_argument("--json", action="store_true")
    harness = parser.add_argument_group(
        "lm-evaluation-harness", "with --lm-eval, the harness's tasks instead of the demo tasks: "
        "log-likelihood tasks use LLaDA's Monte Carlo estimate, generation tasks the sampler flags")
    harness.add_argument("--lm-eval", metavar="TASKS", default=None,
                         help="comma-separated lm_eval task names (needs the eval extra)")
    harness.add_argument("--include-path", metavar="DIR", default=None,
                         help="a folder of your own task YAML files")
    harness.add_argument("--num-fewshot", type=int, default=None)
    harness.add_argument("--limit", type=float, default=None,
                         help="items per task (a fraction below 1)")
    harness.add_argument("--mc-num", type=int, default=128,
                         help="Monte Carlo samples per log-likelihood (default 128)")
    harness.add_argument("--mc-batch", type=int, default=16,
                         help="samples per forward pass; must divide --mc-num (default 16)")
    harness.add_argument("--check-greedy", action="store_true",
                         help="also check whether greedy decoding gives each continuation")
    harness.add_argument("--add-bos", action="store_true",
                         help="put BOS before each context (the reference adds none)")
    harness.add_argument("--apply-chat-template", action="store_true",
                         help="wrap each prompt in the model's chat template (Instruct models)")
    harness.add_argument("--log-samples", action="store_true",
                         help="keep every item's prompt and answer in the results file")
    harness.add_argument("--output", default="lm_eval_results.json",
                         help="where to write the harness's results (default lm_eval_results.json)")
    add_model_options(parser)
    add_sampler_options(parser, gen_length=32, steps=32, block_length=32)
    parser.set_defaults(run=run)


def check_counts(args: argparse.Namespace) -> None:
    """Item counts that would run nothing, or everything, are refused."""
    if args.items < 1:
        raise ValueError(f"--items must be at least 1, not {args.items}")
    limit = args.limit
    if limit is not None and (not math.isfinite(limit) or limit <= 0
                              or (limit >= 1 and not float(limit).is_integer())):
        raise ValueError(f"--limit must be a fraction between 0 and 1 or a whole number of items "
                         f"(1 or more), not {limit:g}")
    if args.num_fewshot is not None and args.num_fewshot < 0:
        raise ValueError(f"--num-fewshot must be 0 or more, not {args.num_fewshot}")
    for name in ("mc_num", "mc_batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")


def run(args: argparse.Namespace) -> int:
    check_counts(args)
    check_sampler_settings(args)
    if args.lm_eval is not None:
        return run_lm_eval(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    items = held_out_items(tasks, args.items)
    if args.conversations < 0 or args.turns < 1:
        raise ValueError("--conversations must be 0 or more and --turns 1 or more")
    conversations = (held_out_conversations(tasks, args.conversations, args.turns)
                     if args.conversations else [])
    loaded = load_model(args)
    scores = evaluate(loaded, items, sampler_kwargs(args)) if args.items else {}
    if conversations:
        scores.update(evaluate_conversations(loaded, conversations, sampler_kwargs(args)))
    if args.json:
        print(json.dumps({name: {"accuracy": s.accuracy, "correct": s.correct, "total": s.total,
                                 "nfe": s.nfe, "tokens": s.tokens,
                                 "seconds": round(s.seconds, 3)}
                          for name, s in scores.items()}))
    else:
        print(format_scores(scores))
    return 0


def run_lm_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.session.backends import BackendUnavailable, default_backend

    tasks = [t.strip() for t in args.lm_eval.split(",") if t.strip()]
    if not tasks:
        raise ValueError("--lm-eval needs at least one task name")
    if args.mc_batch < 1 or args.mc_num < args.mc_batch or args.mc_num % args.mc_batch:
        raise ValueError(f"--mc-num {args.mc_num} must be a positive multiple of --mc-batch {args.mc_batch}")
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
        from lm_eval.utils import handle_non_serializable, make_table
    except ImportError as error:
        raise BackendUnavailable(
            f"llada eval --lm-eval needs {error.name or 'lm_eval'}, which is not installed "
            '(pip install "llada-desktop[eval]")') from error
    from app.eval.lm_eval_llada import LLaDAHarnessModel

    settings = sampler_kwargs(args)
    cfg = settings.pop("cfg_scale")
    model = LLaDAHarnessModel(
        model=str(args.model), backend=args.backend or default_backend(), dtype=args.dtype,
        device=args.device, mc_num=args.mc_num, mc_batch=args.mc_batch, cfg=cfg,
        check_greedy=args.check_greedy, add_bos=args.add_bos,
        **{key: value for key, value in settings.items() if value is not None or key == "threshold"})
    manager = TaskManager(include_path=args.include_path) if args.include_path else TaskManager()
    results = lm_eval.simple_evaluate(
        model=model, tasks=tasks, num_fewshot=args.num_fewshot, limit=args.limit,
        task_manager=manager, apply_chat_template=args.apply_chat_template,
        log_samples=args.log_samples, random_seed=1234,
        numpy_random_seed=1234, torch_random_seed=1234, fewshot_random_seed=1234)
    if results is None:
        return 1
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=handle_non_serializable,
                                 ensure_ascii=False), encoding="utf-8")
    if args.json:
        print(json.dumps(results["results"], default=handle_non_serializable))
    else:
        print(make_table(results))
        print(f"results: {output}")
    return 0
