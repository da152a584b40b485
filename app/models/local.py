"""Local model folders: checking that a folder holds a LLaDA checkpoint we can load, and the
list of folders the user has added (kept in the app's preferences table)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from llada_core.checkpoint import CheckpointError, read_config, weight_files

PREFERENCE_KEY = "local_models"


@dataclass(frozen=True)
class LocalModel:
    path: Path
    layout: str                 # "hf" (model.transformer.*) or "mlx" (model.embed_tokens/layers)
    quantization: Optional[dict]
    weight_bytes: int
    name: str

    @property
    def description(self) -> str:
        layout = "Hugging Face layout" if self.layout == "hf" else "MLX layout"
        if self.quantization:
            layout += f", {self.quantization.get('bits', '?')}-bit"
        return layout


def safetensors_keys(path: Path) -> list[str]:
    """Tensor names from a safetensors header (8-byte length + JSON), without reading weights."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error) as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({error})") from error
    return [k for k in header if k != "__metadata__"]


def detect_layout(folder: Path, files: list[Path]) -> str:
    index = folder / "model.safetensors.index.json"
    keys: list[str] = []
    if index.is_file():
        try:
            keys = list(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        except (OSError, ValueError, KeyError, TypeError):
            keys = []
    if not keys:
        for file in files:
            keys.extend(safetensors_keys(file))
    # LLaDA-8B's own names are model.transformer.*; LLaDA-MoE's are model.layers.* with the head
    # at the top (lm_head.*), which the MLX layout moves under model.
    if any(k.startswith(("model.transformer.", "lm_head.")) for k in keys):
        return "hf"
    if any(k.startswith(("model.embed_tokens.", "model.layers.", "model.lm_head.")) for k in keys):
        return "mlx"
    raise CheckpointError(
        f"{folder} has safetensors weights, but with tensor names of neither LLaDA layout "
        "(model.transformer.* or model.embed_tokens / model.layers / model.lm_head)")


def validate_model_folder(folder: str | Path) -> LocalModel:
    """A LocalModel for a folder that holds a LLaDA checkpoint; CheckpointError otherwise."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json, so it is not a model folder")
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type != "llada":
        raise CheckpointError(
            f"{path} holds a {model_type or 'model of unknown type'!s} model (config.json "
            "model_type), not LLaDA")
    if not (path / "tokenizer.json").is_file():
        raise CheckpointError(f"{path} has no tokenizer.json")
    files = weight_files(path)
    layout = detect_layout(path, files)
    quantization = config.get("quantization") or None
    if quantization is not None and not isinstance(quantization, dict):
        raise CheckpointError(f"{path}/config.json has an unreadable \"quantization\" entry")
    return LocalModel(path=path.resolve(), layout=layout, quantization=quantization,
                      weight_bytes=sum(f.stat().st_size for f in files), name=path.name)


def added_folders(store: Any) -> list[str]:
    value = store.preference(PREFERENCE_KEY, [])
    return [str(v) for v in value] if isinstance(value, list) else []


def add_folder(store: Any, folder: str | Path) -> LocalModel:
    """Validate a folder and remember it (once); raises CheckpointError for a bad folder."""
    model = validate_model_folder(folder)
    folders = added_folders(store)
    if str(model.path) not in folders:
        folders.append(str(model.path))
        store.set_preference(PREFERENCE_KEY, folders)
    return model


def remove_folder(store: Any, folder: str | Path) -> None:
    target = str(Path(folder).expanduser().resolve())
    store.set_preference(PREFERENCE_KEY, [f for f in added_folders(store) if f != target])
