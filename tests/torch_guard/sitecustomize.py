"""Torch checks for the MLX-only path (tests/mlx_only.sh, tests/test_mlx_only.py).

Put on PYTHONPATH, it is inert unless asked:
- LLADA_TORCH_GUARD=FILE: at exit, append to FILE every torch module this process imported;
- LLADA_HIDE_TORCH=1: torch behaves as if not installed (import fails, find_spec is None).
"""

import atexit
import os
import sys

_REPORT = os.environ.get("LLADA_TORCH_GUARD")


def _record() -> None:
    loaded = sorted(name for name, module in sys.modules.items()
                    if module is not None and (name == "torch" or name.startswith("torch.")))
    if loaded:
        with open(_REPORT, "a", encoding="utf-8") as report:
            report.write(f"{' '.join(sys.argv)}: {', '.join(loaded[:5])}\n")


if _REPORT:
    atexit.register(_record)
if os.environ.get("LLADA_HIDE_TORCH"):
    sys.modules["torch"] = None  # type: ignore[assignment]
