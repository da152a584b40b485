"""LLaDA 2.x (inclusionAI's LLaDA2.0-mini and LLaDA2.1-mini, the Bailing/Ling MoE trained for
block diffusion): config.json read into typed arguments, every number from it, every token id
from the tokenizer (`../shared/llada2-spec.md` B1, B8). Framework-free."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

from llada_core.config import HuggingFaceSizes, tokenizer_token_id
from llada_core.errors import CheckpointError

log = logging.getLogger(__name__)

LLADA2_ARCHITECTURES = ("LLaDA2MoeModelLM",)
LLADA2_MODEL_TYPE = "llada2_moe"
MASK = "<|mask|>"
EOS = "<|endoftext|>"
EOT = "<|role_end|>"
# The 2.1 editing decoder's settings in generation_config.json (2.0-mini ships none) [spec B5, B6].
EDITING_KEYS = ("editing_threshold", "max_post_steps")


def is_llada2_config(config: dict[str, Any]) -> bool:
    architectures = config.get("architectures")
    first = architectures[0] if isinstance(architectures, list) and architectures else None
    return first in LLADA2_ARCHITECTURES or config.get("model_type") == LLADA2_MODEL_TYPE


@dataclass
class LLaDA2Args(HuggingFaceSizes):
    """LLaDA2MoeConfig's fields as the reference modelling code reads them."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    moe_intermediate_size: int
    num_experts: int
    num_experts_per_tok: int
    vocab_size: int
    head_dim: Optional[int] = None
    num_shared_experts: int = 0
    first_k_dense_replace: int = 0
    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 16384
    tie_word_embeddings: bool = False
    use_qk_norm: bool = True       # absent from the real config.json: the class default applies
    model_type: str = LLADA2_MODEL_TYPE
    # From the tokenizer (fill_token_ids), never from config.json.
    mask_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    eot_token_id: Optional[int] = None
    # The 2.1 editing decoder's defaults, from generation_config.json; None: a 2.0 model.
    editing_threshold: Optional[float] = None
    max_post_steps: int = 16

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "LLaDA2Args":
        names = {f.name for f in fields(cls)} - {
            "mask_token_id", "eos_token_id", "eot_token_id", "editing_threshold", "max_post_steps"}
        missing = [name for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                     "num_key_value_heads", "intermediate_size",
                                     "moe_intermediate_size", "num_experts",
                                     "num_experts_per_tok", "vocab_size")
                   if params.get(name) is None]
        if missing:
            raise CheckpointError(f"config.json is missing LLaDA2 field(s): {', '.join(missing)}")
        if params.get("rope_scaling") is not None:
            raise CheckpointError(f"config.json asks for rope scaling ({params['rope_scaling']!r}), "
                                  "which LLaDA2 is not implemented with")
        args = cls(**{key: value for key, value in params.items() if key in names})
        args.check()
        return args

    def check(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size", "moe_intermediate_size",
                     "num_experts", "num_experts_per_tok", "vocab_size", "n_group", "topk_group"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CheckpointError(f"config.json's {name} {value!r} is not a positive integer")
        if self.num_attention_heads % self.num_key_value_heads:
            raise CheckpointError(f"num_attention_heads {self.num_attention_heads} is not a "
                                  f"multiple of num_key_value_heads {self.num_key_value_heads}")
        if self.num_experts % self.n_group or not self.topk_group <= self.n_group:
            raise CheckpointError(f"{self.num_experts} experts cannot be routed in {self.n_group} "
                                  f"groups keeping {self.topk_group}")
        if not 0 < self.num_experts_per_tok <= self.num_experts:
            raise CheckpointError(f"num_experts_per_tok {self.num_experts_per_tok} must be between "
                                  f"1 and num_experts {self.num_experts}")
        if self.rotary_dims < 2 or self.rotary_dims % 2:
            raise CheckpointError(f"partial_rotary_factor {self.partial_rotary_factor!r} gives "
                                  f"{self.rotary_dims} rotary dimensions of {self.dim_per_head}")

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def rotary_dims(self) -> int:
        """head_dim × partial_rotary_factor: config.json's rotary_dim is never read [spec B5]."""
        return int(self.dim_per_head * self.partial_rotary_factor)

    def is_dense_layer(self, layer: int) -> bool:
        return layer < self.first_k_dense_replace

    @property
    def is_editing(self) -> bool:
        """LLaDA2.1: its generation config carries the editing decoder's settings."""
        return self.editing_threshold is not None

    def fill_token_ids(self, tokenizer: Any) -> None:
        """Mask, EOS and end of turn from the tokenizer files [spec B8: never hard-coded]."""

        self.mask_token_id = tokenizer_token_id(tokenizer, MASK)
        self.eos_token_id = tokenizer_token_id(tokenizer, EOS)
        self.eot_token_id = tokenizer_token_id(tokenizer, EOT)
        if self.mask_token_id is None:
            raise CheckpointError(f"the tokenizer has no {MASK} token")
        if self.eos_token_id is None:
            raise CheckpointError(f"the tokenizer has no {EOS} (EOS) token")
        for name in ("mask_token_id", "eos_token_id", "eot_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.rows:
                raise CheckpointError(f"{name} {value} is not an id below {self.rows}")

    def read_generation_config(self, folder: Path) -> None:
        """The 2.1 editing decoder's defaults from generation_config.json, when it has them."""
        path = Path(folder) / "generation_config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(config, dict):
            return
        value = config.get("editing_threshold")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
            self.editing_threshold = float(value)
            steps = config.get("max_post_steps")
            if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0:
                self.max_post_steps = steps
        elif value is not None:
            log.warning("generation_config.json's editing_threshold %r is not in [0, 1]; the "
                        "2.0 decoder is used", value)
