"""Strict loading of the official layout: every way a checkpoint can be wrong has a clear error."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file

from llada_core.checkpoint import CheckpointError, stored_dtype, stored_weights
from llada_torch import load
from llada_torch.loader import pick_device


@pytest.fixture
def copy(tiny_checkpoint, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def single_file(folder):
    """Merge the shards into model.safetensors so a test can edit the tensors."""
    weights = {}
    for shard in sorted(folder.glob("model-*.safetensors")):
        weights.update(load_file(shard))
        shard.unlink()
    (folder / "model.safetensors.index.json").unlink()
    return weights


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_loads_the_official_layout_with_the_checkpoint_dtype(tiny_checkpoint, tiny_bf16_checkpoint):
    model, tokenizer = load(tiny_checkpoint, device="cpu")
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.args.eot_token_id == tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert load(tiny_bf16_checkpoint, device="cpu")[0].dtype == torch.bfloat16
    assert load(tiny_checkpoint, dtype="bfloat16", device="cpu")[0].dtype == torch.bfloat16
    assert load(tiny_checkpoint, dtype="float16", device="cpu")[0].dtype == torch.float16


def test_default_dtype_is_the_stored_one_not_config_torch_dtype(tiny_bf16_checkpoint, tmp_path):
    """The official 8B config.json has no torch_dtype; its bf16 weights must load as bf16."""
    folder = tmp_path / "bf16"
    shutil.copytree(tiny_bf16_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["torch_dtype"]
    (folder / "config.json").write_text(json.dumps(config))
    assert stored_dtype(folder) == "bfloat16"
    model, _ = load(folder, device="cpu")
    assert model.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert load(folder, dtype="float32", device="cpu")[0].dtype == torch.float32
    # a config that disagrees with the weights does not win either
    edit_config(folder, torch_dtype="float32")
    assert load(folder, device="cpu")[0].dtype == torch.bfloat16


def test_dtype_option_reaches_the_loader(tiny_bf16_checkpoint):
    from app.cli import build_parser
    from app.cli.options import load_model

    def loaded(*flags):
        args = build_parser().parse_args(["generate", "--model", str(tiny_bf16_checkpoint),
                                          "--backend", "torch", "--device", "cpu", *flags, "--prompt", "hi"])
        return load_model(args).model

    assert loaded().dtype == torch.bfloat16
    assert loaded("--dtype", "float32").dtype == torch.float32


def test_stored_weights_come_from_the_headers(tiny_checkpoint, tiny_bf16_checkpoint, copy):
    f32, bf16 = stored_weights(tiny_checkpoint), stored_weights(tiny_bf16_checkpoint)
    assert f32.dtype == "float32" and bf16.dtype == "bfloat16"
    assert set(f32.tensors) == set(bf16.tensors)
    data = sum(f.stat().st_size for f in tiny_checkpoint.glob("*.safetensors"))
    assert 0 < data - f32.nbytes < 64 * 1024          # the files are tensors plus small headers
    assert f32.nbytes == 2 * bf16.nbytes == f32.nbytes_as("float32") == bf16.nbytes_as("float32")
    assert f32.nbytes_as("bfloat16") == bf16.nbytes
    # integer tensors (quantized weights) keep their size when the floats are cast
    weights = single_file(copy)
    weights["model.transformer.extra.weight"] = torch.zeros(10, 4, dtype=torch.int32)
    save_file(weights, copy / "model.safetensors")
    mixed = stored_weights(copy)
    assert mixed.tensors["model.transformer.extra.weight"].dtype == "int32"
    assert mixed.dtype == "float32"
    assert mixed.nbytes_as("float16") == f32.nbytes // 2 + 160
    with pytest.raises(ValueError, match="dtype 'int4'"):
        mixed.nbytes_as("int4")


def test_device_auto_falls_back_to_cpu():
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert pick_device(None).type == "cpu"
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="not a device"):
        pick_device("toaster")


def test_missing_tensor_is_named(copy):
    weights = single_file(copy)
    del weights["model.transformer.blocks.1.up_proj.weight"]
    save_file(weights, copy / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing tensor\(s\): model.transformer.blocks.1.up_proj.weight"):
        load(copy, device="cpu")


def test_unexpected_tensor_is_named(copy):
    weights = single_file(copy)
    weights["model.transformer.blocks.0.q_norm.weight"] = torch.ones(4)
    save_file(weights, copy / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"unexpected tensor\(s\): model.transformer.blocks.0.q_norm.weight"):
        load(copy, device="cpu")


def test_wrong_shape_is_named(copy):
    weights = single_file(copy)
    weights["model.transformer.ln_f.weight"] = torch.ones(3)
    save_file(weights, copy / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.transformer.ln_f.weight has shape \[3\], expected \[64\]"):
        load(copy, device="cpu")


def test_corrupt_weights_file(copy):
    (copy / "model-00002-of-00002.safetensors").write_bytes(b"not a tensor file at all")
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors is not a readable safetensors file"):
        load(copy, device="cpu")


def test_missing_shard(copy):
    (copy / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing weight file"):
        load(copy, device="cpu")


def test_pickle_weights_are_refused(copy):
    single_file(copy)
    (copy / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="only safetensors are loaded"):
        load(copy, device="cpu")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "llama"}, "model_type 'llama'; expected 'llada'"),
        ({"block_type": "sequential"}, "block_type='sequential'"),
        ({"quantization": {"group_size": 64, "bits": 8}}, "load it with the MLX backend"),
    ],
)
def test_configs_we_cannot_run(copy, changes, message):
    edit_config(copy, **changes)
    with pytest.raises(CheckpointError, match=message):
        load(copy, device="cpu")


def test_missing_config_field(copy):
    config = json.loads((copy / "config.json").read_text())
    del config["d_model"]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing a required field"):
        load(copy, device="cpu")


def test_missing_or_broken_files(copy, tmp_path):
    with pytest.raises(CheckpointError, match="no model folder"):
        load(tmp_path / "nowhere", device="cpu")
    (copy / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="config.json is not readable JSON"):
        load(copy, device="cpu")
    (copy / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load(copy, device="cpu")


def test_repo_id_without_network_or_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="not in the local cache"):
        load("GSAI-ML/LLaDA-8B-Instruct", device="cpu")


def test_bad_dtype(tiny_checkpoint):
    with pytest.raises(ValueError, match="dtype 'float64' is not one of"):
        load(tiny_checkpoint, dtype="float64", device="cpu")


def test_unquantized_mlx_names_load_to_the_same_model(copy, tiny_torch):
    weights = single_file(copy)
    renamed = {}
    for name, value in weights.items():
        name = (name.replace("model.transformer.wte.", "model.embed_tokens.")
                .replace("model.transformer.ln_f.", "model.norm.")
                .replace("model.transformer.ff_out.", "model.lm_head.")
                .replace("model.transformer.blocks.", "model.layers."))
        renamed[name] = value
    save_file(renamed, copy / "model.safetensors")
    model, _ = load(copy, device="cpu")
    ids = torch.tensor([[3, 4, 5, 6]])
    assert torch.equal(model(ids), tiny_torch[0](ids))
