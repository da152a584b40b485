"""The fast sampler (Fast-dLLM, spec §4): approximate, opt-in with mode="fast".

- cache="dual": at a block's first step one pass over the whole canvas fills every layer's K/V
  (keys after RoPE); later steps feed only the block, overwrite its K/V and attend over all.
  cache="prefix": later steps feed the block and everything after it. cache="none": full passes.
- threshold=τ: commit every masked in-block position whose confidence is at least τ, and at
  least the single most confident; threshold=None keeps the exact mode's fixed schedule.
- early_stop: a finished block that holds EOS ends the answer; the rest is filled with EOS.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, transfer_schedule
from llada_core.kv_cache import KVCache
from llada_torch.model import Model
from llada_torch.sampler import (
    Canvas, committed_probability, guided_logits, make_generator, predict, top_k_stable,
)


def block_logits(model: Model, batch: torch.Tensor, cache: KVCache | None, mode: str,
                 start: int, end: int) -> torch.Tensor:
    """Logits of the block [start, end) for this step, from the cheapest pass the cache allows."""
    if cache is None:
        return model(batch)[:, start:end]
    if not cache.filled:
        return model(batch, cache=cache, logits_for=slice(start, end))
    if mode == "dual":
        return model(batch[:, start:end], cache=cache, offset=start)
    return model(batch[:, start:], cache=cache, offset=start, logits_for=slice(0, end - start))


def choose(score: torch.Tensor, masked: torch.Tensor, s: SamplerSettings,
           fixed_count: int) -> torch.Tensor:
    """Block positions to commit this step."""
    confidence = torch.where(masked, score, -torch.inf)
    if s.threshold is None:
        return top_k_stable(confidence, fixed_count)
    sure = torch.nonzero(confidence >= s.threshold).flatten()
    return sure if len(sure) else top_k_stable(confidence, 1)


def fast_steps(model: Model, prompt: list[int], s: SamplerSettings) -> Iterator[StepFrame]:
    generator = make_generator(model.device, s.seed)
    canvas = Canvas(model, prompt, s.gen_length)
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    eos_id = model.args.eos_token_id
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    for block in range(s.num_blocks):
        start, end = P + block * B, P + (block + 1) * B
        cache = None if s.cache == "none" else KVCache()
        schedule = transfer_schedule(int((x[0, start:end] == mask_id).sum()), s.steps_per_block)
        step = 0
        while bool((x[0, start:end] == mask_id).any()):
            masked = x[0, start:end] == mask_id
            logits = block_logits(model, canvas.batch(s.cfg_scale), cache, s.cache, start, end)
            logits = guided_logits(logits, s.cfg_scale)
            nfe += passes
            prediction = predict(logits, s, model, generator)
            fixed = schedule[step] if step < len(schedule) else 1
            chosen = choose(prediction.score[0], masked, s, fixed)
            x[0, start + chosen] = prediction.x0[0, chosen]
            canvas.record(start + chosen, index, committed_probability(prediction, logits, chosen))
            committed = len(chosen)
            finished = not bool((x[0, start:end] == mask_id).any())
            last_block = block == s.num_blocks - 1
            stop = finished and not last_block and s.early_stop and bool((x[0, start:end] == eos_id).any())
            if stop:
                rest = torch.arange(end, x.shape[1], device=x.device)
                x[0, end:] = eos_id
                canvas.record(rest, index, torch.zeros(len(rest)).numpy())
                committed += len(rest)
            yield canvas.frame(index, block, committed, nfe, done=stop or (finished and last_block))
            index += 1
            step += 1
            if stop:
                return
