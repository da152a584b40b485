"""Import checks for subprocesses (tests/mlx_only.sh, tests/import_guard.py).

Put on PYTHONPATH, it is inert unless asked:
- LLADA_TORCH_GUARD=FILE: at exit, append to FILE every torch module this process imported;
- LLADA_QT_GUARD=FILE: the same for Qt (PySide6, shiboken6), which headless commands never need;
- LLADA_HIDE_TORCH=1: torch behaves as if not installed (import fails, find_spec is None).
"""

import atexit
import os
import sys

GUARDS = {"LLADA_TORCH_GUARD": ("torch",), "LLADA_QT_GUARD": ("PySide6", "shiboken6")}


def _record(report: str, packages: tuple) -> None:
    loaded = sorted(name for name, module in sys.modules.items()
                    if module is not None and name.split(".")[0] in packages)
    if loaded:
        with open(report, "a", encoding="utf-8") as out:
            out.write(f"{' '.join(sys.argv)}: {', '.join(loaded[:5])}\n")


for _variable, _packages in GUARDS.items():
    if os.environ.get(_variable):
        atexit.register(_record, os.environ[_variable], _packages)
if os.environ.get("LLADA_HIDE_TORCH"):
    sys.modules["torch"] = None  # type: ignore[assignment]
