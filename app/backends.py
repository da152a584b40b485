"""Choosing a backend at run time and importing it lazily.

Both backends offer the same contract: load(path, ...), encode_chat(tokenizer, messages) and
generate_steps(model, prompt_ids, ...), yielding llada_core.StepFrame.
"""

from __future__ import annotations

import importlib
import platform
from types import ModuleType
from typing import Optional

BACKENDS = {"torch": "llada_torch", "mlx": "llada_mlx"}


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot be imported on this machine."""


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def default_backend() -> str:
    """MLX on Apple Silicon (when installed), PyTorch elsewhere."""
    if is_apple_silicon() and _importable("mlx.core") and _has_contract("llada_mlx"):
        return "mlx"
    return "torch"


def get_backend(name: Optional[str] = None) -> ModuleType:
    name = name or default_backend()
    if name not in BACKENDS:
        raise BackendUnavailable(f"backend {name!r} is unknown; choose one of {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as error:
        extra = "torch" if name == "torch" else "mlx"
        raise BackendUnavailable(
            f"the {name} backend needs {error.name or 'a package'} "
            f"(pip install 'llada-desktop[{extra}]')"
        ) from error
    if not _has_contract(module):
        raise BackendUnavailable(f"the {name} backend is not available in this version")
    return module


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def _has_contract(module: ModuleType | str) -> bool:
    if isinstance(module, str):
        try:
            module = importlib.import_module(module)
        except ImportError:
            return False
    return all(hasattr(module, name) for name in ("load", "encode_chat", "generate_steps"))
