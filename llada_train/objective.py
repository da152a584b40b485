"""LLaDA's training objective, as its authors give it (GUIDELINES.md of ML-GSAI/LLaDA).

Forward process: each sequence draws t ~ U(0, 1) and masks every token independently with
probability p = (1 - eps) t + eps (eps = 1e-3, so no sequence is left unmasked in expectation).
Pre-training loss: cross-entropy on the masked tokens, each divided by its p, summed and divided
by batch size x sequence length. SFT loss: the prompt is never masked; each masked token's
p-weighted cross-entropy is divided by its sequence's answer length (the EOS padding included),
summed and divided by the batch size.

One addition of ours, off by default: SFT may weight single tokens more (`token_weights`), e.g.
the end of turn that decides where an answer stops (`end_of_answer_weights`). With every weight
1 the loss is the reference's.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

EPS = 1e-3


def forward_process(input_ids: torch.Tensor, mask_id: int, eps: float = EPS,
                    generator: Optional[torch.Generator] = None):
    """(noisy ids, masked positions, mask probability per position)."""
    b, length = input_ids.shape
    t = torch.rand(b, device=input_ids.device, generator=generator)
    p_mask = ((1 - eps) * t + eps)[:, None].repeat(1, length)
    masked = torch.rand((b, length), device=input_ids.device, generator=generator) < p_mask
    noisy = torch.where(masked, torch.full_like(input_ids, mask_id), input_ids)
    return noisy, masked, p_mask


def pretrain_loss(model, input_ids: torch.Tensor, mask_id: int, eps: float = EPS,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    noisy, masked, p_mask = forward_process(input_ids, mask_id, eps, generator)
    logits = model(noisy)
    token_loss = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none") / p_mask[masked]
    return token_loss.sum() / (input_ids.shape[0] * input_ids.shape[1])


def end_of_answer_weights(input_ids: torch.Tensor, prompt_lengths: torch.Tensor, end_id: int,
                          weight: float) -> torch.Tensor:
    """Per-token loss weights: `weight` at each row's first `end_id` after its prompt, 1 elsewhere.

    That one token decides an answer's length, and its loss is otherwise one token's among the
    answer's and its EOS padding's: a small model trained with weight 1 learned to count but
    not where to stop (p(end of turn) 5 % at the right place)."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    candidates = (input_ids == end_id) & (positions >= prompt_lengths[:, None])
    first = torch.where(candidates, positions, input_ids.shape[1]).min(dim=-1).values
    weights = torch.ones(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    rows = torch.nonzero(first < input_ids.shape[1]).flatten()
    weights[rows, first[rows]] = weight
    return weights


def sft_loss(model, input_ids: torch.Tensor, prompt_lengths: torch.Tensor, mask_id: int,
             eps: float = EPS, generator: Optional[torch.Generator] = None,
             token_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    noisy, _, p_mask = forward_process(input_ids, mask_id, eps, generator)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    prompt = positions < prompt_lengths[:, None]
    noisy[prompt] = input_ids[prompt]
    answer_lengths = (~prompt).sum(dim=-1, keepdim=True).expand_as(input_ids)
    masked = noisy == mask_id
    logits = model(noisy)
    token_loss = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none") / p_mask[masked]
    if token_weights is not None:
        token_loss = token_loss * token_weights[masked]
    return (token_loss / answer_lengths[masked]).sum() / input_ids.shape[0]
