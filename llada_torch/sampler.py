"""LLaDA's diffusion sampler in PyTorch, yielding a frame per denoising step.

mode="exact" picks the same tokens as the reference `generate()` of ML-GSAI/LLaDA: the same
block and step schedule, float64 Gumbel-max sampling, classifier-free guidance with the prompt
masked, both remasking rules, both EOS options, and the tie rules (argmax takes the lowest token
id; among equal confidences the lowest position is committed first). On Apple's MPS, which has
no float64, temperature > 0 samples with float32 Gumbel noise instead: the same distribution,
other random numbers.

mode="fast" adds the approximations of Fast-dLLM: a KV cache refreshed at each block,
confidence-threshold (or factor-rule) parallel commits and early stop at EOS or end of turn.

The schedule, commit rules, early stop and frames live in llada_core.driver, written once for
both backends; this module is its PyTorch side (`TorchBackend`): a forward pass that computes
the head only for the rows the driver can commit, and a prediction for those rows (one copy to
the host per step). Exact mode asks for the rows before the block's end that are still masked,
yet at temperature > 0 draws the reference's noise over the whole canvas, so a seed gives the
reference's tokens; only that one full-canvas float64 tensor is ever alive, and only briefly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from llada_core import driver
from llada_core.driver import Prediction, top_k_stable
from llada_core.frames import StepFrame
from llada_core.kv_cache import KVCache
from llada_core.vision import ImageSpan, with_images
from llada_core.settings import (
    SamplerSettings, check_fits_context, checked_constraints, checked_prompt_ids,
)
from llada_torch import llada2
from llada_torch.model import Model

__all__ = ["TorchBackend", "generate_steps", "gumbel_argmax_input", "has_float64",
           "top_k_stable"]


def has_float64(device: torch.device) -> bool:
    """Whether the device computes in float64; Apple's MPS has no float64 at all."""
    return device.type != "mps"


def gumbel_argmax_input(logits: torch.Tensor, temperature: float, generator: torch.Generator,
                        row0: int = 0, draw_rows: Optional[int] = None) -> torch.Tensor:
    """A tensor whose argmax samples softmax(logits / T).

    Where the device has float64 this is the reference's exp(logits) / (-log U)^T in float64, so
    exact mode picks the reference's tokens for a seed. On MPS it is the same draw written as
    logits / T + Gumbel noise in float32 (argmax of l - T·log(-log U) = argmax of l/T + G):
    the same distribution, other random numbers.

    logits (B, n, V) may be rows row0 .. row0 + n of a canvas of `draw_rows` rows: the uniform
    numbers are then drawn for the whole canvas, as the reference draws them (so the random
    stream is the reference's), and only these rows are kept; the full draw is freed at once.
    """
    if temperature == 0:
        return logits
    batch, rows, vocab = logits.shape
    draw_rows = rows if draw_rows is None else draw_rows
    dtype = torch.float64 if has_float64(logits.device) else torch.float32
    noise = torch.rand((batch, draw_rows, vocab), dtype=dtype, device=logits.device,
                       generator=generator)
    if draw_rows != rows or row0:
        noise = noise[:, row0:row0 + rows].clone()  # the full-canvas draw is dropped here
    if dtype == torch.float32:
        return logits.to(torch.float32) / temperature - torch.log(-torch.log(noise))
    return logits.to(torch.float64).exp() / (-torch.log(noise)) ** temperature


def guided_logits(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Rows [conditional, unconditional] combined as un + (c + 1)(cond - un); one row as it is."""
    if cfg_scale <= 0:
        return logits
    conditional, unconditional = torch.chunk(logits, 2, dim=0)
    return unconditional + (cfg_scale + 1) * (conditional - unconditional)


def make_generator(device: torch.device, seed: Optional[int]) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


class TorchBackend:
    """llada_core.driver's Backend for a PyTorch model: forward passes and predictions."""

    def __init__(self, model: Model, settings: SamplerSettings):
        self.model, self.s = model, settings
        self.mask_id = model.args.mask_token_id
        self.eos_id = model.args.eos_token_id
        self.eot_id = model.args.eot_token_id
        self.rules = getattr(model, "rules", None)  # LLaDA-V's (llada_core.llada_v_config)
        self.stop_id = self.rules.stop_id if self.rules is not None else None
        self.generator = make_generator(model.device, settings.seed)

    def logits(self, ids: np.ndarray, cache: Optional[KVCache], offset: int,
               rows: slice) -> torch.Tensor:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(ids)).to(self.model.device)
            logits = self.model(batch, cache=cache, offset=offset, logits_for=rows)
            return guided_logits(logits, self.s.cfg_scale)

    def predict(self, logits: torch.Tensor, row0: int, draw_rows: int, float32: bool) -> Prediction:
        """As the reference computes it (logits are edited in place), for the rows given."""
        s, eos_id, eot_id = self.s, self.eos_id, self.eot_id
        with torch.inference_mode():
            if self.rules is not None:
                logits = logits[..., :self.rules.vocab_rows]
                if self.rules.banned:
                    logits[..., list(self.rules.banned)] = -torch.inf
            if s.logits_eos_inf:
                logits[:, :, eos_id] = -torch.inf
            noisy = gumbel_argmax_input(logits, s.temperature, self.generator, row0, draw_rows)
            x0 = torch.argmax(noisy, dim=-1)[0]
            if s.confidence_eos_eot_inf:
                # As the reference does it: EOS is barred in the (possibly noisy) copy and EoT in
                # the logits; at temperature 0 they are one tensor, so both lose their confidence.
                noisy[:, :, eos_id] = -torch.inf
                if eot_id is not None:
                    logits[:, :, eot_id] = -torch.inf
            del noisy
            if s.remasking == "low_confidence":
                # The reference's softmax is in the logits' dtype; fast mode's threshold wants
                # float32 (bf16 steps by 1/256 near 0.9).
                probabilities = F.softmax(logits[0].float() if float32 else logits[0], dim=-1)
                score = torch.gather(probabilities, -1, x0[:, None])[:, 0].float()
                shown = score
            else:
                score = torch.rand((1, draw_rows), device=x0.device,
                                   generator=self.generator)[0, row0:row0 + len(x0)]
                probabilities = F.softmax(logits[0].float(), dim=-1)
                shown = torch.gather(probabilities, -1, x0[:, None])[:, 0]
            # One copy to the host: ids below 2**24 are exact in float32.
            host = torch.stack([x0.float(), score, shown]).cpu().numpy()
        return Prediction(host[0].astype(np.int64), host[1], host[2])


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
    ignores them. With a threshold or factor, the fast sampler takes as many steps as its commits
    need, not `steps`.
    `constraints` maps answer positions to token ids written there before the first step and
    never changed (word constraints, infilling; see llada_core.driver).
    A LLaDA 2.x model is denoised block by block (llada_core.block_diffusion); `threshold` is its
    mask threshold and `editing_threshold` LLaDA2.1's editing threshold.
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
    frames = driver.run(TorchBackend(model, settings), prompt, settings, fixed)
    if images:  # LLaDA-V: the pictures' features over their placeholder positions
        return with_images(model, frames, list(images))
    return frames
