"""Helpers and fixtures for the MLX backend tests (imported by tests/test_mlx_*.py).

Kept out of conftest.py so the MLX tests stay in their own files; MLX is skipped where it is not
installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlx.core")

# Official name prefix -> mlx-community name prefix, written out independently of llada_mlx.
MLX_COMMUNITY_NAMES = {
    "model.transformer.wte.": "model.embed_tokens.",
    "model.transformer.blocks.": "model.layers.",
    "model.transformer.ln_f.": "model.norm.",
    "model.transformer.ff_out.": "model.lm_head.",
}


def read_tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    tensors: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(path)))
    return tensors


def copy_without_weights(source: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.suffix == ".json" and path.name != "model.safetensors.index.json":
            shutil.copy(path, target / path.name)
    return target


def write_checkpoint(source: Path, target: Path, tensors: dict[str, np.ndarray],
                     config_update: dict | None = None) -> Path:
    """source's config and tokenizer with the given tensors in one model.safetensors."""
    from safetensors.numpy import save_file

    copy_without_weights(source, target)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    if config_update:
        config = json.loads((target / "config.json").read_text())
        for key, value in config_update.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        (target / "config.json").write_text(json.dumps(config))
    return target


def mlx_community_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    renamed = {}
    for name, value in tensors.items():
        for prefix, new in MLX_COMMUNITY_NAMES.items():
            if name.startswith(prefix):
                name = new + name[len(prefix):]
                break
        renamed[name] = value
    return renamed


@pytest.fixture(scope="session")
def mlx_layout_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The float32 tiny checkpoint with mlx-community tensor names, unquantized."""
    tensors = mlx_community_names(read_tensors(tiny_checkpoint))
    return write_checkpoint(tiny_checkpoint, tmp_path_factory.mktemp("tiny_mlx_names"), tensors)


@pytest.fixture(scope="session")
def tiny_mlx(tiny_checkpoint):
    """(model, tokenizer) of the float32 tiny checkpoint (official layout), loaded by llada_mlx."""
    from llada_mlx import load

    return load(tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny_mlx_renamed(mlx_layout_checkpoint):
    from llada_mlx import load

    return load(mlx_layout_checkpoint)


def chat_prompt(tokenizer, text: str = "Hello! What is two plus three?") -> list[int]:
    from llada_core.chat import encode_chat

    return encode_chat(tokenizer, [{"role": "user", "content": text}])


def frames_of(backend_generate, model, prompt, **settings) -> list:
    return list(backend_generate(model, prompt, **settings))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
