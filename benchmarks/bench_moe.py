"""A random LLaDA-MoE against dense LLaDAs of equal total and of equal active size:
`python benchmarks/bench_moe.py [--backend torch|mlx|both] [--canvas 96] [--repeats 5]`, and
`--estimate` for the labelled M-series estimate of the real MoE in 8-bit.

The measurement is app.eval.bench.run_moe_comparison, the one `llada bench --random-moe` runs: three
random float32 checkpoints (the MoE with E experts, top-k, expert width I; a dense model whose MLP
width is E·I, the same total parameters; one whose MLP width is k·I, the same parameters touched
per token), each (backend, model) in a fresh process: one full-canvas forward pass (an NFE of
exact mode) timed after a warm-up, the median of --repeats, and the peak memory (MLX: its peak
allocation; both: the process's peak RSS, VmHWM on Linux).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
    sys.path.insert(0, str(ROOT))
    from app.eval.bench import run_moe_comparison

    sizes = {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
             "experts": args.experts, "top_k": args.top_k, "expert_width": args.expert_width}
    run_moe_comparison(None if args.backend == "both" else [args.backend], args.canvas,
                       args.repeats, sizes, args.json)

if __name__ == "__main__":
    main()
