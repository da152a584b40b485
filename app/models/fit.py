"""Will a model fit in this machine's memory? Compare its weights with what the machine offers."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from app.models.catalog import format_bytes

# Weights are most of it; activations, the KV cache and the runtime take a little more.
WORKING_MARGIN = 1.10


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    source: str     # what the number is, in words


@dataclass(frozen=True)
class FitReport:
    model_bytes: int
    needed_bytes: int
    limit: Optional[MemoryLimit]

    @property
    def fits(self) -> bool:
        return self.limit is None or self.needed_bytes <= self.limit.bytes

    def message(self) -> str:
        if self.limit is None:
            return f"The model's weights take {format_bytes(self.model_bytes)}."
        verdict = "fits in" if self.fits else "is more than"
        return (f"The model's weights take {format_bytes(self.model_bytes)}, about "
                f"{format_bytes(self.needed_bytes)} with working space; that {verdict} the "
                f"{format_bytes(self.limit.bytes)} of {self.limit.source}.")


def physical_memory() -> Optional[int]:
    """Installed RAM: sysctl hw.memsize on macOS, sysconf pages elsewhere."""
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True,
                                 timeout=5, check=True).stdout
            return int(out.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def mlx_working_set() -> Optional[int]:
    """MLX's recommended working-set size on Apple Silicon (what Metal lets a process keep)."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    for getter in (getattr(mx, "device_info", None),
                   getattr(getattr(mx, "metal", None), "device_info", None)):
        if getter is None:
            continue
        try:
            info = getter()
            value = info.get("max_recommended_working_set_size")
            if value:
                return int(value)
        except Exception:  # noqa: BLE001 - no Metal device: fall back to RAM
            continue
    return None


def memory_limit(backend: Optional[str] = None) -> Optional[MemoryLimit]:
    from app.backends import is_apple_silicon

    if is_apple_silicon() and backend in (None, "mlx"):
        working_set = mlx_working_set()
        if working_set:
            return MemoryLimit(working_set, "memory MLX recommends using on this Mac")
    ram = physical_memory()
    return MemoryLimit(ram, "memory in this computer") if ram else None


def model_bytes(folder: str | Path) -> int:
    from llada_core.checkpoint import weight_files

    return sum(f.stat().st_size for f in weight_files(Path(folder)))


def check_fit(folder: str | Path, limit: Optional[MemoryLimit] = None, *,
              backend: Optional[str] = None, weights: Optional[int] = None) -> FitReport:
    size = model_bytes(folder) if weights is None else weights
    return FitReport(size, int(size * WORKING_MARGIN),
                     limit if limit is not None else memory_limit(backend))
