"""LLaDA's config.json as a dataclass; each backend's ModelArgs extends it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from llada_core.errors import CheckpointError

log = logging.getLogger(__name__)

# Config values the implementations do not follow, with the values they do.
UNSUPPORTED_SETTINGS: dict[str, tuple] = {
    "block_type": ("llama",),
    "activation_type": ("silu",),
    "layer_norm_type": ("rms",),
    "rope": (True,),
    "alibi": (False,),
    "include_bias": (False,),
    "include_qkv_bias": (False,),
    "attention_layer_norm": (False,),
    "scale_logits": (False,),
    "input_emb_norm": (False,),
    "block_group_size": (1,),
}


@dataclass
class LLaDAArgs:
    d_model: int
    n_layers: int
    n_heads: int
    vocab_size: int
    mask_token_id: int
    eos_token_id: int
    n_kv_heads: Optional[int] = None
    mlp_hidden_size: Optional[int] = None
    mlp_ratio: int = 4
    embedding_size: Optional[int] = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_sequence_length: int = 4096
    weight_tying: bool = False
    model_type: str = "llada"
    # Not in config.json: the tokenizer knows it; the loaders fill it in.
    eot_token_id: Optional[int] = None
    # Settings in config.json that no implementation here follows (see UNSUPPORTED_SETTINGS).
    unsupported: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, params: dict[str, Any]):
        """Arguments from LLaDA's config.json; keys the model does not use are ignored."""
        names = {f.name for f in fields(cls)} - {"unsupported"}
        args = cls(**{k: v for k, v in params.items() if k in names})
        args.unsupported = {
            key: params.get(key)
            for key, wanted in UNSUPPORTED_SETTINGS.items()
            if key in params and params[key] not in wanted
        }
        return args

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def hidden_size(self) -> int:
        return self.mlp_hidden_size or self.mlp_ratio * self.d_model

    @property
    def rows(self) -> int:
        """Rows of the embedding and the head (embedding_size when set, else vocab_size)."""
        return self.embedding_size or self.vocab_size


# ---------------------------------------------------------------------------------------------
# LLaDA-MoE (inclusionAI/LLaDA-MoE-7B-A1B): its own config.json, told apart by architectures[0].

DENSE_ARCHITECTURE = "LLaDAModelLM"
MOE_ARCHITECTURES = ("LLaDAMoEModelLM", "LLaDAMoEModel")

# The Ling tokenizer's special tokens LLaDA-MoE uses.
MOE_MASK = "<|mask|>"
MOE_EOS = "<|endoftext|>"
MOE_EOT = "<|role_end|>"

# Fields the reference configuration leaves unset (-1) unless the checkpoint gives them.
MOE_REQUIRED = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_experts",
    "num_experts_per_tok", "expert_intermediate_size", "vocab_size", "rope_theta",
    "partial_rotary_factor",
)


def is_moe_config(config: dict[str, Any]) -> bool:
    """True when config.json describes LLaDA-MoE: `model_type` is "llada" for both families, so
    architectures[0] decides (LLaDAMoEModelLM vs LLaDAModelLM)."""
    architectures = config.get("architectures")
    return bool(architectures) and isinstance(architectures, list) and \
        architectures[0] in MOE_ARCHITECTURES


def _ignored_moe_settings(params: dict[str, Any]) -> list[str]:
    """Routing fields LLaDA-MoE's reference code reads from its config but never uses (it always
    routes by softmax top-k without renormalising, scaling or groups): accepted, each named."""
    ignored = []
    if params.get("moe_router_score_function") not in (None, "softmax"):
        ignored.append(f"moe_router_score_function={params['moe_router_score_function']!r}")
    if params.get("norm_topk_prob"):
        ignored.append("norm_topk_prob=true")
    if params.get("routed_scaling_factor") not in (1, 1.0, None):
        ignored.append(f"routed_scaling_factor={params['routed_scaling_factor']!r}")
    for key in ("router_num_group", "router_topk_group", "n_group", "topk_group"):
        value = params.get(key)
        if value is not None and value not in (0, 1):
            ignored.append(f"{key}={value!r}")
    return ignored


def _unsupported_moe_settings(params: dict[str, Any]) -> list[str]:
    """Each value of config.json that this implementation does not follow, named."""
    problems = []

    def given(key: str) -> Any:
        return params.get(key)

    if given("moe_router_enable_expert_bias"):
        problems.append("an expert bias (moe_router_enable_expert_bias=true)")
    if params.get("hidden_act", "silu") != "silu":
        problems.append(f"activation {given('hidden_act')!r} (only silu)")
    if given("attention_bias"):
        problems.append("attention biases (attention_bias=true)")
    if given("clip_qkv") is not None:
        problems.append(f"clipped q/k/v (clip_qkv={given('clip_qkv')!r})")
    if given("rope_scaling") is not None:
        problems.append(f"rope scaling (rope_scaling={given('rope_scaling')!r})")
    if given("moe_layer_freq") is None:
        problems.append("no moe_layer_freq (which layers are MoE)")
    return problems


def tokenizer_token_id(tokenizer: Any, token: str) -> Optional[int]:
    """The id of an added token in the tokenizer, or None when it has no such token."""
    value = tokenizer.convert_tokens_to_ids(token)
    if value is None or value == tokenizer.unk_token_id:
        return None
    return int(value)


class HuggingFaceSizes:
    """The sizes the app reads (rows, context, the dense family's d_model / n_layers / n_heads) of a
    config.json in Hugging Face's names (hidden_size, num_hidden_layers, ...)."""

    vocab_size: int
    max_position_embeddings: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int

    @property
    def rows(self) -> int:
        """Rows of the embedding and the head."""
        return self.vocab_size

    @property
    def max_sequence_length(self) -> int:
        return self.max_position_embeddings

    @property
    def d_model(self) -> int:
        return self.hidden_size

    @property
    def n_layers(self) -> int:
        return self.num_hidden_layers

    @property
    def n_heads(self) -> int:
        return self.num_attention_heads


@dataclass
class LLaDAMoEArgs(HuggingFaceSizes):
    """LLaDA-MoE's config.json (the reference LLaDAMoEConfig's fields); every number from it."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_experts: int
    num_experts_per_tok: int
    expert_intermediate_size: int
    vocab_size: int
    rope_theta: float
    partial_rotary_factor: float
    num_key_value_heads: Optional[int] = None
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    qk_layernorm: bool = False
    # Per layer, 0 for a dense SwiGLU feed-forward of dense_intermediate_size, else the experts
    # (the reference's LLaDAMoEDecoderLayer); MoE layers add a shared expert when
    # shared_expert_intermediate_size is set.
    moe_layer_freq: Optional[list] = None
    dense_intermediate_size: Optional[int] = None
    shared_expert_intermediate_size: Optional[int] = None
    model_type: str = "llada"
    # The tokenizer's <|mask|> (the loaders fill it in; config.json's mask_token_id only when the
    # tokenizer has none, with a warning when they disagree); EOS and end of turn always come
    # from the tokenizer.
    mask_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    eot_token_id: Optional[int] = None

    @classmethod
    def from_dict(cls, params: dict[str, Any]):
        """Arguments from LLaDA-MoE's config.json. A missing field or a setting this
        implementation does not follow raises one CheckpointError naming it; EOS comes from the
        tokenizer, so config.json's eos_token_id is not read."""

        missing = [key for key in MOE_REQUIRED if params.get(key) is None]
        if missing:
            raise CheckpointError(f"config.json is missing LLaDA-MoE field(s): {', '.join(missing)}")
        problems = _unsupported_moe_settings(params)
        if problems:
            raise CheckpointError(
                "config.json asks for a LLaDA-MoE variant we do not implement: "
                + "; ".join(problems))
        ignored = _ignored_moe_settings(params)
        if ignored:
            log.warning("config.json sets %s, which LLaDA-MoE's reference code ignores (softmax "
                        "top-k, no renormalising); ignored here too", ", ".join(ignored))
        names = {f.name for f in fields(cls)} - {"eos_token_id", "eot_token_id"}
        args = cls(**{k: v for k, v in params.items() if k in names})
        args.qk_layernorm = bool(args.qk_layernorm)
        args.tie_word_embeddings = bool(args.tie_word_embeddings)
        args.check()
        return args

    def check(self) -> None:

        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_experts",
                     "num_experts_per_tok", "expert_intermediate_size", "vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CheckpointError(f"config.json's {name} {value!r} is not a positive integer")
        if self.hidden_size % self.num_attention_heads:
            raise CheckpointError(f"hidden_size {self.hidden_size} is not a multiple of "
                                  f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.kv_heads:
            raise CheckpointError(f"num_attention_heads {self.num_attention_heads} is not a "
                                  f"multiple of num_key_value_heads {self.kv_heads}")
        if not 0 < self.num_experts_per_tok <= self.num_experts:
            raise CheckpointError(f"num_experts_per_tok {self.num_experts_per_tok} must be between "
                                  f"1 and num_experts {self.num_experts}")
        factor = self.partial_rotary_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
            raise CheckpointError(f"config.json's partial_rotary_factor {factor!r} is not in (0, 1]")
        if self.rotary_dims < 2 or self.rotary_dims % 2:
            raise CheckpointError(f"partial_rotary_factor {factor} gives {self.rotary_dims} rotary "
                                  f"dimensions of {self.head_dim}; they must be even and at least 2")
        if not isinstance(self.rope_theta, (int, float)) or self.rope_theta <= 0:
            raise CheckpointError(f"config.json's rope_theta {self.rope_theta!r} is not positive")
        freq = self.moe_layer_freq
        if not isinstance(freq, list) or len(freq) != self.num_hidden_layers or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in freq):
            raise CheckpointError(f"config.json's moe_layer_freq {freq!r} is not one 0 (dense) or "
                                  f"1 (MoE) per layer ({self.num_hidden_layers} layers)")
        for name, needed in (("dense_intermediate_size", not all(freq)),
                             ("shared_expert_intermediate_size", False)):
            value = getattr(self, name)
            if (needed or value is not None) and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 0
                    or (needed and value == 0)):
                raise CheckpointError(f"config.json's {name} {value!r} is not a positive integer"
                                      + (" (moe_layer_freq has dense layers)" if needed else ""))

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer `layer` routes to experts (moe_layer_freq 1) or is dense (0)."""
        return self.moe_layer_freq[layer] != 0

    @property
    def shared_expert_size(self) -> int:
        """The shared expert's width on MoE layers; 0 for none."""
        return self.shared_expert_intermediate_size or 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def rotary_dims(self) -> int:
        """The rotated dimensions of each head: head_dim × partial_rotary_factor, as HF rounds."""
        return int(self.head_dim * self.partial_rotary_factor)

    def fill_token_ids(self, tokenizer: Any) -> None:
        """Mask (unless config.json gave it), EOS and end of turn from the Ling tokenizer; a
        missing mask or EOS token is a CheckpointError naming it."""

        def token_id(token: str) -> Optional[int]:
            return tokenizer_token_id(tokenizer, token)

        from_tokenizer = token_id(MOE_MASK)
        if from_tokenizer is not None:
            if self.mask_token_id is not None and self.mask_token_id != from_tokenizer:
                log.warning("config.json's mask_token_id %r is not the tokenizer's %s (%d); the "
                            "tokenizer's is used", self.mask_token_id, MOE_MASK, from_tokenizer)
            self.mask_token_id = from_tokenizer
        elif self.mask_token_id is None:
            raise CheckpointError(f"config.json has no mask_token_id and the tokenizer has no "
                                  f"{MOE_MASK} token")
        self.eos_token_id = token_id(MOE_EOS)
        if self.eos_token_id is None:
            eos = getattr(tokenizer, "eos_token_id", None)
            if eos is None:
                raise CheckpointError(f"the tokenizer has no {MOE_EOS} (EOS) token")
            self.eos_token_id = int(eos)
        self.eot_token_id = token_id(MOE_EOT)
        for name in ("mask_token_id", "eos_token_id", "eot_token_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value < self.rows):
                raise CheckpointError(f"{name} {value!r} is not an id below {self.rows}")
