"""LLaDA in MLX: a LLaMA-style transformer without a causal mask.

Modules are named as in the mlx-community conversions (`model.embed_tokens`, `model.layers.N.*`
keeping LLaDA's per-block names, `model.norm`, `model.lm_head`); `Model.sanitize` maps the
official Hugging Face names (`model.transformer.wte`, `blocks.N`, `ln_f`, `ff_out`) onto them.

Numerics follow the reference: RMSNorm normalises in float32 and rounds back to the activation
dtype before the weight multiplies; rotary embeddings (half-split layout, all head dims) are
applied in float32; attention is bidirectional, so no mask is ever passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from llada_core.checkpoint import CheckpointError
from llada_core.config import LLaDAArgs
from llada_core.kv_cache import KVCache


@dataclass
class ModelArgs(LLaDAArgs):
    """LLaDA's config.json (llada_core.config.LLaDAArgs), plus the quantization entry."""

    # config.json's "quantization" entry, when the weights are quantized.
    quantization: Optional[dict] = None


class RMSNorm(nn.Module):
    """RMSNorm as the reference rounds it: normalise in float32, cast back, then the weight."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = mx.ones((size,))

    def __call__(self, x: mx.array) -> mx.array:
        # mx.fast.rms_norm accumulates in float32 and returns x's dtype.
        return self.weight * mx.fast.rms_norm(x, None, self.eps)


def rope_upcasts() -> bool:
    """Whether mx.fast.rope computes in float32 whatever its input (the Metal kernel does)."""
    return mx.default_device() == mx.gpu and mx.metal.is_available()


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        d, kv = args.d_model, args.kv_heads * args.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.kv_heads, args.head_dim
        self.scale = 1.0 / math.sqrt(args.head_dim)
        self.rope_theta = float(args.rope_theta)
        self.attn_norm = RMSNorm(d, args.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, args.rms_norm_eps)
        self.ff_proj = nn.Linear(d, args.hidden_size, bias=False)  # the gate (SiLU)
        self.up_proj = nn.Linear(d, args.hidden_size, bias=False)
        self.ff_out = nn.Linear(args.hidden_size, d, bias=False)  # the down projection

    def rope(self, t: mx.array, offset: int = 0) -> mx.array:
        """Rotary embeddings applied in float32 and rounded back, as the reference does.

        Metal's rope kernel already reads its input into float32 and rounds the result once, so
        there the half-precision input goes in directly; MLX's CPU rope computes in the input's
        dtype (measured: a bf16 input differs from the float32 round trip at ~20 % of values),
        so there the round trip stays."""
        if t.dtype == mx.float32 or rope_upcasts():
            return mx.fast.rope(t, self.head_dim, traditional=False, base=self.rope_theta,
                                scale=1.0, offset=offset)
        dtype = t.dtype
        t = mx.fast.rope(t.astype(mx.float32), self.head_dim, traditional=False,
                         base=self.rope_theta, scale=1.0, offset=offset)
        return t.astype(dtype)

    def attention(self, h: mx.array, cache: Optional[KVCache] = None, layer: int = 0,
                  offset: int = 0) -> mx.array:
        B, L, _ = h.shape
        q = self.q_proj(h).reshape(B, L, self.n_heads, self.head_dim).transpose(0, 2, 1, 3)
        k = self.k_proj(h).reshape(B, L, self.n_kv_heads, self.head_dim).transpose(0, 2, 1, 3)
        v = self.v_proj(h).reshape(B, L, self.n_kv_heads, self.head_dim).transpose(0, 2, 1, 3)
        q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.update(layer, k, v, offset)
        # Bidirectional: no mask at all (mlx-lm's create_attention_mask would make it causal).
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=None)
        return self.attn_out(out.transpose(0, 2, 1, 3).reshape(B, L, -1))

    def __call__(self, x: mx.array, cache: Optional[KVCache] = None, layer: int = 0,
                 offset: int = 0) -> mx.array:
        x = x + self.attention(self.attn_norm(x), cache, layer, offset)
        g = self.ff_norm(x)
        return x + self.ff_out(nn.silu(self.ff_proj(g)) * self.up_proj(g))


class LLaDAModel(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.rows, args.d_model)
        self.layers = [Block(args) for _ in range(args.n_layers)]
        self.norm = RMSNorm(args.d_model, args.rms_norm_eps)
        if not args.weight_tying:
            self.lm_head = nn.Linear(args.d_model, args.rows, bias=False)

    def __call__(self, input_ids: mx.array, cache: Optional[KVCache] = None, offset: int = 0,
                 logits_for: Optional[slice] = None, embeds: Optional[mx.array] = None) -> mx.array:
        if cache is None and offset:
            raise ValueError("an offset needs a cache holding the rest of the canvas")
        x = self.embed_tokens(input_ids) if embeds is None else embeds
        for index, layer in enumerate(self.layers):
            x = layer(x, cache, index, offset)
        x = self.norm(x if logits_for is None else x[:, logits_for])
        if self.args.weight_tying:
            return self.embed_tokens.as_linear(x)
        return self.lm_head(x)


class Model(nn.Module):
    """LLaDA mask predictor: token ids (B, L) -> logits (B, L, rows)."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.model_type = args.model_type
        self.model = LLaDAModel(args)

    def __call__(self, input_ids: mx.array, cache: Optional[KVCache] = None, offset: int = 0,
                 logits_for: Optional[slice] = None) -> mx.array:
        """Logits of input_ids, which sit at positions offset, offset + 1, ... of the canvas.

        With an empty cache the pass (offset 0, the whole canvas) fills it; with a filled cache
        input_ids is a window whose keys and values replace the cached ones at those positions.
        logits_for limits the head to those positions of the window (the others go unused).
        """
        check_ids(input_ids, self.args.rows)
        return self.model(input_ids, cache, offset, logits_for, embeds=self.embed(input_ids, offset))

    def embed(self, input_ids: mx.array, offset: int = 0) -> Optional[mx.array]:
        """The embeddings of a window at `offset` when they are not the token embeddings alone
        (a vision model puts its pictures' features in); None: the token embeddings."""
        return None

    @property
    def dtype(self) -> mx.Dtype:
        return self.model.norm.weight.dtype

    @property
    def layers(self) -> list:
        return self.model.layers

    @staticmethod
    def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Either layout in, mlx-community names out; a layout we do not know is an error."""
        if weights and not any(name.startswith(KNOWN_PREFIXES) for name in weights):
            example = sorted(weights)[0]
            raise CheckpointError(
                f"the weights are in a layout we do not know (first tensor: {example}); expected "
                "the official names (model.transformer.*) or the mlx-community names "
                "(model.embed_tokens.*, model.layers.N.*)"
            )
        return {_mlx_name(name): value for name, value in weights.items()}


def check_ids(input_ids: mx.array, rows: int) -> None:
    """An id outside the embedding could crash the process: refuse it before the lookup."""
    if input_ids.size == 0:
        return
    low, high = mx.min(input_ids).item(), mx.max(input_ids).item()
    if low < 0 or high >= rows:
        bad = low if low < 0 else high
        raise ValueError(f"token id {bad} is not a valid id (the model has ids 0 to {rows - 1})")


# Official (Hugging Face) prefix -> mlx-community prefix.
_RENAMES = {
    "model.transformer.wte.": "model.embed_tokens.",
    "model.transformer.blocks.": "model.layers.",
    "model.transformer.ln_f.": "model.norm.",
    "model.transformer.ff_out.": "model.lm_head.",
    "lm_head.": "model.lm_head.",  # a head outside `model.`, as some converters write it
}
KNOWN_PREFIXES = tuple(_RENAMES) + (
    "model.embed_tokens.", "model.layers.", "model.norm.", "model.lm_head.",
)


def _mlx_name(name: str) -> str:
    for prefix, renamed in _RENAMES.items():
        if name.startswith(prefix):
            return renamed + name[len(prefix):]
    return name
