"""Frames as text: each answer position decoded on its own, masked positions as a glyph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MASK_GLYPH = "░"


class TokenPieces:
    """Each answer position as its own decoded token, or `glyph` while masked.

    Decoding is cached per token id: a frame arrives every step and mostly repeats the last.
    """

    def __init__(self, tokenizer: Any, mask_id: int, glyph: str = MASK_GLYPH):
        self.tokenizer, self.mask_id, self.glyph = tokenizer, mask_id, glyph
        self._cache: dict[int, str] = {}

    def piece(self, token: int) -> str:
        piece = self._cache.get(token)
        if piece is None:
            piece = self.tokenizer.decode([token], skip_special_tokens=True)
            self._cache[token] = piece
        return piece

    def __call__(self, tokens: Sequence[int]) -> list[str]:
        return [self.glyph if int(t) == self.mask_id else self.piece(int(t)) for t in tokens]


def one_line(pieces: Sequence[str], width: int) -> str:
    """The pieces joined on one line (newlines shown as ⏎), cut to `width` columns."""
    line = "".join(pieces).replace("\r", "").replace("\n", "⏎")
    if width > 1 and len(line) > width:
        line = line[: width - 1] + "…"
    return line
