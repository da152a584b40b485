"""Decoding a growing list of token ids in time proportional to what is new.

Decoding the whole answer again on every frame of a stream costs O(length) per frame, O(length²)
in all. `IncrementalDecoder` decodes only a window: the tokens since the last point where the
text was complete (no partial UTF-8 character at its end), with the tokens just before that point
as context, and appends what the window adds (the technique of vLLM's and tokenizers'
DecodeStream: a byte-level BPE decodes the same at such a point whole or in parts, and a
decoder that treats a first token specially, such as a leading space, treats both windows alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REPLACEMENT = "\ufffd"  # what a partial UTF-8 character decodes to


class IncrementalDecoder:
    """The text of ids fed in order, with a partial character at its end left out.

    Bytes that never complete a character (a model can emit any byte) keep the stable point
    where it is, so the window grows until a complete character follows them."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.stable = ""        # the text of ids[:read]: complete, never changes
        self._prefix = 0        # window start: the previous stable point
        self._read = 0          # the latest stable point
        self._prefix_text = ""  # the text of ids[prefix:read]
        self._pending = ""      # text past `read`, without its partial character

    @property
    def text(self) -> str:
        return self.stable + self._pending

    def extend(self, ids: Iterable[int]) -> str:
        """Feed more ids; returns the text they add (empty while a character is partial)."""
        before = len(self._pending)
        self.ids.extend(ids)
        if len(self.ids) == self._read:
            return ""
        window = self._decode(self.ids[self._prefix:])
        if not window.startswith(self._prefix_text):  # a decoder that is not prefix-stable:
            window = self._decode(self.ids)            # decode it all (correct, not fast)
            prefix_text = self.stable
        else:
            prefix_text = self._prefix_text
        added = window[len(prefix_text):]
        if added.endswith(REPLACEMENT):  # a partial character: hold the stable point
            self._pending = added.rstrip(REPLACEMENT)
        else:
            self.stable += added
            self._prefix, self._read, self._prefix_text = self._read, len(self.ids), added
            self._pending = ""
            return added[before:]
        return self._pending[before:]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
