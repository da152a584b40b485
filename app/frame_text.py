"""Frames as text: each answer position decoded on its own, masked positions as a glyph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MASK_GLYPH = "░"


def token_pieces(tokenizer: Any, tokens: Sequence[int], mask_id: int,
                 glyph: str = MASK_GLYPH) -> list[str]:
    """One string per position: its decoded token, or the mask glyph while masked."""
    pieces = []
    for token in tokens:
        token = int(token)
        if token == mask_id:
            pieces.append(glyph)
        else:
            pieces.append(tokenizer.decode([token], skip_special_tokens=True))
    return pieces


def one_line(pieces: Sequence[str], width: int) -> str:
    """The pieces joined on one line (newlines shown as ⏎), cut to `width` columns."""
    line = "".join(pieces).replace("\r", "").replace("\n", "⏎")
    if width > 1 and len(line) > width:
        line = line[: width - 1] + "…"
    return line
