"""LLaDA 2.x and LLaDA-V from their REAL checkpoints' small files, through the same path as the
tiny checkpoints: config.json, the tokenizer files, generation_config.json and the shard index
under ../shared/real-metadata/<owner>/<name>/. Each test skips where its model's files are
absent (they are not there yet: only LLaDA-8B's and mlx-community's LLaDA-8B files are); the
files are read in place, never copied into the project.

What is checked when present: the ids come from the tokenizer (mask, EOS, end of turn; for
LLaDA-V the sampler's barred ids and its stop), the chat template renders the canonical prompt,
every tensor the index names maps onto our model's parameters (no extra, none missing, experts
stacked), and a 2.1's generation_config gives its editing decoder's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-metadata"
LLADA2 = ["inclusionAI/LLaDA2.0-mini", "inclusionAI/LLaDA2.1-mini",
          "inclusionAI/LLaDA2.0-mini-preview"]
LLADA_V = ["GSAI-ML/LLaDA-V"]


def real_folder(name: str) -> Path:
    folder = REAL / name
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        pytest.skip(f"the real metadata of {name} is not in ../shared/real-metadata")
    return folder


def index_names(folder: Path) -> list[str]:
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        pytest.skip(f"{folder.name} has no model.safetensors.index.json here")
    return sorted(json.loads(index.read_text())["weight_map"])


@pytest.mark.parametrize("name", LLADA2)
def test_a_real_llada2_config_and_tokenizer_load(name):
    check_llada2_files(real_folder(name), name)


@pytest.mark.parametrize("name", LLADA2)
def test_every_real_llada2_tensor_has_a_place(name):
    folder = real_folder(name)
    check_llada2_tensors(folder, index_names(folder))


@pytest.mark.parametrize("name", LLADA_V)
def test_a_real_llada_v_checkpoint_maps_onto_our_model(name):
    folder = real_folder(name)
    check_llada_v(folder, index_names(folder))


def test_the_checks_hold_for_the_tiny_checkpoints(tmp_path):
    """The same checks on the project's tiny checkpoints in the official layouts, so the checks
    above are known to pass on a right checkpoint before the real files arrive."""
    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint
    from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint

    for version in ("2.0", "2.1"):
        folder = make_tiny_llada2_checkpoint(tmp_path / version, TinyLLaDA2Spec(version=version))
        check_llada2_files(folder, f"LLaDA{version}-mini")
        check_llada2_tensors(folder, index_names(folder))
    folder = make_tiny_llada_v_checkpoint(tmp_path / "v")
    check_llada_v(folder, index_names(folder))


def check_llada2_files(folder: Path, name: str) -> None:
    from llada_core.chat import encode_chat, load_tokenizer, render_chat
    from llada_core.llada2_config import LLaDA2Args, is_llada2_config

    config = json.loads((folder / "config.json").read_text())
    assert is_llada2_config(config)
    args = LLaDA2Args.from_dict(config)
    tokenizer = load_tokenizer(folder)
    args.fill_token_ids(tokenizer)
    args.read_generation_config(folder)
    assert args.mask_token_id != args.eos_token_id and args.eot_token_id is not None
    text = render_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    assert text.endswith("<role>HUMAN</role>Hi<|role_end|><role>ASSISTANT</role>")
    ids = encode_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    assert args.mask_token_id not in ids
    if "2.1" in name:
        assert args.editing_threshold is not None  # its generation_config's editing decoder


def check_llada2_tensors(folder: Path, names: list[str]) -> None:
    torch = pytest.importorskip("torch")
    from llada_core.checkpoint import expert_stacks, without_language_model_prefix
    from llada_core.llada2_config import LLaDA2Args
    from llada_torch import llada2

    args = LLaDA2Args.from_dict(json.loads((folder / "config.json").read_text()))
    args.mask_token_id, args.eos_token_id = 0, 1
    with torch.device("meta"):
        model = llada2.Model(args)
    stored = set(without_language_model_prefix(dict.fromkeys(names)))
    for stacked, experts in expert_stacks(stored, args.num_experts).items():
        stored -= set(experts)
        stored.add(stacked)
    assert stored == set(model.state_dict())


def check_llada_v(folder: Path, names: list[str]) -> None:
    from llada_core.chat import load_tokenizer
    from llada_core.llada_v_config import lm_config, sampling_rules, split_weights
    from llada_core.vision import VisionConfig

    config = json.loads((folder / "config.json").read_text())
    tokenizer = load_tokenizer(folder)
    lm = lm_config(config, tokenizer)
    vision = VisionConfig.from_config(config)
    rules = sampling_rules(tokenizer)
    assert lm["mask_token_id"] not in rules.banned and rules.stop_id is not None
    assert len(rules.banned) == 4 and rules.vocab_rows <= lm["vocab_size"]
    language, seeing = split_weights(dict.fromkeys(names), vision)
    assert len(language) == 3 + 9 * lm["n_layers"] - (1 if lm["weight_tying"] else 0)
    assert "image_newline" in seeing and any(k.startswith("projector.") for k in seeing)
