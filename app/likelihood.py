"""LLaDA's log-likelihood of an answer given a prompt: the Monte Carlo estimate of the paper
(Appendix B.5) as the reference evaluation computes it, over either backend.

A masked diffusion model has no exact likelihood; the training objective bounds it. Each sample
masks k of the answer's T tokens (the prompt stays clean), runs the model over the whole
sequence and scores the masked tokens, weighted by T / k:

    log p(answer | prompt) ≈ -E[ Σ_masked -log p(token) · T / k ]

The masked counts of one batch are stratified: a random start k in 1..T, then evenly spaced
through the ratios (wrapping past T), each row's positions drawn uniformly. With CFG the logits
are un + (c + 1)(cond − un), the unconditional pass having the prompt masked.

Framework-free apart from `token_log_probs`, which imports torch or MLX when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# (noisy ids (B, L), target ids (B, L)) -> log p(target) at every position, float32 (B, L)
LogProbs = Callable[[np.ndarray, np.ndarray], np.ndarray]


def token_log_probs(backend_name: str, model: Any, noisy: np.ndarray, targets: np.ndarray, *,
                    prompt_length: int = 0, cfg_scale: float = 0.0,
                    mask_id: int | None = None) -> np.ndarray:
    """log softmax(logits)[target] at each position of a batch, in float32, from one pass of the
    model over the full sequences (two under CFG). Torch or MLX is imported here, when used."""
    if mask_id is None:
        mask_id = model.args.mask_token_id
    if backend_name == "torch":
        return _torch_log_probs(model, noisy, targets, prompt_length, cfg_scale, mask_id)
    if backend_name == "mlx":
        return _mlx_log_probs(model, noisy, targets, prompt_length, cfg_scale, mask_id)
    raise ValueError(f"backend {backend_name!r} is unknown; choose torch or mlx")


def _torch_log_probs(model: Any, noisy: np.ndarray, targets: np.ndarray, prompt_length: int,
                     cfg_scale: float, mask_id: int) -> np.ndarray:
    import torch

    with torch.inference_mode():
        x = torch.as_tensor(np.ascontiguousarray(noisy), dtype=torch.long, device=model.device)
        if cfg_scale > 0:
            unconditional = x.clone()
            unconditional[:, :prompt_length] = mask_id
            x = torch.cat([x, unconditional])
        logits = model(x).float()
        if cfg_scale > 0:
            cond, uncond = logits.chunk(2)
            logits = uncond + (cfg_scale + 1) * (cond - uncond)
        wanted = torch.as_tensor(np.ascontiguousarray(targets), dtype=torch.long, device=logits.device)
        chosen = torch.log_softmax(logits, dim=-1).gather(-1, wanted[..., None])[..., 0]
        return chosen.cpu().numpy().astype(np.float32)


def _mlx_log_probs(model: Any, noisy: np.ndarray, targets: np.ndarray, prompt_length: int,
                   cfg_scale: float, mask_id: int) -> np.ndarray:
    import mlx.core as mx

    x = mx.array(np.asarray(noisy, dtype=np.int32))
    if cfg_scale > 0:
        unconditional = np.array(noisy, dtype=np.int32)
        unconditional[:, :prompt_length] = mask_id
        x = mx.concatenate([x, mx.array(unconditional)])
    logits = model(x).astype(mx.float32)
    if cfg_scale > 0:
        half = logits.shape[0] // 2
        cond, uncond = logits[:half], logits[half:]
        logits = uncond + (cfg_scale + 1) * (cond - uncond)
    log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    wanted = mx.array(np.asarray(targets, dtype=np.int32))[..., None]
    chosen = mx.take_along_axis(log_probs, wanted, axis=-1)[..., 0]
    return np.array(chosen, dtype=np.float32)


def mask_answers(length: int, prompt_length: int, batch: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Which positions one batch masks (bool (batch, length)) and how many answer tokens each
    row masks (stratified counts in 1..T, see the module docstring)."""
    answer = length - prompt_length
    start = int(rng.integers(1, answer + 1))
    counts = np.round(np.linspace(start, start + (batch - 1) * (answer / batch), batch)).astype(np.int64)
    counts = (counts - 1) % answer + 1
    masked = np.zeros((batch, length), dtype=bool)
    for row, count in enumerate(counts):
        masked[row, prompt_length + rng.permutation(answer)[:count]] = True
    return masked, counts


def batch_loss(log_probs: np.ndarray, masked: np.ndarray, counts: np.ndarray, answer_length: int) -> float:
    """The batch's mean of Σ_masked -log p · T / k (float64 sums)."""
    per_row = -(np.where(masked, log_probs.astype(np.float64), 0.0)).sum(axis=1)
    return float((per_row / (counts / answer_length)).sum() / len(counts))


def monte_carlo_log_likelihood(log_probs: LogProbs, prompt: Sequence[int], answer: Sequence[int], *,
                               mask_id: int, samples: int = 128, batch: int = 16,
                               rng: np.random.Generator | None = None) -> float:
    """The estimate of log p(answer | prompt) from `samples` masked copies, `batch` per pass."""
    if batch < 1 or samples < batch or samples % batch:
        raise ValueError(f"the number of samples ({samples}) must be a positive multiple of the "
                         f"batch ({batch})")
    if not answer:
        return 0.0
    rng = rng if rng is not None else np.random.default_rng()
    sequence = np.asarray(list(prompt) + list(answer), dtype=np.int64)
    targets = np.broadcast_to(sequence, (batch, len(sequence)))
    losses = []
    for _ in range(samples // batch):
        masked, counts = mask_answers(len(sequence), len(prompt), batch, rng)
        noisy = np.where(masked, mask_id, targets)
        losses.append(batch_loss(log_probs(noisy, targets), masked, counts, len(answer)))
    return -float(np.mean(losses))
