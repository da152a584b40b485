"""Exact mode with LLaDA's real 126,464-row vocabulary, before/after a code change, in one run.

`python benchmarks/bench_exact_rows.py --before DIR [--backend torch|mlx]`

DIR is another copy of this project (for instance `git archive COMMIT | tar -x -C DIR`). The
script builds one random LLaDA checkpoint with the real vocabulary (126,464 embedding and head
rows) and small dims (llada_train.tiny, sized by the flags), then runs each measured setting in a
FRESH process per code tree, alternating before/after for --repeats rounds, and prints medians
and the after/before ratios:

- ms per step: the median step time of exact mode (the first step, which pays for lazy set-up,
  is left out), at the answer length given (default 512, prompt 64, block 32);
- peak memory of the sampler: PyTorch on the CPU, the process's peak resident set (VmHWM) minus
  its resident set after loading; MLX, mx.get_peak_memory() reset after loading.

Only the first --measure-steps steps run: the memory peak is reached in the first step and
every step of exact mode does the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_ROWS = 126464  # LLaDA-8B's embedding_size; the checkpoint's config.json carries it


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(backend_name: str, folder: str, settings: dict, steps: int) -> dict:
    if backend_name == "torch":
        import torch

        import llada_torch as backend

        torch.set_num_threads(1)
    else:
        import mlx.core as mx

        import llada_mlx as backend
    model, tokenizer = backend.load(folder)
    prompt = [(7 * i) % 200 + 10 for i in range(settings.pop("prompt_length"))]
    loaded = rss("VmRSS")
    if backend_name == "mlx":
        mx.reset_peak_memory()
    times = []
    last = time.perf_counter()
    frames = backend.generate_steps(model, prompt, **settings)
    for frame in frames:
        now = time.perf_counter()
        times.append(now - last)
        last = now
        if frame.index + 1 >= steps:
            break
    frames.close()
    report = {"ms_per_step": 1000 * statistics.median(times[1:] or times),
              "rss_growth_mb": (rss("VmHWM") - loaded) / 2**20, "rows": model.args.rows}
    if backend_name == "mlx":
        report["mlx_peak_mb"] = mx.get_peak_memory() / 2**20
    return report


def run_child(tree: Path, backend: str, folder: Path, settings: dict, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", LLADA_THREADS="1")
    command = [sys.executable, str(Path(__file__).resolve()), "--child",
               json.dumps([backend, str(folder), settings, steps])]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree)
    if result.returncode != 0:
        raise SystemExit(f"child failed in {tree}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="the other project tree (required)")
    parser.add_argument("--backend", choices=["torch", "mlx"], default="torch")
    parser.add_argument("--gen-length", type=int, default=512)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--measure-steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--workdir", default=None, help="keep the checkpoint here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, folder, settings, steps = json.loads(args.child)
        print(json.dumps(child(backend, folder, settings, steps)))
        return 0
    if not args.before:
        parser.error("--before DIR is required")

    sys.path.insert(0, str(ROOT))
    from llada_train.tiny import TinySpec, make_tiny_checkpoint

    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="llada-rows-"))
    folder = scratch / "model"
    if not (folder / "config.json").is_file():
        make_tiny_checkpoint(folder, TinySpec(d_model=args.d_model, n_layers=args.layers,
                                              n_heads=args.heads, mlp_hidden_size=args.hidden,
                                              min_rows=REAL_ROWS, shards=1, seed=3))
    config = json.loads((folder / "config.json").read_text())
    settings = {"gen_length": args.gen_length, "block_length": args.block_length,
                "steps": args.gen_length, "prompt_length": args.prompt_length,
                "temperature": args.temperature, "seed": 0, "mode": "exact"}
    trees = {"before": Path(args.before).resolve(), "after": ROOT}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            runs[name].append(run_child(tree, args.backend, folder, dict(settings),
                                        args.measure_steps))
    print(f"backend {args.backend} | random LLaDA, d_model {config['d_model']}, "
          f"{config['n_layers']} layers, {config['embedding_size']} rows | exact, prompt "
          f"{args.prompt_length}, answer {args.gen_length}, block {args.block_length}, "
          f"temperature {args.temperature:g} | medians of {args.repeats} fresh processes each")
    keys = ["ms_per_step", "rss_growth_mb"] + (["mlx_peak_mb"] if args.backend == "mlx" else [])
    medians = {name: {k: statistics.median(r[k] for r in runs[name]) for k in keys}
               for name in trees}
    print(f"{'':<8}" + "".join(f"{k:>16}" for k in keys))
    for name in trees:
        print(f"{name:<8}" + "".join(f"{medians[name][k]:>16.1f}" for k in keys))
    print(f"{'ratio':<8}" + "".join(
        f"{medians['after'][k] / medians['before'][k] if medians['before'][k] else float('nan'):>15.3f}x"
        for k in keys))
    print(json.dumps({"settings": settings, "config_rows": config["embedding_size"],
                      "medians": medians, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
