"""The step frame: what a sampler reports after each denoising step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class StepFrame:
    """One denoising step of the answer region (length gen_length).

    tokens holds the mask id where a position is still masked; committed_at the global step that
    unmasked a position (-1 while masked); confidence the model's probability of the token when
    it was committed (0 while masked). edited_at (block-diffusion editing decoders only, else
    None) is the step that last replaced a position's token after it was first written (-1: never
    edited), so a canvas can show the model correcting itself. settled (editing decoders only,
    else None: every committed position is final) is how many leading answer positions can no
    longer change: the blocks before the current one.
    """

    index: int
    block: int
    tokens: np.ndarray
    committed_at: np.ndarray
    confidence: np.ndarray
    committed: int
    nfe: int
    done: bool
    edited_at: Optional[np.ndarray] = None
    settled: Optional[int] = None
