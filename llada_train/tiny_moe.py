"""Tiny random LLaDA-MoE checkpoints in the official Hugging Face layout, for tests and benchmarks.

The files are those of inclusionAI/LLaDA-MoE-7B-A1B-Instruct as its model code reads them
(`../shared/llada-moe-spec.md`): config.json with architectures ["LLaDAMoEModelLM"] and
model_type "llada" and the reference LLaDAMoEConfig's fields, the tensor names of spec §2 (one
tensor per expert, sharded with an index), and a Ling-style byte-level BPE tokenizer trained here
with `<|startoftext|>`, `<|endoftext|>`, `<|mask|>`, `<role>`, `</role>` and `<|role_end|>`, the
role chat template in tokenizer_config.json. Only sizes and ids differ from the real model.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from llada_core.config import MOE_EOS, MOE_EOT, MOE_MASK
from llada_train.tiny import DEFAULT_CORPUS, cast_weights, train_tokenizer, write_json, write_shards

if TYPE_CHECKING:
    import numpy as np

BOS = "<|startoftext|>"
# The Ling tokenizer's added tokens as this builder writes them, in id order after the BPE vocabulary
# (EOS three below the mask, as in the real 156892 / 156895).
SPECIAL_TOKENS = [BOS, MOE_EOS, "<|arithmetic_start|>", "<|arithmetic_end|>", MOE_MASK,
                  "<role>", "</role>", MOE_EOT]

# Ling's role template: HUMAN for the user, ASSISTANT last; an optional SYSTEM turn first.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% set role = message['role'] | upper %}"
    "{% if role == 'USER' %}{% set role = 'HUMAN' %}{% endif %}"
    "{{ '<role>' + role + '</role>' + message['content'] + '<|role_end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<role>ASSISTANT</role>' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyMoESpec:
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: Optional[int] = None
    num_experts: int = 4
    num_experts_per_tok: int = 2
    expert_intermediate_size: int = 32
    partial_rotary_factor: float = 1.0
    qk_layernorm: bool = True
    bpe_vocab: int = 384
    rope_theta: float = 50000.0
    max_position_embeddings: int = 8192
    mask_in_config: bool = False  # the real config.json may lack mask_token_id
    seed: int = 0
    dtype: str = "float32"
    shards: int = 2
    head_scale: float = 3.0
    router_scale: float = 3.0  # router logits spread enough that routing has no near-ties
    min_rows: int = 0
    dense_layers: tuple[int, ...] = ()  # layers with a dense feed-forward (moe_layer_freq 0)
    shared_expert_intermediate_size: Optional[int] = None


def official_config(spec: TinyMoESpec, vocab_size: int, ids: dict[str, int]) -> dict:
    """config.json with the reference LLaDAMoEConfig's fields, sized by `spec`."""
    config = {
        "architectures": ["LLaDAMoEModelLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_lladamoe.LLaDAMoEConfig",
            "AutoModel": "modeling_lladamoe.LLaDAMoEModelLM",
            "AutoModelForCausalLM": "modeling_lladamoe.LLaDAMoEModelLM",
        },
        "clip_qkv": None,
        "dense_intermediate_size": 4 * spec.hidden_size,
        "eos_token_id": ids[MOE_EOS],
        "expert_intermediate_size": spec.expert_intermediate_size,
        "hidden_act": "silu",
        "hidden_size": spec.hidden_size,
        "initializer_range": 0.02,
        "max_position_embeddings": spec.max_position_embeddings,
        "model_type": "llada",
        "moe_layer_freq": [0 if i in spec.dense_layers else 1
                           for i in range(spec.num_hidden_layers)],
        "moe_router_enable_expert_bias": False,
        "moe_router_score_function": "softmax",
        "norm_topk_prob": False,
        "num_attention_heads": spec.num_attention_heads,
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_tok,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_key_value_heads": spec.num_key_value_heads or spec.num_attention_heads,
        "output_router_logits": False,
        "pad_token_id": ids[MOE_EOS],
        "partial_rotary_factor": spec.partial_rotary_factor,
        "qk_layernorm": spec.qk_layernorm,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": spec.rope_theta,
        "routed_scaling_factor": 1,
        "router_aux_loss_coef": 0.01,
        "shared_expert_intermediate_size": spec.shared_expert_intermediate_size,
        "tie_word_embeddings": False,
        "torch_dtype": spec.dtype,
        "transformers_version": "4.52.4",
        "use_cache": False,
        "vocab_size": vocab_size,
    }
    if spec.mask_in_config:
        config["mask_token_id"] = ids[MOE_MASK]
    return config


def tokenizer_config(ids: dict[str, int], special_tokens: list[str] = SPECIAL_TOKENS,
                     chat_template: str = CHAT_TEMPLATE, model_max_length: int = 8192) -> dict:
    """tokenizer_config.json of a Ling tokenizer (LLaDA-MoE's; LLaDA 2.x's with its own tokens,
    template and length)."""
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(ids[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": True}
            for t in special_tokens
        },
        "bos_token": BOS,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": MOE_EOS,
        "mask_token": MOE_MASK,
        "model_max_length": model_max_length,
        "pad_token": MOE_EOS,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def random_weights(spec: TinyMoESpec, vocab_size: int) -> dict[str, np.ndarray]:
    """Spec §2's tensor names with seeded random values ([out, in] Linear layout)."""
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    d, inner = spec.hidden_size, spec.expert_intermediate_size
    head_dim = d // spec.num_attention_heads
    kv = (spec.num_key_value_heads or spec.num_attention_heads) * head_dim

    def linear(out_features: int, in_features: int, scale: float = 1.0) -> np.ndarray:
        return rng.normal(0.0, scale / np.sqrt(in_features), (out_features, in_features))

    def norm(size: int) -> np.ndarray:
        return 1.0 + rng.normal(0.0, 0.1, size)

    weights = {"model.embed_tokens.weight": rng.normal(0.0, 1.0, (vocab_size, d))}
    for i in range(spec.num_hidden_layers):
        prefix = f"model.layers.{i}."
        weights[prefix + "input_layernorm.weight"] = norm(d)
        weights[prefix + "self_attn.q_proj.weight"] = linear(d, d)
        weights[prefix + "self_attn.k_proj.weight"] = linear(kv, d)
        weights[prefix + "self_attn.v_proj.weight"] = linear(kv, d)
        weights[prefix + "self_attn.o_proj.weight"] = linear(d, d)
        if spec.qk_layernorm:
            weights[prefix + "self_attn.q_norm.weight"] = norm(head_dim)
            weights[prefix + "self_attn.k_norm.weight"] = norm(head_dim)
        weights[prefix + "post_attention_layernorm.weight"] = norm(d)

        def swiglu(at: str, width: int) -> None:
            weights[at + "gate_proj.weight"] = linear(width, d)
            weights[at + "up_proj.weight"] = linear(width, d)
            weights[at + "down_proj.weight"] = linear(d, width)

        if i in spec.dense_layers:  # the reference's LLaDAMoEMLP(config, 'dense')
            swiglu(prefix + "mlp.", 4 * d)
            continue
        weights[prefix + "mlp.gate.weight"] = linear(spec.num_experts, d, spec.router_scale)
        for e in range(spec.num_experts):
            swiglu(f"{prefix}mlp.experts.{e}.", inner)
        if spec.shared_expert_intermediate_size:
            swiglu(prefix + "shared_expert.", spec.shared_expert_intermediate_size)
    weights["model.norm.weight"] = norm(d)
    weights["lm_head.weight"] = linear(vocab_size, d, spec.head_scale)
    return {name: cast_weights(value, spec.dtype) for name, value in weights.items()}


def check_dense_layers(spec: TinyMoESpec) -> None:
    """Every dense layer exists, and at least one layer keeps its experts (the loaders tell a
    LLaDA-MoE checkpoint by its expert tensors)."""
    layers = spec.num_hidden_layers
    outside = sorted(i for i in set(spec.dense_layers) if not 0 <= i < layers)
    if outside:
        raise ValueError(f"dense layer(s) {', '.join(map(str, outside))} outside the "
                         f"{layers} layers (0 to {layers - 1})")
    if len(set(spec.dense_layers)) == layers:
        raise ValueError(f"every one of the {layers} layers would be dense; a LLaDA-MoE "
                         "checkpoint needs at least one layer of experts")


def make_tiny_moe_checkpoint(out_dir: str | Path, spec: TinyMoESpec = TinyMoESpec(),
                             corpus: str | None = None) -> Path:
    """Write a tiny random LLaDA-MoE-Instruct checkpoint into `out_dir` and return its path."""
    if spec.hidden_size % spec.num_attention_heads:
        raise ValueError(f"hidden_size {spec.hidden_size} is not a multiple of "
                         f"num_attention_heads {spec.num_attention_heads}")
    check_dense_layers(spec)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = resources.files("llada_train").joinpath("data", DEFAULT_CORPUS).read_text("utf-8")
    tokenizer, ids = train_tokenizer(corpus, spec.bpe_vocab, special_tokens=SPECIAL_TOKENS)
    vocab_size = -(-max(tokenizer.get_vocab_size(), spec.min_rows) // 64) * 64

    tokenizer.save(str(folder / "tokenizer.json"))
    write_json(folder / "tokenizer_config.json", tokenizer_config(ids))
    write_json(folder / "special_tokens_map.json", {
        "bos_token": BOS, "eos_token": MOE_EOS, "mask_token": MOE_MASK, "pad_token": MOE_EOS,
    })
    write_json(folder / "generation_config.json", {
        "_from_model_config": True, "eos_token_id": ids[MOE_EOS], "pad_token_id": ids[MOE_EOS],
        "transformers_version": "4.52.4",
    })
    write_json(folder / "config.json", official_config(spec, vocab_size, ids))
    write_shards(folder, random_weights(spec, vocab_size), spec.shards)
    return folder

