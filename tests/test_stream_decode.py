"""The server's streamed text (AnswerText over app.session.stream_decode) equals the non-streamed answer:
the deltas of a diffusion run, frame by frame, join to the text the whole answer decodes to,
with stop sequences, max_tokens and multi-byte characters, for the demo's and the tiny
checkpoint's tokenizers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.server.api import AnswerText
from app.session.stream_decode import IncrementalDecoder
from llada_core.chat import answer_text, known_ids, load_tokenizer, visible_answer_ids

DEMO = Path(__file__).resolve().parents[1] / "app" / "resources" / "llada-demo"
TEXTS = ["Count from 36 to 51: 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51.",
         "naïve café — 東京タワー 🎉🎉 über ∑ x² ≠ ½, done.", "105", ""]


@pytest.fixture(params=["demo", "tiny"])
def tokenizer(request, tiny_tokenizer):
    if request.param == "tiny":
        return tiny_tokenizer
    if not (DEMO / "tokenizer.json").is_file():
        pytest.skip("the demo model is not bundled")
    return load_tokenizer(DEMO)


def ids_of(tokenizer, name: str) -> int:
    return tokenizer.convert_tokens_to_ids(name)


def answers(tokenizer, rng: random.Random) -> list[list[int]]:
    """Answer regions: texts ending in an end of turn then EOS padding, and random ids (special
    tokens, stray bytes of multi-byte characters, ids past the vocabulary)."""
    eot, eos = ids_of(tokenizer, "<|eot_id|>"), ids_of(tokenizer, "<|endoftext|>")
    out = []
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.append(ids + [eot] + [eos] * 5)
        out.append(list(ids))  # cut by the canvas' end, no stop token
    size = len(tokenizer)
    for _ in range(6):
        out.append([rng.randrange(size + 20) for _ in range(rng.randrange(1, 60))])
    return out


def diffusion_frames(answer: list[int], mask: int, rng: random.Random) -> list[list[int]]:
    """Frames of a run that unmasks positions in a random order, a few per step."""
    canvas = [mask] * len(answer)
    order = list(range(len(answer)))
    rng.shuffle(order)
    frames = [list(canvas)]
    while order:
        for _ in range(rng.randint(1, 3)):
            if order:
                position = order.pop()
                canvas[position] = answer[position]
        frames.append(list(canvas))
    return frames


def expected(tokenizer, answer: list[int], max_tokens: int, stop: list[str]) -> tuple[str, str]:
    """(text, finish reason) of the whole answer decoded at once, as the non-streamed reply."""
    visible = visible_answer_ids(tokenizer, answer)
    ended = len(visible) < len(answer)
    cut = len(visible) > max_tokens or (len(visible) == max_tokens and not ended)
    text = answer_text(tokenizer, visible[:max_tokens])
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    if hits:
        return text[:min(hits)], "stop"
    return text, "length" if cut or not ended else "stop"


@pytest.mark.parametrize("seed", range(3))
def test_streamed_deltas_join_to_the_whole_answer(tokenizer, seed):
    rng = random.Random(seed)
    mask = ids_of(tokenizer, "<|mdm_mask|>")
    stops = [[], [" 4"], ["é", "タ"], ["🎉", "x² ≠"], ["5:", "zz"], ["\ufffd"]]
    for answer in answers(tokenizer, rng):
        for stop in stops:
            for max_tokens in (len(answer) + 5, max(1, len(answer) // 2)):
                streamed = AnswerText(tokenizer, mask, max_tokens, stop)
                deltas = [streamed.update(frame, False)
                          for frame in diffusion_frames(answer, mask, rng)]
                deltas.append(streamed.update(answer, True))
                whole = AnswerText(tokenizer, mask, max_tokens, stop)
                whole.update(answer, True)
                text, reason = expected(tokenizer, answer, max_tokens, stop)
                case = (answer, stop, max_tokens)
                assert "".join(deltas) == streamed.text == whole.text == text, case
                assert streamed.finish_reason == whole.finish_reason == reason, case
                assert streamed.tokens == whole.tokens, case
                assert not any(delta.endswith("\ufffd") for delta in deltas[:-1] if delta) or \
                    "\ufffd" in text, case


def test_the_decoder_sends_each_character_whole(tokenizer):
    ids = tokenizer("東京 🎉 café", add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.extend([token]) for token in ids]
    assert "".join(pieces) == decoder.text == tokenizer.decode(ids)
    assert all("\ufffd" not in piece for piece in pieces)


def test_each_frame_decodes_only_the_new_tokens(tiny_tokenizer):
    """A frame decodes a window since the last complete character, not the whole answer."""
    decoded: list[int] = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def decode(self, ids, **kwargs):
            decoded.append(len(ids))
            return self.inner.decode(ids, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __len__(self):
            return len(self.inner)

    tok = tiny_tokenizer
    ids = tok(" ".join(str(n) for n in range(400)), add_special_tokens=False)["input_ids"]
    mask = tok.convert_tokens_to_ids("<|mdm_mask|>")
    answer = AnswerText(Counting(tok), mask, len(ids) + 1, [" 399x"])
    for end in range(1, len(ids)):
        answer.update(ids[:end] + [mask] * (len(ids) - end), False)
    assert max(decoded) <= 8, max(decoded)
    assert answer.text == tok.decode(known_ids(tok, ids[:len(ids) - 1]))[:len(answer.text)]
