"""Peak memory of `llada convert` and of loading, MLX backend: `python benchmarks/bench_mlx_memory.py`.

Builds a random LLaDA checkpoint of more than 1 GB in the official layout, in bfloat16 as the 8B
is stored (llada_train.tiny, sized by the flags), then runs each measured step in a FRESH
process: converting it to 8-bit and to 4-bit, and loading the bf16, the 8-bit and the 4-bit
checkpoints with llada_mlx.load. Each process reports MLX's peak (mx.get_peak_memory) and the
process's peak resident set (VmHWM on Linux, ru_maxrss elsewhere). Printed against the size of
the checkpoint the step reads, with the ratios measured in this run and the 8B extrapolated by
them (16.0 GB bf16, 8-bit about 8.5 GB, 4-bit about 4.6 GB).

The conversion writes shards scaled like the model: 5 GiB (mlx-lm's size) times this checkpoint's
share of the 8B, so the 8B's two 8-bit shards become two shards here too and the ratio carries
over. `--workdir DIR --keep` keeps the checkpoints for another run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The 8B as published: bf16 checkpoint, and the sizes of the 8- and 4-bit conversions.
EIGHT_B = {"bf16": 16.0e9, "8bit": 8.5e9, "4bit": 4.6e9}
MLX_LM_SHARD = 5 * 2**30


# --- measured in a fresh process -------------------------------------------------------------

def peak_rss() -> int:
    """The process's peak resident set in bytes (this process's own memory map on Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def child(step: str, params: list[str]) -> dict:
    import mlx.core as mx

    started = time.perf_counter()
    if step == "make":
        from llada_train.tiny import TinySpec, make_tiny_checkpoint

        out, d_model, layers, heads, hidden, rows = params
        spec = TinySpec(d_model=int(d_model), n_layers=int(layers), n_heads=int(heads),
                        mlp_hidden_size=int(hidden), min_rows=int(rows), dtype="bfloat16",
                        shards=4, seed=1)
        make_tiny_checkpoint(out, spec)
    elif step == "convert":
        from llada_mlx import convert

        source, out, bits, shard_bytes = params
        convert(source, out, bits=int(bits), shard_bytes=int(shard_bytes))
    elif step == "load":
        from llada_mlx import load

        model, _ = load(params[0])
    elif step == "baseline":
        import llada_mlx  # noqa: F401  (what every load pays besides the weights)
        from llada_core.chat import load_tokenizer

        load_tokenizer(Path(params[0]))
    else:
        raise SystemExit(f"unknown step {step}")
    return {"mlx_peak": mx.get_peak_memory(), "rss_peak": peak_rss(),
            "seconds": time.perf_counter() - started}


def run_child(step: str, *params: object) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, __file__, "--child", step, *map(str, params)],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{step} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the table -------------------------------------------------------------------------------

def weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def gb(n: float) -> str:
    return f"{n / 1e9:6.2f} GB"


def print_table(rows: list[tuple[str, str, int, dict]], fixed: int) -> None:
    print(f"{'step':<18}{'reads':>10}{'MLX peak':>11}{'ratio':>7}{'peak RSS':>11}{'ratio':>7}"
          f"{'8B: MLX':>11}{'8B: RSS':>11}{'s':>6}")
    for label, kind, size, m in rows:
        mlx_ratio, rss_ratio = m["mlx_peak"] / size, (m["rss_peak"] - fixed) / size
        print(f"{label:<18}{gb(size):>10}{gb(m['mlx_peak']):>11}{mlx_ratio:7.2f}"
              f"{gb(m['rss_peak']):>11}{rss_ratio:7.2f}"
              f"{gb(mlx_ratio * EIGHT_B[kind]):>11}{gb(fixed + rss_ratio * EIGHT_B[kind]):>11}"
              f"{m['seconds']:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--d-model", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=6144, help="MLP hidden size (3 x d, as the 8B)")
    parser.add_argument("--rows", type=int, default=32768, help="embedding and head rows")
    parser.add_argument("--workdir", type=Path, help="where the checkpoints go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_mlx_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return measure(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, args: argparse.Namespace) -> int:
    source = work / "bf16"
    if not (source / "config.json").is_file():
        print(f"building the random bf16 checkpoint in {source} ...", flush=True)
        run_child("make", source, args.d_model, args.layers, args.heads, args.hidden, args.rows)
    size = weights_bytes(source)
    config = json.loads((source / "config.json").read_text())
    print(f"checkpoint: d_model {config['d_model']}, {config['n_layers']} layers, MLP "
          f"{config['mlp_hidden_size']}, {config['embedding_size']} rows: {gb(size).strip()} bf16 "
          f"({size / EIGHT_B['bf16']:.3f} of the 8B)")
    shard_bytes = int(MLX_LM_SHARD * size / EIGHT_B["bf16"])
    print(f"output shards: at most {shard_bytes / 2**20:.0f} MiB (5 GiB scaled like the model)\n")

    rows = []
    for bits in (8, 4):
        out = work / f"{bits}bit"
        shutil.rmtree(out, ignore_errors=True)
        measured = run_child("convert", source, out, bits, shard_bytes)
        rows.append((f"convert to {bits}-bit", "bf16", size, measured))
    rows.append(("load bf16", "bf16", size, run_child("load", source)))
    for bits in (8, 4):
        out = work / f"{bits}bit"
        rows.append((f"load {bits}-bit", f"{bits}bit", weights_bytes(out), run_child("load", out)))
    fixed = run_child("baseline", source)["rss_peak"]
    print_table(rows, fixed)
    print(f"\nMLX ratio = MLX peak / size of the checkpoint the step reads; RSS ratio = (peak RSS - "
          f"{gb(fixed).strip()}) / size, where {gb(fixed).strip()} is the peak RSS of Python, MLX and "
          "the tokenizer alone.\n8B = ratio x 16.0 GB (bf16 source), 8.5 GB (8-bit), 4.6 GB (4-bit); "
          "the RSS column adds the fixed part back.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
