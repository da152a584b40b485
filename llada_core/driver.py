"""The one sampler driver: schedule, commit rules, early stop and frames, for either backend.

Framework-free (numpy only). A backend supplies two operations (the `Backend` protocol):

- `logits(ids, cache, offset, rows)`: the guided logits of `rows` of the window `ids`
  (batch, window length; the canvas, plus its prompt-masked copy under CFG) that sits at canvas
  positions offset, offset + 1, ...; `cache` is None or a llada_core.kv_cache.KVCache (empty: the
  pass fills it; filled: the window's keys and values replace the cached ones);
- `predict(logits, row0, draw_rows, float32)`: for those rows, as numpy, the predicted token, the
  score remasking ranks by and the probability of the prediction (for display). The logits are
  rows row0, row0 + 1, ... of a draw over `draw_rows` rows: a backend that must reproduce the
  reference's random numbers draws them over all `draw_rows` and keeps its rows. `float32` asks
  for a float32 softmax whatever the logits' dtype (the fast mode's threshold compares it).

mode="exact" (spec §3) is the reference `generate()`: the whole canvas is fed every step, but only
the rows that can be committed are asked for (the masked positions before the block's end: in
the reference every other row has confidence -inf), so the head, softmax, argmax and noise
cover one block rather than the canvas. Ties: the lowest token id wins an argmax (the backends'
argmax does that), the lowest position a top-k (a stable sort, here).

mode="fast" (spec §4, Fast-dLLM): a KV cache refreshed at each block (dual: later steps feed the
block only; prefix: the block and what follows; none), threshold commits (every masked in-block
position at least τ confident, at least one per step; or Fast-dLLM's factor rule), and early
stop when a finished block holds EOS or end of turn (the rest becomes EOS).

A backend whose model has a stop token (`stop_id`: LLaDA-V's <|eot_id|>, spec §6.2) ends the answer
there in exact mode, as LLaDA-V's reference does: once the answer holds it, only masked positions
before the first one can be committed, the answer ends when none is left before it (the
positions after it, never to be committed, become EOS) and later blocks are skipped.

Fixed tokens (word constraints, infilling): `fixed` maps answer positions to token ids written
into the canvas before the first step, as the reference app.py writes its "position:word"
constraints. Like the reference they are in place before the prompt index is taken (so guidance
masks them with the prompt in its unconditional pass), they are not masks, so no block's
schedule counts them and nothing ever re-masks or replaces them, and exact mode skips a block
they fill completely and stops once no mask is left (the reference app's `continue` and
`break`). Fast mode's early stop never fills over fixed tokens after the finished block. Frames
show them from the first frame on: committed at step 0 with confidence 1, counted in that
frame's `committed` (so a stored trace replays them where the live canvas showed them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional, Protocol

import numpy as np

from llada_core.frames import StepFrame
from llada_core.kv_cache import KVCache
from llada_core.settings import SamplerSettings, transfer_schedule


class SamplerError(ValueError):
    """An answer the sampler had to abandon (non-finite scores, no progress); one sentence."""


NON_FINITE = ("the model's scores became infinite or NaN, so the answer was stopped; "
              "try a smaller CFG scale or temperature")


def checked(prediction: "Prediction") -> "Prediction":
    """The prediction, or SamplerError when a probability is not finite (overflowing logits)."""
    if not np.isfinite(prediction.shown).all() or not np.isfinite(prediction.score).all():
        raise SamplerError(NON_FINITE)
    return prediction


class Prediction(NamedTuple):
    """Per row asked for: predicted token, remasking score, probability of the token."""

    x0: np.ndarray     # int64 (n,)
    score: np.ndarray  # float32 (n,)
    shown: np.ndarray  # float32 (n,)


class Backend(Protocol):
    mask_id: int
    eos_id: int
    eot_id: Optional[int]

    def logits(self, ids: np.ndarray, cache: Optional[KVCache], offset: int, rows: slice) -> Any:
        ...

    def predict(self, logits: Any, row0: int, draw_rows: int, float32: bool) -> Prediction:
        ...


@dataclass(frozen=True)
class Pass:
    """One forward pass: the canvas window fed, its first position, the rows whose logits count."""

    window: slice
    offset: int
    rows: slice


def block_pass(cache: Optional[KVCache], kind: str, start: int, end: int) -> Pass:
    """The cheapest pass that gives the logits of the block [start, end) this step."""
    if cache is None or not cache.filled:
        return Pass(slice(0, None), 0, slice(start, end))
    if kind == "dual":
        return Pass(slice(start, end), start, slice(0, end - start))
    return Pass(slice(start, None), start, slice(0, end - start))


def top_k_stable(confidence: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values; equal values are taken lowest index first."""
    return np.argsort(-confidence, kind="stable")[:k]


def factor_count(sorted_confidence: np.ndarray, factor: float) -> int:
    """Fast-dLLM's factor rule: the largest n with (i + 1)(1 - c_i) < factor for every i <= n
    (confidences sorted descending, 1-based), and at least one."""
    n = 1
    while n < len(sorted_confidence) and (n + 2) * (1.0 - float(sorted_confidence[n])) < factor:
        n += 1
    return n


def choose(score: np.ndarray, masked: np.ndarray, s: SamplerSettings, fixed_count: int) -> np.ndarray:
    """Block positions (indices into the block) to commit this fast-mode step."""
    confidence = np.where(masked, score, -np.inf).astype(np.float32)
    if s.factor is not None:
        order = top_k_stable(confidence, int(masked.sum()))
        return order[:factor_count(confidence[order], s.factor)]
    if s.threshold is None:
        return top_k_stable(confidence, fixed_count)
    sure = np.flatnonzero(confidence >= np.float32(s.threshold))
    return sure if len(sure) else top_k_stable(confidence, 1)


class Canvas:
    """The prompt plus the answer region, and what each answer position's commit looked like."""

    def __init__(self, prompt: list[int], gen_length: int, mask_id: int,
                 fixed: Optional[Mapping[int, int]] = None):
        self.mask_id = mask_id
        self.P, self.G = len(prompt), gen_length
        self.x = np.full(self.P + gen_length, mask_id, dtype=np.int64)
        self.x[:self.P] = prompt
        self.committed_at = np.full(gen_length, -1, dtype=np.int32)
        self.confidence = np.zeros(gen_length, dtype=np.float32)
        self.fixed = np.zeros(gen_length, dtype=bool)
        for position, token in (fixed or {}).items():
            self.x[self.P + position] = token
            self.fixed[position] = True
        self.committed_at[self.fixed] = 0
        self.confidence[self.fixed] = 1.0
        self.pending_fixed = int(self.fixed.sum())  # reported with the first frame
        self.prompt_index = self.x != mask_id

    @property
    def constrained(self) -> bool:
        return bool(self.fixed.any())

    def fixed_after(self, end: int) -> bool:
        """Whether a fixed token lies at canvas position `end` or later."""
        return bool(self.fixed[max(end - self.P, 0):].any())

    def running_blocks(self, s: SamplerSettings) -> list[int]:
        """The blocks that hold a mask (every block unless fixed tokens fill some)."""
        B = s.block_length
        return [b for b in range(s.num_blocks)
                if (self.x[self.P + b * B:self.P + (b + 1) * B] == self.mask_id).any()]

    def batch(self, cfg_scale: float) -> np.ndarray:
        """The canvas (1, N), plus a copy with the prompt masked when guidance is on (2, N)."""
        if cfg_scale <= 0:
            return self.x[None]
        unconditional = self.x.copy()
        unconditional[self.prompt_index] = self.mask_id
        return np.stack([self.x, unconditional])

    def record(self, positions: np.ndarray, index: int, probabilities: np.ndarray) -> None:
        """Note the step and probability of commits at canvas `positions` (prompt ones skipped)."""
        answer = np.asarray(positions) - self.P
        keep = answer >= 0
        self.committed_at[answer[keep]] = index
        self.confidence[answer[keep]] = np.asarray(probabilities, dtype=np.float32)[keep]

    def frame(self, index: int, block: int, committed: int, nfe: int, done: bool) -> StepFrame:
        committed, self.pending_fixed = committed + self.pending_fixed, 0
        return StepFrame(
            index=index, block=block, tokens=self.x[self.P:].astype(np.int32),
            committed_at=self.committed_at.copy(), confidence=self.confidence.copy(),
            committed=committed, nfe=nfe, done=done,
        )


def run(backend: Backend, prompt: list[int], s: SamplerSettings,
        fixed: Optional[Mapping[int, int]] = None) -> Iterator[StepFrame]:
    """The frames of one answer; `prompt` holds checked ids, `s` valid settings, `fixed` checked
    answer position -> token id (llada_core.settings.checked_constraints)."""
    canvas = Canvas(prompt, s.gen_length, backend.mask_id, fixed)
    if s.mode == "fast":
        return _fast(backend, canvas, s)
    return _exact(backend, canvas, s)


def _exact(backend: Backend, canvas: Canvas, s: SamplerSettings) -> Iterator[StepFrame]:
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    stop_id = getattr(backend, "stop_id", None)
    blocks = canvas.running_blocks(s) if canvas.constrained else list(range(s.num_blocks))
    for block in blocks:
        end = P + (block + 1) * B
        schedule = transfer_schedule(int((x[end - B:end] == mask_id).sum()), s.steps_per_block)
        for step in range(s.steps_per_block):
            if canvas.constrained and not (x == mask_id).any():
                return
            # Rows that can be committed: masked and before the block's end. Normally the block
            # itself; a prompt holding mask tokens widens it, exactly as the reference does.
            masked = np.flatnonzero(x[:end] == mask_id)
            low = int(masked[0]) if len(masked) else end - B
            logits = backend.logits(canvas.batch(s.cfg_scale), None, 0, slice(low, end))
            nfe += passes
            prediction = checked(backend.predict(logits, low, len(x), False))
            open_rows = x[low:end] == mask_id
            stop = first_stop(x, P, stop_id)
            if stop is not None:
                open_rows &= np.arange(low, end) < stop
            confidence = np.where(open_rows, prediction.score, -np.inf).astype(np.float32)
            chosen = top_k_stable(confidence, schedule[step])
            if stop is not None:  # nothing after the stop token is committed
                chosen = chosen[np.isfinite(confidence[chosen])]
            x[low + chosen] = prediction.x0[chosen]
            canvas.record(low + chosen, index, prediction.shown[chosen])
            committed = len(chosen)
            stop = first_stop(x, P, stop_id)
            ended = stop is not None and not (x[:stop] == mask_id).any()
            if ended:  # the answer ends at its stop token: what is still masked after it is EOS
                rest = stop + 1 + np.flatnonzero(x[stop + 1:] == mask_id)
                x[rest] = backend.eos_id
                canvas.record(rest, index, np.zeros(len(rest), dtype=np.float32))
                committed += len(rest)
            done = ended or (block == blocks[-1] and (step == s.steps_per_block - 1 or (
                canvas.constrained and not (x == mask_id).any())))
            yield canvas.frame(index, block, committed, nfe, done)
            index += 1
            if ended:
                return


def first_stop(x: np.ndarray, prompt_length: int, stop_id: Optional[int]) -> Optional[int]:
    """The canvas position of the answer's first stop token (None: no stop rule, or none yet)."""
    if stop_id is None:
        return None
    hits = np.flatnonzero(x[prompt_length:] == stop_id)
    return prompt_length + int(hits[0]) if len(hits) else None


def _fast(backend: Backend, canvas: Canvas, s: SamplerSettings) -> Iterator[StepFrame]:
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    stops = [backend.eos_id] + ([backend.eot_id] if backend.eot_id is not None else [])
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    final_block = canvas.running_blocks(s)[-1] if canvas.constrained else s.num_blocks - 1
    for block in range(s.num_blocks):
        start, end = P + block * B, P + (block + 1) * B
        cache = None if s.cache == "none" else KVCache()
        # Every step commits at least one masked position, so a block takes at most as many
        # steps as it has masks; one that does not (a committed mask id) stops, never loops.
        budget = int((x[start:end] == mask_id).sum())
        schedule = transfer_schedule(budget, s.steps_per_block)
        step = 0
        while (x[start:end] == mask_id).any():
            if step >= budget:
                raise SamplerError(f"block {block} was not filled within its {budget} steps, so "
                                   "the answer was stopped (the model keeps predicting the mask "
                                   "token)")
            masked = x[start:end] == mask_id
            plan = block_pass(cache, s.cache, start, end)
            logits = backend.logits(canvas.batch(s.cfg_scale)[:, plan.window], cache, plan.offset,
                                    plan.rows)
            nfe += passes
            prediction = checked(backend.predict(logits, 0, B, True))
            chosen = choose(prediction.score, masked, s, schedule[step] if step < len(schedule) else 1)
            x[start + chosen] = prediction.x0[chosen]
            canvas.record(start + chosen, index, prediction.shown[chosen])
            committed = len(chosen)
            finished = not (x[start:end] == mask_id).any()
            last_block = block == final_block
            stop = (finished and not last_block and s.early_stop
                    and bool(np.isin(x[start:end], stops).any()) and not canvas.fixed_after(end))
            if stop:
                rest = np.arange(end, len(x))
                x[end:] = backend.eos_id
                canvas.record(rest, index, np.zeros(len(rest), dtype=np.float32))
                committed += len(rest)
            yield canvas.frame(index, block, committed, nfe, done=stop or (finished and last_block))
            index += 1
            step += 1
            if stop:
                return
