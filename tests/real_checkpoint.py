"""Small LLaDA checkpoints made from the REAL checkpoints' metadata (test-only).

The real files live outside the project, in ``../shared/real-metadata/`` beside the repository
(CI has them there; a user's clone does not, and the tests that need them skip). They are read
from there and copied into a temporary checkpoint folder only, never into the project.

What a checkpoint built here keeps from the real model:
- config.json: every real field and value (ids, ``embedding_size``/``vocab_size`` 126464,
  rope theta, no ``torch_dtype``) except the sizes ``d_model``, ``n_layers``, ``n_heads``,
  ``n_kv_heads`` and ``mlp_hidden_size``, which are shrunk;
- the real shard map: the same shard file names, and every tensor in the shard where the real
  model.safetensors.index.json puts it. The kept layers are real layers chosen so that every real
  shard keeps at least one tensor (the 8B map is out of order: shard 1 holds the embedding,
  ``ln_f`` and every ``attn_out``, the head is in shard 2; LLaDA-1.5's is sequential); they are
  renumbered 0..n-1 and block ``i`` is stored where the real map stores the block it stands for;
- tokenizer_config.json, special_tokens_map.json and generation_config.json copied byte for byte
  (Base's special_tokens_map.json is not valid JSON, and stays so);
- a stand-in tokenizer.json: a small byte-level BPE trained here, padded with unreachable filler
  tokens up to the real base vocabulary (126080), then the real added tokens of
  ``added_tokens_decoder`` at their real ids (Instruct: 126080..126348; Base lacks the last three).

LLaDA-1.5's metadata has no config.json or tokenizer_config.json of its own; those come from
LLaDA-8B-Instruct (its config is believed equal to Instruct's, and its special_tokens_map.json is
Instruct's byte for byte), so 1.5 is built as an Instruct model with its own index, generation
config and special-token map.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

INSTRUCT = "GSAI-ML/LLaDA-8B-Instruct"
BASE = "GSAI-ML/LLaDA-8B-Base"
LLADA_15 = "GSAI-ML/LLaDA-1.5"
MODELS = (INSTRUCT, BASE, LLADA_15)
MLX_COMMUNITY = {
    8: "mlx-community/LLaDA-8B-Instruct-mlx-8bit",
    4: "mlx-community/LLaDA-8B-Instruct-mlx-4bit",
    None: "mlx-community/LLaDA-8B-Instruct-mlx-fp16",
}

# Files a model's own folder may lack, and where they come from then (see the module docstring).
FALLBACK_SOURCE = {"config.json": INSTRUCT, "tokenizer_config.json": INSTRUCT}
COPIED = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json")
BLOCK_PREFIX = "model.transformer.blocks."


def real_metadata_dir() -> Path | None:
    """``shared/real-metadata`` beside the repository (CI), or inside it; None when absent."""
    for candidate in (ROOT.parent / "shared" / "real-metadata", ROOT / "shared" / "real-metadata"):
        if (candidate / INSTRUCT / "config.json").is_file():
            return candidate
    return None


def require_real_metadata() -> Path:
    """The real-metadata folder, or skip the calling test (a user's clone does not have it)."""
    import pytest

    folder = real_metadata_dir()
    if folder is None:
        pytest.skip("the real checkpoints' metadata (../shared/real-metadata) is not here")
    return folder


def real_file(model: str, name: str) -> Path:
    """The real `name` of `model`, or the file it falls back to (1.5 has no config of its own)."""
    metadata = require_real_metadata()
    path = metadata / model / name
    if not path.is_file() and name in FALLBACK_SOURCE:
        path = metadata / FALLBACK_SOURCE[name] / name
    if not path.is_file():
        raise FileNotFoundError(f"the real metadata has no {model}/{name}")
    return path


def read_real_json(model: str, name: str) -> Any:
    return json.loads(real_file(model, name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class RealSpec:
    """The shrunk sizes; everything else comes from the real files."""

    d_model: int = 64  # a multiple of 64: mlx-community's quantization groups are 64 wide
    n_layers: int = 2
    n_heads: int = 4
    mlp_hidden_size: int = 128
    dtype: str = "float32"
    seed: int = 0
    bpe_vocab: int = 400


# ---------------------------------------------------------------------------------------------
# Layers and shards


def layer_of(name: str) -> int | None:
    if not name.startswith(BLOCK_PREFIX):
        return None
    return int(name[len(BLOCK_PREFIX):].split(".", 1)[0])


def kept_layers(weight_map: dict[str, str], n_layers: int) -> list[int]:
    """`n_layers` real layers, chosen so that every real shard keeps a tensor where possible.

    Greedy cover: the layer touching the most shards not yet covered (the lowest index on a tie),
    then, when the shards are covered, the lowest unused layers. Returned in increasing order.
    """
    shards_of: dict[int, set[str]] = {}
    covered: set[str] = set()
    for name, shard in weight_map.items():
        layer = layer_of(name)
        if layer is None:
            covered.add(shard)
        else:
            shards_of.setdefault(layer, set()).add(shard)
    if n_layers > len(shards_of):
        raise ValueError(f"the real model has only {len(shards_of)} layers, not {n_layers}")
    wanted = set(weight_map.values())
    chosen: list[int] = []
    while len(chosen) < n_layers:
        candidates = [layer for layer in sorted(shards_of) if layer not in chosen]
        best = max(candidates, key=lambda layer: (len(shards_of[layer] & (wanted - covered)), -layer))
        chosen.append(best)
        covered |= shards_of[best]
    return sorted(chosen)


def shrunk_weight_map(real_map: dict[str, str], layers: list[int]) -> dict[str, str]:
    """Tensor name -> real shard file, block i standing for real layer layers[i]."""
    new_number = {real: i for i, real in enumerate(layers)}
    shrunk: dict[str, str] = {}
    for name, shard in real_map.items():
        layer = layer_of(name)
        if layer is None:
            shrunk[name] = shard
        elif layer in new_number:
            rest = name[len(BLOCK_PREFIX):].split(".", 1)[1]
            shrunk[f"{BLOCK_PREFIX}{new_number[layer]}.{rest}"] = shard
    return shrunk


# ---------------------------------------------------------------------------------------------
# Weights


def random_weights(config: dict[str, Any], spec: RealSpec) -> dict[str, np.ndarray]:
    """Every tensor the config implies, official names, [out, in] Linear layout, seeded: the
    project's tiny builder at the shrunk config's sizes and the real number of rows."""
    from llada_train.tiny import TinySpec
    from llada_train.tiny import random_weights as tiny_random_weights

    sizes = TinySpec(d_model=config["d_model"], n_layers=config["n_layers"],
                     n_heads=config["n_heads"], n_kv_heads=config["n_kv_heads"],
                     mlp_hidden_size=config["mlp_hidden_size"], seed=spec.seed, dtype=spec.dtype,
                     head_scale=1.0)
    return tiny_random_weights(sizes, config["embedding_size"])


def write_real_shards(folder: Path, weights: dict[str, np.ndarray], weight_map: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    if set(weights) != set(weight_map):
        extra = sorted(set(weights) ^ set(weight_map))
        raise ValueError(f"the shrunk shard map and the weights disagree on {extra[:5]}")
    for shard in sorted(set(weight_map.values())):
        part = {name: weights[name] for name, file in weight_map.items() if file == shard}
        save_file(part, str(folder / shard), metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": int(sum(value.nbytes for value in weights.values()))},
        "weight_map": dict(weight_map),
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Tokenizer


def added_tokens(tokenizer_config: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The real added tokens as (id, entry), in id order."""
    decoder = tokenizer_config["added_tokens_decoder"]
    return sorted(((int(key), value) for key, value in decoder.items()), key=lambda item: item[0])


def stand_in_tokenizer(tokenizer_config: dict[str, Any], bpe_vocab: int = 400):
    """A byte-level BPE trained on the project's small corpus, padded with filler tokens so that
    the real added tokens land at their real ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = added_tokens(tokenizer_config)
    first = specials[0][0]
    if [token_id for token_id, _ in specials] != list(range(first, first + len(specials))):
        raise ValueError("the real added tokens are not one run of consecutive ids")

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = resources.files("llada_train").joinpath("data", "tiny_corpus.txt").read_text("utf-8")
    tokenizer.train_from_iterator(corpus.splitlines(), trainer=trainer)

    data = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    if len(vocab) > first:
        raise ValueError(f"the trained vocabulary ({len(vocab)}) passes the first added id {first}")
    # Fillers are never produced by a merge, so the model only meets them as generated ids.
    for token_id in range(len(vocab), first):
        vocab[f"<filler_{token_id}>"] = token_id
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.add_special_tokens([
        AddedToken(entry["content"], special=entry.get("special", True),
                   normalized=entry.get("normalized", False), lstrip=entry.get("lstrip", False),
                   rstrip=entry.get("rstrip", False), single_word=entry.get("single_word", False))
        for _, entry in specials
    ])
    for token_id, entry in specials:
        if tokenizer.token_to_id(entry["content"]) != token_id:
            raise AssertionError(f"{entry['content']} landed at {tokenizer.token_to_id(entry['content'])}, "
                                 f"not at its real id {token_id}")
    return tokenizer


# ---------------------------------------------------------------------------------------------
# The checkpoint


def shrunk_config(model: str, spec: RealSpec) -> dict[str, Any]:
    config = read_real_json(model, "config.json")
    if spec.d_model % spec.n_heads or (spec.d_model // spec.n_heads) % 2:
        raise ValueError("d_model must split into n_heads heads of an even size")
    config.update(d_model=spec.d_model, n_layers=spec.n_layers, n_heads=spec.n_heads,
                  n_kv_heads=spec.n_heads, mlp_hidden_size=spec.mlp_hidden_size)
    return config


def build_real_tokenizer(model: str, out: str | Path, bpe_vocab: int = 400) -> Path:
    """Only the tokenizer files of `model` (the stand-in tokenizer.json and the real
    tokenizer_config.json and special_tokens_map.json), for tests that need no weights."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(real_file(model, name), folder / name)
    tokenizer_config = read_real_json(model, "tokenizer_config.json")
    stand_in_tokenizer(tokenizer_config, bpe_vocab).save(str(folder / "tokenizer.json"))
    return folder


def build_real_checkpoint(model: str, out: str | Path, spec: RealSpec = RealSpec()) -> Path:
    """Write a small checkpoint of `model` (one of MODELS) into `out`; see the module docstring."""
    if model not in MODELS:
        raise ValueError(f"{model!r} is not one of {', '.join(MODELS)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    config = shrunk_config(model, spec)
    real_map = read_real_json(model, "model.safetensors.index.json")["weight_map"]
    weight_map = shrunk_weight_map(real_map, kept_layers(real_map, spec.n_layers))

    for name in COPIED:
        shutil.copyfile(real_file(model, name), folder / name)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tokenizer_config = read_real_json(model, "tokenizer_config.json")
    stand_in_tokenizer(tokenizer_config, spec.bpe_vocab).save(str(folder / "tokenizer.json"))
    write_real_shards(folder, random_weights(config, spec), weight_map)
    return folder
