"""CPU threads against answer time, idle and with one core busy: `python benchmarks/bench_threads.py`.

The evidence behind llada_core/threads.py. For the bundled demo model (8 steps) and a random
~107M-parameter model (answer 32, 32 steps; built once in a temporary folder), each thread count
runs in a fresh process (torch's thread pool is per process), sampling timed after one warm-up,
best and median of --repeats; then the same with a busy loop holding one core, as another
program on a laptop would. Also prints what the rule picks (`auto`). PyTorch CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_RUN = r"""
import json, sys, time
import torch
from llada_core.chat import encode_chat
from llada_torch import generate_steps, load
path, threads, length, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model, tokenizer = load(path, device="cpu", dtype="float32")  # applies the rule
if threads:
    torch.set_num_threads(threads)
prompt = encode_chat(tokenizer, [{"role": "user", "content": "What is 47 + 58?"}])
settings = dict(gen_length=length, steps=length, block_length=length, mode="exact")
times = []
for _ in range(repeats + 1):
    started = time.perf_counter()
    for _frame in generate_steps(model, prompt, **settings):
        pass
    times.append(time.perf_counter() - started)
print(json.dumps({"threads": torch.get_num_threads(), "times": times[1:]}))
"""


def run(path: str, threads: int, length: int, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LLADA_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", ONE_RUN, path, str(threads), str(length),
                          str(repeats)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def busy_core() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        from llada_train.tiny import TinySpec, make_tiny_checkpoint

        large = make_tiny_checkpoint(Path(scratch) / "m107", TinySpec(
            d_model=1024, n_layers=8, n_heads=8, mlp_hidden_size=2816, bpe_vocab=2000))
        models = [("demo 4.6M", str(ROOT / "app" / "resources" / "llada-demo"), 8),
                  ("random 107M", str(large), 32)]
        print(f"{cores} cores | seconds of sampling, best / median of {args.repeats}")
        print(f"{'model':<12}{'load':<7}{'threads':>8}{'best':>9}{'median':>9}")
        for load_name in ("idle", "busy"):
            hog = busy_core() if load_name == "busy" else None
            try:
                for name, path, length in models:
                    for threads in [0] + list(range(1, cores + 1)):
                        result = run(path, threads, length, args.repeats)
                        times = sorted(result["times"])
                        label = f"auto={result['threads']}" if threads == 0 else str(threads)
                        print(f"{name:<12}{load_name:<7}{label:>8}{times[0]:>9.3f}"
                              f"{times[len(times) // 2]:>9.3f}")
            finally:
                if hog is not None:
                    hog.kill()


if __name__ == "__main__":
    main()
