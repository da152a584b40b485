"""Frames as text people can read: each answer position's piece of the text, masks as a glyph.

LLaDA's tokenizer is byte-level BPE: one character (é, 中, 👍) may span several tokens, and each of
those tokens decoded alone is "�". So pieces are not decoded token by token. Every token is a
*unit* of bytes (from the tokenizer's byte-level vocabulary, GPT-2's byte↔unicode map), and each
run of consecutive unmasked positions is decoded as one UTF-8 byte string:

- a character is shown whole, on the position of its first byte, once every token holding one
  of its bytes is committed; the other positions of it show nothing (""). The first position
  keeps reading order (the character sits where it starts, after the text before it, together
  with a leading space carried by the same token), so a canvas laid out as text reads as text;
- while a neighbouring token is still masked, every committed position holding a byte of the
  unfinished character shows PENDING_GLYPH, never "�". Tokens commit in any order, so this
  covers a character's later bytes arriving before its first;
- marks that attach to the character before them (combining accents, variation selectors, skin
  tones, zero-width joiners and what they join, the second of a flag's two letters) join that
  character's position, so a canvas cell shows the whole cluster;
- bytes that can never form a character (whatever the masks become) show "�", exactly as the
  tokenizer decodes them, so the pieces of a finished answer join to its decoded text.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

MASK_GLYPH = "░"
# Committed, but its character still waits for a masked token: the mask glyph family, one shade
# darker, so it reads as "partly there" and is never mistaken for text or for "�".
PENDING_GLYPH = "▒"
REPLACEMENT = "\ufffd"

# One position's share of the text: bytes for a byte-level token (b"" for a token without text:
# special tokens and ids past the vocabulary, which decoding skips), str for a token decoded on
# its own (a tokenizer or token outside the byte-level vocabulary), None while masked.
Unit = Union[bytes, str, None]


@functools.lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character each byte is spelled with in a
    byte-level BPE vocabulary ("Ġ" for a space, "Ã©" for é), mapped back to the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class Pieces(list):
    """Per-position text (a list of str) that also carries the units it was made from, so an
    answer's trace stored from its final pieces can rebuild the pieces of every earlier frame."""

    def __init__(self, pieces: Iterable[str], units: Sequence[Unit]):
        super().__init__(pieces)
        self.units = list(units)

    @property
    def joined(self) -> list[bool]:
        """Per position: committed, with all its bytes shown on an earlier position (the 2nd and
        3rd token of 中). A canvas can draw these with no width, unlike a committed token that
        has no text of its own (EOS padding), which is "" too."""
        return [piece == "" and isinstance(unit, bytes) and len(unit) > 0
                for piece, unit in zip(self, self.units)]


class TokenPieces:
    """Each answer position's piece of the text (see the module docstring), `glyph` while masked.

    Each token's unit is worked out once per token id: a frame arrives every step for up to 512
    positions and mostly repeats the last.
    """

    def __init__(self, tokenizer: Any, mask_id: int, glyph: str = MASK_GLYPH,
                 pending: str = PENDING_GLYPH):
        self.tokenizer, self.mask_id, self.glyph, self.pending = tokenizer, mask_id, glyph, pending
        self._units: dict[int, Union[bytes, str]] = {}
        try:
            self._size: Optional[int] = len(tokenizer)
        except TypeError:
            self._size = None

    def unit(self, token: int) -> Union[bytes, str]:
        """The token's bytes when it is in the byte-level vocabulary, else its text alone."""
        unit = self._units.get(token)
        if unit is None:
            unit = self._units[token] = self._unit_of(token)
        return unit

    def _unit_of(self, token: int) -> Union[bytes, str]:
        if token < 0 or (self._size is not None and token >= self._size):
            return b""
        alone = self.tokenizer.decode([token], skip_special_tokens=True)
        if not alone:
            return b""
        name = self.tokenizer.convert_ids_to_tokens(token)
        if isinstance(name, str) and name:
            alphabet = byte_decoder()
            if all(c in alphabet for c in name):
                raw = bytes(alphabet[c] for c in name)
                # Trusted only when it says what the tokenizer says: a tokenizer whose decoder
                # is not plain ByteLevel (or cleans up spaces) keeps its own per-token text.
                if raw.decode("utf-8", "replace") == alone:
                    return raw
        return alone

    def units(self, tokens: Sequence[int]) -> list[Unit]:
        """Each position's unit; None where masked."""
        if hasattr(tokens, "tolist"):
            tokens = tokens.tolist()
        mask, cache, unit = self.mask_id, self._units, self.unit
        out: list[Unit] = []
        for token in tokens:
            token = int(token)
            if token == mask:
                out.append(None)
            else:
                known = cache.get(token)
                out.append(known if known is not None else unit(token))
        return out

    def __call__(self, tokens: Sequence[int]) -> Pieces:
        units = self.units(tokens)
        return Pieces(pieces_of_units(units, self.glyph, self.pending), units)


def pieces_of_units(units: Sequence[Unit], glyph: str = "", pending: str = PENDING_GLYPH) -> list[str]:
    """Per-position text for one frame's units (None = masked, shown as `glyph`)."""
    n = len(units)
    out = [glyph if u is None else "" for u in units]
    i = 0
    while i < n:
        unit = units[i]
        if not isinstance(unit, bytes):
            if unit is not None:
                out[i] = unit
            i += 1
            continue
        start = i
        while i < n and isinstance(units[i], bytes):
            i += 1
        run = units[start:i]
        data = b"".join(run)
        if data.isascii():
            for offset, piece in enumerate(run):
                out[start + offset] = piece.decode("ascii")
            continue
        owners = [start + offset for offset, piece in enumerate(run) for _ in range(len(piece))]
        open_left = start > 0 and units[start - 1] is None
        open_right = i < n and units[i] is None
        _place(_scan(data, owners, open_left, open_right), out, pending)
    return out


# What _scan finds in a run's bytes: a character (or "�") on its first byte's position, or a
# character still waiting for a masked token, on every position holding one of its bytes.
_CHAR, _PENDING = 0, 1


def _scan(data: bytes, owners: list[int], open_left: bool, open_right: bool) -> list[tuple]:
    """UTF-8 decoding of one run with each character's positions. Invalid bytes become one "�"
    per maximal subpart, as Python's and the tokenizers' lossy decoders do."""
    items: list[tuple] = []
    size = len(data)
    j = 0
    if open_left:
        # Up to 3 continuation bytes may complete a character begun in the masked token before.
        while j < size and j < 3 and 0x80 <= data[j] <= 0xBF:
            j += 1
        if j:
            items.append((_PENDING, owners[:j]))
    while j < size:
        lead = data[j]
        if lead < 0x80:
            items.append((_CHAR, owners[j], chr(lead)))
            j += 1
            continue
        need = _length(lead)
        if need == 0:
            items.append((_CHAR, owners[j], REPLACEMENT))
            j += 1
            continue
        have = 1
        while have < need and j + have < size and _continues(lead, have, data[j + have]):
            have += 1
        if have == need:
            items.append((_CHAR, owners[j], data[j:j + need].decode("utf-8")))
        elif j + have == size and open_right:
            items.append((_PENDING, owners[j:size]))
        else:
            items.append((_CHAR, owners[j], REPLACEMENT))
        j += have
    return items


def _length(lead: int) -> int:
    """Bytes in the UTF-8 sequence a lead byte starts; 0 for a byte that never starts one."""
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _continues(lead: int, index: int, byte: int) -> bool:
    """Whether `byte` is a valid `index`-th byte (1-based after the lead) of `lead`'s sequence."""
    low, high = 0x80, 0xBF
    if index == 1:
        if lead == 0xE0:
            low = 0xA0
        elif lead == 0xED:
            high = 0x9F
        elif lead == 0xF0:
            low = 0x90
        elif lead == 0xF4:
            high = 0x8F
    return low <= byte <= high


ZWJ = "\u200d"


def _place(items: list[tuple], out: list[str], pending: str) -> None:
    previous: Optional[str] = None      # the last character placed, while a cluster can grow
    cluster_at = -1                    # the position that cluster sits on
    lone_flag = False                  # the last character is a flag's first regional indicator
    for item in items:
        if item[0] == _PENDING:
            for position in dict.fromkeys(item[1]):
                if not out[position].endswith(pending):
                    out[position] += pending
            previous, lone_flag = None, False
            continue
        _, position, char = item
        if char == REPLACEMENT:
            out[position] += char
            previous, lone_flag = None, False
            continue
        regional = "\U0001F1E6" <= char <= "\U0001F1FF"
        if previous is not None and (_attaches(char) or previous == ZWJ or (regional and lone_flag)):
            position = cluster_at
            lone_flag = False
        else:
            lone_flag = regional
        out[position] += char
        cluster_at = position
        previous = None if unicodedata.category(char) == "Cc" else char


def _attaches(char: str) -> bool:
    """A character that belongs with the one before it (part of its grapheme cluster)."""
    if char == ZWJ or "\U0001F3FB" <= char <= "\U0001F3FF" or "\U000E0020" <= char <= "\U000E007F":
        return True
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def char_width(char: str) -> int:
    """Terminal columns of one character: 2 for East Asian wide/full-width, 0 for combining marks,
    format and control characters, else 1."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code < 0xA0:
        return 0
    if 0x1160 <= code <= 0x11FF:  # Hangul medial vowels and final consonants join the syllable
        return 0
    category = unicodedata.category(char)
    if category in ("Mn", "Me") or (category == "Cf" and char != "\u00ad"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _widths(text: str) -> Iterable[tuple[str, int]]:
    previous = 0
    for char in text:
        width = char_width(char)
        if char == "\ufe0f":
            # VS16 turns a narrow symbol into an emoji (❤️), which terminals draw 2 columns wide.
            width, previous = (1 if previous == 1 else 0), 0
        else:
            previous = width
        yield char, width


def display_width(text: str) -> int:
    """Terminal columns `text` takes. Sequences a terminal may draw as one emoji (👍🏽, ZWJ
    families) count each part, so the estimate errs wide, never narrow."""
    return sum(width for _, width in _widths(text))


def one_line(pieces: Sequence[str], width: int) -> str:
    """The pieces joined on one line (newlines shown as ⏎, other control characters dropped),
    cut to at most `width` terminal columns with "…"."""
    text = "".join(pieces).replace("\r", "").replace("\n", "⏎").replace("\t", " ")
    if not text.isprintable():
        text = "".join(c for c in text if unicodedata.category(c) != "Cc")
    if display_width(text) <= width:
        return text
    if width < 1:
        return ""
    kept: list[str] = []
    used = 0
    for char, w in _widths(text):
        if used + w > width - 1:
            break
        kept.append(char)
        used += w
    return "".join(kept) + "…"
