"""Tiny random LLaDA 2.x checkpoints in the official Hugging Face layout, for tests.

The files are those of inclusionAI/LLaDA2.0-mini and LLaDA2.1-mini as their modelling code reads
them (`../shared/llada2-spec.md` B1, B2, B8): config.json with architectures
["LLaDA2MoeModelLM"] and model_type "llada2_moe", the Bailing tensor names (fused
query_key_value, dense, per-head q/k norms, a dense first layer, one tensor per expert, the
router's expert_bias, shared experts), and a Ling-style byte-level BPE tokenizer trained here with
`<|startoftext|>`, `<|endoftext|>`, `<|mask|>` (three above EOS, as 156892 / 156895), `<role>`,
`</role>` and `<|role_end|>`, and the Ling chat template. A 2.1 checkpoint also has a
generation_config.json with the editing decoder's settings (their key names in the real file are
not verified: llada2-spec B5 says only that 2.1 ships one and 2.0-mini none).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from llada_core.llada2_config import EOS, EOT, MASK
from llada_train.tiny import DEFAULT_CORPUS, cast_weights, train_tokenizer, write_json, write_shards
from llada_train.tiny_moe import tokenizer_config

if TYPE_CHECKING:
    import numpy as np

BOS = "<|startoftext|>"
SPECIAL_TOKENS = [BOS, EOS, "<|arithmetic_start|>", "<|arithmetic_end|>", MASK, "<role>", "</role>",
                  EOT]

# Ling 2.x: a SYSTEM turn always (the system message, if any, then "detailed thinking off"),
# HUMAN and ASSISTANT turns, <role>ASSISTANT</role> to answer [spec B8].
CHAT_TEMPLATE = (
    "{%- set system = '' -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] + '\\n' -%}{%- endif -%}"
    "{{- '<role>SYSTEM</role>' + system + 'detailed thinking off<|role_end|>' -}}"
    "{%- for message in messages -%}{%- if message['role'] != 'system' -%}"
    "{%- set role = 'HUMAN' if message['role'] == 'user' else 'ASSISTANT' -%}"
    "{{- '<role>' + role + '</role>' + message['content'] + '<|role_end|>' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<role>ASSISTANT</role>' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TinyLLaDA2Spec:
    version: str = "2.0"              # "2.1" adds the editing decoder's generation_config.json
    hidden_size: int = 64
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    intermediate_size: int = 96
    moe_intermediate_size: int = 24
    num_experts: int = 8
    num_experts_per_tok: int = 2
    num_shared_experts: int = 1
    first_k_dense_replace: int = 1
    n_group: int = 4
    topk_group: int = 2
    routed_scaling_factor: float = 2.5
    partial_rotary_factor: float = 0.5
    rope_theta: float = 600000.0
    bpe_vocab: int = 384
    editing_threshold: float = 0.5
    max_post_steps: int = 4
    seed: int = 0
    dtype: str = "float32"
    shards: int = 2
    head_scale: float = 4.0
    router_scale: float = 3.0


def official_config(spec: TinyLLaDA2Spec, vocab_size: int, ids: dict[str, int]) -> dict:
    """config.json with the LLaDA2MoeConfig fields of the real 2.x-mini (B1), sized by `spec`."""
    return {
        "architectures": ["LLaDA2MoeModelLM"],
        "auto_map": {
            "AutoConfig": "configuration_llada2_moe.LLaDA2MoeConfig",
            "AutoModel": "modeling_llada2_moe.LLaDA2MoeModel",
            "AutoModelForCausalLM": "modeling_llada2_moe.LLaDA2MoeModelLM",
        },
        "attention_dropout": 0.0,
        "embedding_dropout": 0.0,
        "first_k_dense_replace": spec.first_k_dense_replace,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "hidden_size": spec.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": 32768 if spec.version == "2.1" else 16384,
        "max_window_layers": 28,
        "model_type": "llada2_moe",
        "moe_intermediate_size": spec.moe_intermediate_size,
        "moe_router_enable_expert_bias": True,
        "n_group": spec.n_group,
        "norm_head": False,
        "norm_softmax": False,
        "norm_topk_prob": True,
        "num_attention_heads": spec.num_attention_heads,
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_tok,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_key_value_heads": spec.num_key_value_heads,
        "num_shared_experts": spec.num_shared_experts,
        "output_dropout": 0.0,
        "output_router_logits": False,
        "pad_token_id": ids[EOS],
        "partial_rotary_factor": spec.partial_rotary_factor,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": spec.rope_theta,
        "rotary_dim": int(spec.head_dim * spec.partial_rotary_factor),
        "routed_scaling_factor": spec.routed_scaling_factor,
        "router_dtype": "fp32",
        "score_function": "sigmoid",
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "topk_group": spec.topk_group,
        "torch_dtype": "bfloat16" if spec.dtype == "bfloat16" else spec.dtype,
        "transformers_version": "4.56.0",
        "use_bias": False,
        "use_cache": False,
        "use_qkv_bias": False,
        "use_sliding_window": False,
        "vocab_size": vocab_size,
    }


def random_weights(spec: TinyLLaDA2Spec, vocab_size: int) -> dict[str, np.ndarray]:
    """Spec B2's tensor names with seeded random values ([out, in] Linear layout)."""
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    d, hd = spec.hidden_size, spec.head_dim
    heads, kv = spec.num_attention_heads, spec.num_key_value_heads

    def linear(out_features: int, in_features: int, scale: float = 1.0) -> np.ndarray:
        return rng.normal(0.0, scale / np.sqrt(in_features), (out_features, in_features))

    def norm(size: int) -> np.ndarray:
        return 1.0 + rng.normal(0.0, 0.1, size)

    def swiglu(at: str, width: int) -> None:
        weights[at + "gate_proj.weight"] = linear(width, d)
        weights[at + "up_proj.weight"] = linear(width, d)
        weights[at + "down_proj.weight"] = linear(d, width)

    weights = {"model.word_embeddings.weight": rng.normal(0.0, 1.0, (vocab_size, d))}
    for i in range(spec.num_hidden_layers):
        p = f"model.layers.{i}."
        weights[p + "input_layernorm.weight"] = norm(d)
        weights[p + "attention.query_key_value.weight"] = linear((heads + 2 * kv) * hd, d)
        weights[p + "attention.query_layernorm.weight"] = norm(hd)
        weights[p + "attention.key_layernorm.weight"] = norm(hd)
        weights[p + "attention.dense.weight"] = linear(d, heads * hd)
        weights[p + "post_attention_layernorm.weight"] = norm(d)
        if i < spec.first_k_dense_replace:
            swiglu(p + "mlp.", spec.intermediate_size)
            continue
        weights[p + "mlp.gate.weight"] = linear(spec.num_experts, d, spec.router_scale)
        weights[p + "mlp.gate.expert_bias"] = rng.normal(0.0, 0.5, spec.num_experts)
        for e in range(spec.num_experts):
            swiglu(f"{p}mlp.experts.{e}.", spec.moe_intermediate_size)
        if spec.num_shared_experts:
            swiglu(p + "mlp.shared_experts.", spec.moe_intermediate_size * spec.num_shared_experts)
    weights["model.norm.weight"] = norm(d)
    weights["lm_head.weight"] = linear(vocab_size, d, spec.head_scale)
    cast = {name: cast_weights(value, spec.dtype) for name, value in weights.items()}
    for name in cast:  # the router's bias stays float32, as the real checkpoint keeps it
        if name.endswith("expert_bias"):
            cast[name] = weights[name].astype(np.float32)
    return cast


def make_tiny_llada2_checkpoint(out_dir: str | Path, spec: TinyLLaDA2Spec = TinyLLaDA2Spec(),
                                corpus: str | None = None) -> Path:
    """Write a tiny random LLaDA2.0/2.1-mini checkpoint into `out_dir` and return its path."""
    if spec.version not in ("2.0", "2.1"):
        raise ValueError(f"LLaDA2 version {spec.version!r} is not 2.0 or 2.1")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = resources.files("llada_train").joinpath("data", DEFAULT_CORPUS).read_text("utf-8")
    tokenizer, ids = train_tokenizer(corpus, spec.bpe_vocab, special_tokens=SPECIAL_TOKENS)
    vocab_size = -(-tokenizer.get_vocab_size() // 64) * 64
    tokenizer.save(str(folder / "tokenizer.json"))
    write_json(folder / "tokenizer_config.json",
               tokenizer_config(ids, SPECIAL_TOKENS, CHAT_TEMPLATE, model_max_length=32768))
    write_json(folder / "special_tokens_map.json", {
        "bos_token": BOS, "eos_token": EOS, "mask_token": MASK, "pad_token": EOS})
    write_json(folder / "config.json", official_config(spec, vocab_size, ids))
    if spec.version == "2.1":
        write_json(folder / "generation_config.json", {
            "eos_token_id": ids[EOS], "pad_token_id": ids[EOS], "mask_token_id": ids[MASK],
            "block_length": 32, "threshold": 0.7, "editing_threshold": spec.editing_threshold,
            "max_post_steps": spec.max_post_steps, "transformers_version": "4.56.0"})
    write_shards(folder, random_weights(spec, vocab_size), spec.shards)
    return folder
