"""LLaDA-MoE in PyTorch: a bidirectional transformer whose feed-forward is a Mixture of Experts.

Module names follow the official checkpoint (`model.layers.N.self_attn.q_proj`, `…mlp.gate`,
`lm_head`), except that the experts, stored one tensor per expert, are stacked at load time
into `…mlp.switch_mlp.{gate,up,down}_proj.weight` of shape [experts, out, in] (`Model.sanitize`).

Numerics follow `../shared/llada-moe-spec.md` §3: RMSNorm normalises in float32 and rounds back
before the weight multiplies; q and k get a per-head RMSNorm, then half-split RoPE over the
first head_dim × partial_rotary_factor dims (in float32); attention has no mask; the router's
softmax is float32, the top k are kept without renormalisation (ties: the lowest expert id),
and the weights are cast to the activation dtype. The experts run batched: the (token, expert)
pairs are sorted by expert, packed into one [experts, capacity, d] tensor and multiplied with
three bmm calls; nothing loops over experts or tokens in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from llada_core.checkpoint import expert_stacks
from llada_core.config import LLaDAMoEArgs
from llada_core.kv_cache import KVCache
from llada_torch.model import RMSNorm, Rotary


@dataclass
class ModelArgs(LLaDAMoEArgs):
    """LLaDA-MoE's config.json (llada_core.config.LLaDAMoEArgs)."""


def route(probabilities: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest probabilities per row and their experts, largest first; equal values are
    taken lowest expert first (a stable sort). No renormalisation."""
    values, experts = torch.sort(probabilities, dim=-1, descending=True, stable=True)
    return values[..., :k], experts[..., :k]


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        d, hd = args.hidden_size, args.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = args.num_attention_heads, args.kv_heads, hd
        self.rotary_dims = args.rotary_dims
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.n_heads * hd, d, bias=False)
        if args.qk_layernorm:
            self.q_norm = RMSNorm(hd, args.rms_norm_eps)
            self.k_norm = RMSNorm(hd, args.rms_norm_eps)

    def rope(self, t: torch.Tensor, rotary: Rotary, angles) -> torch.Tensor:
        if self.rotary_dims == self.head_dim:
            return rotary(t, angles)
        rotated = rotary(t[..., :self.rotary_dims], angles)
        return torch.cat((rotated, t[..., self.rotary_dims:]), dim=-1)

    def forward(self, h: torch.Tensor, rotary: Rotary, angles, offset: int = 0,
                cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        B, L, _ = h.shape
        q = self.q_proj(h).view(B, L, self.n_heads, self.head_dim)
        k = self.k_proj(h).view(B, L, self.n_kv_heads, self.head_dim)
        v = self.v_proj(h).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if hasattr(self, "q_norm"):  # per head, before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        q = self.rope(q.transpose(1, 2), rotary, angles)
        k = self.rope(k.transpose(1, 2), rotary, angles)
        if cache is not None:
            k, v = cache.update(layer, k, v, offset)
        if self.n_kv_heads != self.n_heads:
            k = k.repeat_interleave(self.n_heads // self.n_kv_heads, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv_heads, dim=1)
        # Bidirectional: no mask (the reference forces none).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


class SwitchLinear(nn.Module):
    """One Linear per expert, stacked: weight [experts, out, in]."""

    def __init__(self, in_features: int, out_features: int, experts: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, out_features, in_features))


class SwitchGLU(nn.Module):
    """Every expert's SwiGLU, down(silu(gate(x)) * up(x)), for (token, expert) pairs at once."""

    def __init__(self, d: int, inner: int, experts: int):
        super().__init__()
        self.gate_proj = SwitchLinear(d, inner, experts)
        self.up_proj = SwitchLinear(d, inner, experts)
        self.down_proj = SwitchLinear(inner, d, experts)

    def forward(self, x: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """x [N, d], experts [N, k] -> each token's output from each of its experts [N, k, d].

        The N·k pairs are sorted by expert; pair p of expert e goes to row p - (first pair of e)
        of a zero-padded [experts, capacity, d] tensor, capacity being the busiest expert's
        count (the one value read back per layer); three bmm calls run every expert at once."""
        n, k = experts.shape
        count = self.gate_proj.weight.shape[0]
        flat = experts.reshape(-1)
        order = torch.argsort(flat, stable=True)
        sorted_experts = flat[order]
        counts = torch.bincount(flat, minlength=count)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(n * k, device=x.device) - starts[sorted_experts]
        capacity = int(counts.max())
        packed = x.new_zeros(count, capacity, x.shape[-1])
        packed[sorted_experts, slot] = x[order // k]
        hidden = F.silu(torch.bmm(packed, self.gate_proj.weight.transpose(1, 2))) \
            * torch.bmm(packed, self.up_proj.weight.transpose(1, 2))
        out = torch.bmm(hidden, self.down_proj.weight.transpose(1, 2))
        pairs = torch.empty(n * k, x.shape[-1], dtype=out.dtype, device=out.device)
        pairs[order] = out[sorted_experts, slot]
        return pairs.view(n, k, -1)


class SparseMoeBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.top_k = args.num_experts_per_tok
        self.gate = nn.Linear(args.hidden_size, args.num_experts, bias=False)  # the router
        self.switch_mlp = SwitchGLU(args.hidden_size, args.expert_intermediate_size,
                                    args.num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probabilities = F.softmax(self.gate(flat).float(), dim=-1)
        weights, experts = route(probabilities, self.top_k)
        outputs = self.switch_mlp(flat, experts)
        return (outputs * weights.to(x.dtype)[..., None]).sum(dim=1).view(shape)


class MLP(nn.Module):
    """A dense SwiGLU feed-forward: a dense layer's mlp, or the shared expert."""

    def __init__(self, d: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, inner, bias=False)
        self.up_proj = nn.Linear(d, inner, bias=False)
        self.down_proj = nn.Linear(inner, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


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

    def forward(self, h: torch.Tensor, rotary: Rotary, angles, offset: int = 0,
                cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        x = h + self.self_attn(self.input_layernorm(h), rotary, angles, offset, cache, layer)
        normed = self.post_attention_layernorm(x)
        out = self.mlp(normed)
        if hasattr(self, "shared_expert"):  # sees the same normed input as the experts
            out = out + self.shared_expert(normed)
        return x + out


class LLaDAMoEModel(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.rows, args.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class Model(nn.Module):
    """LLaDA-MoE mask predictor: token ids (B, L) -> logits (B, L, rows), in the weights' dtype.

    The same interface as llada_torch.model.Model, so the samplers drive either family."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.model = LLaDAMoEModel(args)
        if not args.tie_word_embeddings:
            self.lm_head = nn.Linear(args.hidden_size, args.rows, bias=False)
        self.rotary = Rotary(args.rotary_dims, args.rope_theta)

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    def forward(self, input_ids: torch.Tensor, cache: Optional[KVCache] = None,
                offset: int = 0, logits_for: Optional[slice] = None) -> torch.Tensor:
        """Logits of input_ids, which sit at positions offset, offset + 1, ... of the canvas.

        With an empty cache the pass (offset 0, the whole canvas) fills it; with a filled cache
        input_ids is a window whose keys and values replace the cached ones at those positions.
        logits_for limits the head to those positions of the window.
        """
        if cache is None and offset:
            raise ValueError("an offset needs a cache holding the rest of the canvas")
        angles = self.rotary.angles(offset, input_ids.shape[1], input_ids.device)
        h = self.model.embed_tokens(input_ids)
        for layer, block in enumerate(self.model.layers):
            h = block(h, self.rotary, angles, offset, cache, layer)
        h = self.model.norm(h if logits_for is None else h[:, logits_for])
        head = self.model.embed_tokens.weight if self.args.tie_word_embeddings else self.lm_head.weight
        return F.linear(h, head)

    @staticmethod
    def sanitize(weights: dict[str, torch.Tensor], num_experts: int) -> dict[str, torch.Tensor]:
        """Per-expert tensors stacked into switch_mlp tensors [experts, out, in]; the rest as is.
        Each stacked source is released as soon as it is copied."""
        plan = expert_stacks(set(weights), num_experts)
        for stacked, names in plan.items():
            weights[stacked] = torch.stack([weights.pop(name) for name in names])
        return weights
