"""LLaDA in PyTorch: a LLaMA-style transformer without a causal mask.

Module names follow the official checkpoint (`model.transformer.blocks.N.q_proj`, ...), so the
state dict loads by name. The numerics follow the reference: RMSNorm normalises in float32 and
rounds back before the weight multiplies; rotary embeddings are applied in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from llada_core.config import LLaDAArgs
from llada_core.kv_cache import KVCache


@dataclass
class ModelArgs(LLaDAArgs):
    """LLaDA's config.json (llada_core.config.LLaDAArgs)."""


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Rotary(nn.Module):
    """Half-split rotary embeddings over the whole head, computed and applied in float32."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        self._table: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def table(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self._table.get(device)
        if cached is None or cached[0].shape[0] < length:
            with torch.inference_mode(False):  # a sampler's table must stay usable in training
                cached = self._build(length, device)
            self._table[device] = cached
        return cached

    def _build(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            dim = self.head_dim
            inv_freq = 1.0 / (self.theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float) / dim))
            seq = torch.arange(length, device=device, dtype=torch.float)
            freqs = torch.einsum("i , j -> i j", seq, inv_freq)
            positions = torch.cat((freqs, freqs), dim=-1)
            return positions.sin(), positions.cos()

    def angles(self, offset: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(sin, cos) for positions offset .. offset + length, shaped (1, 1, length, head_dim).

        From Python ints, once per forward pass: no value is read back from the device."""
        sin, cos = self.table(offset + length, device)
        return sin[offset:offset + length][None, None], cos[offset:offset + length][None, None]

    @staticmethod
    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, t: torch.Tensor, angles: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Rotate t (B, heads, L, head_dim) by `angles` (Rotary.angles for its positions)."""
        sin, cos = angles
        t32 = t.float()
        return ((t32 * cos) + (self.rotate_half(t32) * sin)).to(t.dtype)


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        d, kv = args.d_model, args.kv_heads * args.head_dim
        self.args = args
        self.attn_norm = RMSNorm(d, args.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, args.rms_norm_eps)
        self.ff_proj = nn.Linear(d, args.hidden_size, bias=False)
        self.up_proj = nn.Linear(d, args.hidden_size, bias=False)
        self.ff_out = nn.Linear(args.hidden_size, d, bias=False)

    def attention(self, h: torch.Tensor, rotary: Rotary, angles: tuple[torch.Tensor, torch.Tensor],
                  offset: int = 0, cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        B, L, C = h.shape
        heads, kv_heads, hd = self.args.n_heads, self.args.kv_heads, self.args.head_dim
        q = self.q_proj(h).view(B, L, heads, hd).transpose(1, 2)
        k = self.k_proj(h).view(B, L, kv_heads, hd).transpose(1, 2)
        v = self.v_proj(h).view(B, L, kv_heads, hd).transpose(1, 2)
        q, k = rotary(q, angles), rotary(k, angles)
        if cache is not None:
            k, v = cache.update(layer, k, v, offset)
        if kv_heads != heads:
            k = k.repeat_interleave(heads // kv_heads, dim=1)
            v = v.repeat_interleave(heads // kv_heads, dim=1)
        # Bidirectional: every position attends to every position.
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False)
        return self.attn_out(att.transpose(1, 2).contiguous().view(B, L, C))

    def forward(self, x: torch.Tensor, rotary: Rotary, angles: tuple[torch.Tensor, torch.Tensor],
                offset: int = 0, cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attention(self.attn_norm(x), rotary, angles, offset, cache, layer)
        g = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(g)) * self.up_proj(g))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(args.rows, args.d_model),
                "blocks": nn.ModuleList(Block(args) for _ in range(args.n_layers)),
                "ln_f": RMSNorm(args.d_model, args.rms_norm_eps),
            }
        )
        if not args.weight_tying:
            self.transformer["ff_out"] = nn.Linear(args.d_model, args.rows, bias=False)


class Model(nn.Module):
    """LLaDA mask predictor: token ids (B, L) -> logits (B, L, rows), in the weights' dtype."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.model = Transformer(args)
        self.rotary = Rotary(args.head_dim, args.rope_theta)

    @property
    def device(self) -> torch.device:
        return self.model.transformer["wte"].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.transformer["wte"].weight.dtype

    def forward(self, input_ids: torch.Tensor, cache: Optional[KVCache] = None,
                offset: int = 0, logits_for: Optional[slice] = None) -> torch.Tensor:
        """Logits of input_ids, which sit at positions offset, offset + 1, ... of the canvas.

        With an empty cache the pass (offset 0, the whole canvas) fills it; with a filled cache
        input_ids is a window whose keys and values replace the cached ones at those positions.
        logits_for limits the head to those positions of the window (the others go unused).
        """
        t = self.model.transformer
        if cache is None and offset:
            raise ValueError("an offset needs a cache holding the rest of the canvas")
        # The rotary angles from Python ints, once per pass (no host/device sync in the layers).
        angles = self.rotary.angles(offset, input_ids.shape[1], input_ids.device)
        x = self.embed(input_ids, offset)
        for layer, block in enumerate(t["blocks"]):
            x = block(x, self.rotary, angles, offset, cache, layer)
        x = t["ln_f"](x if logits_for is None else x[:, logits_for])
        head = t["wte"].weight if self.args.weight_tying else t["ff_out"].weight
        return F.linear(x, head)

    def embed(self, input_ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """The token embeddings of a window at `offset` (a vision model puts its pictures' features
        in here)."""
        return self.model.transformer["wte"](input_ids)

    @staticmethod
    def sanitize(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Official names pass through; unquantized mlx-community names are mapped onto them."""
        renamed = {}
        for name, value in weights.items():
            renamed[_official_name(name)] = value
        return renamed


_MLX_TOP_LEVEL = {
    "model.embed_tokens.": "model.transformer.wte.",
    "model.norm.": "model.transformer.ln_f.",
    "model.lm_head.": "model.transformer.ff_out.",
    "model.layers.": "model.transformer.blocks.",
}


def _official_name(name: str) -> str:
    for prefix, official in _MLX_TOP_LEVEL.items():
        if name.startswith(prefix):
            return official + name[len(prefix):]
    return name
