"""`llada convert` and llada_mlx.convert: the mlx-community layout, quantized, loadable; and the
MLX backend behind `llada generate` / `llada chat`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from mlx_support import read_tensors  # noqa: F401

from app.cli import main  # noqa: E402
from llada_core.checkpoint import CheckpointError  # noqa: E402


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

    tensors = read_tensors(converted)
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
    assert tensors["model.lm_head.weight"].dtype == np.uint32
    assert tensors["model.lm_head.weight"].shape == (rows, d * 8 // 32)
    assert tensors["model.lm_head.scales"].shape == (rows, d // 64)
    assert tensors["model.lm_head.scales"].dtype == np.float16
    assert tensors["model.norm.weight"].dtype == np.float16


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

    out = convert(tiny_checkpoint, tmp_path / "sharded", bits=4, shard_bytes=20_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and all((out / f).is_file() for f in files)
    assert set(index["weight_map"]) == set(read_tensors(out))
    model, _ = load(out)
    assert model.args.quantization == {"group_size": 64, "bits": 4}


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
