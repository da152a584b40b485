"""Handing memory back after a model is dropped or an answer ran out of it."""

from __future__ import annotations

import gc

import torch


def release_memory() -> None:
    """Collect what Python still holds, then empty the CUDA / MPS caching allocator.

    A model can be held by a cycle: torch's first meta-device construction imports modules whose
    frames reference it, so dropping the last reference alone does not always free it.
    """
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()
