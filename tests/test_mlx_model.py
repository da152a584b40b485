"""The MLX model against the PyTorch reference: forward logits, both layouts, quantized weights,
strict loading of malformed checkpoints, and the import boundaries between the backends."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mlx_support import (  # noqa: F401  (fixtures)
    chat_prompt, cosine, mlx_layout_checkpoint, read_tensors, tiny_mlx, tiny_mlx_renamed,
    write_checkpoint,
)

import mlx.core as mx  # noqa: E402

from llada_core.checkpoint import CheckpointError  # noqa: E402

# Float32, same weights: MLX and torch logits agree to this fraction of the largest logit.
LOGIT_TOLERANCE = 1e-4


def canvas_for(tokenizer, model, answer: int = 32) -> list[int]:
    return chat_prompt(tokenizer) + [model.args.mask_token_id] * answer


def torch_logits(tiny_torch, canvas) -> np.ndarray:
    import torch

    model, _ = tiny_torch
    with torch.no_grad():
        return model(torch.tensor([canvas])).float().numpy()


def mlx_logits(model, canvas) -> np.ndarray:
    return np.array(model(mx.array([canvas])).astype(mx.float32))


@pytest.mark.parametrize("layout", ["official", "mlx-community"])
def test_forward_matches_torch(layout, tiny_mlx, tiny_mlx_renamed, tiny_torch):
    model, tokenizer = tiny_mlx if layout == "official" else tiny_mlx_renamed
    # A partly denoised canvas too, so real tokens sit on both sides of masks.
    canvas = canvas_for(tokenizer, model)
    canvas[-20:-10] = list(range(60, 70))
    expected = torch_logits(tiny_torch, canvas)
    got = mlx_logits(model, canvas)
    assert got.shape == expected.shape == (1, len(canvas), model.args.rows)
    diff = float(np.abs(got - expected).max())
    scale = float(np.abs(expected).max())
    print(f"\n{layout}: max |logit diff| {diff:.3g}, max |logit| {scale:.3g}, ratio {diff / scale:.3g}")
    assert diff <= LOGIT_TOLERANCE * scale
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_layouts_give_identical_logits(tiny_mlx, tiny_mlx_renamed):
    canvas = canvas_for(tiny_mlx[1], tiny_mlx[0], 16)
    assert np.array_equal(mlx_logits(tiny_mlx[0], canvas), mlx_logits(tiny_mlx_renamed[0], canvas))


def test_attention_is_bidirectional(tiny_mlx):
    """Changing the last token changes the logits at the first position (no causal mask)."""
    model, tokenizer = tiny_mlx
    canvas = canvas_for(tokenizer, model, 8)
    changed = canvas[:-1] + [65]
    assert not np.allclose(mlx_logits(model, canvas)[0, 0], mlx_logits(model, changed)[0, 0])


def test_model_args_from_config(tiny_mlx, tiny_checkpoint):
    model, tokenizer = tiny_mlx
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    args = model.args
    assert (args.d_model, args.n_layers, args.n_heads) == (
        config["d_model"], config["n_layers"], config["n_heads"])
    assert args.rows == config["embedding_size"]
    assert args.rope_theta == config["rope_theta"]
    assert args.mask_token_id == config["mask_token_id"]
    assert args.eos_token_id == config["eos_token_id"]
    assert args.eot_token_id == tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert args.quantization is None
    assert model.dtype == mx.float32


def test_out_of_range_ids_are_refused(tiny_mlx):
    model, _ = tiny_mlx
    for bad in (model.args.rows, -1):
        with pytest.raises(ValueError, match=f"token id {bad} is not a valid id"):
            model(mx.array([[1, 2, bad]]))


def test_bfloat16_checkpoint_matches_torch_closely(tiny_bf16_checkpoint):
    torch = pytest.importorskip("torch")
    import llada_torch

    from llada_mlx import load

    model, tokenizer = load(tiny_bf16_checkpoint)
    assert model.dtype == mx.bfloat16
    canvas = canvas_for(tokenizer, model, 16)
    reference, _ = llada_torch.load(tiny_bf16_checkpoint, device="cpu")
    with torch.no_grad():
        expected = reference(torch.tensor([canvas])).float().numpy()
    got = mlx_logits(model, canvas)
    assert cosine(got, expected).min() > 0.999


def test_dtype_argument_casts(tiny_checkpoint):
    from llada_mlx import load

    model, _ = load(tiny_checkpoint, dtype="float16")
    assert model.dtype == mx.float16
    assert model.model.embed_tokens.weight.dtype == mx.float16
    with pytest.raises(ValueError, match="dtype 'int8'"):
        load(tiny_checkpoint, dtype="int8")


# --- quantized weights -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def q8_checkpoint(tiny_checkpoint, tmp_path_factory):
    from llada_mlx import convert

    return convert(tiny_checkpoint, tmp_path_factory.mktemp("q8") / "out", bits=8, dtype="float32")


@pytest.fixture(scope="module")
def q4_checkpoint(tiny_checkpoint, tmp_path_factory):
    from llada_mlx import convert

    return convert(tiny_checkpoint, tmp_path_factory.mktemp("q4") / "out", bits=4, dtype="float16")


def test_8bit_logits_stay_close_to_float(q8_checkpoint, tiny_mlx):
    import mlx.nn as nn

    from llada_mlx import generate_steps, load

    model, tokenizer = load(q8_checkpoint)
    assert model.args.quantization == {"group_size": 64, "bits": 8}
    for module in (model.model.embed_tokens, model.model.lm_head, model.model.layers[0].ff_proj):
        assert isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding))
        assert module.bits == 8 and module.group_size == 64
    canvas = canvas_for(tokenizer, model)
    similarity = cosine(mlx_logits(model, canvas), mlx_logits(tiny_mlx[0], canvas))
    print(f"\n8-bit vs float32 logits: cosine min {similarity.min():.5f}, mean {similarity.mean():.5f}")
    assert similarity.min() > 0.99

    prompt = chat_prompt(tokenizer)
    settings = dict(gen_length=32, block_length=8, steps=16)
    quantized = list(generate_steps(model, prompt, **settings))[-1].tokens
    full = list(generate_steps(tiny_mlx[0], prompt, **settings))[-1].tokens
    agreement = float((quantized == full).mean())
    print(f"8-bit vs float32 answer agreement: {agreement:.3f} of {len(full)} tokens")
    assert (quantized != model.args.mask_token_id).all()


def test_4bit_loads_and_generates(q4_checkpoint):
    from llada_mlx import generate_steps, load

    model, tokenizer = load(q4_checkpoint)
    assert model.args.quantization == {"group_size": 64, "bits": 4}
    assert model.model.lm_head.bits == 4
    assert model.model.lm_head.scales.dtype == mx.float16
    frames = list(generate_steps(model, chat_prompt(tokenizer), gen_length=16, block_length=8,
                                 steps=8))
    assert frames[-1].done and (frames[-1].tokens != model.args.mask_token_id).all()


def test_quantized_checkpoint_with_cast_dtype(q4_checkpoint):
    from llada_mlx import load

    model, tokenizer = load(q4_checkpoint, dtype="float32")
    assert model.model.lm_head.scales.dtype == mx.float32
    assert np.isfinite(mlx_logits(model, canvas_for(tokenizer, model, 8))).all()


# --- malformed checkpoints ---------------------------------------------------------------------

def broken(tiny_checkpoint, tmp_path, edit=None, config_update=None):
    tensors = read_tensors(tiny_checkpoint)
    if edit:
        edit(tensors)
    return write_checkpoint(tiny_checkpoint, tmp_path / "broken", tensors, config_update)


def load_error(folder) -> str:
    from llada_mlx import load

    with pytest.raises(CheckpointError) as caught:
        load(folder)
    return str(caught.value)


def test_missing_tensor_is_named(tiny_checkpoint, tmp_path):
    folder = broken(tiny_checkpoint, tmp_path,
                    lambda t: t.pop("model.transformer.blocks.1.up_proj.weight"))
    assert "missing tensor(s): model.layers.1.up_proj.weight" in load_error(folder)


def test_missing_head_is_an_error(tiny_checkpoint, tmp_path):
    folder = broken(tiny_checkpoint, tmp_path, lambda t: t.pop("model.transformer.ff_out.weight"))
    assert "model.lm_head.weight" in load_error(folder)


def test_wrong_shape_is_named(tiny_checkpoint, tmp_path):
    def edit(t):
        t["model.transformer.blocks.0.q_proj.weight"] = t["model.transformer.blocks.0.q_proj.weight"][:, :32]

    message = load_error(broken(tiny_checkpoint, tmp_path, edit))
    assert "model.layers.0.q_proj.weight has shape [64, 32], expected [64, 64]" in message


def test_unexpected_tensor_is_named(tiny_checkpoint, tmp_path):
    def edit(t):
        t["model.transformer.blocks.0.q_proj.bias"] = np.zeros(64, np.float32)

    assert "unexpected tensor(s): model.layers.0.q_proj.bias" in load_error(
        broken(tiny_checkpoint, tmp_path, edit))


def test_unknown_layout_is_an_error(tiny_checkpoint, tmp_path):
    def edit(t):
        renamed = {name.replace("model.transformer.", "gpt."): v for name, v in t.items()}
        t.clear()
        t.update(renamed)

    message = load_error(broken(tiny_checkpoint, tmp_path, edit))
    assert "layout we do not know" in message and "gpt." in message


@pytest.mark.parametrize("entry, words", [
    ({"group_size": 64, "bits": 7}, "bits 7"),
    ({"group_size": 63, "bits": 8}, "group_size 63"),
    ({"bits": 8}, "group_size None"),
    ({"group_size": 64, "bits": 8, "mode": "mxfp4"}, "mode 'mxfp4'"),
    ("8bit", "must be an object"),
])
def test_bad_quantization_entry_is_an_error(q8_checkpoint, tmp_path, entry, words):
    folder = tmp_path / "bad_q"
    for path in q8_checkpoint.iterdir():
        (folder / path.name).parent.mkdir(exist_ok=True)
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    config["quantization"] = entry
    (folder / "config.json").write_text(json.dumps(config))
    message = load_error(folder)
    assert "quantization" in message and words in message


def test_quantized_weights_without_config_entry(q8_checkpoint, tmp_path):
    folder = tmp_path / "no_entry"
    folder.mkdir()
    for path in q8_checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    del config["quantization"], config["quantization_config"]
    (folder / "config.json").write_text(json.dumps(config))
    assert "has no 'quantization' entry" in load_error(folder)


def test_quantized_tensor_that_does_not_fit(q8_checkpoint, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "bad_scales"
    folder.mkdir()
    for path in q8_checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model.layers.0.k_proj.weight"] = tensors["model.layers.0.k_proj.weight"][:, :3]
    save_file(tensors, str(folder / "model.safetensors"))
    message = load_error(folder)
    assert "model.layers.0.k_proj" in message


def test_wrong_model_type_is_an_error(tiny_checkpoint, tmp_path):
    folder = broken(tiny_checkpoint, tmp_path, config_update={"model_type": "llama"})
    assert "model_type 'llama'" in load_error(folder)


# --- import boundaries -------------------------------------------------------------------------

def _imported_after(statement: str) -> set[str]:
    code = (f"import sys\n{statement}\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=str(__import__('pathlib').Path(__file__).parents[1]))
    return set(result.stdout.split())


def test_llada_mlx_imports_neither_torch_nor_app():
    modules = _imported_after("import llada_mlx, llada_mlx.convert, llada_mlx.sampler")
    assert "mlx" in modules
    assert "torch" not in modules and "app" not in modules and "llada_torch" not in modules


def test_llada_torch_does_not_import_mlx():
    pytest.importorskip("torch")
    modules = _imported_after("import llada_torch, llada_torch.sampler")
    assert "mlx" not in modules and "mlx_lm" not in modules and "llada_mlx" not in modules
