"""Block diffusion, LLaDA 2.x's decoders: the answer is denoised block by block under block-causal
attention, as the official `generate()` of LLaDA2.0 (threshold decoding) and LLaDA2.1 (threshold
decoding with editing) do it (`../shared/llada2-spec.md` B4-B6). Framework-free (numpy); a
backend supplies one operation:

- `predict(ids, block_length, rows)`: for the canvas prefix `ids` (the blocks up to the current
  one), the predicted token and its probability at the `rows` (the current block), as numpy.

The canvas holds the prompt and then masks up to a whole number of blocks (the prompt is not
padded: its tail shares the first block the answer starts in); the blocks before the prompt's
last are never denoised. Each step feeds the prefix up to the current block's end.

- LLaDA2.0: a block's steps follow the schedule (block_length // steps per step, one more for the
  first block_length % steps); a step commits every masked position above `threshold`, if there
  are at least as many as the schedule asks, else the schedule's count, most confident first. The
  answer stops after the block in which EOS appears.
- LLaDA2.1 (`editing_threshold` set): each step commits the masked positions above `threshold`
  (at least the most confident one) and, in the same step, replaces tokens already written in the
  block (never the prompt's) where the model now predicts another token with probability above
  `editing_threshold`. A block is settled when it has no mask and a step changed nothing, or after
  `max_post_steps` steps without masks. Edits are reported in the frames (`edited_at`: the step
  that last replaced each token), so a canvas can show the model correcting itself.

A backend may keep an exact cache of the finished blocks' keys and values (spec B7: under
block-causal attention no later position changes them, and edits stay inside the current block):
`PrefixCache` is its bookkeeping, the backend holds the arrays.

Frames cover the answer region (gen_length positions after the prompt); when the answer stops
early the positions left are shown as EOS.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Optional, Protocol

import numpy as np

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings


class BlockBackend(Protocol):
    mask_id: int
    eos_id: int

    def predict(self, ids: np.ndarray, block_length: int, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        ...


class PrefixCache:
    """Which part of a canvas prefix a backend's key/value cache already holds (spec B7).

    `plan(ids, rows)` for a forward whose current block is `rows` (the end of `ids`): whether the
    cache must be dropped (another canvas), and the range of whole finished blocks to run once
    and append before the current block is forwarded against the cache. The cache holds blocks'
    final tokens only: a block is appended when the next block's first step asks for it, after
    its last edit (the "commit forward" of the recipe)."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)

    def plan(self, ids: np.ndarray, rows: slice) -> tuple[bool, int, int]:
        """(reset, append_from, start): drop the cache if `reset`, then forward
        ids[append_from:start] keeping its keys and values, then ids[start:] against them."""
        start = rows.start
        if rows.stop != len(ids):
            raise ValueError("the current block must end the canvas prefix")
        cached = len(self.ids)
        reset = cached > start or not np.array_equal(self.ids, ids[:cached])
        self.ids = np.array(ids[:start], dtype=np.int64)
        return reset, 0 if reset else cached, start


def block_schedule(block_length: int, steps: int) -> list[int]:
    """Tokens to commit at each of a block's steps (reference: B // steps, +1 for the first
    B % steps steps)."""
    base, extra = divmod(block_length, steps)
    return [base + (1 if step < extra else 0) for step in range(steps)]


def run(backend: BlockBackend, prompt: list[int], settings: SamplerSettings, *,
        editing_threshold: Optional[float] = None, max_post_steps: int = 16,
        early_stop: bool = True) -> Iterator[StepFrame]:
    """Frames of one answer, one per forward pass; the last is `done`, its positions still
    masked shown as EOS. `editing_threshold` None: the 2.0 decoder; a number: 2.1's editing.
    `early_stop`: 2.1 stops after a block once the answer holds EOS and no mask (2.0 always
    does, as its reference)."""
    pending = None
    for frame in _steps(backend, prompt, settings, editing_threshold, max_post_steps, early_stop):
        if pending is not None:
            yield pending
        pending = frame
    if pending is not None:
        tokens = pending.tokens.copy()
        tokens[tokens == backend.mask_id] = backend.eos_id
        yield replace(pending, tokens=tokens, done=True)


def _steps(backend: BlockBackend, prompt: list[int], settings: SamplerSettings,
           editing_threshold: Optional[float], max_post_steps: int,
           early_stop: bool) -> Iterator[StepFrame]:
    mask, eos = backend.mask_id, backend.eos_id
    B, gen = settings.block_length, settings.gen_length
    P = len(prompt)
    blocks = math.ceil((P + gen) / B)
    canvas = np.full(blocks * B, mask, dtype=np.int64)
    canvas[:P] = prompt
    committed_at = np.full(blocks * B, -1, dtype=np.int32)
    confidence = np.zeros(blocks * B, dtype=np.float32)
    edited_at = np.full(blocks * B, -1, dtype=np.int32)
    threshold = settings.threshold if settings.threshold is not None else 1.0
    steps_per_block = max(1, settings.steps // max(1, gen // B))
    schedule = block_schedule(B, steps_per_block)
    state = {"step": 0, "nfe": 0}

    def frame(block: int, committed: int) -> StepFrame:
        answer = slice(P, P + gen)
        # with edits, a written token is final only once its block is behind the current one
        settled = None if editing_threshold is None else max(0, block * B - P)
        return StepFrame(index=state["step"], block=block - P // B, tokens=canvas[answer].copy(),
                         committed_at=committed_at[answer].copy(),
                         confidence=confidence[answer].copy(), committed=committed,
                         nfe=state["nfe"], done=False, edited_at=edited_at[answer].copy(),
                         settled=settled)

    def forward(block: int) -> tuple[np.ndarray, np.ndarray]:
        end = (block + 1) * B
        state["nfe"] += 1
        return backend.predict(canvas[:end], B, slice(end - B, end))

    def write(positions: np.ndarray, x0: np.ndarray, p: np.ndarray, start: int) -> None:
        at = start + positions
        first = committed_at[at] < 0
        committed_at[at[first]] = state["step"]
        edited_at[at[~first]] = state["step"]
        canvas[at], confidence[at] = x0[positions], p[positions]

    stopped = False
    for block in range(P // B, blocks):
        start, end = block * B, (block + 1) * B
        in_prompt = np.arange(start, end) < P
        if editing_threshold is None:
            for count in schedule:
                active = canvas[start:end] == mask
                if not active.any():
                    break
                x0, p = forward(block)
                scores = np.where(active, p, -np.inf)
                count = min(count, int(active.sum()))
                above = np.flatnonzero(scores > threshold)
                if len(above) >= count and len(above) > 0:
                    chosen = above
                else:
                    chosen = np.argsort(-scores, kind="stable")[:count]
                write(chosen, x0, p, start)
                yield frame(block, len(chosen))
                state["step"] += 1
            stopped = bool((canvas[P:end] == eos).any())
        else:
            post = 0
            while True:
                old = canvas[start:end].copy()
                active = old == mask
                if not active.any():
                    post += 1
                    if post > max_post_steps:
                        break
                x0, p = forward(block)
                chosen = np.flatnonzero(active & (p > threshold))
                if len(chosen) < 1 and active.any():
                    chosen = np.argsort(-np.where(active, p, -np.inf), kind="stable")[:1]
                changed = np.flatnonzero(~active & ~in_prompt & (p > editing_threshold)
                                         & (x0 != old))
                write(np.concatenate([chosen, changed]), x0, p, start)
                yield frame(block, len(chosen) + len(changed))
                state["step"] += 1
                if not active.any() and len(changed) == 0:
                    break
            generated = canvas[P:end]
            stopped = early_stop and not (generated == mask).any() and bool((generated == eos).any())
        if stopped:
            break
