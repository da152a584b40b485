"""An ESTIMATE (not a measurement) of LLaDA-8B answer speed on Apple M-series chips, exact vs fast.

`python benchmarks/estimate_m_series.py [--config CONFIG.json] [--tokens-per-pass 3.25]`

Per forward pass (NFE) the time is at least the weights read once from memory (bytes / memory
bandwidth) and at least the arithmetic (2 FLOPs per weight per token fed, plus attention) at
the GPU's peak; the estimate takes the larger of the two, so it is a ceiling on tokens/s that
real runs (kernel efficiency well below peak) will not reach. Prompt 64 + answer 256, block 32:

- exact: 256 passes over the whole 320-token canvas, one token per pass;
- fast (dual cache, τ 0.9): per block one full pass, then passes over the block's 32 tokens
  only, `--tokens-per-pass` committed per pass (default 3.25: Fast-dLLM's published figure for
  LLaDA-8B at τ 0.9 on GSM8K); early stop left out.

The model's sizes come from config.json (default: LLaDA-8B-Instruct's published values);
bandwidths are Apple's published figures, GPU FP32 TFLOPS the commonly cited ones for the
largest GPU of each chip. Replace the estimate with `llada bench --report` numbers as they come.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# LLaDA-8B-Instruct's config.json (the fields used here).
LLADA_8B = {"d_model": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 32,
            "mlp_hidden_size": 12288, "embedding_size": 126464, "weight_tying": False}
# chip: (memory bandwidth GB/s, GPU FP32 TFLOPS)
CHIPS = {
    "M1": (68.25, 2.6), "M1 Pro": (200, 5.2), "M1 Max": (400, 10.4),
    "M2": (100, 3.6), "M2 Pro": (200, 6.8), "M2 Max": (400, 13.6),
    "M3": (100, 4.1), "M3 Pro": (150, 7.4), "M3 Max": (400, 16.4),
    "M4": (120, 4.3), "M4 Pro": (273, 9.2), "M4 Max": (546, 18.4),
}
BITS = {"8-bit": 8, "4-bit": 4}
GROUP = 64  # affine quantization group; one bf16 scale and one bias per group


def weights_read(config: dict, bits: int) -> tuple[float, float]:
    """(bytes read per pass, matmul weights per token): every Linear and the head are read in
    full each pass; the embedding only by the rows looked up (left out)."""
    d, hidden, rows = config["d_model"], config["mlp_hidden_size"], config["embedding_size"]
    kv = config["n_kv_heads"] * d // config["n_heads"]
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * hidden
    linear = config["n_layers"] * per_layer + rows * d  # + the head
    bytes_per_weight = bits / 8 + 2 * 2 / GROUP
    return linear * bytes_per_weight, linear


def seconds_per_pass(tokens: int, canvas: int, config: dict, bits: int, chip: tuple[float, float],
                     compute: bool = True) -> float:
    """Bandwidth bound (weights read once), and with `compute` the arithmetic bound too."""
    size, weights = weights_read(config, bits)
    attention = 4 * tokens * canvas * config["d_model"] * config["n_layers"]
    flops = 2 * weights * tokens + attention
    bandwidth, tflops = chip
    memory = size / (bandwidth * 1e9)
    return max(memory, flops / (tflops * 1e12)) if compute else memory


def answer_speed(config: dict, bits: int, chip: tuple[float, float], tokens_per_pass: float,
                 compute: bool = True, prompt: int = 64, answer: int = 256,
                 block: int = 32) -> tuple[float, float]:
    canvas = prompt + answer
    full = seconds_per_pass(canvas, canvas, config, bits, chip, compute)
    exact = answer * full
    passes_per_block = max(1.0, block / tokens_per_pass)
    fast = (answer // block) * (full + (passes_per_block - 1)
                                * seconds_per_pass(block, canvas, config, bits, chip, compute))
    return answer / exact, answer / fast


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="a LLaDA config.json (default: the 8B's)")
    parser.add_argument("--tokens-per-pass", type=float, default=3.25)
    args = parser.parse_args()
    config = dict(LLADA_8B)
    if args.config:
        config.update(json.loads(Path(args.config).read_text()))
    print(f"ESTIMATE, tokens/s for a 256-token answer (prompt 64, block 32); fast at "
          f"{args.tokens_per_pass:g} tokens per pass; bandwidth bound alone, then with the "
          "arithmetic bound")
    print("| chip | GB/s | TFLOPS | 8-bit exact | 8-bit fast | 4-bit exact | 4-bit fast "
          "| with arithmetic: exact | fast |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, chip in CHIPS.items():
        cells = []
        for bits in BITS.values():
            exact, fast = answer_speed(config, bits, chip, args.tokens_per_pass, compute=False)
            cells += [f"{exact:.1f}", f"{fast:.1f}"]
        exact, fast = answer_speed(config, BITS["8-bit"], chip, args.tokens_per_pass)
        cells += [f"{exact:.2f}", f"{fast:.1f}"]
        print(f"| {name} | {chip[0]:g} | {chip[1]:g} | " + " | ".join(cells) + " |")
    for label, bits in BITS.items():
        size, _ = weights_read(config, bits)
        print(f"{label}: {size / 1e9:.2f} GB of weights read per pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
