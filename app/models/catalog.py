"""Known LLaDA checkpoints on the Hugging Face Hub, and the one recommended for this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from app.models.units import format_bytes

GB = 1000 ** 3


@dataclass(frozen=True)
class CatalogEntry:
    repo_id: str
    name: str
    backend: str            # "mlx" or "torch"
    size_bytes: int         # on disk (the repo's safetensors and tokenizer)
    memory_bytes: int       # to load and run it: the weights plus working space
    description: str

    @property
    def size_text(self) -> str:
        return format_bytes(self.size_bytes)

    @property
    def memory_text(self) -> str:
        return format_bytes(self.memory_bytes)


# Sizes on disk: the bf16 repos hold 16.03 GB in 6 shards, the MLX 8-bit conversion 8.53 GB in 2
# and the 4-bit one 4.51 GB of tensors in 1 (plus headers and a 6 MB tokenizer). Memory: what
# app.models.fit computes for them from their config.json and weights at the default settings
# (a 128-token answer after a 256-token prompt); tests/test_fit.py recomputes both from the real
# metadata.
CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("mlx-community/LLaDA-8B-Instruct-mlx-8bit", "LLaDA 8B Instruct (MLX 8-bit)", "mlx",
                 int(8.53 * GB), int(9.3 * GB),
                 "The chat model, 8-bit quantized for Apple Silicon. Recommended on a Mac with "
                 "16 GB or more."),
    CatalogEntry("mlx-community/LLaDA-8B-Instruct-mlx-4bit", "LLaDA 8B Instruct (MLX 4-bit)", "mlx",
                 int(4.52 * GB), int(5.3 * GB),
                 "The chat model, 4-bit quantized: half the memory, slightly lower quality. "
                 "Recommended on a Mac with less than 16 GB."),
    CatalogEntry("GSAI-ML/LLaDA-8B-Instruct", "LLaDA 8B Instruct (original, bf16)", "torch",
                 int(16.03 * GB), int(16.9 * GB),
                 "The original chat model in bfloat16, for PyTorch (CUDA, MPS or CPU)."),
    CatalogEntry("GSAI-ML/LLaDA-8B-Base", "LLaDA 8B Base (bf16)", "torch",
                 int(16.03 * GB), int(16.9 * GB),
                 "The pre-trained base model: completes text, does not follow a chat."),
    CatalogEntry("GSAI-ML/LLaDA-1.5", "LLaDA 1.5 (bf16)", "torch",
                 int(16.03 * GB), int(16.9 * GB),
                 "LLaDA 8B Instruct after preference optimisation (VRPO); same size."),
    # Computed from the MoE spec's dimensions (7.36B parameters in bf16), not yet checked
    # against the Hub's files.
    CatalogEntry("inclusionAI/LLaDA-MoE-7B-A1B-Instruct", "LLaDA-MoE 7B-A1B Instruct (bf16)",
                 "torch", int(14.7 * GB), int(15.4 * GB),
                 "The Mixture-of-Experts chat model: about 1.4B of its 7B parameters work per "
                 "token, so it answers several times faster than LLaDA 8B. PyTorch; once "
                 "downloaded, File > Models > Convert to MLX 8-bit… (or `llada convert`) makes "
                 "an MLX copy of about half the size."),
    # LLaDA-V: 8.44B parameters in bf16 (llada-v-spec §1, from the spec's arithmetic; the Hub's
    # files are not checked here); a picture adds up to about 4,300 prompt positions.
    CatalogEntry("GSAI-ML/LLaDA-V", "LLaDA-V (bf16, pictures)", "torch",
                 int(16.9 * GB), int(18.5 * GB),
                 "LLaDA 8B Instruct with a vision tower: attach a picture (Picture… or drop a "
                 "file) and ask about it. Both backends load it."),
    # LLaDA 2.x mini: 16.25B parameters in bf16 (llada2-spec B1-B2: 7 shards, about 32.5 GB;
    # a third-party figure, not yet checked against the Hub's files). Both backends load it.
    CatalogEntry("inclusionAI/LLaDA2.1-mini", "LLaDA2.1 mini (bf16)", "torch",
                 int(32.5 * GB), int(33.6 * GB),
                 "Block diffusion with an editing decoder: a 16B Mixture of Experts with about "
                 "1.4B parameters working per token; it writes block by block and may replace "
                 "tokens it already wrote (shown in purple on the canvas). Needs a 48 GB machine."),
    CatalogEntry("inclusionAI/LLaDA2.0-mini", "LLaDA2.0 mini (bf16)", "torch",
                 int(32.5 * GB), int(33.6 * GB),
                 "LLaDA2.1's predecessor: block diffusion with threshold decoding, no editing. "
                 "Needs a 48 GB machine."),
)
# On Apple Silicon the 8-bit model needs about 9.3 GB of a Mac's working set (about two thirds
# to three quarters of its RAM): Macs with 16 GB or more get it, smaller ones the 4-bit model.
EIGHT_BIT_MIN_RAM = 16 * GB


def catalog_entry(repo_id: str) -> Optional[CatalogEntry]:
    for entry in CATALOG:
        if entry.repo_id.lower() == repo_id.lower():
            return entry
    return None


def recommended_entry(apple_silicon: Optional[bool] = None,
                      memory: Optional[int] = None) -> CatalogEntry:
    """On Apple Silicon MLX 8-bit with 16 GB of RAM or more and MLX 4-bit below; the original
    bf16 weights (PyTorch) elsewhere. `memory` is the RAM in bytes (default: this machine's)."""
    if apple_silicon is None:
        from app.session.backends import is_apple_silicon

        apple_silicon = is_apple_silicon()
    if not apple_silicon:
        return catalog_entry("GSAI-ML/LLaDA-8B-Instruct")
    if memory is None:
        from app.models.fit import physical_memory

        memory = physical_memory()
    small = memory is not None and memory < EIGHT_BIT_MIN_RAM
    return catalog_entry("mlx-community/LLaDA-8B-Instruct-mlx-4bit" if small
                         else "mlx-community/LLaDA-8B-Instruct-mlx-8bit")


def bundled_demo_model() -> Optional[Path]:
    """The small demo model shipped with the app (app/resources/llada-demo), if there is one."""
    import sys

    roots = [Path(__file__).resolve().parents[1] / "resources"]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        roots.append(Path(frozen) / "app" / "resources")
    for root in roots:
        folder = root / "llada-demo"
        if (folder / "config.json").is_file():
            return folder
    return None


