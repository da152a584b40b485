"""The finished-block KV cache of LLaDA 2.x's block decoder against the reference's whole-prefix
forward, same answer: `python benchmarks/bench_llada2_cache.py [--model DIR] [--backend torch|mlx]
[--prompt-tokens N]`.

Each denoising step forwards only the current block against the cached keys and values of the
blocks before it (spec B7), where the reference (HF `generate`) forwards the whole canvas. The
saving grows with the prompt. Without `--model` it builds a small random LLaDA2.0 checkpoint
(llada_train.tiny_llada2, wider than the tests' so a forward is not all overhead): its ratio says
what the cache saves in work, the real 16B model's seconds need the real weights.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import numpy as np

    from app.session.model import load_model
    from llada_core import block_diffusion
    from llada_core.settings import SamplerSettings
    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a LLaDA 2.x folder (default: a small random one)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--prompt-tokens", type=int, default=768)
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=32)
    args = parser.parse_args()
    folder = args.model or make_tiny_llada2_checkpoint(
        Path(tempfile.mkdtemp()) / "llada2",
        TinyLLaDA2Spec(hidden_size=256, num_hidden_layers=4, intermediate_size=512,
                       moe_intermediate_size=128, head_dim=32, num_attention_heads=8,
                       num_key_value_heads=4))
    loaded = load_model(str(folder), args.backend, dtype="float32")
    module = __import__(f"llada_{loaded.backend_name}.llada2", fromlist=["BlockBackend"])
    model = loaded.model
    prompt = [int(t) for t in np.random.default_rng(0).integers(
        0, min(300, model.args.rows), args.prompt_tokens)]
    settings = SamplerSettings(gen_length=args.gen_length, block_length=args.block_length,
                               steps=args.gen_length, mode="exact", temperature=0.0,
                               threshold=0.95)
    results = {}
    for name, use in (("whole prefix (reference)", False), ("prefix cache", True)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            frames = list(block_diffusion.run(module.BlockBackend(model, 0.0, 0, prefix_cache=use),
                                              prompt, settings))
            best = min(best, time.perf_counter() - started)
        results[name] = (best, frames[-1].nfe, frames[-1].tokens)
        print(f"{name:<26} {best * 1000 / frames[-1].nfe:8.2f} ms/pass  {frames[-1].nfe} passes"
              f"  ({loaded.backend_name}, prompt {len(prompt)} tokens)")
    (slow, _, a), (fast, _, b) = results.values()
    print(f"speed-up {slow / fast:.2f}x, same answer: {bool((a == b).all())}")


if __name__ == "__main__":
    main()
