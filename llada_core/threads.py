"""How many CPU threads a model should use, so a laptop's cores are not oversubscribed.

Measured on this project's 2-core machine (PyTorch CPU, 3 runs each; see README "Threads"):
the 4.6M-parameter demo model answers 8 steps in 0.05 s on one thread and 0.13-0.22 s on two,
because splitting tiny matrix products costs more than it saves; a 107M-parameter model is 1.5x
faster on two threads than one when both cores are idle, but 6x slower (34 s against 5.8 s)
when another program keeps one core busy, as worker threads then spin-wait for a core. So small
models get one thread, larger ones every core but one, left to the window and other programs.
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
