"""An answer's denoising trace, stored compactly and replayed frame by frame.

Committed tokens never change and never re-mask, so every intermediate frame follows from the
last one: position p is visible at step k exactly when committed_at[p] <= k, showing its final
token and the confidence it was committed with. Per step we keep only what the last frame
cannot tell: its block and its forward-pass count. The blob is zlib-compressed: a small JSON
header followed by packed int32/float32 arrays (stdlib `array`, little-endian).

LLaDA2.1's editing decoder rewrites tokens it wrote: `edits` keeps, for each rewrite, the
position, the step and the token (with its confidence and text unit) it replaced, so a frame
before an edit shows the token of its time, and `edited_at` is rebuilt for every frame.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.session.frame_text import Pieces, Unit, pieces_of_units
from llada_core.frames import StepFrame

MAGIC = b"LLTR"
VERSION = 1


@dataclass(frozen=True)
class Edit:
    """One rewrite of a written token: at `step`, `position` stopped showing `before`."""

    position: int
    step: int
    before: int
    before_confidence: float
    before_unit: Unit = None


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
    edits: list[Edit] = field(default_factory=list)  # in step order

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
        shown = self._shown_at(k)
        for position, (token, at, conf) in enumerate(
                zip(self.tokens, self.committed_at, self.confidence)):
            if 0 <= at <= k:
                edit = shown.get(position)
                tokens.append(token if edit is None else edit.before)
                committed_at.append(at)
                confidence.append(conf if edit is None else edit.before_confidence)
                committed += at == k
            else:
                tokens.append(self.mask_id)
                committed_at.append(-1)
                confidence.append(0.0)
        edited_at = None
        if self.edits:
            edited_at = np.full(len(self.tokens), -1, dtype=np.int32)
            for edit in self.edits:
                if edit.step <= k:
                    edited_at[edit.position] = edit.step
                    committed += edit.step == k
        return StepFrame(
            index=k, block=self.blocks[k],
            tokens=np.asarray(tokens, dtype=np.int32),
            committed_at=np.asarray(committed_at, dtype=np.int32),
            confidence=np.asarray(confidence, dtype=np.float32),
            committed=committed, nfe=self.nfe[k],
            done=self.done and k == self.num_steps - 1, edited_at=edited_at,
        )

    def _shown_at(self, k: int) -> dict[int, Edit]:
        """For each position rewritten after step k, its first later edit (whose `before` is
        what step k showed)."""
        shown: dict[int, Edit] = {}
        for edit in self.edits:
            if edit.step > k and edit.position not in shown:
                shown[edit.position] = edit
        return shown

    def history(self, position: int) -> list[tuple[int, int, float, Unit]]:
        """(step, token, confidence, unit) of each token `position` showed, first to last."""
        at = self.committed_at[position]
        if at < 0:
            return []
        edits = [e for e in self.edits if e.position == position]
        shown = [(at, e.before, e.before_confidence, e.before_unit) for e in edits[:1]]
        shown += [(a.step, b.before, b.before_confidence, b.before_unit)
                  for a, b in zip(edits, edits[1:])]
        last_step = edits[-1].step if edits else at
        unit = self.units[position] if self.units is not None else None
        return shown + [(last_step, self.tokens[position], self.confidence[position], unit)]

    def pieces_at(self, k: int) -> list[str]:
        """Each position's text after step k (masked positions ""): a character split across
        tokens shows once all of them are visible. A trace without units (stored before they
        existed) gives its stored pieces, for every step."""
        if not 0 <= k < self.num_steps:
            raise IndexError(f"step {k} is outside 0..{self.num_steps - 1}")
        if self.units is None:
            return list(self.pieces)
        visible = [unit if 0 <= at <= k else None for unit, at in zip(self.units, self.committed_at)]
        for position, edit in self._shown_at(k).items():
            if visible[position] is not None:
                visible[position] = edit.before_unit
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
        self.edits: list[tuple[int, int, int, float]] = []  # position, step, before, confidence

    def add(self, frame: StepFrame) -> None:
        self.blocks.append(int(frame.block))
        self.nfe.append(int(frame.nfe))
        if frame.edited_at is not None and self.last is not None:
            for position in np.flatnonzero(np.asarray(frame.edited_at) == frame.index):
                self.edits.append((int(position), int(frame.index),
                                   int(self.last.tokens[position]),
                                   float(self.last.confidence[position])))
        self.last = frame

    def trace(self, pieces: Sequence[str] = (), units: Sequence[Unit] | None = None,
              unit_of: Callable[[int], Unit] | None = None) -> Trace | None:
        """The trace so far. `pieces` is the last frame's text; `units` its tokens' units, taken
        from `pieces` when it carries them (app.session.frame_text.Pieces); `unit_of` gives the
        unit of a token an edit replaced (without it, a trace with edits keeps no units and
        replays its final text)."""
        if self.last is None:
            return None
        last = self.last
        if units is None:
            units = getattr(pieces, "units", None)
        if units is not None and len(units) != len(last.tokens):
            units = None
        if self.edits and unit_of is None:
            units = None
        edits = [Edit(p, k, before, conf, None if units is None else unit_of(before))
                 for p, k, before, conf in self.edits]
        return Trace(
            mask_id=self.mask_id, tokens=[int(t) for t in last.tokens],
            committed_at=[int(c) for c in last.committed_at],
            confidence=[float(c) for c in last.confidence],
            blocks=list(self.blocks), nfe=list(self.nfe), block_length=self.block_length,
            pieces=list(pieces), done=bool(last.done),
            units=None if units is None else list(units), fixed=list(self.fixed), edits=edits,
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
        **({"edits": [[e.position, e.step, e.before, e.before_confidence,
                       _unit_json(e.before_unit)] for e in trace.edits]} if trace.edits else {}),
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
    if any(not 0 <= e.position < len(trace.tokens) or not 0 <= e.step < len(trace.blocks)
           for e in trace.edits):
        raise ValueError("the stored trace is damaged (an edit is outside the answer)")
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
                 fixed=[int(p) for p in header.get("fixed", [])],
                 edits=[Edit(int(p), int(k), int(before), float(conf), _unit_of_json(unit))
                        for p, k, before, conf, unit in header.get("edits", [])])
