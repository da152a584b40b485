"""How many CPU threads a model should use, so a laptop's cores are not oversubscribed.

Measured on this project's 2-core machine (benchmarks/bench_threads.py, PyTorch CPU): with
both cores idle, two threads beat one by about a quarter (demo 0.037 against 0.049 s; a
107M-parameter model 3.8 against 5.1 s), but with another program spinning on one core two
threads lose 1.6-2.4x (0.071 against 0.045 s; 12.1 against 5.1 s), as the worker threads
spin-wait for the busy core. A laptop is rarely idle: small models get one thread, larger ones
every core but one, left to the window and other programs.
"""

from __future__ import annotations

import os
from typing import Optional

SMALL_MODEL_PARAMETERS = 50_000_000
THREADS_VARIABLE = "LLADA_THREADS"


def user_threads() -> Optional[int]:
    """The thread count the user fixed: $LLADA_THREADS, else $OMP_NUM_THREADS; None if unset."""
    for name in (THREADS_VARIABLE, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def cpu_threads(parameters: int, cores: int) -> int:
    """Threads for a model of `parameters` on a machine with `cores` usable cores."""
    if parameters < SMALL_MODEL_PARAMETERS:
        return 1
    return max(1, cores - 1)
