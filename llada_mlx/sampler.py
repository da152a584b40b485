"""LLaDA's diffusion sampler in MLX, yielding a frame per denoising step.

mode="exact" picks the same tokens as the reference `generate()` of ML-GSAI/LLaDA and as
llada_torch's sampler: the same block and step schedule, classifier-free guidance with the prompt
masked, both remasking rules, both EOS options, and the tie rules (argmax takes the lowest token
id; among equal confidences the lowest position is committed first, by a stable sort in numpy).

Randomness (temperature > 0, random remasking) uses MLX's own generator, seeded by `seed`.
Sampling takes the argmax of `logits / T + Gumbel noise` in float32, which draws from
softmax(logits / T) exactly as the reference's float64 `exp(logits) / (-log U)^T` does; but the
random numbers are MLX's, so random paths can never equal torch's token for token. At
temperature 0 with low-confidence remasking nothing is random and the backends agree.

MLX streams belong to one thread: load the model and iterate this generator on the same
long-lived worker thread.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Optional

import mlx.core as mx
import numpy as np

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, checked_prompt_ids, transfer_schedule
from llada_mlx.model import Model


def top_k_stable(confidence: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values; equal values are taken lowest index first."""
    return np.argsort(-confidence, kind="stable")[:k]


def gumbel_argmax_input(logits: mx.array, temperature: float, key: mx.array) -> mx.array:
    """logits / T + Gumbel noise in float32, whose argmax samples softmax(logits / T)."""
    if temperature == 0:
        return logits
    logits = logits.astype(mx.float32)
    return logits / temperature + mx.random.gumbel(logits.shape, dtype=mx.float32, key=key)


def generate_steps(
    model: Model,
    prompt_ids: Sequence[int],
    *,
    gen_length: int = 128,
    block_length: int = 32,
    steps: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mode: str = "exact",
    threshold: Optional[float] = 0.9,
    cache: str = "dual",
    early_stop: bool = True,
    seed: Optional[int] = None,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
) -> Iterator[StepFrame]:
    """Denoise gen_length masks after the prompt, yielding one StepFrame per step.

    Invalid settings raise ValueError before any work is done. Stop iterating to cancel.
    `threshold`, `cache` and `early_stop` belong to mode="fast" (llada_mlx.fast); the exact
    sampler ignores them. With a threshold, the fast sampler takes as many steps as it needs.
    """
    settings = SamplerSettings(
        gen_length=gen_length, block_length=block_length, steps=steps, temperature=temperature,
        cfg_scale=cfg_scale, remasking=remasking, mode=mode, seed=seed,
        logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf,
        cache=cache, threshold=threshold, early_stop=early_stop,
    )
    prompt = checked_prompt_ids(prompt_ids, model.args.rows)
    if settings.mode == "fast":
        from llada_mlx.fast import fast_steps

        return fast_steps(model, prompt, settings)
    return _exact(model, prompt, settings)


def guided_logits(logits: mx.array, cfg_scale: float) -> mx.array:
    """Rows [conditional, unconditional] combined as un + (c + 1)(cond - un); one row as it is."""
    if cfg_scale <= 0:
        return logits
    conditional, unconditional = logits[0:1], logits[1:2]
    return unconditional + (cfg_scale + 1) * (conditional - unconditional)


class Canvas:
    """The prompt plus the answer region (numpy), and what each answer position's commit was."""

    def __init__(self, model: Model, prompt: list[int], gen_length: int):
        self.mask_id = model.args.mask_token_id
        self.P, self.G = len(prompt), gen_length
        self.x = np.full(self.P + gen_length, self.mask_id, dtype=np.int32)
        self.x[:self.P] = prompt
        self.prompt_index = self.x != self.mask_id
        self.committed_at = np.full(gen_length, -1, dtype=np.int32)
        self.confidence = np.zeros(gen_length, dtype=np.float32)

    def batch(self, cfg_scale: float) -> mx.array:
        """The canvas, plus a copy with the prompt masked when guidance is on."""
        if cfg_scale <= 0:
            return mx.array(self.x[None])
        unconditional = self.x.copy()
        unconditional[self.prompt_index] = self.mask_id
        return mx.array(np.stack([self.x, unconditional]))

    def record(self, positions: np.ndarray, index: int, probabilities: np.ndarray) -> None:
        """Note the step and probability of commits at canvas `positions` (prompt ones skipped)."""
        answer = positions - self.P
        keep = answer >= 0
        self.committed_at[answer[keep]] = index
        self.confidence[answer[keep]] = np.asarray(probabilities)[keep]

    def frame(self, index: int, block: int, committed: int, nfe: int, done: bool) -> StepFrame:
        return StepFrame(
            index=index, block=block, tokens=self.x[self.P:].copy(),
            committed_at=self.committed_at.copy(), confidence=self.confidence.copy(),
            committed=committed, nfe=nfe, done=done,
        )


def predict(logits: mx.array, s: SamplerSettings, model: Model,
            key: mx.array) -> tuple[np.ndarray, np.ndarray, mx.array]:
    """(x0, the score remasking ranks by, the edited logits) for batch row 0, as numpy.

    Computed as the reference does it (and llada_torch): EOS barred before the argmax with
    logits_eos_inf; with confidence_eos_eot_inf, EOS loses its confidence in the possibly noisy
    copy and EoT in the logits, so at temperature 0 both do and above it only EoT does.
    """
    args = model.args
    if s.logits_eos_inf:
        logits[:, :, args.eos_token_id] = -mx.inf
    noise_key, random_key = mx.random.split(key, 2)
    x0 = mx.argmax(gumbel_argmax_input(logits, s.temperature, noise_key), axis=-1)
    if s.confidence_eos_eot_inf:
        if s.temperature == 0:
            logits[:, :, args.eos_token_id] = -mx.inf
        if args.eot_token_id is not None:
            logits[:, :, args.eot_token_id] = -mx.inf
    if s.remasking == "low_confidence":
        probabilities = mx.softmax(logits, axis=-1, precise=True)
        score = mx.take_along_axis(probabilities, x0[..., None], axis=-1).squeeze(-1)
    else:
        score = mx.random.uniform(shape=x0.shape, dtype=mx.float32, key=random_key)
    return (np.array(x0[0]).astype(np.int32), np.array(score[0].astype(mx.float32)), logits)


def shown_confidence(s: SamplerSettings, score: np.ndarray, logits: mx.array, rows: np.ndarray,
                     tokens: np.ndarray) -> np.ndarray:
    """The model's probability of each committed token (the score itself under low_confidence)."""
    if s.remasking == "low_confidence" or len(rows) == 0:
        return score[rows]
    return _probabilities_of(logits, rows, tokens)


def clears_cache(steps: Callable[..., Iterator[StepFrame]]) -> Callable[..., Iterator[StepFrame]]:
    """Empty MLX's buffer cache when the sampler finishes, fails or is closed early."""

    @functools.wraps(steps)
    def frames(*args, **kwargs) -> Iterator[StepFrame]:
        try:
            yield from steps(*args, **kwargs)
        finally:
            mx.clear_cache()

    return frames


def start_key(seed: Optional[int]) -> mx.array:
    return mx.random.key(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)


@clears_cache
def _exact(model: Model, prompt: list[int], s: SamplerSettings) -> Iterator[StepFrame]:
    key = start_key(s.seed)
    canvas = Canvas(model, prompt, s.gen_length)
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    for block in range(s.num_blocks):
        end = P + (block + 1) * B
        schedule = transfer_schedule(int((x[end - B:end] == mask_id).sum()), s.steps_per_block)
        for step in range(s.steps_per_block):
            mask_index = x == mask_id
            logits = guided_logits(model(canvas.batch(s.cfg_scale)), s.cfg_scale)
            nfe += passes
            key, step_key = mx.random.split(key, 2)
            x0, score, logits = predict(logits, s, model, step_key)
            score[end:] = -np.inf
            x0 = np.where(mask_index, x0, x)
            confidence = np.where(mask_index, score, -np.inf).astype(np.float32)
            chosen = top_k_stable(confidence, schedule[step])
            x[chosen] = x0[chosen]
            canvas.record(chosen, index, shown_confidence(s, score, logits, chosen, x0[chosen]))
            done = block == s.num_blocks - 1 and step == s.steps_per_block - 1
            yield canvas.frame(index, block, len(chosen), nfe, done)
            index += 1


def _probabilities_of(logits: mx.array, rows: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The model's probability of each committed token, for display (random remasking)."""
    row_logits = logits[0, mx.array(rows)].astype(mx.float32)
    probabilities = mx.softmax(row_logits, axis=-1, precise=True)
    picked = mx.take_along_axis(probabilities, mx.array(tokens)[:, None], axis=-1).squeeze(-1)
    return np.array(picked, dtype=np.float32)
