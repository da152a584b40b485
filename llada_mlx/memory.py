"""MLX memory settings while a model is loaded, as mlx-lm's `wired_limit` sets them.

On Apple Silicon the model's weights are wired (kept resident) up to the device's recommended
working set, and a model close to that size gets a warning: it will page and run slowly. MLX's
buffer cache (freed buffers kept for reuse) is capped so it cannot grow to the size of the
model on top of it. On Linux / CPU the device reports no recommended working set, and the wired
limit is left alone.

`wired_limit_for(model)` runs when llada_mlx.load has read a model; `release()` (exported as
`llada_mlx.release_memory`) restores MLX's limits and empties the cache when it is unloaded.
"""

from __future__ import annotations

import gc
import threading
import warnings
from typing import Any, Optional

import mlx.core as mx
from mlx.utils import tree_reduce

# A model above this share of the recommended working set gets a warning (as in mlx-lm).
WARN_SHARE = 0.9
# The buffer cache may hold this share of the recommended working set, at most CACHE_CAP bytes:
# enough to reuse one step's activations (they have the same sizes every step), no more.
CACHE_SHARE = 1 / 16
CACHE_CAP = 1 << 30


class MemoryWarning(UserWarning):
    """The model is about as big as the memory the GPU may keep resident."""


_lock = threading.Lock()
# MLX's limits before the first wired_limit_for, restored by release(); None when untouched.
_saved: dict[str, int] = {}


def recommended_working_set() -> Optional[int]:
    """Bytes the device may keep resident (Apple GPUs); None where the device does not say."""
    size = mx.device_info().get("max_recommended_working_set_size")
    return int(size) if size else None


def model_bytes(model: Any) -> int:
    """Bytes of every array the model holds (weights, quantization scales and biases)."""
    return tree_reduce(lambda total, x: total + x.nbytes if isinstance(x, mx.array) else total,
                       model.parameters(), 0)


def cache_limit(working_set: Optional[int]) -> int:
    if working_set is None:
        return CACHE_CAP
    return min(CACHE_CAP, int(working_set * CACHE_SHARE))


def wired_limit_for(model: Any) -> Optional[int]:
    """Wire up to the recommended working set and cap the buffer cache while `model` is loaded.

    Returns the wired limit set, or None where the device reports no recommended working set
    (then only the cache is capped). Warns (MemoryWarning) when the model is close to that size.
    """
    working_set = recommended_working_set()
    with _lock:
        previous_cache = mx.set_cache_limit(cache_limit(working_set))
        _saved.setdefault("cache", previous_cache)
        if working_set is None:
            return None
        size = model_bytes(model)
        if size > WARN_SHARE * working_set:
            warnings.warn(
                f"the model needs {size // 2**20} MB, close to the {working_set // 2**20} MB this "
                "Mac's GPU can keep resident; generation may be slow (a 4-bit conversion, "
                "`llada convert --bits 4`, is smaller)", MemoryWarning, stacklevel=2)
        mx.synchronize()  # never change the wired limit while work is in flight
        previous_wired = mx.set_wired_limit(working_set)
        _saved.setdefault("wired", previous_wired)
        return working_set


def release() -> None:
    """Restore MLX's wired and cache limits and free the buffer cache (after unloading a model).

    Drop every reference to the model first: MLX frees a weight when its last array goes. Python's
    cycle collector runs first, for arrays held only by reference cycles.
    """
    gc.collect()
    with _lock:
        mx.synchronize()
        if "wired" in _saved:
            mx.set_wired_limit(_saved.pop("wired"))
        if "cache" in _saved:
            mx.set_cache_limit(_saved.pop("cache"))
        mx.clear_cache()
