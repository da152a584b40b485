"""LLaDA's log-likelihood of an answer given a prompt: the Monte Carlo estimate of the paper
(Appendix B.5) as the reference evaluation computes it, over either backend.

A masked diffusion model has no exact likelihood; the training objective bounds it. Each sample
masks k of the answer's T tokens (the prompt stays clean), runs the model over the whole
sequence and scores the masked tokens, weighted by T / k:

    log p(answer | prompt) ≈ -E[ Σ_masked -log p(token) · T / k ]

The masked counts of one batch are stratified: a random start k in 1..T, then evenly spaced
through the ratios (wrapping past T), each row's positions drawn uniformly. With CFG the logits
are un + (c + 1)(cond − un), the unconditional pass having the prompt masked.

Framework-free: `token_log_probs` asks the backend (app.session.backends.Backend) for the model's
log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# (noisy ids (B, L), target ids (B, L)) -> log p(target) at every position, float32 (B, L)
LogProbs = Callable[[np.ndarray, np.ndarray], np.ndarray]


def token_log_probs(backend: Any, model: Any, noisy: np.ndarray, targets: np.ndarray, *,
                    prompt_length: int = 0, cfg_scale: float = 0.0,
                    mask_id: int | None = None) -> np.ndarray:
    """log softmax(logits)[target] at each position of a batch, in float32, from one pass of the
    model over the full sequences (two under CFG). `backend` is a backend module (see
    app.session.backends.Backend) or its name; its framework is imported here, when used."""
    if isinstance(backend, str):
        from app.session.backends import get_backend

        backend = get_backend(backend)
    if mask_id is None:
        mask_id = model.args.mask_token_id
    return backend.token_log_probs(model, noisy, targets, prompt_length=prompt_length,
                                   cfg_scale=cfg_scale, mask_id=mask_id)


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
