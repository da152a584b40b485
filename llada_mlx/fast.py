"""The fast sampler in MLX (Fast-dLLM, spec §4), the same parts as llada_torch.fast.

- cache="dual": at a block's first step one pass over the whole canvas fills every layer's K/V
  (keys after RoPE); later steps feed only the block, overwrite its K/V and attend over all.
  cache="prefix": later steps feed the block and everything after it. cache="none": full passes.
- threshold=τ: commit every masked in-block position whose confidence is at least τ, and at
  least the single most confident; threshold=None keeps the exact mode's fixed schedule.
- early_stop: a finished block that holds EOS ends the answer; the rest is filled with EOS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import mlx.core as mx
import numpy as np

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, transfer_schedule
from llada_core.kv_cache import KVCache
from llada_mlx.model import Model
from llada_mlx.sampler import (
    Canvas, clears_cache, guided_logits, predict, shown_confidence, start_key, top_k_stable,
)


def block_logits(model: Model, batch: mx.array, cache: Optional[KVCache], mode: str,
                 start: int, end: int) -> mx.array:
    """Logits of the block [start, end) for this step, from the cheapest pass the cache allows."""
    if cache is None:
        return model(batch)[:, start:end]
    if not cache.filled:
        return model(batch, cache=cache, logits_for=slice(start, end))
    if mode == "dual":
        return model(batch[:, start:end], cache=cache, offset=start)
    return model(batch[:, start:], cache=cache, offset=start, logits_for=slice(0, end - start))


def choose(score: np.ndarray, masked: np.ndarray, s: SamplerSettings, fixed_count: int) -> np.ndarray:
    """Block positions to commit this step."""
    confidence = np.where(masked, score, -np.inf).astype(np.float32)
    if s.threshold is None:
        return top_k_stable(confidence, fixed_count)
    sure = np.flatnonzero(confidence >= s.threshold)
    return sure if len(sure) else top_k_stable(confidence, 1)


@clears_cache
def fast_steps(model: Model, prompt: list[int], s: SamplerSettings) -> Iterator[StepFrame]:
    eos_id = model.args.eos_token_id
    key = start_key(s.seed)
    canvas = Canvas(model, prompt, s.gen_length)
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    for block in range(s.num_blocks):
        start, end = P + block * B, P + (block + 1) * B
        cache = None if s.cache == "none" else KVCache()
        schedule = transfer_schedule(int((x[start:end] == mask_id).sum()), s.steps_per_block)
        step = 0
        while (x[start:end] == mask_id).any():
            masked = x[start:end] == mask_id
            logits = block_logits(model, canvas.batch(s.cfg_scale), cache, s.cache, start, end)
            logits = guided_logits(logits, s.cfg_scale)
            nfe += passes
            key, step_key = mx.random.split(key, 2)
            x0, score, logits = predict(logits, s, model, step_key)
            chosen = choose(score, masked, s, schedule[step] if step < len(schedule) else 1)
            x[start + chosen] = x0[chosen]
            canvas.record(start + chosen, index, shown_confidence(s, score, logits, chosen, x0[chosen]))
            committed = len(chosen)
            finished = not (x[start:end] == mask_id).any()
            last_block = block == s.num_blocks - 1
            stop = finished and not last_block and s.early_stop and bool((x[start:end] == eos_id).any())
            if stop:
                rest = np.arange(end, len(x))
                x[end:] = eos_id
                canvas.record(rest, index, np.zeros(len(rest), dtype=np.float32))
                committed += len(rest)
            yield canvas.frame(index, block, committed, nfe, done=stop or (finished and last_block))
            index += 1
            step += 1
            if stop:
                return
