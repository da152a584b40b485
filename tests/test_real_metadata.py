"""Our loaders, tokenizer handling, sampler and converter on checkpoints made from the REAL LLaDA
metadata (../shared/real-metadata): real config values, real ids, the real 126464-row vocabulary,
the real shard map and the real tokenizer files (see tests/real_checkpoint.py).

Skipped where the real metadata is absent (a user's clone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from real_checkpoint import (
    BASE, INSTRUCT, LLADA_15, MLX_COMMUNITY, MODELS, ROOT, RealSpec, build_real_checkpoint,
    kept_layers, layer_of, read_real_json, real_file, real_metadata_dir,
)

from llada_core import tokens
from llada_core.chat import (
    answer_text, continue_conversation, encode_chat, load_tokenizer, render_chat,
)

pytestmark = pytest.mark.skipif(real_metadata_dir() is None,
                                reason="the real checkpoints' metadata (../shared/real-metadata) is not here")

SHRUNK = {"d_model", "n_layers", "n_heads", "n_kv_heads", "mlp_hidden_size"}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """build(model) -> a small float32 checkpoint of that real model, built once per module."""
    built: dict[str, Path] = {}

    def build(model: str) -> Path:
        if model not in built:
            folder = tmp_path_factory.mktemp(model.split("/")[-1])
            built[model] = build_real_checkpoint(model, folder, RealSpec())
        return built[model]

    return build


@pytest.fixture(scope="module")
def instruct_torch(real):
    pytest.importorskip("torch")
    from llada_torch import load

    return load(real(INSTRUCT), device="cpu")


# ---------------------------------------------------------------------------------------------
# The builder keeps what it says it keeps


@pytest.mark.parametrize("model", MODELS)
def test_built_checkpoint_carries_the_real_metadata(model, real):
    folder = real(model)
    real_config = read_real_json(model, "config.json")
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == set(real_config) and "torch_dtype" not in config
    assert {k: v for k, v in config.items() if k not in SHRUNK} == {
        k: v for k, v in real_config.items() if k not in SHRUNK}
    assert config["embedding_size"] == real_config["embedding_size"] == 126464
    for name in ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        assert (folder / name).read_bytes() == real_file(model, name).read_bytes()


@pytest.mark.parametrize("model", MODELS)
def test_built_checkpoint_keeps_the_real_shard_map(model, real):
    """Same shard files; each tensor where the real index puts the real tensor it stands for."""
    from safetensors import safe_open

    folder = real(model)
    real_map = read_real_json(model, "model.safetensors.index.json")["weight_map"]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    ours = index["weight_map"]
    assert set(ours.values()) == set(real_map.values())  # every real shard file, no other
    layers = kept_layers(real_map, RealSpec().n_layers)
    for name, shard in ours.items():
        layer = layer_of(name)
        real_name = name if layer is None else name.replace(
            f"blocks.{layer}.", f"blocks.{layers[layer]}.", 1)
        assert real_map[real_name] == shard, name
        with safe_open(str(folder / shard), framework="numpy") as handle:
            assert name in handle.keys()
    stored = 0
    for shard in set(ours.values()):
        with safe_open(str(folder / shard), framework="numpy") as handle:
            assert sorted(handle.keys()) == sorted(n for n, s in ours.items() if s == shard)
            stored += sum(handle.get_tensor(n).nbytes for n in handle.keys())
    assert index["metadata"]["total_size"] == stored


def test_the_8b_map_is_out_of_order_and_the_15_map_is_not(real):
    """The facts the loaders must survive, as the built checkpoints carry them."""
    instruct = json.loads((real(INSTRUCT) / "model.safetensors.index.json").read_text())["weight_map"]
    first = "model-00001-of-00006.safetensors"
    assert instruct["model.transformer.wte.weight"] == first
    assert instruct["model.transformer.ln_f.weight"] == first
    assert instruct["model.transformer.ff_out.weight"] == "model-00002-of-00006.safetensors"
    assert all(instruct[f"model.transformer.blocks.{i}.attn_out.weight"] == first for i in (0, 1))
    sequential = json.loads((real(LLADA_15) / "model.safetensors.index.json").read_text())["weight_map"]
    assert sequential["model.transformer.ff_out.weight"] == "model-00006-of-00006.safetensors"


@pytest.mark.parametrize("model, size", [(INSTRUCT, 126349), (BASE, 126346), (LLADA_15, 126349)])
def test_stand_in_tokenizer_has_the_real_added_tokens_at_their_real_ids(model, size, real):
    tokenizer = load_tokenizer(real(model))
    decoder = read_real_json(model, "tokenizer_config.json")["added_tokens_decoder"]
    for token_id, entry in decoder.items():
        assert tokenizer.convert_tokens_to_ids(entry["content"]) == int(token_id)
    assert len(tokenizer) == size
    config = read_real_json(model, "config.json")
    assert len(tokenizer) < config["embedding_size"]  # rows past the tokenizer exist


# ---------------------------------------------------------------------------------------------
# Tokenizer files as published


def test_base_special_tokens_map_is_invalid_json_and_loading_survives_it(real, tmp_path):
    """Base's special_tokens_map.json lacks a comma after "<|mdm_mask|>"; we never parse it,
    even where transformers would (a tokenizer_config.json without added_tokens_decoder)."""
    import shutil

    with pytest.raises(json.JSONDecodeError):
        json.loads(real_file(BASE, "special_tokens_map.json").read_text())
    text = real_file(BASE, "special_tokens_map.json").read_text()
    assert '"<|mdm_mask|>"\n    "<role>"' in text  # the missing comma

    tokenizer = load_tokenizer(real(BASE))
    assert tokenizer.bos_token == tokens.BOS and tokenizer.eos_token == tokens.EOS
    assert tokenizer.convert_tokens_to_ids(tokens.MASK) == 126336

    legacy = tmp_path / "legacy"
    shutil.copytree(real(BASE), legacy, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((legacy / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]
    (legacy / "tokenizer_config.json").write_text(json.dumps(config))
    from transformers import PreTrainedTokenizerFast

    with pytest.raises(ValueError):  # transformers' own loader parses the broken file here
        PreTrainedTokenizerFast.from_pretrained(str(legacy))
    survived = load_tokenizer(legacy)
    assert survived.bos_token_id == 126080 and survived.eos_token_id == 126081
    assert survived.chat_template == config["chat_template"]
    sample = "Hello <|mdm_mask|> world<role>"
    assert survived(sample, add_special_tokens=False)["input_ids"] == tokenizer(
        sample, add_special_tokens=False)["input_ids"]
    assert set(survived.all_special_tokens) == set(tokenizer.all_special_tokens)


def test_neither_tokenizer_sets_a_mask_token_the_config_gives_it(real):
    for model in (INSTRUCT, BASE):
        tokenizer = load_tokenizer(real(model))
        assert tokenizer.mask_token is None
        mask = read_real_json(model, "config.json")["mask_token_id"]
        assert mask == 126336 and tokenizer.convert_tokens_to_ids(tokens.MASK) == mask


def test_encode_chat_follows_the_real_template_with_the_real_ids(real):
    tokenizer = load_tokenizer(real(INSTRUCT))
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    bos, eos, start, end, eot = 126080, 126081, 126346, 126347, 126348
    assert [tokenizer.convert_tokens_to_ids(t) for t in (
        tokens.BOS, tokens.EOS, tokens.START_HEADER, tokens.END_HEADER, tokens.EOT)] == [
        bos, eos, start, end, eot]
    real_template = read_real_json(INSTRUCT, "tokenizer_config.json")["chat_template"]
    assert tokenizer.chat_template == real_template

    messages = [{"role": "user", "content": "  What is 2+2?\n"}]
    assert render_chat(tokenizer, messages) == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert encode_chat(tokenizer, messages) == (
        [bos, start] + ids("user") + [end] + ids("\n\nWhat is 2+2?") + [eot]
        + [start] + ids("assistant") + [end] + ids("\n\n"))

    first = encode_chat(tokenizer, messages)
    second = continue_conversation(tokenizer, first + [7, 8, eot, eos, eos], "More")
    assert second[:len(first) + 3] == first + [7, 8, eot]
    assert eos not in second and second.count(bos) == 1 and second[len(first) + 3] == start


def test_llada_15_is_an_instruct_model_with_instructs_tokenizer_files(real):
    """LLaDA-1.5's metadata has no tokenizer_config.json; its special-token map is Instruct's."""
    metadata = real_metadata_dir()
    assert not (metadata / LLADA_15 / "tokenizer_config.json").exists()
    assert not (metadata / LLADA_15 / "config.json").exists()
    assert ((metadata / LLADA_15 / "special_tokens_map.json").read_bytes()
            == (metadata / INSTRUCT / "special_tokens_map.json").read_bytes())
    generation = read_real_json(LLADA_15, "generation_config.json")
    config = read_real_json(LLADA_15, "config.json")  # Instruct's, as the builder uses it
    assert generation["eos_token_id"] == config["eos_token_id"]
    assert generation["bos_token_id"] == 126080
    tokenizer = load_tokenizer(real(LLADA_15))
    prompt = encode_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    assert prompt[:2] == [126080, 126346] and 126348 in prompt


# ---------------------------------------------------------------------------------------------
# Ids past the tokenizer


def test_ids_past_the_tokenizer_decode_to_nothing(real):
    """The embedding has 126464 rows; ids from len(tokenizer) on carry no text and must not crash
    the visible answer or the live view."""
    from app.session.frame_text import TokenPieces

    tokenizer = load_tokenizer(real(INSTRUCT))
    hello = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    past = [len(tokenizer), 126400, 126463]
    assert answer_text(tokenizer, hello[:1] + past + hello[1:] + [126348, 5]) == "Hello world"
    assert answer_text(tokenizer, past) == ""
    pieces = TokenPieces(tokenizer, 126336)
    assert pieces([126336] + past + hello) == ["░", "", "", ""] + [
        tokenizer.decode([t]) for t in hello]


# ---------------------------------------------------------------------------------------------
# Both backends


@pytest.mark.parametrize("model", MODELS)
def test_torch_loads_every_real_layout(model, real):
    torch = pytest.importorskip("torch")
    from llada_torch import load

    loaded, tokenizer = load(real(model), device="cpu")
    config = read_real_json(model, "config.json")
    assert loaded.args.mask_token_id == config["mask_token_id"] == 126336
    assert loaded.args.eos_token_id == config["eos_token_id"] == 126081
    assert loaded.args.eot_token_id == (None if model == BASE else 126348)
    assert loaded.dtype == torch.float32
    logits = loaded(torch.tensor([[126080, 300, 126336]]))
    assert logits.shape == (1, 3, config["embedding_size"])


def test_mlx_exact_mode_answers_equal_torch(real, instruct_torch):
    """Token for token on the real ids and vocabulary (float32, tiny: MLX on a CPU is slow)."""
    pytest.importorskip("mlx.core")
    import numpy as np

    import llada_mlx
    from llada_torch import generate_steps

    mlx_model, tokenizer = llada_mlx.load(real(INSTRUCT))
    assert mlx_model.args.eot_token_id == 126348 and mlx_model.args.mask_token_id == 126336
    prompt = encode_chat(tokenizer, [{"role": "user", "content": "Hello"}])
    for settings in (dict(gen_length=8, block_length=4, steps=4),
                     dict(gen_length=8, block_length=8, steps=8, cfg_scale=1.0,
                          confidence_eos_eot_inf=True)):
        expected = list(generate_steps(instruct_torch[0], prompt, **settings))
        frames = list(llada_mlx.generate_steps(mlx_model, prompt, **settings))
        assert len(frames) == len(expected)
        for ours, theirs in zip(frames, expected):
            np.testing.assert_array_equal(ours.tokens, theirs.tokens)
            np.testing.assert_array_equal(ours.committed_at, theirs.committed_at)
        answer = [int(t) for t in frames[-1].tokens]
        assert all(0 <= t < 126464 for t in answer)
        answer_text(tokenizer, answer)  # random ids, often past the tokenizer: no crash


def mlx_community(bits, name: str):
    path = real_metadata_dir() / MLX_COMMUNITY[bits] / name
    return json.loads(path.read_text())


def expected_names(bits, n_layers: int) -> set[str]:
    """mlx-community's tensor names, for the layers a small checkpoint has."""
    names = mlx_community(bits, "model.safetensors.index.RECONSTRUCTED.json")["weight_map"]
    return {n for n in names
            if not n.startswith("model.layers.") or int(n.split(".")[2]) < n_layers}


def converted_names(folder: Path) -> set[str]:
    from safetensors import safe_open

    names: set[str] = set()
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="numpy") as handle:
            names |= set(handle.keys())
    return names


def test_llada_convert_gives_mlx_communitys_names_and_config(real, tmp_path):
    pytest.importorskip("mlx.core")
    out = tmp_path / "mlx-8bit"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "convert", str(real(INSTRUCT)), str(out), "--bits", "8",
         "--dtype", "float16"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    n_layers = RealSpec().n_layers
    assert converted_names(out) == expected_names(8, n_layers)

    theirs = mlx_community(8, "config.RECONSTRUCTED.json")
    ours = json.loads((out / "config.json").read_text())
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in SHRUNK} == {
        k: v for k, v in theirs.items() if k not in SHRUNK}
    assert ours["quantization"] == ours["quantization_config"] == {"group_size": 64, "bits": 8}

    from safetensors import safe_open

    for path in out.glob("*.safetensors"):
        with safe_open(str(path), framework="numpy") as handle:
            for name in handle.keys():
                if name.endswith((".scales", ".biases")):
                    assert str(handle.get_slice(name).get_dtype()) == "F16", name
    # the tokenizer files travel with it, Base's broken map or not
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (out / name).read_bytes() == (real(INSTRUCT) / name).read_bytes()


@pytest.mark.parametrize("bits", [4, None], ids=["4bit", "fp16"])
def test_convert_4bit_and_fp16_names_match_mlx_community(bits, real, tmp_path):
    pytest.importorskip("mlx.core")
    from llada_mlx import convert

    out = convert(real(INSTRUCT), tmp_path / "out", bits=bits, dtype="float16")
    assert converted_names(out) == expected_names(bits, RealSpec().n_layers)
    # like the published repos (the 4-bit one has a single weight file), an index names them
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert set(index) == converted_names(out)
    assert all((out / file).is_file() for file in index.values())
    if bits == 4:
        published = mlx_community(4, "model.safetensors.index.RECONSTRUCTED.json")["weight_map"]
        assert set(index.values()) == set(published.values()) == {"model.safetensors"}
    theirs = mlx_community(bits, "config.RECONSTRUCTED.json")
    ours = json.loads((out / "config.json").read_text())
    assert set(ours) == set(theirs)
    if bits is not None:
        assert ours["quantization"] == theirs["quantization"] == {"group_size": 64, "bits": 4}
