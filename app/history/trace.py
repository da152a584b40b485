"""An answer's denoising trace, stored compactly and replayed frame by frame.

Committed tokens never change and never re-mask, so every intermediate frame follows from the
last one: position p is visible at step k exactly when committed_at[p] <= k, showing its final
token and the confidence it was committed with. Per step we keep only what the last frame
cannot tell: its block and its forward-pass count. The blob is zlib-compressed: a small JSON
header followed by packed int32/float32 arrays (stdlib `array`, little-endian).

Text: `pieces` is each position's text in the last frame (what every version stored). A character
can span several byte-level tokens, so an intermediate frame's text is not a subset of the last
one's; traces therefore also keep each position's `units` (its token's bytes, see
app/session/frame_text.py), from which `pieces_at(k)` rebuilds any frame without a tokenizer. Traces
stored before units existed have none and replay their stored pieces, as they always did.
"""

from __future__ import annotations

import json
import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.session.frame_text import Pieces, Unit, pieces_of_units
from llada_core.frames import StepFrame

MAGIC = b"LLTR"
VERSION = 1


@dataclass
class Trace:
    """Everything needed to rebuild every frame of one answer."""

    mask_id: int
    tokens: list[int]            # final tokens (mask id where the answer was stopped early)
    committed_at: list[int]      # step that unmasked each position, -1 if never
    confidence: list[float]      # confidence when committed, 0 if never
    blocks: list[int]            # per step: its block
    nfe: list[int]               # per step: forward passes so far
    block_length: int
    pieces: list[str] = field(default_factory=list)  # per position: text in the last frame
    done: bool = True
    units: list[Unit] | None = None  # per position: its final token's bytes; None if not stored
    # Positions the user fixed (constraints, the words around infill holes): in place before the
    # first step, so never drawn as masked nor as new (the sampler reports them at step 0).
    fixed: list[int] = field(default_factory=list)

    @property
    def gen_length(self) -> int:
        return len(self.tokens)

    @property
    def num_steps(self) -> int:
        return len(self.blocks)

    def frame(self, k: int) -> StepFrame:
        """The frame after step k (0-based), as the sampler reported it."""
        if not 0 <= k < self.num_steps:
            raise IndexError(f"step {k} is outside 0..{self.num_steps - 1}")
        tokens, committed_at, confidence = [], [], []
        committed = 0
        for token, at, conf in zip(self.tokens, self.committed_at, self.confidence):
            if 0 <= at <= k:
                tokens.append(token)
                committed_at.append(at)
                confidence.append(conf)
                committed += at == k
            else:
                tokens.append(self.mask_id)
                committed_at.append(-1)
                confidence.append(0.0)
        return StepFrame(
            index=k, block=self.blocks[k],
            tokens=np.asarray(tokens, dtype=np.int32),
            committed_at=np.asarray(committed_at, dtype=np.int32),
            confidence=np.asarray(confidence, dtype=np.float32),
            committed=committed, nfe=self.nfe[k],
            done=self.done and k == self.num_steps - 1,
        )

    def pieces_at(self, k: int) -> list[str]:
        """Each position's text after step k (masked positions ""): a character split across
        tokens shows once all of them are visible. A trace without units (stored before they
        existed) gives its stored pieces, for every step."""
        if not 0 <= k < self.num_steps:
            raise IndexError(f"step {k} is outside 0..{self.num_steps - 1}")
        if self.units is None:
            return list(self.pieces)
        visible = [unit if 0 <= at <= k else None for unit, at in zip(self.units, self.committed_at)]
        return Pieces(pieces_of_units(visible), visible)

    def frames(self):
        for k in range(self.num_steps):
            yield self.frame(k)


class TraceRecorder:
    """Collects what a trace needs while frames stream past."""

    def __init__(self, mask_id: int, block_length: int, fixed: Sequence[int] = ()):
        self.mask_id = mask_id
        self.fixed = sorted(int(p) for p in fixed)
        self.block_length = block_length
        self.blocks: list[int] = []
        self.nfe: list[int] = []
        self.last: StepFrame | None = None

    def add(self, frame: StepFrame) -> None:
        self.blocks.append(int(frame.block))
        self.nfe.append(int(frame.nfe))
        self.last = frame

    def trace(self, pieces: Sequence[str] = (), units: Sequence[Unit] | None = None) -> Trace | None:
        """The trace so far. `pieces` is the last frame's text; `units` its tokens' units, taken
        from `pieces` when it carries them (app.session.frame_text.Pieces)."""
        if self.last is None:
            return None
        last = self.last
        if units is None:
            units = getattr(pieces, "units", None)
        if units is not None and len(units) != len(last.tokens):
            units = None
        return Trace(
            mask_id=self.mask_id, tokens=[int(t) for t in last.tokens],
            committed_at=[int(c) for c in last.committed_at],
            confidence=[float(c) for c in last.confidence],
            blocks=list(self.blocks), nfe=list(self.nfe), block_length=self.block_length,
            pieces=list(pieces), done=bool(last.done),
            units=None if units is None else list(units), fixed=list(self.fixed),
        )


def _packed(typecode: str, values: Sequence) -> bytes:
    packed = array(typecode, values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def _unpacked(typecode: str, data: bytes) -> list:
    values = array(typecode)
    values.frombytes(data)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def fixed_positions(constraints: dict) -> list[int]:
    """The answer positions a constraints map ({start: token ids}) fixes."""
    return sorted({start + k for start, ids in (constraints or {}).items()
                   for k in range(len(ids))})


def encode(trace: Trace) -> bytes:
    """The trace as a compressed blob for the database."""
    header = json.dumps({
        "version": VERSION, "mask_id": trace.mask_id, "block_length": trace.block_length,
        "gen_length": trace.gen_length, "steps": trace.num_steps, "done": trace.done,
        "pieces": trace.pieces,
        **({} if trace.units is None else {"units": [_unit_json(u) for u in trace.units]}),
        **({"fixed": trace.fixed} if trace.fixed else {}),
    }).encode("utf-8")
    body = b"".join([
        _packed("i", trace.tokens), _packed("i", trace.committed_at),
        _packed("f", trace.confidence), _packed("i", trace.blocks), _packed("i", trace.nfe),
    ])
    raw = len(header).to_bytes(4, "little") + header + body
    return MAGIC + zlib.compress(raw, 9)


def _unit_json(unit: Unit):
    """bytes as a latin-1 string (one character per byte), text as [text], masked as null."""
    if unit is None:
        return None
    if isinstance(unit, bytes):
        return unit.decode("latin-1")
    return [unit]


def _unit_of_json(value) -> Unit:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("latin-1")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    raise ValueError(f"a text unit is {value!r}")


def decode(blob: bytes) -> Trace:
    """The trace in a blob from encode(); ValueError for anything else (damaged, foreign)."""
    if not blob or not blob.startswith(MAGIC):
        raise ValueError("this is not a stored LLaDA Desktop trace")
    try:
        trace = _decode(blob)
    except (zlib.error, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the stored trace is damaged ({error})") from error
    lengths = {len(trace.tokens), len(trace.committed_at), len(trace.confidence)}
    if len(lengths) != 1 or len(trace.blocks) != len(trace.nfe):
        raise ValueError("the stored trace is damaged (its arrays are truncated)")
    if trace.units is not None and len(trace.units) != len(trace.tokens):
        raise ValueError("the stored trace is damaged (its text units do not match its tokens)")
    return trace


def _decode(blob: bytes) -> Trace:
    raw = zlib.decompress(blob[len(MAGIC):])
    size = int.from_bytes(raw[:4], "little")
    header = json.loads(raw[4:4 + size].decode("utf-8"))
    if header.get("version") != VERSION:
        raise ValueError(f"trace version {header.get('version')} is not supported")
    g, s = header["gen_length"], header["steps"]
    offset = 4 + size

    def take(typecode: str, count: int) -> list:
        nonlocal offset
        chunk = raw[offset:offset + 4 * count]
        offset += 4 * count
        return _unpacked(typecode, chunk)

    tokens, committed_at = take("i", g), take("i", g)
    confidence = take("f", g)
    blocks, nfe = take("i", s), take("i", s)
    return Trace(mask_id=header["mask_id"], tokens=tokens, committed_at=committed_at,
                 confidence=confidence, blocks=blocks, nfe=nfe,
                 block_length=header["block_length"], pieces=header.get("pieces", []),
                 done=header.get("done", True),
                 units=None if header.get("units") is None
                 else [_unit_of_json(u) for u in header["units"]],
                 fixed=[int(p) for p in header.get("fixed", [])])
