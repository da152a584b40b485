"""LLaDA-V's config.json and tensor names (`../shared/llada-v-spec.md` §2), framework-free.

The language model is LLaDA-8B-Instruct renamed LLaMA-style (`model.layers.N.self_attn.q_proj`,
`mlp.gate_proj`, top-level `lm_head`); `lm_config` gives our LLaDA config.json fields for it and
`official_lm_name` the LLaDA name of each of its tensors, so each backend's LLaDA model runs it
unchanged. The vision tower's tensors (`model.vision_tower.vision_tower.vision_model.*`, 26
layers used), the projector (`model.mm_projector.{0,2}`) and `model.image_newline` get short
names (`vision.*`, `projector.*`, `image_newline`); the unused pooling head, post-layernorm and
layers past the tower's depth are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from llada_core import tokens
from llada_core.config import tokenizer_token_id
from llada_core.errors import CheckpointError
from llada_core.vision import VisionConfig

LLADA_V_MODEL_TYPE = "llava_llada"
TOWER = "model.vision_tower.vision_tower.vision_model."
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_LM_PARTS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "q_proj.weight",
    "self_attn.k_proj.weight": "k_proj.weight",
    "self_attn.v_proj.weight": "v_proj.weight",
    "self_attn.o_proj.weight": "attn_out.weight",
    "post_attention_layernorm.weight": "ff_norm.weight",
    "mlp.gate_proj.weight": "ff_proj.weight",
    "mlp.up_proj.weight": "up_proj.weight",
    "mlp.down_proj.weight": "ff_out.weight",
}


def is_llada_v_config(config: dict[str, Any]) -> bool:
    return config.get("model_type") == LLADA_V_MODEL_TYPE


@dataclass(frozen=True)
class SamplingRules:
    """What LLaDA-V's reference sampler (`generate_with_embeds`, spec §6.2) does beyond LLaDA's:
    the logits are cut to the tokenizer's length (the authors' loader shrinks the head to it),
    `banned` ids (EOS, BOS, both header tokens) are -inf before the argmax, and the answer ends
    at the first `stop_id` (<|eot_id|>): nothing after it is committed, later blocks are
    skipped."""

    vocab_rows: int
    banned: tuple[int, ...]
    stop_id: Optional[int]


def sampling_rules(tokenizer: Any) -> SamplingRules:
    """The reference's rules with this tokenizer's ids (never hard-coded)."""
    banned = [tokenizer_token_id(tokenizer, token)
              for token in (tokens.EOS, tokens.BOS, tokens.START_HEADER, tokens.END_HEADER)]
    return SamplingRules(vocab_rows=len(tokenizer),
                         banned=tuple(sorted({t for t in banned if t is not None})),
                         stop_id=tokenizer_token_id(tokenizer, tokens.EOT))


def lm_config(config: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """The language model's fields in LLaDA's config.json names; mask and EOS from the tokenizer
    (config.json has no mask_token_id; the reference's 126336 is `<|mdm_mask|>`)."""
    missing = [key for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                               "intermediate_size", "vocab_size") if config.get(key) is None]
    if missing:
        raise CheckpointError(f"config.json is missing LLaDA-V field(s): {', '.join(missing)}")

    mask = tokenizer_token_id(tokenizer, tokens.MASK)
    eos = tokenizer_token_id(tokenizer, tokens.EOS)
    if mask is None or eos is None:
        raise CheckpointError(f"the tokenizer has no {tokens.MASK} or {tokens.EOS} token")
    if config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise CheckpointError(f"projector {config['mm_projector_type']!r}: only mlp2x_gelu")
    if config.get("mm_patch_merge_type", "spatial_unpad") != "spatial_unpad":
        raise CheckpointError(f"mm_patch_merge_type {config['mm_patch_merge_type']!r}: only "
                              "spatial_unpad")
    return {
        "d_model": config["hidden_size"], "n_layers": config["num_hidden_layers"],
        "n_heads": config["num_attention_heads"],
        "n_kv_heads": config.get("num_key_value_heads") or config["num_attention_heads"],
        "mlp_hidden_size": config["intermediate_size"], "vocab_size": config["vocab_size"],
        "embedding_size": config["vocab_size"], "rope_theta": config.get("rope_theta", 500000.0),
        "rms_norm_eps": config.get("rms_norm_eps", 1e-5),
        "max_sequence_length": config.get("tokenizer_model_max_length")
        or config.get("max_position_embeddings", 8192),
        "weight_tying": bool(config.get("tie_word_embeddings", False)),
        "mask_token_id": mask, "eos_token_id": eos, "model_type": "llada",
    }


def official_lm_name(name: str) -> Optional[str]:
    """The LLaDA (model.transformer.*) name of a LLaMA-style LM tensor; None for the others."""
    if name == "model.embed_tokens.weight":
        return "model.transformer.wte.weight"
    if name == "model.norm.weight":
        return "model.transformer.ln_f.weight"
    if name == "lm_head.weight":
        return "model.transformer.ff_out.weight"
    found = _LAYER.match(name)
    if found and found.group(2) in _LM_PARTS:
        return f"model.transformer.blocks.{found.group(1)}.{_LM_PARTS[found.group(2)]}"
    return None


def split_weights(weights: dict[str, Any], vision: VisionConfig) -> tuple[dict, dict]:
    """(language model tensors under LLaDA names, vision tensors under short names); a tensor
    of neither part is a CheckpointError naming it."""
    language, seeing = {}, {}
    for name, value in weights.items():
        official = official_lm_name(name)
        if official is not None:
            language[official] = value
        elif name.startswith(TOWER):
            rest = name[len(TOWER):]
            layer = re.match(r"encoder\.layers\.(\d+)\.", rest)
            if rest.startswith(("head.", "post_layernorm.")) or (
                    layer and int(layer.group(1)) >= vision.num_hidden_layers):
                continue  # unused at inference (spec §2.2, §4)
            seeing["vision." + rest] = value
        elif name.startswith("model.mm_projector."):
            index, _, kind = name[len("model.mm_projector."):].partition(".")
            seeing[f"projector.linear_{1 if index == '0' else 2}.{kind}"] = value
        elif name == "model.image_newline":
            seeing["image_newline"] = value
        else:
            raise CheckpointError(f"unexpected tensor {name} in a LLaDA-V checkpoint")
    return language, seeing
