"""Shared fixtures: tiny checkpoints built by the project's own builder, once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# the app's log file (app/session/logs.py) goes to a folder of the test run, never the user's
os.environ.setdefault("LLADA_LOG_DIR", tempfile.mkdtemp(prefix="llada-test-logs-"))

from llada_train.tiny import TinySpec, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Float32 tiny LLaDA-Instruct, official HF layout, two shards with an index."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_f32"), TinySpec())


@pytest.fixture(scope="session")
def tiny_bf16_checkpoint(tmp_path_factory) -> Path:
    """The same architecture stored in bfloat16, as the official weights are."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_bf16"), TinySpec(dtype="bfloat16"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_checkpoint):
    """The tiny checkpoint's tokenizer, without loading a model."""
    from llada_core.chat import load_tokenizer

    return load_tokenizer(tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny_torch(tiny_checkpoint):
    """(model, tokenizer) of the float32 tiny checkpoint, loaded by llada_torch on the CPU."""
    pytest.importorskip("torch")
    from llada_torch import load

    return load(tiny_checkpoint, device="cpu")


@pytest.fixture
def online(monkeypatch):
    """The suite runs with HF_HUB_OFFLINE=1; tests that use this talk to a local fake Hub only."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # Small network chunks so a tiny checkpoint still arrives in many pieces.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)


@pytest.fixture
def fake_hub(tiny_checkpoint, online):
    """serve(repo_id) starts a local fake Hub serving the tiny checkpoint under that id."""
    from tests.hub_server import FakeHub

    servers = []

    def serve(repo_id: str) -> FakeHub:
        server = FakeHub()
        server.add_folder(repo_id, tiny_checkpoint)
        server.start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def picture(tmp_path):
    """stripes.png: a 90 × 60 picture, orange stripes on black (LLaDA-V's tests ask about it)."""
    import numpy as np
    from PIL import Image

    path = tmp_path / "stripes.png"
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[::10] = (230, 80, 40)
    Image.fromarray(pixels).save(path)
    return path

