"""`llada bench`: exact mode against fast mode and each of its parts, in one process."""

from __future__ import annotations

import argparse

from app.eval.bench import (
    BLOCK_VARIANTS, MOE_COMPARISON, REPORT_ANSWERS, VARIANTS, run, run_moe_comparison, run_report,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark exact and fast sampling",
        description="Run the same prompts through exact mode and fast mode (and each of its parts) "
                    "in one process; print seconds, NFE, tokens per NFE, ms per NFE, peak memory, "
                    "the speed-up over exact and agreement with exact.")
    parser.add_argument("--model", default=None,
                        help="model folder or repo id (default: a random ~40M-parameter model built here)")
    parser.add_argument("--backend", choices=["torch", "mlx"], default=None)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    parser.add_argument("--prompts", type=int, default=1, help="how many prompts")
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--gen-length", type=int, default=256)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None, help="default: the answer length")
    parser.add_argument("--variants", default=None,
                        help="comma-separated, from: " + ", ".join(VARIANTS) + " (default: all); "
                             "for LLaDA 2.x: " + ", ".join(BLOCK_VARIANTS))
    parser.add_argument("--random-d-model", type=int, default=None)
    parser.add_argument("--random-layers", type=int, default=None)
    parser.add_argument("--random-hidden", type=int, default=None)
    parser.add_argument("--random-heads", type=int, default=None)
    parser.add_argument("--random-rows", type=int, default=None,
                        help="embedding and head rows of the random model (LLaDA 8B: 126464)")
    parser.add_argument("--task", choices=["demo"], default=None,
                        help="prompts from the held-out demo tasks, and each variant's accuracy "
                             "(for a model that can answer them, such as the demo model)")
    parser.add_argument("--task-items", type=int, default=20, help="with --task: items per task")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the variants round-robin this many times and report medians")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", default=None, metavar="FILE",
                        help="run the fixed suite (exact and fast at answers "
                             f"{' and '.join(map(str, REPORT_ANSWERS))} on one chat prompt) on "
                             "--model or the default model, and write FILE.md and FILE.json "
                             "(machine, backend, versions, tokens/s, ms per NFE, tokens per pass, "
                             "peak memory)")
    moe = parser.add_argument_group(
        "LLaDA-MoE", "--random-moe: a random MoE against dense models of equal total and of equal "
        "active size (ms per NFE over prompt + answer tokens, peak memory), on --backend or on "
        "every installed backend; --random-d-model, --random-layers and --random-heads size all "
        f"three (default {MOE_COMPARISON['hidden']}, {MOE_COMPARISON['layers']}, "
        f"{MOE_COMPARISON['heads']})")
    moe.add_argument("--random-moe", action="store_true",
                     help="benchmark a random MoE against dense models of equal size")
    moe.add_argument("--moe-experts", type=int, default=MOE_COMPARISON["experts"])
    moe.add_argument("--moe-top-k", type=int, default=MOE_COMPARISON["top_k"])
    moe.add_argument("--moe-expert-width", type=int, default=MOE_COMPARISON["expert_width"])
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    if args.random_moe:
        if args.model:
            raise ValueError("--random-moe builds its own models; leave out --model")
        sizes = {key: value for key, value in {
            "hidden": args.random_d_model, "layers": args.random_layers,
            "heads": args.random_heads, "experts": args.moe_experts, "top_k": args.moe_top_k,
            "expert_width": args.moe_expert_width}.items() if value is not None}
        run_moe_comparison([args.backend] if args.backend else None,
                           args.prompt_length + args.gen_length, max(args.repeats, 1), sizes,
                           args.json)
        return 0
    if args.report:
        run_report(args.report, args.model, args.backend, args.dtype, args.repeats)
        return 0
    variants = [v.strip() for v in (args.variants or "").split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS and v not in BLOCK_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(VARIANTS)} (LLaDA 2.x: {', '.join(BLOCK_VARIANTS)})")
    overrides = {key: value for key, value in {
        "d_model": args.random_d_model, "n_layers": args.random_layers,
        "mlp_hidden_size": args.random_hidden, "n_heads": args.random_heads,
        "min_rows": args.random_rows,
    }.items() if value is not None}
    sampler = {"gen_length": args.gen_length, "block_length": args.block_length,
               "steps": args.steps or args.gen_length}
    run(args.model, args.backend, args.dtype, args.prompts, args.prompt_length, sampler, variants,
        overrides, args.json, args.repeats, args.task_items if args.task else 0)
    return 0
