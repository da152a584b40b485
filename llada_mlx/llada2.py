"""LLaDA 2.x (LLaDA2.0-mini, LLaDA2.1-mini) in MLX: a Bailing MoE with block-causal attention.

The same model as llada_torch/llada2.py, with the official tensor names (`model.word_embeddings`,
`model.layers.N.attention.{query_key_value,dense,query_layernorm,key_layernorm}`,
`…mlp.gate.{weight,expert_bias}`, `…mlp.shared_experts`, `lm_head`); the per-expert tensors are
stacked into `…mlp.switch_mlp.*` and run with gather_mm (llada_mlx.moe's SwitchGLU). Numerics as
`../shared/llada2-spec.md` B3-B4: per-head q/k RMSNorm before half-split RoPE on the first
head_dim × partial_rotary_factor dims in float32, strict 0/-inf block-causal attention, routing in
float32 (sigmoid, expert_bias for the choice only, group-limited top-k, renormalised, scaled), the
experts combined in float32, plus the shared expert.
"""

from __future__ import annotations

import math
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from llada_core.checkpoint import expert_stacks, without_language_model_prefix
from llada_core.llada2_config import LLaDA2Args
from llada_mlx.model import RMSNorm, check_ids, rope_upcasts
from llada_mlx.moe import MLP, SwitchGLU

ModelArgs = LLaDA2Args


def block_causal_mask(length: int, block_length: int, dtype: mx.Dtype) -> mx.array:
    """Additive [length, length]: 0 where block(key) <= block(query), -inf elsewhere."""
    blocks = mx.arange(length) // block_length
    allowed = blocks[None, :] <= blocks[:, None]
    return mx.where(allowed, mx.array(0.0, dtype), mx.array(-math.inf, dtype))


def top_ranked(values: mx.array, k: int) -> mx.array:
    """Indices of the k largest values per row, largest first, equal values lowest index first
    (ranked by the count of entries ahead, so no sort's stability matters)."""
    ids = mx.arange(values.shape[-1])
    ahead = (values[..., None, :] > values[..., :, None]) | (
        (values[..., None, :] == values[..., :, None]) & (ids[None, :] < ids[:, None]))
    rank = ahead.astype(mx.int32).sum(axis=-1)
    return mx.argsort(rank, axis=-1)[..., :k]


def route(logits: mx.array, bias: mx.array, args: LLaDA2Args) -> tuple[mx.array, mx.array]:
    """(weights, experts) [N, k] of the router's float32 logits [N, E] (spec B3.4)."""
    scores = mx.sigmoid(logits)
    chosen_by = scores + bias
    n, experts = chosen_by.shape
    if args.n_group > 1:
        grouped = chosen_by.reshape(n, args.n_group, experts // args.n_group)
        group_scores = mx.sort(grouped, axis=-1)[..., -2:].sum(axis=-1)
        keep = top_ranked(group_scores, args.topk_group)
        allowed = (mx.arange(args.n_group)[None, None, :] == keep[:, :, None]).any(axis=1)
        allowed = mx.repeat(allowed, experts // args.n_group, axis=1)
        chosen_by = mx.where(allowed, chosen_by, mx.array(-math.inf, mx.float32))
    picked = top_ranked(chosen_by, args.num_experts_per_tok)
    weights = mx.take_along_axis(scores, picked, axis=-1)
    if args.num_experts_per_tok > 1:
        weights = weights / (weights.sum(axis=-1, keepdims=True) + 1e-20)
    return weights * args.routed_scaling_factor, picked


class Attention(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.heads, self.kv_heads, self.hd = (args.num_attention_heads, args.num_key_value_heads,
                                              args.dim_per_head)
        self.rotary_dims, self.rope_theta = args.rotary_dims, float(args.rope_theta)
        self.scale = 1.0 / math.sqrt(self.hd)
        width = (self.heads + 2 * self.kv_heads) * self.hd
        self.query_key_value = nn.Linear(args.hidden_size, width, bias=False)
        self.dense = nn.Linear(self.heads * self.hd, args.hidden_size, bias=False)
        if args.use_qk_norm:
            self.query_layernorm = RMSNorm(self.hd, args.rms_norm_eps)
            self.key_layernorm = RMSNorm(self.hd, args.rms_norm_eps)

    def rope(self, t: mx.array, offset: int) -> mx.array:
        if t.dtype == mx.float32 or rope_upcasts():
            return mx.fast.rope(t, self.rotary_dims, traditional=False, base=self.rope_theta,
                                scale=1.0, offset=offset)
        return mx.fast.rope(t.astype(mx.float32), self.rotary_dims, traditional=False,
                            base=self.rope_theta, scale=1.0, offset=offset).astype(t.dtype)

    def __call__(self, h: mx.array, mask: mx.array, cache: Optional["PrefixKV"] = None,
                 layer: int = 0) -> mx.array:
        B, L, _ = h.shape
        offset = cache.length if cache is not None else 0
        qkv = self.query_key_value(h).reshape(B, L, self.heads + 2 * self.kv_heads, self.hd)
        q, k, v = mx.split(qkv, [self.heads, self.heads + self.kv_heads], axis=2)
        if "query_layernorm" in self:  # per head, before RoPE
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q = self.rope(q.transpose(0, 2, 1, 3), offset)
        k = self.rope(k.transpose(0, 2, 1, 3), offset)
        v = v.transpose(0, 2, 1, 3)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.dense(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class Gate(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.weight = mx.zeros((args.num_experts, args.hidden_size))
        self.expert_bias = mx.zeros((args.num_experts,))


class SparseMoeBlock(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.gate = Gate(args)
        self.switch_mlp = SwitchGLU(args.hidden_size, args.moe_intermediate_size, args.num_experts)
        if args.num_shared_experts:
            self.shared_experts = MLP(args.hidden_size,
                                      args.moe_intermediate_size * args.num_shared_experts)

    def __call__(self, x: mx.array) -> mx.array:
        logits = x.astype(mx.float32) @ self.gate.weight.astype(mx.float32).T
        shape = logits.shape
        weights, experts = route(logits.reshape(-1, shape[-1]),
                                 self.gate.expert_bias.astype(mx.float32), self.args)
        weights, experts = (weights.reshape(*shape[:-1], -1), experts.reshape(*shape[:-1], -1))
        outputs = self.switch_mlp(x, experts).astype(mx.float32)
        out = (outputs * weights[..., None]).sum(axis=-2).astype(x.dtype)
        if "shared_experts" in self:
            out = out + self.shared_experts(x)
        return out


class DecoderLayer(nn.Module):
    def __init__(self, args: LLaDA2Args, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.attention = Attention(args)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = (MLP(args.hidden_size, args.intermediate_size) if args.is_dense_layer(index)
                    else SparseMoeBlock(args))

    def __call__(self, h: mx.array, mask: mx.array, cache: Optional["PrefixKV"] = None,
                 layer: int = 0) -> mx.array:
        x = h + self.attention(self.input_layernorm(h), mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class LLaDA2Model(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.word_embeddings = nn.Embedding(args.rows, args.hidden_size)
        self.layers = [DecoderLayer(args, i) for i in range(args.num_hidden_layers)]
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class Model(nn.Module):
    """LLaDA2 mask predictor: ids (B, L) -> float32 logits (B, L, rows), block-causal."""

    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.model_type = args.model_type
        self.model = LLaDA2Model(args)
        if not args.tie_word_embeddings:
            self.lm_head = nn.Linear(args.hidden_size, args.rows, bias=False)

    def __call__(self, input_ids: mx.array, block_length: int,
                 logits_for: Optional[slice] = None, cache: Optional["PrefixKV"] = None
                 ) -> mx.array:
        """Logits of a canvas prefix, blocks of `block_length`; with a `cache`, of the whole
        blocks that follow the cached ones (which they all see)."""
        check_ids(input_ids, self.args.rows)
        h = self.model.word_embeddings(input_ids)
        length = input_ids.shape[1]
        mask = block_causal_mask(length, block_length, h.dtype)
        if cache is not None and cache.length:
            mask = mx.concatenate([mx.zeros((length, cache.length), h.dtype), mask], axis=1)
        for index, layer in enumerate(self.model.layers):
            h = layer(h, mask, cache, index)
        if cache is not None:
            cache.advance(length)
        h = self.model.norm(h if logits_for is None else h[:, logits_for])
        if self.args.tie_word_embeddings:
            return self.model.word_embeddings.as_linear(h).astype(mx.float32)
        return self.lm_head(h).astype(mx.float32)

    @property
    def dtype(self) -> mx.Dtype:
        return self.model.norm.weight.dtype

    @property
    def layers(self) -> list:
        return self.model.layers

    @staticmethod
    def sanitize(weights: dict[str, mx.array], num_experts: int) -> dict[str, mx.array]:
        """The official names, our conversion's and mlx-lm's/mlx-vlm's (`language_model.`,
        experts per expert or already stacked) to ours; per-expert tensors stacked."""
        weights = without_language_model_prefix(weights)
        for stacked, names in expert_stacks(set(weights), num_experts).items():
            weights[stacked] = mx.stack([weights.pop(name) for name in names])
        return weights


class PrefixKV:
    """The finished blocks' keys and values per layer (spec B7). A forward with `keep` appends
    its keys and values; without, it reads the cache and leaves it as it was."""

    def __init__(self, layers: int):
        self.layers: list = [None] * layers
        self.length, self.keep = 0, False

    def extend(self, layer: int, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array]:
        cached = self.layers[layer]
        if cached is not None:
            k, v = (mx.concatenate([cached[0], k], axis=2),
                    mx.concatenate([cached[1], v], axis=2))
        if self.keep:
            self.layers[layer] = (k, v)
        return k, v

    def advance(self, length: int) -> None:
        if self.keep:
            self.length += length


class BlockBackend:
    """llada_core.block_diffusion's backend for an MLX LLaDA2 model, the finished blocks read
    from an exact prefix cache (`prefix_cache=False`: the whole prefix every step)."""

    def __init__(self, model: Model, temperature: float, seed: Optional[int],
                 prefix_cache: bool = True):
        from llada_core.block_diffusion import PrefixCache

        self.model, self.temperature = model, temperature
        self.prefix = PrefixCache() if prefix_cache else None
        self.cache = PrefixKV(len(model.layers))
        self.mask_id, self.eos_id = model.args.mask_token_id, model.args.eos_token_id
        self.key = mx.random.key(seed if seed is not None else int(np.random.SeedSequence().entropy % 2**32))

    def predict(self, ids: np.ndarray, block_length: int, rows: slice):
        logits = self.logits(ids, block_length, rows)
        probabilities = mx.softmax(logits, axis=-1, precise=True)
        if self.temperature > 0:
            self.key, draw = mx.random.split(self.key)
            x0 = mx.random.categorical(logits / self.temperature, key=draw)
        else:
            x0 = mx.argmax(logits, axis=-1)
        p = mx.take_along_axis(probabilities, x0[:, None], axis=-1)[:, 0]
        return np.array(x0).astype(np.int64), np.array(p).astype(np.float32)

    def logits(self, ids: np.ndarray, block_length: int, rows: slice) -> mx.array:
        if self.prefix is None:
            return self.model(mx.array(ids[None]), block_length, logits_for=rows)[0]
        reset, append_from, start = self.prefix.plan(ids, rows)
        if reset:
            self.cache = PrefixKV(len(self.model.layers))
        if append_from < start:
            self.cache.keep = True
            self.model(mx.array(ids[None, append_from:start]), block_length,
                       logits_for=slice(0, 0), cache=self.cache)
            mx.eval([kv for kv in self.cache.layers if kv is not None])
            self.cache.keep = False
        return self.model(mx.array(ids[None, start:]), block_length, cache=self.cache)[0]


def generate_block_steps(model: Model, prompt: list[int], settings, editing_threshold=None):
    """The frames of LLaDA 2.x's decoder (llada_core.block_diffusion), as llada_torch's."""
    from llada_core import block_diffusion

    editing = (editing_threshold if editing_threshold is not None
               else model.args.editing_threshold)
    return block_diffusion.run(
        BlockBackend(model, settings.temperature, settings.seed), prompt, settings,
        editing_threshold=editing, max_post_steps=model.args.max_post_steps,
        early_stop=settings.mode == "fast" and settings.early_stop)
