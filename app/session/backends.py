"""Choosing a backend at run time and importing it lazily.

Both backend packages offer the same contract, the `Backend` protocol below: load, sampling,
memory, a description of the device and the log-likelihood pieces. App code asks the backend
module these questions and never compares a backend's name. A Mac install has MLX and no torch,
a Linux or Windows one usually torch alone: nothing here imports either until a model is run.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Optional, Protocol, runtime_checkable

BACKENDS = {"torch": "llada_torch", "mlx": "llada_mlx"}
# The framework each backend needs, and the pip extra that installs it.
FRAMEWORKS = {"torch": "torch", "mlx": "mlx"}


@runtime_checkable
class Backend(Protocol):
    """What a backend package (llada_torch, llada_mlx) offers at module level, the same names
    with the same meaning in both."""

    # The keyword options `load` takes besides the path: a subset of {"dtype", "device"}.
    LOAD_OPTIONS: frozenset[str]

    def load(self, path_or_repo_id: Any, **options: Any) -> tuple[Any, Any]:
        """(model, tokenizer) from a folder or Hub repo id."""

    def encode_chat(self, tokenizer: Any, messages: Sequence[dict]) -> list[int]: ...

    def generate_steps(self, model: Any, prompt_ids: Sequence[int], **settings: Any
                       ) -> Iterator[Any]:
        """llada_core.StepFrame after every denoising step."""

    def release_memory(self) -> None:
        """Hand back the memory a dropped model held (caches, allocator pools)."""

    def describe(self, model: Any = None) -> dict[str, Any]:
        """"device" and (given a model) "dtype" as short strings, plus what else the device
        reports ("device_name", "device_info")."""

    def device_memory(self, device: Optional[str] = None) -> Optional[tuple[int, str]]:
        """(bytes, what) of the accelerator memory the backend would run in; None on the CPU."""

    def peak_memory_method(self, model: Any) -> Optional[str]:
        """How peak_memory measures on the model's device; None where it cannot."""

    def reset_peak_memory(self, model: Any) -> int:
        """Start a peak measurement; the bytes in use now."""

    def peak_memory(self, model: Any) -> Optional[int]:
        """Peak bytes in use since reset_peak_memory; None where it cannot measure."""

    def forward(self, model: Any, ids: Any) -> None:
        """One pass over token ids (B, L), waited for."""

    def token_log_probs(self, model: Any, noisy: Any, targets: Any, *, prompt_length: int = 0,
                        cfg_scale: float = 0.0, mask_id: int) -> Any:
        """log softmax(logits)[target] at each position of a batch, float32 numpy (B, L)."""


def load_options(backend: Backend, **given: Any) -> dict[str, Any]:
    """The options among `given` that the backend's load takes and that were set (not None or
    empty): a device asked for on a backend without devices is dropped."""
    return {key: value for key, value in given.items()
            if key in backend.LOAD_OPTIONS and value not in (None, "")}


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


def get_backend(name: Optional[str] = None) -> Backend:
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
