"""The fast sampler's passes in PyTorch (Fast-dLLM, spec §4); the sampling itself is
llada_core.driver's, reached through llada_torch.generate_steps(mode="fast").

- cache="dual": at a block's first step one pass over the whole canvas fills every layer's K/V
  (keys after RoPE); later steps feed only the block, overwrite its K/V and attend over all.
  cache="prefix": later steps feed the block and everything after it. cache="none": full passes.
"""

from __future__ import annotations

import torch

from llada_core.driver import block_pass
from llada_core.kv_cache import KVCache
from llada_torch.model import Model

__all__ = ["KVCache", "block_logits"]


def block_logits(model: Model, batch: torch.Tensor, cache: KVCache | None, mode: str,
                 start: int, end: int) -> torch.Tensor:
    """Logits of the block [start, end) for this step, from the cheapest pass the cache allows."""
    plan = block_pass(cache, mode, start, end)
    with torch.inference_mode():
        return model(batch[:, plan.window], cache=cache, offset=plan.offset, logits_for=plan.rows)
