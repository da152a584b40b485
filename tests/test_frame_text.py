"""Text as people read it: characters split across byte-level tokens, in every commit order;
stored traces and their replays; display width and the terminal's one-line view."""

from __future__ import annotations

import itertools
import json
import random
import zlib

import pytest

from app.history import trace as trace_mod
from app.session.frame_text import (
    MASK_GLYPH, PENDING_GLYPH, REPLACEMENT, TokenPieces, byte_decoder, display_width, one_line,
    pieces_of_units,
)
from llada_core import tokens as special
from llada_core.chat import answer_text

MASK = "<|mdm_mask|>"


@pytest.fixture(scope="module")
def tok(tiny_tokenizer):
    return tiny_tokenizer


@pytest.fixture(scope="module")
def merged():
    """A byte-level BPE whose merges cross character boundaries ("ĳįðŁ" ends 👍 and starts 🏽),
    trained in milliseconds with the tiny checkpoint's own tokenizer builder."""
    from transformers import PreTrainedTokenizerFast

    from llada_train.tiny import train_tokenizer

    corpus = "\n".join(["中文 中文字 café cafés 👍🏽 👍🏽 naïve 日本語 e\u0301"] * 20)
    tokenizer, _ = train_tokenizer(corpus, 300)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def ids_of(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def mask_id(tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids(MASK)


def expected_pieces(tokenizer, ids: list[int], clusters: list[str], committed: set[int]) -> list[str]:
    """What a reader should see, worked out from the text instead of from the bytes: a character
    shows (whole, on its first token's position) exactly when all tokens holding its bytes are
    committed, else each committed one of them shows the placeholder; the rest of a cluster
    (accent, skin tone) joins the character before it once both are whole."""
    alphabet = byte_decoder()
    spans, offset = [], 0
    for name in tokenizer.convert_ids_to_tokens(ids):
        size = len(name)  # one alphabet character per byte
        assert all(c in alphabet for c in name)
        spans.append((offset, offset + size))
        offset += size
    out = ["" if p in committed else MASK_GLYPH for p in range(len(ids))]
    start = 0
    for cluster in clusters:
        anchor = None
        for char in cluster:
            end = start + len(char.encode("utf-8"))
            holders = [p for p, (s, e) in enumerate(spans) if s < end and e > start]
            if all(p in committed for p in holders):
                anchor = holders[0] if anchor is None else anchor
                out[anchor] += char
            else:
                anchor = None
                for p in holders:
                    if p in committed and not out[p].endswith(PENDING_GLYPH):
                        out[p] += PENDING_GLYPH
            start = end
    assert start == offset
    return out


def check_orders(tokenizer, clusters: list[str], orders) -> int:
    text = "".join(clusters)
    ids = ids_of(tokenizer, text)
    assert tokenizer.decode(ids) == text
    mask = mask_id(tokenizer) if mask_id(tokenizer) is not None else len(tokenizer) + 99
    pieces = TokenPieces(tokenizer, mask)
    checked = 0
    for order in orders(len(ids)):
        committed: set[int] = set()
        for position in order:
            committed.add(position)
            frame = [t if p in committed else mask for p, t in enumerate(ids)]
            shown = pieces(frame)
            assert REPLACEMENT not in "".join(shown), (text, order, shown)
            assert shown == expected_pieces(tokenizer, ids, clusters, committed), (text, order)
            checked += 1
        assert "".join(shown) == text
    return checked


def all_orders(n: int):
    return itertools.permutations(range(n))


def some_orders(n: int, count: int = 150, seed: int = 12):
    rng = random.Random(seed)
    yield tuple(range(n))
    yield tuple(reversed(range(n)))
    for _ in range(count):
        order = list(range(n))
        rng.shuffle(order)
        yield tuple(order)


@pytest.mark.parametrize("clusters", [
    list("café"),            # é = 2 byte tokens
    list("中文"),             # 3 byte tokens each
    ["e\u0301"],             # e + a combining accent in 2 byte tokens
    list(" ñ!"),
])
def test_every_commit_order_shows_whole_characters_or_the_placeholder(tok, clusters):
    assert len(ids_of(tok, "".join(clusters))) <= 6  # all permutations stay fast
    check_orders(tok, clusters, all_orders)


def test_an_emoji_with_a_skin_tone_in_many_orders(tok):
    assert len(ids_of(tok, "👍🏽")) == 8
    assert check_orders(tok, ["👍🏽"], some_orders) > 1000


@pytest.mark.parametrize("clusters", [list("日本語"), ["👍🏽"], list("中文 café"), list("naïve")])
def test_tokens_that_hold_parts_of_two_characters(merged, clusters):
    ids = ids_of(merged, "".join(clusters))
    names = merged.convert_ids_to_tokens(ids)
    assert 1 < len(ids) <= 7, names
    check_orders(merged, clusters, all_orders if len(ids) <= 6 else some_orders)


def test_the_later_byte_first(tok):
    """Diffusion commits in any order: é's second byte before its first."""
    ids = ids_of(tok, "café")
    mask = mask_id(tok)
    pieces = TokenPieces(tok, mask)
    assert pieces(ids[:3] + [mask, ids[4]]) == ["c", "a", "f", MASK_GLYPH, PENDING_GLYPH]
    assert pieces(ids[:4] + [mask]) == ["c", "a", "f", PENDING_GLYPH, MASK_GLYPH]
    assert pieces(ids) == ["c", "a", "f", "é", ""]
    eos = tok.convert_tokens_to_ids(special.EOS)
    assert pieces(ids + [eos]).joined == [False, False, False, False, True, False]
    assert pieces(ids[:4] + [mask]).joined == [False] * 5
    assert pieces([mask] * 5) == [MASK_GLYPH] * 5
    assert TokenPieces(tok, mask, glyph="")([mask] + ids[1:]) == ["", "a", "f", "é", ""]


def test_a_whole_answer_joins_to_its_decoded_text(tok):
    eot, eos = tok.convert_tokens_to_ids(special.EOT), tok.convert_tokens_to_ids(special.EOS)
    text = "Hello wörld, 中文 👍🏽 e\u0301 🇫🇷\nnaïve ❤️ done"
    ids = ids_of(tok, text) + [eot] + [eos] * 5
    shown = TokenPieces(tok, mask_id(tok))(ids)
    assert "".join(shown) == text == answer_text(tok, ids)
    assert len(shown) == len(ids)
    assert "🇫🇷" in shown and "👍🏽" in shown and "❤️" in shown
    assert any(piece.endswith("e\u0301") for piece in shown)


def test_bytes_that_never_form_a_character_decode_as_the_tokenizer_does(tok):
    """Random bytes, one token each (the byte-level alphabet has all 256): the pieces join to
    exactly the tokenizer's lossy decoding, "�" included, and no "�" is a placeholder's."""
    alphabet = {byte: char for char, byte in byte_decoder().items()}
    pieces = TokenPieces(tok, mask_id(tok))
    rng = random.Random(3)
    pool = [0x41, 0x80, 0xBF, 0xC0, 0xC3, 0xA9, 0xE0, 0xA0, 0xED, 0x9F, 0xA0, 0xF0, 0x90, 0x9F,
            0xF4, 0x8F, 0x90, 0xF5, 0xFF, 0xE4, 0xB8, 0xAD]
    for _ in range(300):
        raw = bytes(rng.choice(pool) if rng.random() < 0.8 else rng.randrange(256)
                    for _ in range(rng.randrange(1, 12)))
        ids = [tok.convert_tokens_to_ids(alphabet[b]) for b in raw]
        assert "".join(pieces(ids)) == tok.decode(ids) == raw.decode("utf-8", "replace"), raw


def test_special_tokens_and_ids_past_the_vocabulary_carry_no_text(tok):
    ids = ids_of(tok, "👍")
    eot = tok.convert_tokens_to_ids(special.EOT)
    past = len(tok) + 3
    tokens = ids[:1] + [eot, past] + ids[1:]
    pieces = TokenPieces(tok, mask_id(tok))
    assert "".join(pieces(tokens)) == tok.decode(tokens, skip_special_tokens=True) == "👍"
    assert pieces(tokens)[1:3] == ["", ""]


def test_each_token_is_looked_up_once(tok):
    class Counting:
        def __init__(self, inner):
            self.inner, self.decodes = inner, 0

        def __len__(self):
            return len(self.inner)

        def decode(self, ids, **kwargs):
            self.decodes += 1
            return self.inner.decode(ids, **kwargs)

        def convert_ids_to_tokens(self, token):
            return self.inner.convert_ids_to_tokens(token)

    counting = Counting(tok)
    ids = ids_of(tok, "中文 café 中文 café")
    pieces = TokenPieces(counting, mask_id(tok))
    first = pieces(ids)
    assert counting.decodes == len(set(ids))
    for _ in range(5):
        assert pieces(ids) == first
    assert counting.decodes == len(set(ids))


def test_a_tokenizer_outside_the_byte_level_alphabet_keeps_its_own_text():
    """A SentencePiece-style vocabulary ("▁hi"): each token's own decoding is used as is."""
    class Metaspace:
        vocab = {0: "▁hi", 1: "▁there", 2: "<0xE9>"}

        def __len__(self):
            return 3

        def decode(self, ids, skip_special_tokens=False):
            return {0: " hi", 1: " there", 2: "é"}[ids[0]]

        def convert_ids_to_tokens(self, token):
            return self.vocab[token]

    pieces = TokenPieces(Metaspace(), mask_id=99)
    assert pieces([0, 99, 1, 2]) == [" hi", MASK_GLYPH, " there", "é"]


def test_byte_decoder_is_the_tokenizers_byte_level_alphabet():
    from tokenizers import pre_tokenizers

    decoder = byte_decoder()
    assert sorted(decoder.values()) == list(range(256))
    assert set(decoder) == set(pre_tokenizers.ByteLevel.alphabet())
    assert decoder["Ġ"] == 0x20 and decoder["Ċ"] == 0x0A and decoder["A"] == 0x41


def test_pieces_of_units_directly():
    e_acute = "é".encode("utf-8")
    assert pieces_of_units([b"caf", e_acute[:1], e_acute[1:]]) == ["caf", "é", ""]
    assert pieces_of_units([b"caf", e_acute[:1], None]) == ["caf", PENDING_GLYPH, ""]
    assert pieces_of_units([b"caf", None, e_acute[1:]], glyph="?") == ["caf", "?", PENDING_GLYPH]
    # Text that is not bytes ends a run: what came before it can no longer be completed.
    assert pieces_of_units([e_acute[:1], " x", e_acute[1:]]) == [REPLACEMENT, " x", REPLACEMENT]
    # A token holding a character's end and the next one's start waits for both neighbours.
    zhong, wen = "中".encode(), "文".encode()
    units = [zhong[:2], zhong[2:] + wen[:1], wen[1:]]
    assert pieces_of_units(units) == ["中", "文", ""]
    assert pieces_of_units([None, units[1], None]) == ["", PENDING_GLYPH, ""]
    assert pieces_of_units([units[0], units[1], None]) == ["中", PENDING_GLYPH, ""]


# ---------------------------------------------------------------------------------------------
# Stored traces and replays


def make_trace(tokenizer, text: str, seed: int = 5) -> tuple[trace_mod.Trace, TokenPieces]:
    """A finished answer's trace whose tokens commit in a shuffled order, one per step."""
    ids = ids_of(tokenizer, text)
    mask = mask_id(tokenizer)
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    committed_at = [order.index(p) for p in range(len(ids))]
    live = TokenPieces(tokenizer, mask, glyph="")  # as the worker makes them
    recorder = trace_mod.TraceRecorder(mask, block_length=len(ids))
    skeleton = trace_mod.Trace(mask_id=mask, tokens=ids, committed_at=committed_at,
                               confidence=[0.5] * len(ids), blocks=[0] * len(ids),
                               nfe=list(range(1, len(ids) + 1)), block_length=len(ids))
    for frame in skeleton.frames():
        recorder.add(frame)
    last = [int(t) for t in recorder.last.tokens]
    return recorder.trace(live(last)), live


def test_a_new_trace_replays_whole_characters_at_every_step(tok):
    trace, live = make_trace(tok, "中文 café 👍🏽")
    assert trace.units is not None
    stored = trace_mod.decode(trace_mod.encode(trace))
    assert stored.units == trace.units and stored.pieces == trace.pieces
    assert "".join(stored.pieces) == "中文 café 👍🏽"
    pending_seen = False
    for k in range(stored.num_steps):
        expected = live(stored.frame(k).tokens)
        assert stored.pieces_at(k) == expected
        assert stored.pieces_at(k).joined == expected.joined
        assert REPLACEMENT not in "".join(expected)
        pending_seen |= PENDING_GLYPH in expected
    assert pending_seen  # the shuffled order really left characters half-committed
    with pytest.raises(IndexError):
        stored.pieces_at(stored.num_steps)


def test_a_stopped_answer_keeps_its_masks(tok):
    ids = ids_of(tok, "中文")
    mask = mask_id(tok)
    recorder = trace_mod.TraceRecorder(mask, block_length=6)
    partial = trace_mod.Trace(mask_id=mask, tokens=ids[:4] + [mask, mask],
                              committed_at=[0, 1, 0, 1, -1, -1], confidence=[0.9] * 6,
                              blocks=[0, 0], nfe=[1, 2], block_length=6, done=False)
    for frame in partial.frames():
        recorder.add(frame)
    live = TokenPieces(tok, mask, glyph="")
    stored = trace_mod.decode(trace_mod.encode(recorder.trace(live([int(t) for t in recorder.last.tokens]))))
    assert stored.units[4:] == [None, None]
    assert stored.pieces_at(1) == stored.pieces == ["中", "", "", PENDING_GLYPH, "", ""]
    assert stored.pieces_at(0) == [PENDING_GLYPH, "", PENDING_GLYPH, "", "", ""]


def old_blob(trace: trace_mod.Trace) -> bytes:
    """A blob exactly as LLaDA Desktop wrote it before text units existed."""
    header = json.dumps({
        "version": 1, "mask_id": trace.mask_id, "block_length": trace.block_length,
        "gen_length": trace.gen_length, "steps": trace.num_steps, "done": trace.done,
        "pieces": trace.pieces,
    }).encode("utf-8")
    body = b"".join([
        trace_mod._packed("i", trace.tokens), trace_mod._packed("i", trace.committed_at),
        trace_mod._packed("f", trace.confidence), trace_mod._packed("i", trace.blocks),
        trace_mod._packed("i", trace.nfe),
    ])
    return trace_mod.MAGIC + zlib.compress(len(header).to_bytes(4, "little") + header + body, 9)


def test_an_old_trace_still_replays_as_it_was_stored(tok):
    trace, _ = make_trace(tok, "café 中")
    old_pieces = [tok.decode([t]) for t in trace.tokens]  # what the old worker stored: "�" and all
    trace.pieces = old_pieces
    old = trace_mod.decode(old_blob(trace))
    assert old.units is None and old.pieces == old_pieces
    for k in range(old.num_steps):
        assert old.pieces_at(k) == old_pieces
        assert old.frame(k).tokens.tolist() == trace.frame(k).tokens.tolist()
    # The old reader's fields are all still in a new blob, where units come on top.
    new, _ = make_trace(tok, "café 中")
    header_keys = set(json.loads(_header(trace_mod.encode(new))))
    assert {"version", "mask_id", "block_length", "gen_length", "steps", "done", "pieces"} < header_keys
    assert json.loads(_header(trace_mod.encode(new)))["version"] == 1


def _header(blob: bytes) -> bytes:
    raw = zlib.decompress(blob[len(trace_mod.MAGIC):])
    return raw[4:4 + int.from_bytes(raw[:4], "little")]


def test_damaged_units_are_reported(tok):
    trace, _ = make_trace(tok, "café")
    trace.units = trace.units[:-1]
    with pytest.raises(ValueError, match="damaged"):
        trace_mod.decode(trace_mod.encode(trace))
    trace.units = ["ok"] * trace.gen_length  # str units are stored as [text]; a bare 5 is not
    blob = trace_mod.encode(trace)
    raw = zlib.decompress(blob[len(trace_mod.MAGIC):])
    header = json.loads(_header(blob))
    header["units"] = [5] * trace.gen_length
    encoded = json.dumps(header).encode()
    body = raw[4 + int.from_bytes(raw[:4], "little"):]
    bad = trace_mod.MAGIC + zlib.compress(len(encoded).to_bytes(4, "little") + encoded + body)
    with pytest.raises(ValueError, match="damaged"):
        trace_mod.decode(bad)
    assert trace_mod.decode(blob).units == ["ok"] * trace.gen_length


# ---------------------------------------------------------------------------------------------
# Display width and the one-line view


@pytest.mark.parametrize("text, columns", [
    ("abc", 3), ("中文", 4), ("ＡＢ", 4), ("ｱｲ", 2), ("e\u0301", 1), ("👍", 2), ("👍🏽", 4),
    ("❤️", 2), ("a\u200bb", 2), ("한", 2), ("\u1100\u1161", 2), ("", 0), ("⏎…", 2),
])
def test_display_width(text, columns):
    assert display_width(text) == columns


def test_one_line_never_passes_its_width():
    for width in range(1, 30):
        for text in ["中文" * 20, "e\u0301" * 40, "a中b👍🏽c" * 10, "plain text " * 5, "❤️x" * 15]:
            line = one_line([text], width)
            assert display_width(line) <= width, (text, width, line)
            if display_width(text) > width:
                assert line.endswith("…") and display_width(line) >= width - 2
            else:
                assert line == text
    assert one_line(["e\u0301\u0301" * 3], 4) == "e\u0301\u0301" * 3  # marks take no columns
    assert one_line(["中文中文"], 6) == "中文…"


def test_one_line_shows_newlines_and_drops_control_characters():
    assert one_line(["a\nb", "\r\n", "\tc\x1b[2Kd\x07"], 40) == "a⏎b⏎ c[2Kd"
    assert one_line([], 10) == ""
