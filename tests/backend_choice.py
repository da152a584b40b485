"""Which backend the tests run the app on: torch where installed (faster on this CPU), else MLX.

The suite runs twice in CI: with both backends, and in an MLX-only venv as a Mac user has it
(tests/mlx_only.sh). Tests of the app run on whichever backend is there; tests of torch itself
skip without it.
"""

from __future__ import annotations

import importlib.util

import pytest


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


HAS_TORCH = installed("torch")
HAS_MLX = installed("mlx.core")
BACKEND = "torch" if HAS_TORCH else "mlx"

requires_torch = pytest.mark.skipif(not HAS_TORCH, reason='needs torch (pip install "llada-desktop[torch]")')
