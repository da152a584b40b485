"""Decoding a growing list of token ids in time proportional to what is new.

Decoding the whole answer again on every frame of a stream costs O(length) per frame, O(length²)
in all. `IncrementalDecoder` decodes only a window: the tokens since the last point where the
text was complete (no partial UTF-8 character at its end), with the tokens just before that point
as context, and appends what the window adds (the technique of vLLM's and tokenizers'
DecodeStream: a byte-level BPE decodes the same at such a point whole or in parts, and a
decoder that treats a first token specially, such as a leading space, treats both windows alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

from llada_core.chat import known_ids

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


class AnswerText:
    """The answer's text as it becomes final, step by step.

    Positions before the first mask are committed and never change, so their text is final, up
    to a stop token (EOS, end of turn), max_tokens, or a stop sequence. Text is held back while
    its last character is incomplete (a byte-level token holding part of one) or its end could
    still grow into a stop sequence, so every delta is final and the deltas join to the answer.

    Each frame costs what its newly committed tokens cost: only they are read and decoded
    (app.session.stream_decode), and stop sequences are looked for only in the new text; the frame that
    completes the answer decodes it whole once, so the final text is the tokenizer's own.
    """

    def __init__(self, tokenizer: Any, mask_id: int, max_tokens: int, stop: Sequence[str]):
        from llada_core.chat import answer_stop_ids

        self.tokenizer, self.mask_id, self.max_tokens, self.stop = tokenizer, mask_id, max_tokens, list(stop)
        self.text = ""
        self.complete = False
        self.finish_reason: Optional[str] = None
        self.tokens = 0
        self._stop_ids = answer_stop_ids(tokenizer)
        self._vocabulary = len(tokenizer)
        self._visible: list[int] = []   # committed answer tokens before any stop token
        self._decoder = IncrementalDecoder(tokenizer)
        self._searched = 0              # characters of the text already searched for a stop
        self._longest_stop = max((len(s) for s in self.stop), default=0)

    def update(self, tokens: Sequence[int], final: bool, settled: Optional[int] = None) -> str:
        """The new final text given the answer region's tokens; `final` when the answer is done.
        `settled`: only that many leading positions are final yet (LLaDA2.1 may still rewrite
        the others: StepFrame.settled); None: every committed position is."""
        if self.complete:
            return ""
        if settled is not None and not final:
            tokens = tokens[:settled]
        visible, stops, limit = self._visible, self._stop_ids, self.max_tokens
        ended = cut = False
        known = []
        for token in tokens[len(visible):]:  # the committed prefix was read before
            token = int(token)
            if token == self.mask_id and not final:
                break
            if token in stops:
                ended = True
                break
            if len(visible) >= limit:
                cut = True
                break
            visible.append(token)
            if 0 <= token < self._vocabulary:
                known.append(token)
        cut = cut or (len(visible) == limit and not ended)
        complete = final or ended or cut
        reason = "length" if cut or (final and not ended) else "stop"
        if complete:
            text = self._decode(visible)
            hit = self._first_stop(text, 0)
        else:
            self._decoder.extend(known)
            text = self._decoder.text
            hit = self._first_stop(text, max(0, self._searched - self._longest_stop + 1))
            self._searched = len(text)
        if hit is not None:
            text, complete, reason = text[:hit], True, "stop"
        if not complete:
            text = text[:len(text) - self._stop_overlap(text)]
        elif not text.startswith(self.text):  # cannot happen with a byte-level tokenizer
            text = self.text
        delta, self.text = text[len(self.text):], text
        if complete:
            self.complete, self.finish_reason = True, reason
            self.tokens = self._count(visible, text, hit is not None)
        return delta

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(known_ids(self.tokenizer, ids), skip_special_tokens=True)

    def _first_stop(self, text: str, start: int) -> Optional[int]:
        hits = [i for i in (text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _stop_overlap(self, text: str) -> int:
        """Length of the longest end of `text` that begins a stop sequence."""
        longest = 0
        for stop in self.stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _count(self, visible: list[int], text: str, cut_by_stop: bool) -> int:
        """Visible tokens: all of them, or (cut by a stop sequence) the fewest that hold the text."""
        if not cut_by_stop:
            return len(visible)
        low, high = 0, len(visible)
        while low < high:
            middle = (low + high) // 2
            if len(self._decode(visible[:middle])) >= len(text):
                high = middle
            else:
                low = middle + 1
        return low
