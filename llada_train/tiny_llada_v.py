"""Tiny random LLaDA-V checkpoints in the official layout (`../shared/llada-v-spec.md` §7), for tests.

config.json has the keys of spec §2.1 that the loaders read (`model_type` llava_llada, the
LLaMA-style language model sizes, `mm_*`, `image_aspect_ratio` anyres_max_4, the grid pinpoints as
a list of multiples of the tile), plus a `vision_config` block with the tiny tower's sizes (our
convention: the real file has none, and the loaders then take the so400m sizes). The tensors have
the §2.2 names: the LLaMA-style language model, the tower under
`model.vision_tower.vision_tower.vision_model.` with one layer more than it uses and a
post_layernorm (both must be ignored), the projector and the image newline. The tokenizer is
LLaDA-8B-Instruct's kind (llada_train.tiny's), with its chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from llada_core import tokens
from llada_train.tiny import (
    DEFAULT_CORPUS, cast_weights, tokenizer_config, train_tokenizer, write_json, write_shards,
)

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class TinyLLaDAVSpec:
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    vision_width: int = 32
    vision_inner: int = 64
    vision_heads: int = 2
    vision_layers: int = 2
    tile: int = 30            # 2 × 2 patches of 14 px; the last 2 px of a tile are never seen
    patch: int = 14
    grid: int = 3             # pinpoints: every [30 i, 30 j] for i, j in 1..grid
    bpe_vocab: int = 512
    seed: int = 0
    dtype: str = "float32"
    shards: int = 2
    head_scale: float = 3.0


def official_config(spec: TinyLLaDAVSpec, vocab_size: int, ids: dict[str, int]) -> dict:
    return {
        "architectures": ["LlavaLLaDAModelLM"],
        "model_type": "llava_llada",
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_attention_heads,
        "hidden_act": "silu",
        "attention_bias": False,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "rope_scaling": None,
        "max_position_embeddings": 16384,
        "vocab_size": vocab_size,
        "tie_word_embeddings": False,
        "bos_token_id": 128000,  # the real file's stale LLaMA-3 value, unused
        "eos_token_id": ids[tokens.EOS],
        "mm_vision_tower": "google/siglip2-so400m-patch14-384",
        "mm_hidden_size": spec.vision_width,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_patch_merge_type": "spatial_unpad",
        "image_aspect_ratio": "anyres_max_4",
        "image_grid_pinpoints": [[spec.tile * i, spec.tile * j] for i in range(1, spec.grid + 1)
                                 for j in range(1, spec.grid + 1)],
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "tokenizer_model_max_length": 4096,
        "tokenizer_padding_side": "right",
        "torch_dtype": "bfloat16" if spec.dtype == "bfloat16" else spec.dtype,
        "vision_config": {  # our convention for tiny towers; the real file has none
            "hidden_size": spec.vision_width, "intermediate_size": spec.vision_inner,
            "num_attention_heads": spec.vision_heads, "num_hidden_layers": spec.vision_layers,
            "image_size": spec.tile, "patch_size": spec.patch, "layer_norm_eps": 1e-6},
    }


def random_weights(spec: TinyLLaDAVSpec, vocab_size: int) -> dict[str, np.ndarray]:
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    d, v = spec.hidden_size, spec.vision_width

    def linear(out_features: int, in_features: int, scale: float = 1.0) -> np.ndarray:
        return rng.normal(0.0, scale / np.sqrt(in_features), (out_features, in_features))

    def norm(size: int) -> np.ndarray:
        return 1.0 + rng.normal(0.0, 0.1, size)

    def bias(size: int) -> np.ndarray:
        return rng.normal(0.0, 0.02, size)

    weights = {"model.embed_tokens.weight": rng.normal(0.0, 1.0, (vocab_size, d))}
    for i in range(spec.num_hidden_layers):
        p = f"model.layers.{i}."
        weights[p + "input_layernorm.weight"] = norm(d)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            weights[f"{p}self_attn.{name}.weight"] = linear(d, d)
        weights[p + "post_attention_layernorm.weight"] = norm(d)
        weights[p + "mlp.gate_proj.weight"] = linear(spec.intermediate_size, d)
        weights[p + "mlp.up_proj.weight"] = linear(spec.intermediate_size, d)
        weights[p + "mlp.down_proj.weight"] = linear(d, spec.intermediate_size)
    weights["model.norm.weight"] = norm(d)
    weights["lm_head.weight"] = linear(vocab_size, d, spec.head_scale)
    tower = "model.vision_tower.vision_tower.vision_model."
    unit = spec.tile // spec.patch
    weights[tower + "embeddings.patch_embedding.weight"] = rng.normal(
        0.0, 1.0 / np.sqrt(3 * spec.patch ** 2), (v, 3, spec.patch, spec.patch))
    weights[tower + "embeddings.patch_embedding.bias"] = bias(v)
    weights[tower + "embeddings.position_embedding.weight"] = rng.normal(0.0, 0.5, (unit * unit, v))
    for m in range(spec.vision_layers + 1):  # one layer past the tower's depth: never used
        p = f"{tower}encoder.layers.{m}."
        for norm_name in ("layer_norm1", "layer_norm2"):
            weights[f"{p}{norm_name}.weight"], weights[f"{p}{norm_name}.bias"] = norm(v), bias(v)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            weights[f"{p}self_attn.{name}.weight"] = linear(v, v)
            weights[f"{p}self_attn.{name}.bias"] = bias(v)
        weights[p + "mlp.fc1.weight"], weights[p + "mlp.fc1.bias"] = linear(spec.vision_inner, v), bias(spec.vision_inner)
        weights[p + "mlp.fc2.weight"], weights[p + "mlp.fc2.bias"] = linear(v, spec.vision_inner), bias(v)
    weights[tower + "post_layernorm.weight"], weights[tower + "post_layernorm.bias"] = norm(v), bias(v)
    weights["model.mm_projector.0.weight"], weights["model.mm_projector.0.bias"] = linear(d, v), bias(d)
    weights["model.mm_projector.2.weight"], weights["model.mm_projector.2.bias"] = linear(d, d), bias(d)
    weights["model.image_newline"] = rng.normal(0.0, 1.0, d)
    return {name: cast_weights(value, spec.dtype) for name, value in weights.items()}


def make_tiny_llada_v_checkpoint(out_dir: str | Path, spec: TinyLLaDAVSpec = TinyLLaDAVSpec(),
                                 corpus: str | None = None) -> Path:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = resources.files("llada_train").joinpath("data", DEFAULT_CORPUS).read_text("utf-8")
    tokenizer, ids = train_tokenizer(corpus, spec.bpe_vocab)
    vocab_size = -(-tokenizer.get_vocab_size() // 64) * 64
    tokenizer.save(str(folder / "tokenizer.json"))
    write_json(folder / "tokenizer_config.json", tokenizer_config(ids))
    write_json(folder / "special_tokens_map.json", {
        "bos_token": tokens.BOS, "eos_token": tokens.EOS, "pad_token": tokens.EOS})
    write_json(folder / "generation_config.json", {
        "bos_token_id": ids[tokens.BOS], "eos_token_id": ids[tokens.EOS],
        "pad_token_id": ids[tokens.EOS], "transformers_version": "4.46.3"})
    write_json(folder / "config.json", official_config(spec, vocab_size, ids))
    write_shards(folder, random_weights(spec, vocab_size), spec.shards)
    return folder
