"""From nothing to an answer with the bundled demo model: `python benchmarks/bench_demo_start.py`.

Times what a user waits for: a fresh `llada generate` process (Python and torch imports, loading
the demo model, one answer with its default sampler settings), offline and with an empty Hugging
Face cache so the demo is the default. Prints each run, the median and its ratio to the 5 s
target of issue 7. Pass --runs N to change the number of runs (default 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 5.0
PROMPT = "What is 12 + 30?"


def one_run(hf_home: str) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_HOME=hf_home)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "app.cli", "generate", "--prompt", PROMPT],
                            capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started, result.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as hf_home:
        times = []
        for run in range(1, args.runs + 1):
            seconds, text = one_run(hf_home)
            times.append(seconds)
            print(f"run {run}: {seconds:.2f} s  ({PROMPT} -> {text!r})")
    median = statistics.median(times)
    print(f"median {median:.2f} s = {median / TARGET_SECONDS:.2f} x the {TARGET_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
