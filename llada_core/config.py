"""LLaDA's config.json as a dataclass; each backend's ModelArgs extends it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

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
