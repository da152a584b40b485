"""Converting a downloaded PyTorch checkpoint (LLaDA-8B or LLaDA-MoE, Hugging Face layout, float
weights) to MLX 8-bit in the app's data folder, with progress and cancel.

`ModelConversion(source, target).run()` writes into `<target>.partial` through
llada_mlx.convert (tensor by tensor) and renames it to `target` only when complete, so a
cancelled or failed conversion leaves no folder that looks like a model; the caller registers
the finished folder. Qt-free: the window runs it in a thread, the tests call it directly.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import logging
import re
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from app.models.units import format_bytes
from app.models.download import free_space
from app.models.local import validate_model_folder
from llada_core.checkpoint import CheckpointError, weight_files

log = logging.getLogger(__name__)

BITS = 8
GROUP_SIZE = 64
SCALE_BYTES = 2  # bfloat16 scales and biases, llada_mlx.convert's default dtype
MODELS_FOLDER = "models"
PARTIAL_SUFFIX = ".partial"


class ConversionError(RuntimeError):
    """The conversion did not finish; the message is one sentence for the user."""


class ConversionCancelled(ConversionError):
    pass


@dataclass(frozen=True)
class ConversionProgress:
    done: int       # tensors converted
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def text(self) -> str:
        return f"{self.done:,} of {self.total:,} tensors converted"


def mlx_available() -> bool:
    """Whether the MLX backend is installed (the conversion runs on it)."""
    try:
        return importlib.util.find_spec("mlx.core") is not None
    except (ImportError, ValueError):
        return False


def is_convertible(folder: Optional[str | Path]) -> bool:
    """True for a folder holding float weights in the Hugging Face layout of either family: what
    llada_mlx.convert takes. Already converted (MLX layout) or quantized folders are not."""
    if not folder:
        return False
    try:
        model = validate_model_folder(folder)
    except CheckpointError:
        return False
    return model.layout == "hf" and model.quantization is None


def models_folder(data_dir: str | Path) -> Path:
    """Where converted models go: a `models` folder beside the app's history database."""
    return Path(data_dir) / MODELS_FOLDER


def target_folder(data_dir: str | Path, name: str, bits: int = BITS) -> Path:
    """`<data>/models/<name>-mlx-<bits>bit`; the name is kept to letters, digits, '.', '_', '-'."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return models_folder(data_dir) / f"{safe}-mlx-{bits}bit"


def parameter_count(folder: str | Path) -> int:
    """Parameters in the folder's safetensors files, from their headers only."""
    count = 0
    for path in weight_files(Path(folder)):
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                size = 1
                for dim in info["shape"]:
                    size *= int(dim)
                count += size
    return count


def estimated_bytes(parameters: int, bits: int = BITS, group_size: int = GROUP_SIZE) -> int:
    """Bytes of the converted weights: packed values plus a scale and a bias per group (norms and
    the router, kept in float, are too small to matter)."""
    return parameters * bits // 8 + 2 * (parameters // group_size) * SCALE_BYTES


class ModelConversion:
    """One conversion; `cancel()` from any thread stops it after the current tensor."""

    def __init__(self, source: str | Path, target: str | Path, *, bits: int = BITS,
                 on_progress: Optional[Callable[[ConversionProgress], None]] = None) -> None:
        self.source = Path(source)
        self.target = Path(target)
        self.bits = bits
        self.on_progress = on_progress
        self._cancel = threading.Event()

    @property
    def partial(self) -> Path:
        return self.target.with_name(self.target.name + PARTIAL_SUFFIX)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _tensor_done(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(ConversionProgress(done, total))
        if self._cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled; nothing was kept.")

    def check(self) -> int:
        """The bytes needed; ConversionError when the source cannot be converted, the target
        exists or the disk is too full."""
        if not is_convertible(self.source):
            raise ConversionError(f"{self.source} is not a float checkpoint in the Hugging Face "
                                  "layout, so there is nothing to convert.")
        if self.target.exists():
            raise ConversionError(f"{self.target} already exists; remove it or use it.")
        needed = estimated_bytes(parameter_count(self.source), self.bits)
        free = free_space(self.target.parent)
        if free < needed:
            raise ConversionError(
                f"Not enough disk space for the conversion: it needs about "
                f"{format_bytes(needed)} and {format_bytes(free)} is free.")
        return needed

    def run(self) -> Path:
        """Convert, then move the finished folder to `target`; returns `target`."""
        self.check()
        if not mlx_available():
            raise ConversionError("The MLX backend is not installed, so the model cannot be "
                                  "converted to MLX.")
        from llada_mlx.convert import convert

        shutil.rmtree(self.partial, ignore_errors=True)  # left by a crash or a quit
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            convert(self.source, self.partial, bits=self.bits, group_size=GROUP_SIZE,
                    on_tensor=self._tensor_done)
            self.partial.rename(self.target)
        except ConversionError:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise
        except OSError as error:
            shutil.rmtree(self.partial, ignore_errors=True)
            if error.errno == errno.ENOSPC:
                raise ConversionError("The disk is full; the conversion stopped and nothing "
                                      "was kept.") from error
            raise ConversionError(f"The conversion failed: {error}.") from error
        except Exception as error:  # noqa: BLE001 - one sentence, never a traceback
            log.exception("converting to %s failed", self.partial)
            shutil.rmtree(self.partial, ignore_errors=True)
            raise ConversionError(
                f"The conversion failed: {type(error).__name__}: {error}.") from error
        return self.target


def converts_after_download(folder: Optional[str | Path]) -> bool:
    """On Apple Silicon a downloaded PyTorch checkpoint is converted to MLX 8-bit before it is
    used: half the memory of bf16, and MLX is the Mac's backend."""
    from app.session.backends import is_apple_silicon

    return is_apple_silicon() and mlx_available() and is_convertible(folder)
