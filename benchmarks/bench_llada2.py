"""LLaDA2.0 threshold decoding against LLaDA2.1 editing, tokens per forward pass and tokens/s:
`python benchmarks/bench_llada2.py [--model2 DIR --model21 DIR] [--backend torch|mlx]`.

Without models it builds the tiny random checkpoints of the tests (llada_train.tiny_llada2), whose
numbers say what the decoders do with a model that knows nothing, not how fast the real 16B
models are: those figures need the real weights (the authors report about 2.6 tokens per pass
for LLaDA2.0-mini and 5.3 for LLaDA2.1-mini in S mode). Every answer goes through the session
layer (app.session.answer.run_to_end), as the app's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ["In the beginning", "And the earth was without form", "Let there be light",
             "And God saw the light"]


def main() -> None:
    from app.session.answer import run_to_end
    from app.session.model import load_model
    from llada_core.chat import encode_chat, visible_answer_ids
    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model2", help="a LLaDA2.0 folder (default: a tiny random one)")
    parser.add_argument("--model21", help="a LLaDA2.1 folder (default: a tiny random one)")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=32)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    folders = {
        "2.0 threshold 0.95": args.model2 or make_tiny_llada2_checkpoint(scratch / "20"),
        "2.1 Q mode (0.7 / 0.5)": args.model21 or make_tiny_llada2_checkpoint(
            scratch / "21", TinyLLaDA2Spec(version="2.1")),
    }
    modes = {"2.0 threshold 0.95": dict(threshold=0.95),
             "2.1 Q mode (0.7 / 0.5)": dict(threshold=0.7, editing_threshold=0.5),
             "2.1 S mode (0.5 / 0.0)": dict(threshold=0.5, editing_threshold=0.0)}
    folders["2.1 S mode (0.5 / 0.0)"] = folders["2.1 Q mode (0.7 / 0.5)"]
    print(f"{'decoder':<26}{'passes':>8}{'tokens':>8}{'tok/pass':>10}{'tok/s':>9}")
    for name, folder in folders.items():
        loaded = load_model(str(folder), args.backend, dtype="float32")
        settings = dict(gen_length=args.gen_length, block_length=args.block_length,
                        steps=args.gen_length, mode="exact", **modes[name])
        passes, tokens, seconds = [], [], []
        for question in QUESTIONS:
            prompt = encode_chat(loaded.tokenizer, [{"role": "user", "content": question}])
            done = run_to_end(loaded, prompt, settings)
            passes.append(done.nfe)
            tokens.append(len(visible_answer_ids(loaded.tokenizer, done.tokens)) or 1)
            seconds.append(done.seconds)
        total_passes, total_tokens = sum(passes), sum(tokens)
        print(f"{name:<26}{statistics.mean(passes):>8.1f}{statistics.mean(tokens):>8.1f}"
              f"{total_tokens / total_passes:>10.2f}{total_tokens / sum(seconds):>9.1f}"
              f"   ({loaded.backend_name})")


if __name__ == "__main__":
    main()
