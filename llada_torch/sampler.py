"""LLaDA's diffusion sampler in PyTorch, yielding a frame per denoising step.

mode="exact" picks the same tokens as the reference `generate()` of ML-GSAI/LLaDA: the same
block and step schedule, float64 Gumbel-max sampling, classifier-free guidance with the prompt
masked, both remasking rules, both EOS options, and the tie rules (argmax takes the lowest token
id; among equal confidences the lowest position is committed first). On Apple's MPS, which has
no float64, temperature > 0 samples with float32 Gumbel noise instead: the same distribution,
other random numbers.

mode="fast" adds the approximations of Fast-dLLM (llada_torch.fast): a KV cache refreshed at each
block, confidence-threshold parallel commits and early stop at EOS.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, checked_prompt_ids, transfer_schedule
from llada_torch.model import Model


def has_float64(device: torch.device) -> bool:
    """Whether the device computes in float64; Apple's MPS has no float64 at all."""
    return device.type != "mps"


def gumbel_argmax_input(logits: torch.Tensor, temperature: float,
                        generator: torch.Generator) -> torch.Tensor:
    """A tensor whose argmax samples softmax(logits / T).

    Where the device has float64 this is the reference's exp(logits) / (-log U)^T in float64, so
    exact mode picks the reference's tokens for a seed. On MPS it is the same draw written as
    logits / T + Gumbel noise in float32 (argmax of l - T·log(-log U) = argmax of l/T + G):
    the same distribution, other random numbers.
    """
    if temperature == 0:
        return logits
    if not has_float64(logits.device):
        logits = logits.to(torch.float32)
        noise = torch.rand(logits.shape, dtype=torch.float32, device=logits.device,
                           generator=generator)
        return logits / temperature - torch.log(-torch.log(noise))
    logits = logits.to(torch.float64)
    noise = torch.rand(logits.shape, dtype=torch.float64, device=logits.device, generator=generator)
    return logits.exp() / (-torch.log(noise)) ** temperature


def top_k_stable(confidence: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest values; equal values are taken lowest index first."""
    order = torch.sort(confidence, descending=True, stable=True).indices
    return order[:k]


@dataclass
class Prediction:
    x0: torch.Tensor                       # (1, n) predicted token per position
    score: torch.Tensor                    # (1, n) what remasking ranks by
    probabilities: Optional[torch.Tensor]  # (1, n, V) softmax, when remasking computed it


def guided_logits(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Rows [conditional, unconditional] combined as un + (c + 1)(cond - un); one row as it is."""
    if cfg_scale <= 0:
        return logits
    conditional, unconditional = torch.chunk(logits, 2, dim=0)
    return unconditional + (cfg_scale + 1) * (conditional - unconditional)


def predict(logits: torch.Tensor, s: SamplerSettings, model: Model,
            generator: torch.Generator) -> Prediction:
    """x0 and its confidence, computed as the reference does (logits are edited in place)."""
    eos_id, eot_id = model.args.eos_token_id, model.args.eot_token_id
    if s.logits_eos_inf:
        logits[:, :, eos_id] = -torch.inf
    noisy = gumbel_argmax_input(logits, s.temperature, generator)
    x0 = torch.argmax(noisy, dim=-1)
    if s.confidence_eos_eot_inf:
        # As the reference does it: EOS is barred in the (possibly noisy) copy and EoT in the
        # logits; at temperature 0 they are one tensor, so both lose their confidence.
        noisy[:, :, eos_id] = -torch.inf
        if eot_id is not None:
            logits[:, :, eot_id] = -torch.inf
    if s.remasking == "low_confidence":
        probabilities = F.softmax(logits, dim=-1)
        score = torch.gather(probabilities, -1, x0.unsqueeze(-1)).squeeze(-1)
        return Prediction(x0, score, probabilities)
    return Prediction(x0, torch.rand(x0.shape, device=x0.device, generator=generator), None)


def committed_probability(prediction: Prediction, logits: torch.Tensor,
                          rows: torch.Tensor) -> np.ndarray:
    """The model's probability of the token committed at each of `rows`, for display."""
    if prediction.probabilities is None:
        probabilities = F.softmax(logits[0, rows].float(), dim=-1)
    else:
        probabilities = prediction.probabilities[0, rows].float()
    picked = torch.gather(probabilities, -1, prediction.x0[0, rows].unsqueeze(-1)).squeeze(-1)
    return picked.cpu().numpy()


def make_generator(device: torch.device, seed: Optional[int]) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


@torch.no_grad()
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
    `threshold`, `cache` and `early_stop` belong to mode="fast"; the exact sampler ignores them.
    With a threshold, the fast sampler takes as many steps as its commits need, not `steps`.
    """
    settings = SamplerSettings(
        gen_length=gen_length, block_length=block_length, steps=steps, temperature=temperature,
        cfg_scale=cfg_scale, remasking=remasking, mode=mode, seed=seed,
        logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf,
        cache=cache, threshold=threshold, early_stop=early_stop,
    )
    prompt = checked_prompt_ids(prompt_ids, model.args.rows)
    if settings.mode == "fast":
        from llada_torch.fast import fast_steps

        return fast_steps(model, prompt, settings)
    return _exact(model, prompt, settings)


class Canvas:
    """The prompt plus the answer region, and what each answer position's commit looked like."""

    def __init__(self, model: Model, prompt: list[int], gen_length: int):
        self.mask_id = model.args.mask_token_id
        self.P, self.G = len(prompt), gen_length
        self.x = torch.full((1, self.P + gen_length), self.mask_id, dtype=torch.long,
                            device=model.device)
        self.x[0, :self.P] = torch.tensor(prompt, dtype=torch.long, device=model.device)
        self.prompt_index = self.x != self.mask_id
        self.committed_at = np.full(gen_length, -1, dtype=np.int32)
        self.confidence = np.zeros(gen_length, dtype=np.float32)

    def batch(self, cfg_scale: float) -> torch.Tensor:
        """The canvas, plus a copy with the prompt masked when guidance is on."""
        if cfg_scale <= 0:
            return self.x
        unconditional = self.x.clone()
        unconditional[self.prompt_index] = self.mask_id
        return torch.cat([self.x, unconditional], dim=0)

    def record(self, positions: torch.Tensor, index: int, probabilities: np.ndarray) -> None:
        """Note the step and probability of commits at canvas `positions` (prompt ones skipped)."""
        answer = positions.cpu().numpy() - self.P
        keep = answer >= 0
        self.committed_at[answer[keep]] = index
        self.confidence[answer[keep]] = probabilities[keep]

    def frame(self, index: int, block: int, committed: int, nfe: int, done: bool) -> StepFrame:
        return StepFrame(
            index=index, block=block, tokens=self.x[0, self.P:].to(torch.int32).cpu().numpy(),
            committed_at=self.committed_at.copy(), confidence=self.confidence.copy(),
            committed=committed, nfe=nfe, done=done,
        )


def _exact(model: Model, prompt: list[int], s: SamplerSettings) -> Iterator[StepFrame]:
    generator = make_generator(model.device, s.seed)
    canvas = Canvas(model, prompt, s.gen_length)
    x, mask_id, P, B = canvas.x, canvas.mask_id, canvas.P, s.block_length
    passes = 2 if s.cfg_scale > 0 else 1
    nfe, index = 0, 0
    for block in range(s.num_blocks):
        end = P + (block + 1) * B
        schedule = transfer_schedule(int((x[0, end - B:end] == mask_id).sum()), s.steps_per_block)
        for step in range(s.steps_per_block):
            mask_index = x == mask_id
            logits = guided_logits(model(canvas.batch(s.cfg_scale)), s.cfg_scale)
            nfe += passes
            prediction = predict(logits, s, model, generator)
            prediction.score[:, end:] = -np.inf
            x0 = torch.where(mask_index, prediction.x0, x)
            confidence = torch.where(mask_index, prediction.score, -np.inf)
            chosen = top_k_stable(confidence[0], schedule[step])
            x[0, chosen] = x0[0, chosen]
            canvas.record(chosen, index, committed_probability(prediction, logits, chosen))
            done = block == s.num_blocks - 1 and step == s.steps_per_block - 1
            yield canvas.frame(index, block, len(chosen), nfe, done)
            index += 1
