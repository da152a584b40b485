"""The bundled demo model: present, small, official layout, adds held-out numbers, works offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.eval.evaluate import evaluate, held_out_items
from app.models.catalog import bundled_demo_model
from app.models.defaults import sampler_defaults
from app.session.model import load_model
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


# Held-out accuracy the shipped demo keeps with its own defaults (floors a little under what
# README's table measured on 100 items per task, so a sample of 25 does not flake).
# The conversation stage (demo3) measured add2 96 % and count 100 % on 50 items in fast mode;
# on these 25, add2 is 92 %.
FLOORS = {"add2": 0.9, "count": 0.9}
SAMPLE = 25


def test_the_demo_model_answers_held_out_items_above_its_floors(demo):

    loaded = load_model(demo, BACKEND, dtype="float32")
    items = held_out_items(list(FLOORS), SAMPLE)
    settings = sampler_defaults(str(demo))
    if BACKEND == "mlx":
        # MLX on a Linux CPU (the MLX-only CI venv) needs over 10 minutes for 50 exact answers of
        # 64 passes; there the floors are checked in fast mode (2 passes an answer), which the
        # README's table measures too. The torch suite checks them at the exact default.
        settings = {**settings, "mode": "fast", "threshold": 0.9}
    scores = evaluate(loaded, items, settings)
    for task, floor in FLOORS.items():
        assert scores[task].accuracy >= floor, scores[task]


def test_the_demo_model_denoises_at_least_two_blocks_by_default(demo):
    defaults = sampler_defaults(str(demo))
    assert defaults["gen_length"] >= 2 * defaults["block_length"]
    # and its answers are that long: a count of 16 numbers is 47 tokens
    from llada_core.chat import load_tokenizer

    tokenizer = load_tokenizer(demo)
    count = " ".join(str(n) for n in range(36, 52))
    assert len(tokenizer(count, add_special_tokens=False)["input_ids"]) > defaults["block_length"]


def test_the_example_prompts_are_answered_right(demo):
    from app.eval.evaluate import answer
    from app.models.defaults import DEMO_EXAMPLES
    from llada_train.demo_tasks import Item, is_correct

    loaded = load_model(demo, BACKEND, dtype="float32")
    for prompt in DEMO_EXAMPLES:
        words = prompt.rstrip(".?").split()
        if prompt.startswith("Count"):
            start, end = int(words[2]), int(words[4])
            item = Item("count", prompt, " ".join(str(n) for n in range(start, end + 1)))
        else:
            item = Item("add2", prompt, str(int(words[2]) + int(words[4])))
        text, _, _ = answer(loaded, item, sampler_defaults(str(demo)))
        assert is_correct(text, item), (prompt, text)


@requires_torch
def test_both_backends_give_the_demo_model_the_same_answers(demo):
    pytest.importorskip("mlx.core")
    from app.eval.evaluate import answer

    settings = sampler_defaults(str(demo))
    on_torch = load_model(demo, "torch", dtype="float32", device="cpu")
    on_mlx = load_model(demo, "mlx", dtype="float32")
    for item in held_out_items(["add2", "sort"], 2):
        assert answer(on_torch, item, settings) == answer(on_mlx, item, settings)


def test_llada_chat_with_no_arguments_works_offline(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               LLADA_DESKTOP_DATA=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-m", "app.cli", "chat"],
                            input="What is 12 + 30?\n/quit\n", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "demo model" in result.stderr
    assert "LLaDA: 42" in result.stdout, result.stdout
