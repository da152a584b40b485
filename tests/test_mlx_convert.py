"""`llada convert` and llada_mlx.convert: the mlx-community layout, quantized, loadable, written
shard by shard while reading one source tensor at a time; and the MLX backend behind
`llada generate` / `llada chat`."""

from __future__ import annotations

import importlib
import io
import json
import weakref
from pathlib import Path

import numpy as np
import pytest

from mlx_support import copy_without_weights, read_tensors  # noqa: F401

import mlx.core as mx  # noqa: E402

from app.cli import main  # noqa: E402
from llada_core.checkpoint import CheckpointError  # noqa: E402


def mlx_tensors(folder: Path) -> dict[str, mx.array]:
    """Every tensor of a folder's safetensors files (MLX reads bfloat16; numpy cannot)."""
    tensors: dict[str, mx.array] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(mx.load(str(path)))
    return tensors


@pytest.fixture(scope="module")
def converted(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("convert") / "tiny-mlx-8bit"
    assert main(["convert", str(tiny_checkpoint), str(out), "--bits", "8"]) == 0
    return out


def test_convert_writes_the_mlx_community_layout(converted, tiny_checkpoint):
    original = json.loads((tiny_checkpoint / "config.json").read_text())
    config = json.loads((converted / "config.json").read_text())
    assert config["quantization"] == {"group_size": 64, "bits": 8}
    assert config["quantization_config"] == {"group_size": 64, "bits": 8}
    assert {k: v for k, v in config.items() if k in original} == original

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "generation_config.json"):
        assert (converted / name).read_bytes() == (tiny_checkpoint / name).read_bytes()

    tensors = mlx_tensors(converted)
    n_layers = original["n_layers"]
    quantized = ["model.embed_tokens", "model.lm_head"] + [
        f"model.layers.{i}.{p}" for i in range(n_layers)
        for p in ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")]
    norms = ["model.norm.weight"] + [
        f"model.layers.{i}.{p}.weight" for i in range(n_layers) for p in ("attn_norm", "ff_norm")]
    expected = {f"{q}.{part}" for q in quantized for part in ("weight", "scales", "biases")}
    assert set(tensors) == expected | set(norms)
    d = original["d_model"]
    rows = original["embedding_size"]
    assert tensors["model.lm_head.weight"].dtype == mx.uint32
    assert tensors["model.lm_head.weight"].shape == (rows, d * 8 // 32)
    assert tensors["model.lm_head.scales"].shape == (rows, d // 64)
    # Scales, biases and norms default to bfloat16, the dtype LLaDA was trained in.
    assert tensors["model.lm_head.scales"].dtype == mx.bfloat16
    assert tensors["model.lm_head.biases"].dtype == mx.bfloat16
    assert tensors["model.norm.weight"].dtype == mx.bfloat16


def test_converted_checkpoint_loads_and_generates(converted):
    from llada_mlx import encode_chat, generate_steps, load

    model, tokenizer = load(converted)
    prompt = encode_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    frames = list(generate_steps(model, prompt, gen_length=8, block_length=8, steps=4))
    assert frames[-1].done and not (frames[-1].tokens == model.args.mask_token_id).any()


def test_torch_refuses_the_converted_checkpoint(converted):
    pytest.importorskip("torch")
    from llada_torch import load

    with pytest.raises(CheckpointError, match="MLX backend"):
        load(converted, device="cpu")


def test_convert_shards_large_outputs(tiny_checkpoint, tmp_path):
    from llada_mlx import convert, load

    shard_bytes = 20_000
    out = convert(tiny_checkpoint, tmp_path / "sharded", bits=4, shard_bytes=shard_bytes)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and all((out / f).is_file() for f in files)
    assert files == [f"model-{n:05d}-of-{len(files):05d}.safetensors" for n in range(1, len(files) + 1)]
    assert sorted(p.name for p in out.glob("*.safetensors")) == files
    tensors = mlx_tensors(out)
    assert set(index["weight_map"]) == set(tensors)
    assert list(index["weight_map"]) == sorted(index["weight_map"])
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())
    # A shard stays under the limit unless one converted tensor (weight, scales, biases) is bigger.
    for name in files:
        shard = mx.load(str(out / name))
        sources = {key.rsplit(".", 1)[0] for key in shard}
        assert len(sources) == 1 or sum(t.nbytes for t in shard.values()) <= shard_bytes
    model, _ = load(out)
    assert model.args.quantization == {"group_size": 64, "bits": 4}


def test_loader_reads_the_files_the_index_names(tiny_checkpoint, tmp_path):
    from llada_mlx import convert, load

    out = convert(tiny_checkpoint, tmp_path / "sharded", bits=8, shard_bytes=30_000)
    # A stray safetensors file beside the shards: only the index decides what is read.
    mx.save_safetensors(str(out / "stray.safetensors"), {"unrelated.weight": mx.zeros((2,))})
    model, _ = load(out)
    assert model.args.quantization == {"group_size": 64, "bits": 8}


def test_single_shard_output_has_an_index_too(tiny_checkpoint, tmp_path):
    from llada_mlx import convert

    out = convert(tiny_checkpoint, tmp_path / "one", bits=8)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {"model.safetensors"}
    assert index["metadata"]["total_parameters"] == sum(
        v.size for v in read_tensors(tiny_checkpoint).values())


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_dtype_option_and_the_same_numbers_as_before(tiny_checkpoint, tmp_path, dtype):
    """float32 source: quantized as before (float32 scales, then cast to the asked dtype)."""
    from llada_mlx import convert

    out = convert(tiny_checkpoint, tmp_path / dtype, bits=8, dtype=dtype)
    tensors = mlx_tensors(out)
    source = read_tensors(tiny_checkpoint)
    weight = mx.array(source["model.transformer.blocks.0.ff_proj.weight"])
    packed, scales, biases = mx.quantize(weight, 64, 8)
    stem = "model.layers.0.ff_proj"
    assert mx.array_equal(tensors[f"{stem}.weight"], packed)
    assert tensors[f"{stem}.scales"].dtype == getattr(mx, dtype)
    assert mx.array_equal(tensors[f"{stem}.scales"], scales.astype(getattr(mx, dtype)))
    assert mx.array_equal(tensors[f"{stem}.biases"], biases.astype(getattr(mx, dtype)))
    norm = mx.array(source["model.transformer.ln_f.weight"]).astype(getattr(mx, dtype))
    assert mx.array_equal(tensors["model.norm.weight"], norm)


def test_bfloat16_source_quantizes_without_a_float32_copy(tiny_bf16_checkpoint, tmp_path,
                                                          monkeypatch):
    """Quantized straight from bf16: no float32 weight is made, and the numbers equal those of
    quantizing a float32 copy and rounding its scales to bf16."""
    conversion = importlib.import_module("llada_mlx.convert")  # llada_mlx.convert is the function

    quantized_dtypes = []
    real_quantize = mx.quantize

    def quantize(w, *args, **kwargs):
        quantized_dtypes.append(w.dtype)
        return real_quantize(w, *args, **kwargs)

    monkeypatch.setattr(mx, "quantize", quantize)
    out = conversion.convert(tiny_bf16_checkpoint, tmp_path / "bf16", bits=4)
    monkeypatch.undo()
    assert set(quantized_dtypes) == {mx.bfloat16}

    tensors = mlx_tensors(out)
    source = mlx_tensors(tiny_bf16_checkpoint)
    weight = source["model.transformer.blocks.1.up_proj.weight"]
    assert weight.dtype == mx.bfloat16
    packed, scales, biases = mx.quantize(weight.astype(mx.float32), 64, 4)
    stem = "model.layers.1.up_proj"
    assert mx.array_equal(tensors[f"{stem}.weight"], packed)
    assert mx.array_equal(tensors[f"{stem}.scales"], scales.astype(mx.bfloat16))
    assert mx.array_equal(tensors[f"{stem}.biases"], biases.astype(mx.bfloat16))


@pytest.fixture(scope="module")
def four_shard_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The float32 tiny checkpoint re-saved as four safetensors files with an index."""
    from safetensors.numpy import save_file

    folder = copy_without_weights(tiny_checkpoint, tmp_path_factory.mktemp("four_shards"))
    tensors = read_tensors(tiny_checkpoint)
    names = sorted(tensors)
    weight_map = {}
    for number, group in enumerate(np.array_split(np.arange(len(names)), 4), start=1):
        filename = f"model-{number:05d}-of-00004.safetensors"
        save_file({names[i]: tensors[names[i]] for i in group}, str(folder / filename),
                  metadata={"format": "pt"})
        weight_map.update({names[i]: filename for i in group})
    index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())},
             "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_convert_streams_one_source_tensor_at_a_time(four_shard_checkpoint, tmp_path, monkeypatch):
    """While a tensor is converted, every tensor converted before it has been freed and only
    the current source file's (lazy) tensors exist: the converter never holds the model."""
    conversion = importlib.import_module("llada_mlx.convert")  # llada_mlx.convert is the function

    tracked: list[tuple[str, weakref.ref]] = []  # (source file, a tensor it handed out)
    opened: list[str] = []
    done: list[weakref.ref] = []
    checked = []
    real_read, real_convert = conversion.read_shard, conversion.convert_tensor

    def read_shard(path):
        tensors = real_read(path)
        opened.append(path.name)
        tracked.extend((path.name, weakref.ref(value)) for value in tensors.values())
        return tensors

    def convert_tensor(name, value, *args, **kwargs):
        assert all(ref() is None for ref in done), f"a converted source tensor is alive at {name}"
        alive_files = {file for file, ref in tracked if ref() is not None}
        assert len(alive_files) == 1, f"tensors of {sorted(alive_files)} alive at {name}"
        done.append(weakref.ref(value))
        checked.append(name)
        return real_convert(name, value, *args, **kwargs)

    monkeypatch.setattr(conversion, "read_shard", read_shard)
    monkeypatch.setattr(conversion, "convert_tensor", convert_tensor)
    out = conversion.convert(four_shard_checkpoint, tmp_path / "out", bits=8, shard_bytes=30_000)

    files = sorted(p.name for p in four_shard_checkpoint.glob("*.safetensors"))
    # Headers once while checking, then each file once, in order, while converting.
    assert opened == files + files
    assert len(checked) == len(read_tensors(four_shard_checkpoint))
    assert len(set(json.loads((out / "model.safetensors.index.json").read_text())
                   ["weight_map"].values())) > 1


def test_convert_command_options(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["convert", str(tiny_checkpoint), str(out), "--bits", "4", "--dtype", "float32",
                 "--shard-size", "0.00003"]) == 0
    printed = capsys.readouterr().out
    assert "float32 scales" in printed and "4-bit" in printed
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1
    assert mlx_tensors(out)["model.lm_head.scales"].dtype == mx.float32
    with pytest.raises(SystemExit):
        main(["convert", str(tiny_checkpoint), str(tmp_path / "bad"), "--shard-size", "0"])


def test_convert_refuses_a_used_folder_and_a_quantized_source(converted, tiny_checkpoint, tmp_path):
    from llada_mlx import convert

    with pytest.raises(ValueError, match="not an empty folder"):
        convert(tiny_checkpoint, converted)
    with pytest.raises(CheckpointError, match="already quantized"):
        convert(converted, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_convert_rejects_bad_options(tiny_checkpoint, tmp_path):
    from llada_mlx import convert

    with pytest.raises(ValueError, match="bits 7"):
        convert(tiny_checkpoint, tmp_path / "a", bits=7)
    with pytest.raises(ValueError, match="group size 48"):
        convert(tiny_checkpoint, tmp_path / "b", group_size=48)
    # d_model 64 is not a multiple of 128: the error names the tensor, and nothing is left behind.
    with pytest.raises(ValueError, match=r"model\.embed_tokens\.weight has input width 64"):
        convert(tiny_checkpoint, tmp_path / "c", group_size=128)
    assert not (tmp_path / "c").exists()


def test_convert_command_reports_errors(tiny_checkpoint, tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nothing-here"), str(tmp_path / "out")]) == 2
    assert "llada convert: error: no model folder" in capsys.readouterr().err


def test_generate_command_with_the_mlx_backend(tiny_checkpoint, tiny_torch, capsys):
    settings = ["--gen-length", "16", "--steps", "8", "--block-length", "8", "--cfg-scale", "1.0"]
    answers = {}
    for backend in ("mlx", "torch"):
        assert main(["generate", "--backend", backend, "--model", str(tiny_checkpoint),
                     "--prompt", "Hello", "--json", *settings]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["backend"] == backend and result["nfe"] == 16
        answers[backend] = result["answer_ids"]
    assert answers["mlx"] == answers["torch"]


def test_chat_command_with_the_mlx_backend(converted):
    from app.cli import build_parser
    from app.cli import chat

    args = build_parser().parse_args(["chat", "--backend", "mlx", "--model", str(converted),
                                      "--gen-length", "8", "--steps", "4", "--block-length", "8"])
    replies = iter(["Hello", "And again?", "/quit"])
    out = io.StringIO()
    assert chat.run(args, input_fn=lambda _: next(replies), out=out) == 0
    assert out.getvalue().count("LLaDA:") == 2
