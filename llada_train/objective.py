"""LLaDA's training objective, as its authors give it (GUIDELINES.md of ML-GSAI/LLaDA).

Forward process: each sequence draws t ~ U(0, 1) and masks every token independently with
probability p = (1 - eps) t + eps (eps = 1e-3, so no sequence is left unmasked in expectation).
Pre-training loss: cross-entropy on the masked tokens, each divided by its p, summed and divided
by batch size x sequence length. SFT loss: the prompt is never masked; each masked token's
p-weighted cross-entropy is divided by its sequence's answer length (the EOS padding included),
summed and divided by the batch size.

Two additions of ours for small models, both off by default (then the loss is the reference's):
SFT may weight single tokens more (`token_weights`), e.g. the end of turn that decides where an
answer stops (`end_of_answer_weights`), and may add masked suffixes to some rows
(`mask_random_suffixes`), so that where an answer ends is learned from its content.
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


def mask_random_suffixes(noisy: torch.Tensor, prompt_lengths: torch.Tensor, mask_id: int,
                         share: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """In a random `share` of the rows, mask everything from a uniformly drawn answer position on.

    With independent masks the end of an answer is mostly read off its right neighbour (the end
    of turn sits just before the first visible EOS), so a small model never learns to end from
    the answer's content, which generation needs: there the answer is unmasked roughly left to
    right, block by block, and what lies right of the end is still masked. A masked suffix from
    a point that does not depend on where the answer ends shows the model exactly that. The 1/p
    weights of the positions it adds are an approximation: a training choice, off by default."""
    rows, length = noisy.shape
    chosen = torch.rand(rows, device=noisy.device, generator=generator) < share
    draw = torch.rand(rows, device=noisy.device, generator=generator)
    start = prompt_lengths + (draw * (length - prompt_lengths)).long()
    positions = torch.arange(length, device=noisy.device).expand_as(noisy)
    suffix = chosen[:, None] & (positions >= start[:, None])
    return torch.where(suffix, torch.full_like(noisy, mask_id), noisy)


def sft_loss(model, input_ids: torch.Tensor, prompt_lengths: torch.Tensor, mask_id: int,
             eps: float = EPS, generator: Optional[torch.Generator] = None,
             token_weights: Optional[torch.Tensor] = None,
             suffix_share: float = 0.0) -> torch.Tensor:
    """suffix_share > 0 adds masked suffixes to that share of the rows (mask_random_suffixes);
    0 keeps the reference's forward process."""
    noisy, _, p_mask = forward_process(input_ids, mask_id, eps, generator)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    prompt = positions < prompt_lengths[:, None]
    noisy[prompt] = input_ids[prompt]
    if suffix_share > 0:
        noisy = mask_random_suffixes(noisy, prompt_lengths, mask_id, suffix_share, generator)
    answer_lengths = (~prompt).sum(dim=-1, keepdim=True).expand_as(input_ids)
    masked = noisy == mask_id
    logits = model(noisy)
    token_loss = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none") / p_mask[masked]
    if token_weights is not None:
        token_loss = token_loss * token_weights[masked]
    return (token_loss / answer_lengths[masked]).sum() / input_ids.shape[0]
