"""Shared fixtures: tiny checkpoints built by the project's own builder, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llada_core.tiny import TinySpec, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Float32 tiny LLaDA-Instruct, official HF layout, two shards with an index."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_f32"), TinySpec())


@pytest.fixture(scope="session")
def tiny_bf16_checkpoint(tmp_path_factory) -> Path:
    """The same architecture stored in bfloat16, as the official weights are."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_bf16"), TinySpec(dtype="bfloat16"))


@pytest.fixture(scope="session")
def tiny_torch(tiny_checkpoint):
    """(model, tokenizer) of the float32 tiny checkpoint, loaded by llada_torch on the CPU."""
    from llada_torch import load

    return load(tiny_checkpoint, device="cpu")
