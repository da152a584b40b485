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

The schedule, commit rules, early stop and frames live in llada_core.driver, written once for
both backends; this module is its MLX side (`MlxBackend`): a forward pass whose head covers only
the rows the driver can commit, and one evaluation per step that brings the predictions of those
rows to numpy. mode="fast" (Fast-dLLM: KV cache, threshold or factor commits, early stop at EOS
or end of turn) runs through the same driver.

MLX streams belong to one thread: load the model and iterate this generator on the same
long-lived worker thread. MLX's buffer cache is emptied after each answer (`clears_cache`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Optional

import mlx.core as mx
import numpy as np

from llada_core import driver
from llada_core.driver import Prediction, top_k_stable
from llada_core.frames import StepFrame
from llada_core.kv_cache import KVCache
from llada_core.vision import ImageSpan, with_images
from llada_core.settings import (
    SamplerSettings, check_fits_context, checked_constraints, checked_prompt_ids,
)
from llada_mlx import llada2
from llada_mlx.model import Model

__all__ = ["MlxBackend", "clears_cache", "generate_steps", "gumbel_argmax_input", "top_k_stable"]


def gumbel_argmax_input(logits: mx.array, temperature: float, key: mx.array) -> mx.array:
    """logits / T + Gumbel noise in float32, whose argmax samples softmax(logits / T)."""
    if temperature == 0:
        return logits
    logits = logits.astype(mx.float32)
    return logits / temperature + mx.random.gumbel(logits.shape, dtype=mx.float32, key=key)


def guided_logits(logits: mx.array, cfg_scale: float) -> mx.array:
    """Rows [conditional, unconditional] combined as un + (c + 1)(cond - un); one row as it is."""
    if cfg_scale <= 0:
        return logits
    conditional, unconditional = logits[0:1], logits[1:2]
    return unconditional + (cfg_scale + 1) * (conditional - unconditional)


def start_key(seed: Optional[int]) -> mx.array:
    return mx.random.key(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)


class MlxBackend:
    """llada_core.driver's Backend for an MLX model: forward passes and predictions."""

    def __init__(self, model: Model, settings: SamplerSettings):
        self.model, self.s = model, settings
        args = model.args
        self.mask_id, self.eos_id, self.eot_id = args.mask_token_id, args.eos_token_id, args.eot_token_id
        self.rules = getattr(model, "rules", None)  # LLaDA-V's (llada_core.llada_v_config)
        self.stop_id = self.rules.stop_id if self.rules is not None else None
        self.key = start_key(settings.seed)

    def logits(self, ids: np.ndarray, cache: Optional[KVCache], offset: int, rows: slice) -> mx.array:
        # The driver's ids are checked (prompt) or the model's own predictions: the inner model
        # is called directly, without Model's id check (two reads back from the device), with
        # the embeddings a vision model puts its pictures' features in.
        window = mx.array(ids.astype(np.int32))
        embed = getattr(self.model, "embed", None)  # LLaDA 8B's and LLaDA-V's; not LLaDA-MoE's
        extra = {"embeds": embed(window, offset)} if embed is not None else {}
        logits = self.model.model(window, cache, offset, rows, **extra)
        return guided_logits(logits, self.s.cfg_scale)

    def predict(self, logits: mx.array, row0: int, draw_rows: int, float32: bool) -> Prediction:
        """As the reference computes it (and llada_torch), for the rows given: EOS barred before
        the argmax with logits_eos_inf; with confidence_eos_eot_inf, EOS loses its confidence in
        the possibly noisy copy and EoT in the logits, so at temperature 0 both do and above it
        only EoT does. MLX's random numbers cannot be torch's, so they are drawn for these rows
        only (row0 and draw_rows are not needed). One evaluation for the step."""
        s, args = self.s, self.model.args
        self.key, step_key = mx.random.split(self.key, 2)
        noise_key, random_key = mx.random.split(step_key, 2)
        if self.rules is not None:
            logits = logits[..., :self.rules.vocab_rows]
            if self.rules.banned:
                logits[..., mx.array(self.rules.banned)] = -mx.inf
        if s.logits_eos_inf:
            logits[:, :, args.eos_token_id] = -mx.inf
        x0 = mx.argmax(gumbel_argmax_input(logits, s.temperature, noise_key), axis=-1)[0]
        if s.confidence_eos_eot_inf:
            if s.temperature == 0:
                logits[:, :, args.eos_token_id] = -mx.inf
            if args.eot_token_id is not None:
                logits[:, :, args.eot_token_id] = -mx.inf
        rows = logits[0]
        if s.remasking == "low_confidence":
            # The reference's softmax is in the logits' dtype; fast mode's threshold wants float32.
            probabilities = mx.softmax(rows.astype(mx.float32) if float32 else rows, axis=-1,
                                       precise=True)
            score = mx.take_along_axis(probabilities, x0[:, None], axis=-1)[:, 0].astype(mx.float32)
            shown = score
        else:
            score = mx.random.uniform(shape=x0.shape, dtype=mx.float32, key=random_key)
            probabilities = mx.softmax(rows.astype(mx.float32), axis=-1, precise=True)
            shown = mx.take_along_axis(probabilities, x0[:, None], axis=-1)[:, 0]
        # One evaluation and one copy: ids below 2**24 are exact in float32.
        host = np.array(mx.stack([x0.astype(mx.float32), score, shown]))
        return Prediction(host[0].astype(np.int64), host[1], host[2])


def clears_cache(steps: Callable[..., Iterator[StepFrame]]) -> Callable[..., Iterator[StepFrame]]:
    """Empty MLX's buffer cache when the sampler finishes, fails or is closed early."""

    @functools.wraps(steps)
    def frames(*args, **kwargs) -> Iterator[StepFrame]:
        try:
            yield from steps(*args, **kwargs)
        finally:
            mx.clear_cache()

    return frames


@clears_cache
def _frames(model: Model, prompt: list[int], settings: SamplerSettings,
            fixed: Optional[dict[int, int]] = None) -> Iterator[StepFrame]:
    yield from driver.run(MlxBackend(model, settings), prompt, settings, fixed)


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
    factor: Optional[float] = None,
    constraints: Optional[Mapping[int, Sequence[int]]] = None,
    editing_threshold: Optional[float] = None,
    images: Optional[Sequence[ImageSpan]] = None,
) -> Iterator[StepFrame]:
    """Denoise gen_length masks after the prompt, yielding one StepFrame per step.

    Invalid settings raise ValueError before any work is done. Stop iterating to cancel.
    `threshold`, `cache`, `early_stop` and `factor` belong to mode="fast"; the exact sampler
    ignores them. With a threshold or factor, the fast sampler takes as many steps as it needs.
    `constraints` maps answer positions to token ids written there before the first step and
    never changed (word constraints, infilling; see llada_core.driver).
    """
    settings = SamplerSettings(
        gen_length=gen_length, block_length=block_length, steps=steps, temperature=temperature,
        cfg_scale=cfg_scale, remasking=remasking, mode=mode, seed=seed,
        logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf,
        cache=cache, threshold=threshold, early_stop=early_stop, factor=factor,
        editing_threshold=editing_threshold,
    )
    prompt = checked_prompt_ids(prompt_ids, model.args.rows)
    check_fits_context(len(prompt), gen_length, getattr(model.args, "max_sequence_length", None))
    if isinstance(model, llada2.Model):  # block diffusion (LLaDA 2.x)
        if constraints:
            raise ValueError("word constraints and infilling need a bidirectional model; "
                             "LLaDA 2.x writes block by block")
        return llada2.generate_block_steps(model, prompt, settings, editing_threshold)
    fixed = checked_constraints(constraints or {}, gen_length, model.args.rows,
                                model.args.mask_token_id)
    frames = _frames(model, prompt, settings, fixed)
    if images:  # LLaDA-V: the pictures' features over their placeholder positions
        return with_images(model, frames, list(images))
    return frames
