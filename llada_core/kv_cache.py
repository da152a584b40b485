"""The KV cache of the fast sampler, for either backend's arrays (both support slice assignment)."""

from __future__ import annotations

from typing import Any


class KVCache:
    """Every layer's keys (after RoPE) and values for the whole canvas, (B, kv_heads, L, head_dim).

    A full pass fills it; a partial pass over positions [offset, offset + n) overwrites those
    positions and attends over every cached position (bidirectional, as in the full pass).
    """

    def __init__(self) -> None:
        self.layers: list[tuple[Any, Any]] = []

    @property
    def filled(self) -> bool:
        return bool(self.layers)

    def update(self, layer: int, k: Any, v: Any, offset: int) -> tuple[Any, Any]:
        """Store this pass's keys and values; return what attention should see."""
        if len(self.layers) == layer:  # a full pass is filling the cache
            if offset != 0:
                raise ValueError("the first pass into an empty cache must cover the whole canvas")
            self.layers.append((k, v))
            return k, v
        cached_k, cached_v = self.layers[layer]
        n = k.shape[2]
        cached_k[:, :, offset:offset + n] = k
        cached_v[:, :, offset:offset + n] = v
        self.layers[layer] = (cached_k, cached_v)
        return cached_k, cached_v
