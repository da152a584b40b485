"""The demo model's sampler defaults, chosen by measurement: `python benchmarks/bench_demo_sampler.py`.

Scores a demo checkpoint (default: the bundled one) on held-out items of each task with exact
mode and fast mode at several thresholds, all in one run, and prints a Markdown table: accuracy
per task, and visible answer tokens per forward pass over all items (what fast mode buys).
With --conversations N, also N conversations of --turns turns of the tasks interleaved
(app.eval.evaluate.evaluate_conversations: each prompt holds the earlier turns and the model's own
answers, as the window builds it): a column of the accuracy of their later turns.
Every setting uses the folder's answer length and block (sampler_defaults.json).

    python benchmarks/bench_demo_sampler.py [--model FOLDER] [--items 50] [--backend torch]
        [--conversations 20 --turns 6]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "exact": {"mode": "exact"},
    "exact, half the steps": {"mode": "exact", "steps_share": 0.5},
    "fast τ 0.9": {"mode": "fast", "threshold": 0.9},
    "fast τ 0.7": {"mode": "fast", "threshold": 0.7},
    "fast τ 0.5": {"mode": "fast", "threshold": 0.5},
}


def main() -> None:
    from app.session.model import load_model
    from app.eval.evaluate import (evaluate, evaluate_conversations, held_out_conversations,
                              held_out_items)
    from app.models.catalog import bundled_demo_model
    from app.models.defaults import sampler_defaults
    from llada_train.demo_tasks import TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(bundled_demo_model()))
    parser.add_argument("--items", type=int, default=50, help="held-out items per task")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--backend", default=None)
    parser.add_argument("--conversations", type=int, default=0,
                        help="also this many conversations of the tasks (a later-turns column)")
    parser.add_argument("--turns", type=int, default=6)
    args = parser.parse_args()

    loaded = load_model(args.model, args.backend, dtype="float32")
    defaults = sampler_defaults(args.model)
    base = {key: defaults[key] for key in ("gen_length", "block_length", "steps")}
    items = held_out_items(args.tasks.split(","), args.items)
    tasks = list(dict.fromkeys(item.task for item in items))
    conversations = (held_out_conversations(tasks, args.conversations, args.turns)
                     if args.conversations else [])
    later = [f"turns 2-{args.turns}"] if conversations else []
    print(f"{args.model}: answer {base['gen_length']}, block {base['block_length']}, "
          f"{len(items)} held-out items, {loaded.backend_name}\n")
    print("| setting | " + " | ".join(tasks + later) + " | tokens / pass |")
    print("|---" * (len(tasks) + len(later) + 2) + "|")
    for name, setting in SETTINGS.items():
        setting = dict(setting)
        steps = round(base["steps"] * setting.pop("steps_share", 1.0))
        scores = evaluate(loaded, items, {**base, "steps": steps, **setting})
        tokens = sum(s.tokens for s in scores.values())
        nfe = sum(s.nfe for s in scores.values())
        cells = [f"{scores[task].accuracy:.0%}" for task in tasks]
        if conversations:
            turns = evaluate_conversations(loaded, conversations, {**base, "steps": steps, **setting})
            right = sum(s.correct for name, s in turns.items() if "turns" in name)
            total = sum(s.total for name, s in turns.items() if "turns" in name)
            cells.append(f"{right / total:.0%}")
        print(f"| {name} | " + " | ".join(cells) + f" | {tokens / nfe:.2f} |", flush=True)


if __name__ == "__main__":
    main()
