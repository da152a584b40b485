"""LLaDA's diffusion sampler in PyTorch, yielding a frame per denoising step.

mode="exact" picks the same tokens as the reference `generate()` of ML-GSAI/LLaDA: the same
block and step schedule, float64 Gumbel-max sampling, classifier-free guidance with the prompt
masked, both remasking rules, both EOS options, and the tie rules (argmax takes the lowest token
id; among equal confidences the lowest position is committed first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, checked_prompt_ids, transfer_schedule
from llada_torch.model import Model


def gumbel_argmax_input(logits: torch.Tensor, temperature: float,
                        generator: torch.Generator) -> torch.Tensor:
    """exp(logits) / (-log U)^T in float64, whose argmax samples softmax(logits / T)."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand(logits.shape, dtype=torch.float64, device=logits.device, generator=generator)
    return logits.exp() / (-torch.log(noise)) ** temperature


def top_k_stable(confidence: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest values; equal values are taken lowest index first."""
    order = torch.sort(confidence, descending=True, stable=True).indices
    return order[:k]


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
    seed: Optional[int] = None,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
) -> Iterator[StepFrame]:
    """Denoise gen_length masks after the prompt, yielding one StepFrame per step.

    Invalid settings raise ValueError before any work is done. Stop iterating to cancel.
    `threshold` belongs to the fast mode and is not used by the exact sampler.
    """
    settings = SamplerSettings(
        gen_length=gen_length, block_length=block_length, steps=steps, temperature=temperature,
        cfg_scale=cfg_scale, remasking=remasking, mode=mode, seed=seed,
        logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf,
    )
    prompt = checked_prompt_ids(prompt_ids, model.args.rows)
    return _exact(model, prompt, settings)


def _exact(model: Model, prompt: list[int], s: SamplerSettings) -> Iterator[StepFrame]:
    args = model.args
    device = model.device
    mask_id, eos_id, eot_id = args.mask_token_id, args.eos_token_id, args.eot_token_id
    generator = torch.Generator(device=device)
    if s.seed is None:
        generator.seed()
    else:
        generator.manual_seed(s.seed)

    P, G, B = len(prompt), s.gen_length, s.block_length
    x = torch.full((1, P + G), mask_id, dtype=torch.long, device=device)
    x[0, :P] = torch.tensor(prompt, dtype=torch.long, device=device)
    prompt_index = x != mask_id

    committed_at = np.full(G, -1, dtype=np.int32)
    confidence_out = np.zeros(G, dtype=np.float32)
    nfe, index = 0, 0
    per_block = s.steps_per_block

    for block in range(s.num_blocks):
        end = P + (block + 1) * B
        masked_in_block = int((x[0, P + block * B:end] == mask_id).sum())
        schedule = transfer_schedule(masked_in_block, per_block)
        for step in range(per_block):
            mask_index = x == mask_id
            if s.cfg_scale > 0:
                unconditional = x.clone()
                unconditional[prompt_index] = mask_id
                both = model(torch.cat([x, unconditional], dim=0))
                logits, un_logits = torch.chunk(both, 2, dim=0)
                logits = un_logits + (s.cfg_scale + 1) * (logits - un_logits)
                nfe += 2
            else:
                logits = model(x)
                nfe += 1

            if s.logits_eos_inf:
                logits[:, :, eos_id] = -torch.inf
            noisy = gumbel_argmax_input(logits, s.temperature, generator)
            x0 = torch.argmax(noisy, dim=-1)
            if s.confidence_eos_eot_inf:
                # As the reference does it: EOS is barred in the (possibly noisy) copy and EoT in
                # the logits; at temperature 0 they are one tensor, so both lose confidence.
                noisy[:, :, eos_id] = -torch.inf
                if eot_id is not None:
                    logits[:, :, eot_id] = -torch.inf

            probabilities = None
            if s.remasking == "low_confidence":
                probabilities = F.softmax(logits, dim=-1)
                x0_p = torch.gather(probabilities, -1, x0.unsqueeze(-1)).squeeze(-1)
            else:
                x0_p = torch.rand(x0.shape, device=device, generator=generator)
            x0_p[:, end:] = -np.inf

            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -np.inf)
            chosen = top_k_stable(confidence[0], schedule[step])
            x[0, chosen] = x0[0, chosen]

            answer_positions = (chosen - P).cpu().numpy()
            committed_at[answer_positions[answer_positions >= 0]] = index
            _record_confidence(confidence_out, answer_positions, chosen, x0, logits, probabilities)
            done = block == s.num_blocks - 1 and step == per_block - 1
            yield StepFrame(
                index=index, block=block,
                tokens=x[0, P:].to(torch.int32).cpu().numpy(),
                committed_at=committed_at.copy(), confidence=confidence_out.copy(),
                committed=len(chosen), nfe=nfe, done=done,
            )
            index += 1


def _record_confidence(out: np.ndarray, answer_positions: np.ndarray, chosen: torch.Tensor,
                       x0: torch.Tensor, logits: torch.Tensor,
                       probabilities: Optional[torch.Tensor]) -> None:
    """The model's probability of each committed token, for display."""
    keep = answer_positions >= 0
    if not keep.any():
        return
    rows = chosen[torch.from_numpy(keep).to(chosen.device)]
    if probabilities is None:
        probabilities_rows = F.softmax(logits[0, rows].float(), dim=-1)
    else:
        probabilities_rows = probabilities[0, rows].float()
    picked = torch.gather(probabilities_rows, -1, x0[0, rows].unsqueeze(-1)).squeeze(-1)
    out[answer_positions[keep]] = picked.cpu().numpy()
