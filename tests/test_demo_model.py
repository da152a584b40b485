"""The bundled demo model: present, small, official layout, adds held-out numbers, works offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.evaluate import evaluate, held_out_items
from app.models.catalog import bundled_demo_model
from app.models.defaults import sampler_defaults
from backend_choice import BACKEND, requires_torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo() -> Path:
    folder = bundled_demo_model()
    assert folder is not None, "the demo model is missing from app/resources/llada-demo"
    return folder


def test_the_demo_model_is_small_and_in_the_official_layout(demo):
    weights = sorted(demo.glob("*.safetensors"))
    assert weights and sum(p.stat().st_size for p in weights) <= 25 * 1024 * 1024
    names = {p.name for p in demo.iterdir()}
    assert {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
            "sampler_defaults.json"} <= names
    assert not [name for name in names if name.endswith((".py", ".bin", ".pt", ".pkl"))]
    config = json.loads((demo / "config.json").read_text())
    assert config["model_type"] == "llada" and config["architectures"] == ["LLaDAModelLM"]


def test_the_package_ships_the_demo_model():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"resources/llada-demo/*"' in text


def test_the_demo_model_adds_held_out_two_digit_numbers(demo):
    from app.backends import get_backend

    backend = get_backend(BACKEND)
    model, tokenizer = backend.load(demo, dtype="float32")
    items = held_out_items(["add2"], 25)
    scores = evaluate(backend, model, tokenizer, items, sampler_defaults(str(demo)))
    assert scores["add2"].accuracy >= 0.8, scores["add2"]


@requires_torch
def test_both_backends_give_the_demo_model_the_same_answers(demo):
    pytest.importorskip("mlx.core")
    import llada_mlx
    import llada_torch

    from app.evaluate import answer

    settings = sampler_defaults(str(demo))
    torch_model, torch_tokenizer = llada_torch.load(demo, dtype="float32", device="cpu")
    mlx_model, mlx_tokenizer = llada_mlx.load(demo, dtype="float32")
    for item in held_out_items(["add2", "sort"], 2):
        assert (answer(llada_torch, torch_model, torch_tokenizer, item, settings)
                == answer(llada_mlx, mlx_model, mlx_tokenizer, item, settings))


def test_llada_chat_with_no_arguments_works_offline(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               LLADA_DESKTOP_DATA=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-m", "app.cli", "chat"],
                            input="What is 12 + 30?\n/quit\n", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "demo model" in result.stderr
    assert "LLaDA: 42" in result.stdout, result.stdout
