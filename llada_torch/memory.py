"""Handing memory back after a model is dropped or an answer ran out of it."""

from __future__ import annotations

import gc

import torch


def release_memory(*, collect_garbage: bool = True) -> None:
    """Collect what Python still holds, then empty the CUDA / MPS caching allocator.

    collect_garbage=False skips the cycle collector, for callers on a thread that must not run it
    (a Qt worker: the garbage may hold Qt objects); they collect on their main thread instead.
    A model can be held by a cycle: torch's first meta-device construction imports modules whose
    frames reference it, so dropping the last reference alone does not always free it.
    """
    if collect_garbage:
        gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()
