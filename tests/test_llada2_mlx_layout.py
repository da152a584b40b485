"""LLaDA 2.x in the MLX layouts mlx-community publishes (mlx-lm's llada2_moe: experts stacked,
quantized by nn.quantize; mlx-vlm's `language_model.` names; a float stacked layout like
LLaDA2.1-mini-bf16): each loads through the same path as the official layout and answers like
it; `llada make-tiny --layout mlx` writes one; a broken one is one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint
from test_cli import llada

pytest.importorskip("mlx.core")

BLOCK = 8
SETTINGS = dict(gen_length=16, block_length=BLOCK, steps=16, mode="exact", temperature=0.0,
                threshold=0.9)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    # every Linear's input width divides the group size, as in the real model
    return make_tiny_llada2_checkpoint(tmp_path_factory.mktemp("hf"), TinyLLaDA2Spec(
        version="2.1", moe_intermediate_size=32, intermediate_size=128))


def logits_of(folder, ids):
    import mlx.core as mx

    import llada_mlx

    model, _ = llada_mlx.load(folder, dtype="float32")
    return model, np.array(model(mx.array([ids]), BLOCK))[0]


def prompt_ids(folder):
    from llada_core.chat import encode_chat, load_tokenizer

    return encode_chat(load_tokenizer(folder), [{"role": "user", "content": "In the beginning"}])


def cosine(a, b):
    a, b = a.ravel(), b.ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_mlx_layouts_load_and_agree(source, tmp_path):
    from llada_mlx.convert import convert
    from llada_train.tiny_mlx_layout import write_mlx_layout

    reference, _ = logits_of(source, prompt_ids(source))
    ids = prompt_ids(source) + [reference.args.mask_token_id] * BLOCK
    _, float_logits = logits_of(source, ids)
    stacked = write_mlx_layout(source, tmp_path / "mlx-lm", bits=8)
    prefixed = write_mlx_layout(source, tmp_path / "mlx-vlm", bits=8, prefix="language_model.")
    per_expert = unstacked_copy(stacked, tmp_path / "per-expert")
    ours = convert(source, tmp_path / "ours", bits=8, group_size=32)  # llada convert
    assert "language_model.model.word_embeddings.scales" in _names(prefixed)
    assert any(".mlp.switch_mlp.up_proj.scales" in n for n in _names(stacked))
    assert any(".mlp.experts.0.up_proj.scales" in n for n in _names(per_expert))
    results = {name: logits_of(folder, ids) for name, folder in
               (("stacked", stacked), ("prefixed", prefixed), ("per expert", per_expert),
                ("llada convert", ours))}
    model = results["stacked"][0]
    assert type(model.model.layers[1].mlp.switch_mlp.up_proj).__name__ == "QuantizedSwitchLinear"
    assert "scales" not in model.model.layers[1].mlp.gate  # the router stays float
    for name in ("prefixed", "per expert"):  # the same numbers under other names
        assert np.array_equal(results[name][1], results["stacked"][1]), name
    for name, (_, logits) in results.items():
        assert cosine(logits, float_logits) > 0.99, name


def unstacked_copy(folder: Path, out: Path) -> Path:
    """`folder`'s weights with each expert stack split into per-expert HF names."""
    import re
    import shutil

    import mlx.core as mx

    shutil.copytree(folder, out)
    weights = {}
    for name, value in mx.load(str(out / "model.safetensors")).items():
        match = re.match(r"^(.*\.mlp\.)switch_mlp\.(\w+)\.(weight|scales|biases)$", name)
        if match is None:
            weights[name] = value
            continue
        for expert in range(value.shape[0]):
            weights[f"{match[1]}experts.{expert}.{match[2]}.{match[3]}"] = value[expert]
    mx.save_safetensors(str(out / "model.safetensors"), weights)
    return out


def test_a_float_stacked_layout_loads_on_both_backends(source, tmp_path):
    torch = pytest.importorskip("torch")
    import llada_torch
    from llada_train.tiny_mlx_layout import write_mlx_layout

    folder = write_mlx_layout(source, tmp_path / "bf16", bits=None, prefix="language_model.")
    ids = prompt_ids(source) + [30] * BLOCK
    original, _ = llada_torch.load(source, device="cpu")
    stacked, _ = llada_torch.load(folder, device="cpu")
    expected = original(torch.tensor([ids]), BLOCK).numpy()[0]
    assert np.allclose(stacked(torch.tensor([ids]), BLOCK).numpy()[0], expected, atol=1e-5)
    assert np.allclose(logits_of(folder, ids)[1], expected, atol=1e-4)


def test_make_tiny_writes_the_mlx_layout_and_it_answers(tmp_path):
    out = tmp_path / "tiny20-mlx"
    made = llada("make-tiny", "--arch", "llada2.0", "--layout", "mlx", "--bits", "8", str(out))
    assert made.returncode == 0, made.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"] == {"group_size": 32, "bits": 8}
    answer = llada("generate", "--model", str(out), "--backend", "mlx", "--prompt",
                   "In the beginning", "--gen-length", "16", "--block-length", "8", "--steps", "16")
    assert answer.returncode == 0 and answer.stdout.strip(), answer.stderr
    torch_run = llada("generate", "--model", str(out), "--backend", "torch", "--prompt", "x")
    if "torch" not in torch_run.stderr or "not installed" not in torch_run.stderr:
        assert torch_run.returncode != 0
        assert "quantized MLX weights; load it with the MLX backend" in torch_run.stderr
    wrong = llada("make-tiny", "--arch", "llada", "--layout", "mlx", str(tmp_path / "no"))
    assert wrong.returncode != 0 and "--layout mlx applies to" in wrong.stderr


def test_a_broken_mlx_layout_is_one_sentence(source, tmp_path):
    import mlx.core as mx

    import llada_mlx
    from llada_core.errors import CheckpointError
    from llada_train.tiny_mlx_layout import write_mlx_layout

    folder = write_mlx_layout(source, tmp_path / "broken", bits=4)
    weights = dict(mx.load(str(folder / "model.safetensors")))
    missing = dict(weights)
    del missing["model.layers.1.mlp.switch_mlp.down_proj.scales"]
    mx.save_safetensors(str(folder / "model.safetensors"), missing)
    with pytest.raises(CheckpointError) as caught:
        llada_mlx.load(folder)
    assert "down_proj" in str(caught.value) and "\n" not in str(caught.value)
    reshaped = dict(weights)
    reshaped["model.layers.1.mlp.switch_mlp.up_proj.scales"] = mx.zeros((3, 3))
    mx.save_safetensors(str(folder / "model.safetensors"), reshaped)
    with pytest.raises(CheckpointError) as caught:
        llada_mlx.load(folder)
    assert "up_proj" in str(caught.value) and "\n" not in str(caught.value)


def _names(folder: Path) -> list[str]:
    import mlx.core as mx

    names = []
    for path in sorted(folder.glob("*.safetensors")):
        names += list(mx.load(str(path)))
    return names
