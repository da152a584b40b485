"""Word constraints ("0: Once, 12: dragon") and infilling texts ("The capital is [____].").

Both become fixed tokens on the answer canvas (llada_core.driver's `fixed`): the sampler writes
them before the first step and never changes them; only the masks around them are denoised.

Constraints follow the reference app.py of ML-GSAI/LLaDA: "position:word" pairs split on commas,
each word encoded with a leading space (`tokenizer.encode(" " + word)`, no special tokens), its
tokens taking the position and the ones after it. Unlike the reference, which skips a malformed
pair and drops tokens past the answer silently, a malformed pair, a position past the answer
and overlapping constraints are errors (llada_core.settings.checked_constraints).

Infilling syntax: a hole is `[` + underscores + `]`, as many tokens long as it has underscores
(`[____]` = 4 tokens), or `[___:N]` for exactly N tokens (`[_:12]`). The text between holes is
kept as written; whitespace just before a hole moves into the hole, since a byte-level BPE
token carries its word's leading space (" Paris").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from llada_core.chat import encode_text

HOLE = re.compile(r"\[(_+)(?::\s*(\d+))?\s*\]")
MAX_HOLE = 4096
MAX_HOLES = 256


def parse_constraints(text: str) -> list[tuple[int, str]]:
    """'0: Once, 12: dragon' -> [(0, 'Once'), (12, 'dragon')]; a malformed pair is one sentence."""
    pairs: list[tuple[int, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        position, colon, word = part.partition(":")
        word = word.strip()
        if not colon or not word:
            raise ValueError(f"constraint {part.strip()!r} is not POSITION: WORD (e.g. '0: Once')")
        try:
            start = int(position.strip())
        except ValueError:
            raise ValueError(f"constraint {part.strip()!r} does not start with a position "
                             "(a whole number 0 or more)") from None
        if start < 0:
            raise ValueError(f"constraint position {start} must be 0 or more")
        pairs.append((start, word))
    return pairs


def encode_word(tokenizer: Any, word: str) -> list[int]:
    """The word's tokens as the reference encodes a constraint: with a leading space."""
    return [int(t) for t in encode_text(tokenizer, " " + word.strip())]


def encode_constraints(tokenizer: Any, pairs: Sequence[tuple[int, str]]) -> dict[int, list[int]]:
    """(position, word) pairs -> position -> token ids; a position given twice is an error."""
    encoded: dict[int, list[int]] = {}
    for start, word in pairs:
        if start in encoded:
            raise ValueError(f"position {start} has two constraints")
        encoded[start] = encode_word(tokenizer, word)
    return encoded


def constraints_from_text(tokenizer: Any, text: str) -> dict[int, list[int]]:
    return encode_constraints(tokenizer, parse_constraints(text))


def format_constraints(pairs: Sequence[tuple[int, str]]) -> str:
    return ", ".join(f"{start}: {word}" for start, word in pairs)


Segment = Union[str, int]  # text kept as written, or a hole's length in tokens


def parse_infill(text: str) -> list[Segment]:
    """The text split into kept text and holes; a text without a hole is an error."""
    segments: list[Segment] = []
    at = 0
    for match in HOLE.finditer(text):
        if match.start() > at:
            segments.append(text[at:match.start()])
        length = int(match.group(2)) if match.group(2) is not None else len(match.group(1))
        if not 1 <= length <= MAX_HOLE:
            raise ValueError(f"the hole {match.group(0)!r} must be 1 to {MAX_HOLE} tokens long")
        segments.append(length)
        at = match.end()
    if at < len(text):
        segments.append(text[at:])
    holes = sum(isinstance(segment, int) for segment in segments)
    if holes > MAX_HOLES:
        raise ValueError(f"the text has {holes} holes; at most {MAX_HOLES} can be filled at once")
    if not holes:
        raise ValueError("the text has no hole to fill; write one as [____] (one token per "
                         "underscore) or [_:8] (8 tokens)")
    return segments


@dataclass(frozen=True)
class InfillCanvas:
    """The canvas of an infilling: its length, the text's tokens and where the holes are."""

    length: int
    fixed: dict[int, int]               # canvas position -> token id of the text kept
    holes: list[tuple[int, int]]        # (start, length) of each hole on the canvas

    @property
    def hole_tokens(self) -> int:
        return sum(length for _, length in self.holes)

    def constraints(self) -> dict[int, list[int]]:
        """The kept text as one-token constraints (what the samplers' `constraints` take)."""
        return {position: [token] for position, token in self.fixed.items()}

    def filled(self, tokens: Sequence[int]) -> list[list[int]]:
        """Each hole's tokens in a finished canvas."""
        return [[int(t) for t in tokens[start:start + length]] for start, length in self.holes]


def infill_canvas(tokenizer: Any, text: str) -> InfillCanvas:
    segments = parse_infill(text)
    for i, segment in enumerate(segments):
        if isinstance(segment, str) and i + 1 < len(segments) and isinstance(segments[i + 1], int):
            segments[i] = segment.rstrip(" ")
    fixed: dict[int, int] = {}
    holes: list[tuple[int, int]] = []
    position = 0
    for segment in segments:
        if isinstance(segment, int):
            holes.append((position, segment))
            position += segment
            continue
        for token in encode_text(tokenizer, segment) if segment else []:
            fixed[position] = int(token)
            position += 1
    return InfillCanvas(position, fixed, holes)


def fixed_positions(constraints: Mapping[int, Sequence[int]]) -> set[int]:
    """Every answer position the constraints take."""
    return {start + i for start, tokens in constraints.items() for i in range(len(tokens))}


def infill_lengths(canvas: InfillCanvas, steps: int | None) -> dict[str, int]:
    """Answer length, block length and steps of an infilling.

    One block spans the whole canvas: blocks exist to grow a continuation left to right, but here
    both sides of every hole are known from the first step, so every hole competes by confidence
    wherever it is. Steps default to one per hole token (the reference's best quality) and can
    be fewer (more tokens per step), never more.
    """
    holes = canvas.hole_tokens
    if steps is None:
        steps = holes
    elif isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= holes:
        raise ValueError(f"steps must be 1 to {holes} (the tokens in the holes), not {steps!r}")
    return {"gen_length": canvas.length, "block_length": canvas.length, "steps": steps}


def infill_text(tokenizer: Any, tokens: Sequence[int]) -> str:
    """The whole canvas as text (EOS in a hole just leaves the hole shorter)."""
    return tokenizer.decode([int(t) for t in tokens], skip_special_tokens=True)
