"""A random LLaDA-MoE against dense LLaDAs of equal total and of equal active size:
`python benchmarks/bench_moe.py [--backend torch|mlx|both] [--canvas 96] [--repeats 5]`.

Three random float32 checkpoints built here (llada_train.tiny_moe / tiny): the MoE (E experts,
top-k, expert width I), a dense model whose MLP width is E·I (the same total parameters) and one
whose MLP width is k·I (the same parameters touched per token). Each (backend, model) runs in a
fresh process: one full-canvas forward pass (an NFE of exact mode) timed after a warm-up, the
median of --repeats, and the peak memory (MLX: its peak allocation; both: the process's peak
RSS, VmHWM on Linux). Ratios are against the dense model of equal total size, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_RUN = r"""
import json, statistics, sys, time
import numpy as np
backend, path, canvas, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def peak_rss():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024

if backend == "torch":
    import torch
    from llada_torch import load
    model, _ = load(path, device="cpu", dtype="float32")
    ids = torch.randint(0, 200, (1, canvas))
    def forward():
        with torch.inference_mode():
            model(ids)
    peak = lambda: None
else:
    import mlx.core as mx
    from llada_mlx import load
    model, _ = load(path, dtype="float32")
    ids = mx.array(np.random.default_rng(0).integers(0, 200, (1, canvas)))
    def forward():
        mx.eval(model.model(ids))
    mx.reset_peak_memory()
    peak = mx.get_peak_memory
forward()
times = []
for _ in range(repeats):
    started = time.perf_counter()
    forward()
    times.append(time.perf_counter() - started)
print(json.dumps({"ms_per_nfe": 1000 * statistics.median(times), "peak_backend": peak(),
                  "peak_rss": peak_rss()}))
"""


def build(root: Path, args) -> dict[str, tuple[Path, int]]:
    from llada_train.tiny import TinySpec, make_tiny_checkpoint
    from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint

    d, layers, heads = args.hidden, args.layers, args.heads
    E, k, inner = args.experts, args.top_k, args.expert_width
    moe = make_tiny_moe_checkpoint(root / "moe", TinyMoESpec(
        hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, num_experts=E,
        num_experts_per_tok=k, expert_intermediate_size=inner, shards=1))
    total = make_tiny_checkpoint(root / "dense_total", TinySpec(
        d_model=d, n_layers=layers, n_heads=heads, mlp_hidden_size=E * inner, shards=1))
    active = make_tiny_checkpoint(root / "dense_active", TinySpec(
        d_model=d, n_layers=layers, n_heads=heads, mlp_hidden_size=k * inner, shards=1))
    attention = 4 * d * d
    return {
        f"MoE {E} experts top-{k}": (moe, layers * (attention + 3 * d * inner * E + d * E)),
        f"dense, equal total (MLP {E * inner})": (total, layers * (attention + 3 * d * inner * E)),
        f"dense, equal active (MLP {k * inner})": (active, layers * (attention + 3 * d * inner * k)),
    }


# LLaDA-MoE-7B-A1B's published sizes (spec §2; the vocabulary is unverified) for --estimate.
REAL_MOE = {"hidden_size": 2048, "num_hidden_layers": 16, "num_experts": 64,
            "num_experts_per_tok": 8, "expert_intermediate_size": 1024, "vocab_size": 157184}
GROUP = 64  # affine groups: one bf16 scale and one bias each


def estimate(config: dict = REAL_MOE, bits: int = 8, prompt: int = 64, answer: int = 256,
             block: int = 32, tokens_per_pass: float = 3.25) -> dict[str, dict[str, float]]:
    """An ESTIMATE of answer tokens/s on M-series chips (bandwidth and FP32 peak from
    benchmarks/estimate_m_series.py), not a measurement. Per pass the time is the larger of the
    weights read once (attention, routers, head, and the experts the pass's tokens touch: per
    layer E·(1 − (1 − k/E)^tokens) of them in expectation) over the memory bandwidth, and the
    arithmetic (2 FLOPs per active weight per token, plus attention) at the GPU's peak."""
    from estimate_m_series import CHIPS

    d, layers = config["hidden_size"], config["num_hidden_layers"]
    E, k, inner, rows = (config["num_experts"], config["num_experts_per_tok"],
                         config["expert_intermediate_size"], config["vocab_size"])
    per_byte = bits / 8 + 2 * 2 / GROUP
    dense = layers * (4 * d * d + E * d) + rows * d  # attention, routers (float: small), head
    expert = 3 * d * inner
    canvas = prompt + answer

    def seconds(tokens: int, chip: tuple[float, float]) -> float:
        touched = E * (1 - (1 - k / E) ** tokens)
        size = (dense + layers * touched * expert) * per_byte
        flops = 2 * (dense + layers * k * expert) * tokens + 4 * tokens * canvas * d * layers
        bandwidth, tflops = chip
        return max(size / (bandwidth * 1e9), flops / (tflops * 1e12))

    blocks = answer // block
    block_passes = max(0.0, block / tokens_per_pass - 1)
    out = {}
    for name, chip in CHIPS.items():
        exact = answer * seconds(canvas, chip)
        fast = blocks * (seconds(canvas, chip) + block_passes * seconds(block, chip))
        out[name] = {"exact": answer / exact, "fast": answer / fast,
                     "ms_per_block_pass": 1000 * seconds(block, chip)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["torch", "mlx", "both"], default="both")
    parser.add_argument("--canvas", type=int, default=96, help="tokens per forward pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--experts", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--expert-width", type=int, default=512)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--estimate", action="store_true",
                        help="print the M-series ESTIMATE for the real MoE in 8-bit and stop")
    args = parser.parse_args()
    if args.estimate:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print("ESTIMATE, not a measurement: LLaDA-MoE-7B-A1B 8-bit, prompt 64 + answer 256, "
              "block 32; fast = dual cache at 3.25 tokens per pass")
        print(f"{'chip':8} {'exact tok/s':>12} {'fast tok/s':>11} {'ms per block pass':>18}")
        for chip, row in estimate().items():
            print(f"{chip:8} {row['exact']:>12.1f} {row['fast']:>11.1f} "
                  f"{row['ms_per_block_pass']:>18.1f}")
        return
    backends = ["torch", "mlx"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        models = build(Path(tmp), args)
        for backend in backends:
            for name, (path, layer_parameters) in models.items():
                run = subprocess.run([sys.executable, "-c", ONE_RUN, backend, str(path),
                                      str(args.canvas), str(args.repeats)],
                                     capture_output=True, text=True, cwd=ROOT)
                if run.returncode:
                    print(f"{backend} {name}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(run.stdout.strip().splitlines()[-1])
                row.update(backend=backend, model=name, layer_parameters=layer_parameters)
                results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"canvas {args.canvas} tokens, hidden {args.hidden}, {args.layers} layers, "
          f"median of {args.repeats}, float32 on the CPU")
    print(f"{'backend':7} {'model':34} {'parameters':>13} {'ms/NFE':>8} {'vs total':>9} "
          f"{'MLX peak MB':>12} {'peak RSS MB':>12}")
    for backend in backends:
        rows = [r for r in results if r["backend"] == backend]
        base = next((r["ms_per_nfe"] for r in rows if "equal total" in r["model"]), None)
        for r in rows:
            ratio = f"{r['ms_per_nfe'] / base:.2f}x" if base else "-"
            mlx_peak = f"{r['peak_backend'] / 2**20:.0f}" if r["peak_backend"] else "-"
            print(f"{backend:7} {r['model']:34} {r['layer_parameters'] / 1e6:>11.1f} M "
                  f"{r['ms_per_nfe']:>8.1f} {ratio:>9} {mlx_peak:>12} {r['peak_rss'] / 2**20:>12.0f}")


if __name__ == "__main__":
    main()
