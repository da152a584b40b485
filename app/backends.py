"""Choosing a backend at run time and importing it lazily.

Both backends offer the same contract: load(path, ...), encode_chat(tokenizer, messages) and
generate_steps(model, prompt_ids, ...), yielding llada_core.StepFrame. A Mac install has MLX
and no torch, a Linux or Windows one usually torch alone: nothing here imports either until a
model is run.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
from types import ModuleType
from typing import Optional

BACKENDS = {"torch": "llada_torch", "mlx": "llada_mlx"}
# The framework each backend needs, and the pip extra that installs it.
FRAMEWORKS = {"torch": "torch", "mlx": "mlx"}


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot be imported on this machine."""


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def is_installed(name: str) -> bool:
    """Whether backend `name`'s framework is installed (found, not imported: importing torch
    takes seconds)."""
    try:
        return importlib.util.find_spec(FRAMEWORKS[name]) is not None
    except (ImportError, ValueError):
        return False


def default_backend() -> str:
    """MLX on Apple Silicon, PyTorch elsewhere, and whichever is installed when only one is."""
    preferred = ["mlx", "torch"] if is_apple_silicon() else ["torch", "mlx"]
    for name in preferred:
        if is_installed(name):
            return name
    return preferred[0]


def install_hint(name: str) -> str:
    if getattr(sys, "frozen", False):  # the app bundle: pip cannot add to it
        return f"this app bundle has MLX only; for {name}, install llada-desktop with pip"
    return f'pip install "llada-desktop[{name}]"'


def require(name: str, purpose: str) -> None:
    """Raise BackendUnavailable, one sentence naming the install command, when backend `name`'s
    framework is missing."""
    if not is_installed(name):
        raise BackendUnavailable(
            f"{purpose} needs {FRAMEWORKS[name]}, which is not installed ({install_hint(name)})")


def get_backend(name: Optional[str] = None) -> ModuleType:
    name = name or default_backend()
    if name not in BACKENDS:
        raise BackendUnavailable(f"backend {name!r} is unknown; choose one of {', '.join(BACKENDS)}")
    require(name, f"the {name} backend")
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as error:
        raise BackendUnavailable(
            f"the {name} backend needs {error.name or 'a package'} ({install_hint(name)})"
        ) from error
    return module
