"""Tiny random LLaDA checkpoints in the official Hugging Face layout, for tests and benchmarks.

The files are those of GSAI-ML/LLaDA-8B-Instruct: config.json with every official field,
the official tensor names (sharded with an index), a byte-level BPE tokenizer.json trained here
with the official special tokens in the official order, tokenizer_config.json with the chat
template, special_tokens_map.json and generation_config.json. Only sizes and ids differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from llada_core import tokens

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CORPUS = "tiny_corpus.txt"


@dataclass(frozen=True)
class TinySpec:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None
    mlp_hidden_size: int = 128
    bpe_vocab: int = 512
    rope_theta: float = 500000.0
    max_sequence_length: int = 4096
    seed: int = 0
    dtype: str = "float32"
    shards: int = 2
    head_scale: float = 3.0
    min_rows: int = 0  # embedding/head rows at least this many (unused past the tokenizer)
    split_digits: bool = False  # one token per digit (the demo model does arithmetic)


def official_config(spec: TinySpec, vocab_size: int, ids: dict[str, int]) -> dict:
    """config.json with the official LLaDA fields, sized by `spec`."""
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": spec.d_model,
        "embedding_dropout": 0.0,
        "embedding_size": vocab_size,
        "eos_token_id": ids[tokens.EOS],
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": ids[tokens.MASK],
        "max_sequence_length": spec.max_sequence_length,
        "mlp_hidden_size": spec.mlp_hidden_size,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": spec.n_heads,
        "n_kv_heads": spec.n_kv_heads if spec.n_kv_heads is not None else spec.n_heads,
        "n_layers": spec.n_layers,
        "pad_token_id": ids[tokens.EOS],
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": spec.rope_theta,
        "scale_logits": False,
        "torch_dtype": "bfloat16" if spec.dtype == "bfloat16" else spec.dtype,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": vocab_size,
        "weight_tying": False,
    }


def train_tokenizer(corpus: str, bpe_vocab: int, split_digits: bool = False,
                    special_tokens: Sequence[str] = tokens.SPECIAL_TOKENS):
    """A byte-level BPE tokenizer trained on `corpus`, then `special_tokens` in order (LLaDA's,
    unless a family with other tokens asks)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus.splitlines(), trainer=trainer)
    base = tokenizer.get_vocab_size()
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in special_tokens]
    )
    ids = {t: tokenizer.token_to_id(t) for t in special_tokens}
    assert ids[special_tokens[0]] == base and ids[special_tokens[-1]] == base + len(special_tokens) - 1
    return tokenizer, ids


def tokenizer_config(ids: dict[str, int]) -> dict:
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(ids[t]): {
                "content": t, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True,
            }
            for t in tokens.SPECIAL_TOKENS
        },
        "bos_token": tokens.BOS,
        "chat_template": tokens.CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": tokens.EOS,
        "extra_special_tokens": {},
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": tokens.EOS,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def random_weights(spec: TinySpec, vocab_size: int) -> dict[str, np.ndarray]:
    """Official tensor names with seeded random values ([out, in] Linear layout)."""
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    d, hidden = spec.d_model, spec.mlp_hidden_size
    head_dim = d // spec.n_heads
    kv = (spec.n_kv_heads or spec.n_heads) * head_dim

    def linear(out_features: int, in_features: int, scale: float = 1.0) -> np.ndarray:
        return rng.normal(0.0, scale / np.sqrt(in_features), (out_features, in_features))

    def norm() -> np.ndarray:
        return 1.0 + rng.normal(0.0, 0.1, d)

    weights = {"model.transformer.wte.weight": rng.normal(0.0, 1.0, (vocab_size, d))}
    for i in range(spec.n_layers):
        prefix = f"model.transformer.blocks.{i}."
        weights[prefix + "attn_norm.weight"] = norm()
        weights[prefix + "q_proj.weight"] = linear(d, d)
        weights[prefix + "k_proj.weight"] = linear(kv, d)
        weights[prefix + "v_proj.weight"] = linear(kv, d)
        weights[prefix + "attn_out.weight"] = linear(d, d)
        weights[prefix + "ff_norm.weight"] = norm()
        weights[prefix + "ff_proj.weight"] = linear(hidden, d)
        weights[prefix + "up_proj.weight"] = linear(hidden, d)
        weights[prefix + "ff_out.weight"] = linear(d, hidden)
    weights["model.transformer.ln_f.weight"] = norm()
    weights["model.transformer.ff_out.weight"] = linear(vocab_size, d, spec.head_scale)
    return {name: cast_weights(value, spec.dtype) for name, value in weights.items()}


def cast_weights(values: np.ndarray, dtype: str) -> np.ndarray:
    import numpy as np

    if dtype == "float32":
        return values.astype(np.float32)
    if dtype == "float16":
        return values.astype(np.float16)
    if dtype == "bfloat16":
        import ml_dtypes

        return values.astype(np.float32).astype(ml_dtypes.bfloat16)
    raise ValueError(f"dtype {dtype!r} is not one of float32, float16, bfloat16")


def write_shards(folder: Path, weights: dict[str, np.ndarray], shards: int) -> None:
    """model-0000K-of-0000N.safetensors plus model.safetensors.index.json, as the Hub has them."""
    import numpy as np
    from safetensors.numpy import save_file

    names = list(weights)
    if shards <= 1:
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return
    groups = np.array_split(np.arange(len(names)), shards)
    weight_map, total = {}, 0
    for number, group in enumerate(groups, start=1):
        filename = f"model-{number:05d}-of-{shards:05d}.safetensors"
        part = {names[i]: weights[names[i]] for i in group}
        save_file(part, str(folder / filename), metadata={"format": "pt"})
        for name, value in part.items():
            weight_map[name] = filename
            total += value.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def make_tiny_checkpoint(out_dir: str | Path, spec: TinySpec = TinySpec(),
                         corpus: str | None = None) -> Path:
    """Write a tiny random LLaDA-Instruct checkpoint into `out_dir` and return its path."""
    if spec.d_model % spec.n_heads != 0:
        raise ValueError(f"d_model {spec.d_model} is not a multiple of n_heads {spec.n_heads}")
    if (spec.d_model // spec.n_heads) % 2 != 0:
        raise ValueError("the head dimension must be even for rotary embeddings")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = resources.files("llada_train").joinpath("data", DEFAULT_CORPUS).read_text("utf-8")
    tokenizer, ids = train_tokenizer(corpus, spec.bpe_vocab, spec.split_digits)
    # Like the 8B model, the embedding has unused rows past the tokenizer (a multiple of 64).
    vocab_size = -(-max(tokenizer.get_vocab_size(), spec.min_rows) // 64) * 64

    tokenizer.save(str(folder / "tokenizer.json"))
    write_json(folder / "tokenizer_config.json", tokenizer_config(ids))
    write_json(folder / "special_tokens_map.json", {
        "bos_token": tokens.BOS, "eos_token": tokens.EOS, "pad_token": tokens.EOS,
    })
    write_json(folder / "generation_config.json", {
        "_from_model_config": True, "bos_token_id": ids[tokens.BOS],
        "eos_token_id": ids[tokens.EOS], "pad_token_id": ids[tokens.EOS],
        "transformers_version": "4.46.3",
    })
    write_json(folder / "config.json", official_config(spec, vocab_size, ids))
    write_shards(folder, random_weights(spec, vocab_size), spec.shards)
    return folder


def write_json(path: Path, data: dict) -> None:
    """A checkpoint's json file, as the Hub has them (indented, UTF-8, newline at the end)."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
