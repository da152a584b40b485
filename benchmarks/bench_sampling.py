"""Exact vs fast sampling, one process, ratios: `python benchmarks/bench_sampling.py [llada bench flags]`.

Defaults are issue 6's acceptance setting: a random ~40M-parameter LLaDA (LM head a tenth of it),
prompt 64, answer 256, block 32, steps 256, on the default backend. Examples:

    python benchmarks/bench_sampling.py --variants exact,dual\\ cache
    python benchmarks/bench_sampling.py --gen-length 1024 --variants "exact,dual cache,fast (all parts)"
    python benchmarks/bench_sampling.py --backend mlx --random-d-model 256 --random-layers 4
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
