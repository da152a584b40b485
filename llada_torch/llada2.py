"""LLaDA 2.x (LLaDA2.0-mini, LLaDA2.1-mini) in PyTorch: a Bailing MoE with block-causal attention.

Module names follow the official checkpoint (`model.word_embeddings`,
`model.layers.N.attention.query_key_value`, `…attention.dense`, `…mlp.gate.expert_bias`,
`…mlp.shared_experts`, `lm_head`); the experts, stored one tensor per expert, are stacked at
load time into `…mlp.switch_mlp.*` [experts, out, in] (`Model.sanitize`).

Numerics follow `../shared/llada2-spec.md` B3-B4: fused QKV split 16/4/4 heads; per-head RMSNorm on
q and k before half-split (NeoX) RoPE over the first head_dim × partial_rotary_factor dims, in
float32, positions absolute over the canvas; grouped K/V; attention strictly block-causal
(0 / -inf: bidirectional inside a block of `block_length`, causal across blocks). The first
`first_k_dense_replace` layers have a dense SwiGLU; the others route in float32: sigmoid scores,
expert_bias added for the choice only, group-limited top-k (group score = sum of its top 2), the
unbiased scores of the chosen renormalised and scaled by routed_scaling_factor, the experts'
outputs combined in float32, plus the shared expert.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from llada_core.checkpoint import expert_stacks, without_language_model_prefix
from llada_core.llada2_config import LLaDA2Args
from llada_torch.model import RMSNorm, Rotary
from llada_torch.moe import MLP, SwitchGLU

ModelArgs = LLaDA2Args


def block_causal_mask(length: int, block_length: int, device: torch.device,
                      dtype: torch.dtype) -> torch.Tensor:
    """Additive [length, length]: 0 where query i may see key j (block(j) <= block(i)), -inf
    elsewhere."""
    blocks = torch.arange(length, device=device) // block_length
    allowed = blocks[None, :] <= blocks[:, None]
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))


def route(logits: torch.Tensor, bias: torch.Tensor, args: LLaDA2Args
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, experts) [N, k] of the router's float32 logits [N, E] (spec B3.4)."""
    scores = torch.sigmoid(logits)
    chosen_by = scores + bias
    n, experts = chosen_by.shape
    if args.n_group > 1:
        grouped = chosen_by.view(n, args.n_group, experts // args.n_group)
        group_scores = torch.sort(grouped, dim=-1, descending=True, stable=True)[0][..., :2].sum(-1)
        keep = torch.sort(group_scores, dim=-1, descending=True, stable=True)[1][:, :args.topk_group]
        allowed = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, keep, True)
        chosen_by = chosen_by.masked_fill(
            ~allowed[:, :, None].expand_as(grouped).reshape(n, experts), float("-inf"))
    picked = torch.sort(chosen_by, dim=-1, descending=True, stable=True)[1][:, :args.num_experts_per_tok]
    weights = torch.gather(scores, 1, picked)
    if args.num_experts_per_tok > 1:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return weights * args.routed_scaling_factor, picked


class Attention(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.heads, self.kv_heads, self.hd = (args.num_attention_heads, args.num_key_value_heads,
                                              args.dim_per_head)
        self.rotary_dims = args.rotary_dims
        width = (self.heads + 2 * self.kv_heads) * self.hd
        self.query_key_value = nn.Linear(args.hidden_size, width, bias=False)
        self.dense = nn.Linear(self.heads * self.hd, args.hidden_size, bias=False)
        if args.use_qk_norm:
            self.query_layernorm = RMSNorm(self.hd, args.rms_norm_eps)
            self.key_layernorm = RMSNorm(self.hd, args.rms_norm_eps)

    def rope(self, t: torch.Tensor, rotary: Rotary, angles) -> torch.Tensor:
        rotated = rotary(t[..., :self.rotary_dims], angles)
        return torch.cat((rotated, t[..., self.rotary_dims:]), dim=-1)

    def forward(self, h: torch.Tensor, rotary: Rotary, angles, mask: torch.Tensor,
                cache: Optional["PrefixKV"] = None, layer: int = 0) -> torch.Tensor:
        B, L, _ = h.shape
        qkv = self.query_key_value(h).view(B, L, self.heads + 2 * self.kv_heads, self.hd)
        q, k, v = qkv.split([self.heads, self.kv_heads, self.kv_heads], dim=2)
        if hasattr(self, "query_layernorm"):  # per head, before RoPE
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q = self.rope(q.transpose(1, 2), rotary, angles)
        k = self.rope(k.transpose(1, 2), rotary, angles)
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.dense(out.transpose(1, 2).reshape(B, L, -1))


class Gate(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(args.num_experts, args.hidden_size))
        self.register_buffer("expert_bias", torch.zeros(args.num_experts))


class SparseMoeBlock(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.gate = Gate(args)
        self.switch_mlp = SwitchGLU(args.hidden_size, args.moe_intermediate_size, args.num_experts)
        if args.num_shared_experts:
            self.shared_experts = MLP(args.hidden_size,
                                      args.moe_intermediate_size * args.num_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        logits = flat.float() @ self.gate.weight.float().T
        weights, experts = route(logits, self.gate.expert_bias.float(), self.args)
        outputs = self.switch_mlp(flat, experts).float()
        out = (outputs * weights[..., None]).sum(dim=1).to(x.dtype).view(shape)
        if hasattr(self, "shared_experts"):
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

    def forward(self, h: torch.Tensor, rotary: Rotary, angles, mask: torch.Tensor,
                cache: Optional["PrefixKV"] = None, layer: int = 0) -> torch.Tensor:
        x = h + self.attention(self.input_layernorm(h), rotary, angles, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class LLaDA2Model(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.word_embeddings = nn.Embedding(args.rows, args.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class Model(nn.Module):
    """LLaDA2 mask predictor: ids (B, L) -> logits (B, L, rows) under block-causal attention."""

    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.model = LLaDA2Model(args)
        if not args.tie_word_embeddings:
            self.lm_head = nn.Linear(args.hidden_size, args.rows, bias=False)
        self.rotary = Rotary(args.rotary_dims, args.rope_theta)

    @property
    def device(self) -> torch.device:
        return self.model.word_embeddings.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.word_embeddings.weight.dtype

    def forward(self, input_ids: torch.Tensor, block_length: int,
                logits_for: Optional[slice] = None, cache: Optional["PrefixKV"] = None
                ) -> torch.Tensor:
        """Logits of a canvas prefix (positions 0 .. L-1), blocks of `block_length`; with a
        `cache`, of the whole blocks that follow the cached ones (which they all see)."""
        offset = cache.length if cache is not None else 0
        length = input_ids.shape[1]
        angles = self.rotary.angles(offset, length, input_ids.device)
        h = self.model.word_embeddings(input_ids)
        mask = block_causal_mask(length, block_length, h.device, h.dtype)
        if offset:
            mask = torch.cat([mask.new_zeros(length, offset), mask], dim=1)
        for index, layer in enumerate(self.model.layers):
            h = layer(h, self.rotary, angles, mask, cache, index)
        if cache is not None:
            cache.advance(length)
        h = self.model.norm(h if logits_for is None else h[:, logits_for])
        head = (self.model.word_embeddings.weight if self.args.tie_word_embeddings
                else self.lm_head.weight)
        return F.linear(h, head).float()

    @staticmethod
    def sanitize(weights: dict[str, torch.Tensor], num_experts: int) -> dict[str, torch.Tensor]:
        """Per-expert tensors stacked into switch_mlp [experts, out, in] (mlx-community's float
        layout has them stacked already, under `language_model.`); the router's expert_bias
        kept in float32."""
        weights = without_language_model_prefix(weights)
        for stacked, names in expert_stacks(set(weights), num_experts).items():
            weights[stacked] = torch.stack([weights.pop(name) for name in names])
        for name in [n for n in weights if n.endswith(".mlp.gate.expert_bias")]:
            weights[name] = weights[name].float()
        return weights


class PrefixKV:
    """The finished blocks' keys and values per layer (spec B7). A forward with `keep` appends
    its keys and values; without, it reads the cache and leaves it as it was."""

    def __init__(self, layers: int):
        self.layers: list[Optional[tuple[torch.Tensor, torch.Tensor]]] = [None] * layers
        self.length, self.keep = 0, False

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self.layers[layer]
        if cached is not None:
            k, v = torch.cat([cached[0], k], dim=2), torch.cat([cached[1], v], dim=2)
        if self.keep:
            self.layers[layer] = (k, v)
        return k, v

    def advance(self, length: int) -> None:
        if self.keep:
            self.length += length


class BlockBackend:
    """llada_core.block_diffusion's backend for a PyTorch LLaDA2 model: the current block's
    predicted tokens and their probabilities, the finished blocks read from an exact prefix
    cache (`prefix_cache=False`: the whole canvas prefix every step, as the reference)."""

    def __init__(self, model: Model, temperature: float, seed: Optional[int],
                 prefix_cache: bool = True):
        from llada_core.block_diffusion import PrefixCache

        self.model, self.temperature = model, temperature
        self.prefix = PrefixCache() if prefix_cache else None
        self.cache = PrefixKV(len(model.model.layers))
        self.mask_id, self.eos_id = model.args.mask_token_id, model.args.eos_token_id
        self.generator = torch.Generator(device=model.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def predict(self, ids, block_length: int, rows: slice):
        import numpy as np

        with torch.inference_mode():
            logits = self.logits(ids, block_length, rows)
            probabilities = F.softmax(logits, dim=-1)
            if self.temperature > 0:
                drawn = F.softmax(logits / self.temperature, dim=-1)
                x0 = torch.multinomial(drawn, 1, generator=self.generator)[:, 0]
            else:
                x0 = torch.argmax(logits, dim=-1)
            p = torch.gather(probabilities, -1, x0[:, None])[:, 0]
            return x0.cpu().numpy().astype(np.int64), p.cpu().numpy().astype(np.float32)

    def logits(self, ids, block_length: int, rows: slice) -> torch.Tensor:
        import numpy as np

        def batch(part):
            return torch.from_numpy(np.ascontiguousarray(part))[None].to(self.model.device)

        if self.prefix is None:
            return self.model(batch(ids), block_length, logits_for=rows)[0]
        reset, append_from, start = self.prefix.plan(ids, rows)
        if reset:
            self.cache = PrefixKV(len(self.model.model.layers))
        if append_from < start:
            self.cache.keep = True
            self.model(batch(ids[append_from:start]), block_length, logits_for=slice(0, 0),
                       cache=self.cache)
            self.cache.keep = False
        return self.model(batch(ids[start:]), block_length, cache=self.cache)[0]


def generate_block_steps(model: Model, prompt: list[int], settings, editing_threshold=None):
    """The frames of LLaDA 2.x's decoder (llada_core.block_diffusion): 2.1's editing when the
    settings or the model's generation config set an editing threshold, else 2.0's."""
    from llada_core import block_diffusion

    editing = (editing_threshold if editing_threshold is not None
               else model.args.editing_threshold)
    return block_diffusion.run(
        BlockBackend(model, settings.temperature, settings.seed), prompt, settings,
        editing_threshold=editing, max_post_steps=model.args.max_post_steps,
        early_stop=settings.mode == "fast" and settings.early_stop)
