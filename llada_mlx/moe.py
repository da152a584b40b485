"""LLaDA-MoE in MLX: a bidirectional transformer whose feed-forward is a Mixture of Experts.

Modules carry the official names (`model.embed_tokens`, `model.layers.N.self_attn.*`,
`…mlp.gate`, `model.norm`) with the head under `model.` as in our MLX layout (`model.lm_head`;
`Model.sanitize` maps the official top-level `lm_head`); the experts, stored one tensor per
expert (float or quantized per expert), are stacked at load time into
`…mlp.switch_mlp.{gate,up,down}_proj.{weight,scales,biases}` of shape [experts, out, …] and run
with `mx.gather_mm` (float) or `mx.gather_qmm` (quantized), the SwitchGLU idiom of mlx-lm.

Numerics follow `../shared/llada-moe-spec.md` §3: RMSNorm in float32 rounded back before the
weight; per-head q/k RMSNorm before half-split RoPE over head_dim × partial_rotary_factor dims;
no attention mask; router softmax in float32, top k without renormalisation, ties to the lowest
expert id, weights cast to the activation dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from llada_core.checkpoint import expert_stacks
from llada_core.config import LLaDAMoEArgs
from llada_core.kv_cache import KVCache
from llada_mlx.model import RMSNorm, check_ids, rope_upcasts


@dataclass
class ModelArgs(LLaDAMoEArgs):
    """LLaDA-MoE's config.json (llada_core.config.LLaDAMoEArgs), plus the quantization entry."""

    quantization: Optional[dict] = None


def route(probabilities: mx.array, k: int) -> mx.array:
    """The experts of the k largest probabilities per row, largest first; equal values are taken
    lowest expert first. Each expert's rank is the count of experts ahead of it (larger, or equal
    with a lower id), so the order never depends on a sort's stability."""
    p = probabilities
    count = p.shape[-1]
    ids = mx.arange(count)
    ahead = (p[..., None, :] > p[..., :, None]) | (
        (p[..., None, :] == p[..., :, None]) & (ids[None, :] < ids[:, None]))
    rank = ahead.astype(mx.int32).sum(axis=-1)
    return mx.argsort(rank, axis=-1)[..., :k]


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        d, hd = args.hidden_size, args.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = args.num_attention_heads, args.kv_heads, hd
        self.rotary_dims, self.rope_theta = args.rotary_dims, float(args.rope_theta)
        self.scale = 1.0 / math.sqrt(hd)
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.n_heads * hd, d, bias=False)
        if args.qk_layernorm:
            self.q_norm = RMSNorm(hd, args.rms_norm_eps)
            self.k_norm = RMSNorm(hd, args.rms_norm_eps)

    def rope(self, t: mx.array, offset: int) -> mx.array:
        """Half-split RoPE over the first rotary_dims dims (the rest pass), in float32."""
        if t.dtype == mx.float32 or rope_upcasts():
            return mx.fast.rope(t, self.rotary_dims, traditional=False, base=self.rope_theta,
                                scale=1.0, offset=offset)
        rotated = mx.fast.rope(t.astype(mx.float32), self.rotary_dims, traditional=False,
                               base=self.rope_theta, scale=1.0, offset=offset)
        return rotated.astype(t.dtype)

    def __call__(self, h: mx.array, cache: Optional[KVCache] = None, layer: int = 0,
                 offset: int = 0) -> mx.array:
        B, L, _ = h.shape
        q = self.q_proj(h).reshape(B, L, self.n_heads, self.head_dim)
        k = self.k_proj(h).reshape(B, L, self.n_kv_heads, self.head_dim)
        v = self.v_proj(h).reshape(B, L, self.n_kv_heads, self.head_dim).transpose(0, 2, 1, 3)
        if "q_norm" in self:  # per head, before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        q = self.rope(q.transpose(0, 2, 1, 3), offset)
        k = self.rope(k.transpose(0, 2, 1, 3), offset)
        if cache is not None:
            k, v = cache.update(layer, k, v, offset)
        # Bidirectional: no mask at all.
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=None)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class SwitchLinear(nn.Module):
    """One Linear per expert, stacked [experts, out, in], applied to chosen experts (gather_mm)."""

    def __init__(self, in_features: int, out_features: int, experts: int):
        super().__init__()
        self.weight = mx.zeros((experts, out_features, in_features))

    def __call__(self, x: mx.array, indices: mx.array, sorted_indices: bool = False) -> mx.array:
        return mx.gather_mm(x, self.weight.swapaxes(-1, -2), rhs_indices=indices,
                            sorted_indices=sorted_indices)

    def to_quantized(self, group_size: int = 64, bits: int = 4, mode: str = "affine",
                     **_: object) -> "QuantizedSwitchLinear":
        if mode != "affine":
            raise ValueError(f"quantization mode {mode!r}: only affine is supported")
        return QuantizedSwitchLinear.from_float(self, group_size, bits)


class QuantizedSwitchLinear(nn.Module):
    """SwitchLinear with affine-quantized experts (each expert's rows in its own groups),
    applied with gather_qmm."""

    def __init__(self, weight: mx.array, group_size: int, bits: int):
        super().__init__()
        self.group_size, self.bits = group_size, bits
        self.weight, self.scales, self.biases = mx.quantize(weight, group_size, bits)
        self.freeze()

    @classmethod
    def from_float(cls, linear: SwitchLinear, group_size: int, bits: int) -> "QuantizedSwitchLinear":
        return cls(linear.weight, group_size, bits)

    def __call__(self, x: mx.array, indices: mx.array, sorted_indices: bool = False) -> mx.array:
        return mx.gather_qmm(x, self.weight, self.scales, self.biases, rhs_indices=indices,
                             transpose=True, group_size=self.group_size, bits=self.bits,
                             sorted_indices=sorted_indices)


class SwitchGLU(nn.Module):
    """Every chosen expert's down(silu(gate(x)) * up(x)): x [..., d], indices [..., k] ->
    [..., k, d]. With many (token, expert) pairs they are sorted by expert first, so each
    expert's weights are read once per call (mlx-lm's SwitchGLU idiom)."""

    SORT_FROM = 64  # pairs

    def __init__(self, d: int, inner: int, experts: int):
        super().__init__()
        self.gate_proj = SwitchLinear(d, inner, experts)
        self.up_proj = SwitchLinear(d, inner, experts)
        self.down_proj = SwitchLinear(inner, d, experts)

    def __call__(self, x: mx.array, indices: mx.array) -> mx.array:
        k = indices.shape[-1]
        x = mx.expand_dims(x, (-2, -3))  # [..., 1, 1, d]
        do_sort = indices.size >= self.SORT_FROM
        idx, inverse = indices, None
        if do_sort:
            flat = indices.flatten()
            order = mx.argsort(flat)
            inverse = mx.argsort(order)
            x = x.flatten(0, -3)[order // k]  # [N·k, 1, d]
            idx = flat[order]
        gate = self.gate_proj(x, idx, sorted_indices=do_sort)
        up = self.up_proj(x, idx, sorted_indices=do_sort)
        out = self.down_proj(nn.silu(gate) * up, idx, sorted_indices=do_sort)
        if do_sort:
            out = mx.unflatten(out[inverse], 0, indices.shape)
        return out.squeeze(-2)


class SparseMoeBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.top_k = args.num_experts_per_tok
        self.gate = nn.Linear(args.hidden_size, args.num_experts, bias=False)  # the router
        self.switch_mlp = SwitchGLU(args.hidden_size, args.expert_intermediate_size,
                                    args.num_experts)

    def __call__(self, x: mx.array) -> mx.array:
        probabilities = mx.softmax(self.gate(x).astype(mx.float32), axis=-1, precise=True)
        experts = route(probabilities, self.top_k)
        weights = mx.take_along_axis(probabilities, experts, axis=-1).astype(x.dtype)
        outputs = self.switch_mlp(x, experts)
        return (outputs * weights[..., None]).sum(axis=-2)


class MLP(nn.Module):
    """A dense SwiGLU feed-forward: a dense layer's mlp, or the shared expert."""

    def __init__(self, d: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, inner, bias=False)
        self.up_proj = nn.Linear(d, inner, bias=False)
        self.down_proj = nn.Linear(inner, d, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, args: ModelArgs, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = Attention(args)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        if args.is_moe_layer(index):
            self.mlp = SparseMoeBlock(args)
            if args.shared_expert_size:
                self.shared_expert = MLP(args.hidden_size, args.shared_expert_size)
        else:
            self.mlp = MLP(args.hidden_size, args.dense_intermediate_size)

    def __call__(self, h: mx.array, cache: Optional[KVCache] = None, layer: int = 0,
                 offset: int = 0) -> mx.array:
        x = h + self.self_attn(self.input_layernorm(h), cache, layer, offset)
        normed = self.post_attention_layernorm(x)
        out = self.mlp(normed)
        if "shared_expert" in self:  # sees the same normed input as the experts
            out = out + self.shared_expert(normed)
        return x + out


class LLaDAMoEModel(nn.Module):
    """Embedding, layers, final norm and head: ids -> logits (the samplers call this)."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.rows, args.hidden_size)
        self.layers = [DecoderLayer(args, i) for i in range(args.num_hidden_layers)]
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        if not args.tie_word_embeddings:
            self.lm_head = nn.Linear(args.hidden_size, args.rows, bias=False)

    def __call__(self, input_ids: mx.array, cache: Optional[KVCache] = None, offset: int = 0,
                 logits_for: Optional[slice] = None) -> mx.array:
        if cache is None and offset:
            raise ValueError("an offset needs a cache holding the rest of the canvas")
        h = self.embed_tokens(input_ids)
        for index, layer in enumerate(self.layers):
            h = layer(h, cache, index, offset)
        h = self.norm(h if logits_for is None else h[:, logits_for])
        if self.args.tie_word_embeddings:
            return self.embed_tokens.as_linear(h)
        return self.lm_head(h)


class Model(nn.Module):
    """LLaDA-MoE mask predictor: token ids (B, L) -> logits (B, L, rows); the interface of
    llada_mlx.model.Model, so the samplers drive either family."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.model_type = args.model_type
        self.model = LLaDAMoEModel(args)

    def __call__(self, input_ids: mx.array, cache: Optional[KVCache] = None, offset: int = 0,
                 logits_for: Optional[slice] = None) -> mx.array:
        check_ids(input_ids, self.args.rows)
        return self.model(input_ids, cache, offset, logits_for)

    @property
    def dtype(self) -> mx.Dtype:
        return self.model.norm.weight.dtype

    @property
    def layers(self) -> list:
        return self.model.layers

    @staticmethod
    def sanitize(weights: dict[str, mx.array], num_experts: int) -> dict[str, mx.array]:
        """The official top-level `lm_head` moved under `model.`; per-expert tensors (weight, and
        scales and biases when quantized) stacked into switch_mlp tensors [experts, ...]."""
        renamed = {("model." + name if name.startswith("lm_head.") else name): value
                   for name, value in weights.items()}
        for stacked, names in expert_stacks(set(renamed), num_experts).items():
            renamed[stacked] = mx.stack([renamed.pop(name) for name in names])
        return renamed
