"""`llada convert` on LLaDA-MoE: 8- and 4-bit MLX checkpoints (experts quantized one by one,
router and norms kept in float) that our loader reads back, the 8-bit logits close to float."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlx.core")

import mlx.core as mx  # noqa: E402

from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint  # noqa: E402

# The tiny experts are 32 wide, so groups of 32 (the real model's 1024/2048 take the default 64).
GROUP = 32
# Cosine similarity of the 8-bit logits to the float model's (measured 0.9999).
COSINE_8BIT = 0.999


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_tiny_moe_checkpoint(tmp_path_factory.mktemp("moe_bf16"),
                                    TinyMoESpec(dtype="bfloat16", seed=4))


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory):
    from llada_mlx import convert

    root = tmp_path_factory.mktemp("moe_converted")
    return {bits: convert(source, root / f"{bits}bit", bits=bits, group_size=GROUP)
            for bits in (8, 4)}


def stored(folder):
    from safetensors import safe_open

    found = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as handle:
            for name in handle.keys():
                found[name] = handle.get_slice(name).get_dtype()
    return found


def logits(model, ids) -> np.ndarray:
    return np.array(model(mx.array([ids])).astype(mx.float32)).ravel()


@pytest.mark.parametrize("bits", [8, 4])
def test_layout_experts_quantized_router_and_norms_float(bits, converted):
    folder = converted[bits]
    names = stored(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["quantization"] == {"group_size": GROUP, "bits": bits}
    assert config["architectures"][0] == "LLaDAMoEModelLM"
    for e in range(4):  # every expert its own quantized tensors
        for proj in ("gate_proj", "up_proj", "down_proj"):
            stem = f"model.layers.1.mlp.experts.{e}.{proj}"
            assert names[f"{stem}.weight"] == "U32"
            assert f"{stem}.scales" in names and f"{stem}.biases" in names
    assert "model.layers.0.mlp.gate.scales" not in names  # the router stays float
    assert names["model.layers.0.mlp.gate.weight"] == "BF16"
    assert names["model.layers.0.self_attn.q_norm.weight"] == "BF16"
    assert names["model.layers.0.input_layernorm.weight"] == "BF16"
    assert names["model.lm_head.weight"] == "U32"
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(names)
    assert (folder / "tokenizer_config.json").is_file()


def test_8bit_logits_close_to_float(source, converted):
    from llada_mlx import load

    reference, tokenizer = load(source, dtype="float32")
    model, _ = load(converted[8], dtype="float32")
    from llada_mlx.moe import QuantizedSwitchLinear

    assert isinstance(model.model.layers[0].mlp.switch_mlp.up_proj, QuantizedSwitchLinear)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "In the beginning"}],
                                         add_generation_prompt=True, tokenize=False)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids += [model.args.mask_token_id] * 16
    a, b = logits(model, ids), logits(reference, ids)
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    print(f"\n8-bit MoE: cosine to float {cosine:.6f}")
    assert cosine > COSINE_8BIT


def test_4bit_loads_and_generates(converted):
    import llada_mlx

    model, tokenizer = llada_mlx.load(converted[4])
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}],
                                         add_generation_prompt=True, tokenize=False)
    prompt = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    frames = list(llada_mlx.generate_steps(model, prompt, gen_length=16, block_length=8,
                                           steps=8, mode="exact"))
    assert len(frames) == 8 and (frames[-1].tokens != model.args.mask_token_id).all()


def test_group_size_must_divide_the_expert_width(source, tmp_path):
    from llada_mlx import convert

    with pytest.raises(ValueError, match="experts.0.down_proj.weight has input width 32"):
        convert(source, tmp_path / "out", bits=8, group_size=64)
    assert not (tmp_path / "out").exists()


def test_malformed_source_is_named(source, tmp_path):
    import shutil

    from llada_core.checkpoint import CheckpointError
    from llada_mlx import convert

    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    config = json.loads((broken / "config.json").read_text())
    config["shared_expert_intermediate_size"] = 64
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shared_expert"):
        convert(broken, tmp_path / "out", bits=8, group_size=GROUP)


def test_dense_layers_and_shared_experts_convert(tmp_path):
    """A dense layer (moe_layer_freq 0) and shared experts are quantized like any Linear and
    load back close to the float model."""
    from llada_mlx import convert, load

    source = make_tiny_moe_checkpoint(tmp_path / "dense", TinyMoESpec(
        dtype="bfloat16", seed=5, num_hidden_layers=3, dense_layers=(0,),
        shared_expert_intermediate_size=32))
    out = convert(source, tmp_path / "8bit", bits=8, group_size=GROUP)
    names = stored(out)
    assert names["model.layers.0.mlp.down_proj.weight"] == "U32"          # the dense layer
    assert "model.layers.0.mlp.gate.weight" not in names                  # it has no router
    assert names["model.layers.1.shared_expert.up_proj.weight"] == "U32"  # the shared expert
    reference, tokenizer = load(source, dtype="float32")
    model, _ = load(out, dtype="float32")
    ids = list(tokenizer("In the beginning God created", add_special_tokens=False)["input_ids"])
    ids += [model.args.mask_token_id] * 8
    a, b = logits(model, ids), logits(reference, ids)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > COSINE_8BIT
