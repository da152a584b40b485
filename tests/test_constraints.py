"""llada_core.constraints: "position: word" text and infilling texts, with the tiny tokenizer."""

from __future__ import annotations

import pytest

from llada_core.constraints import (
    constraints_from_text, encode_word, infill_canvas, parse_constraints, parse_infill,
)


def test_parse_constraints_as_the_reference_writes_them():
    assert parse_constraints("0:Once, 5:upon, 10:time") == [(0, "Once"), (5, "upon"), (10, "time")]
    assert parse_constraints(" 0: Once , 12: dragon ,") == [(0, "Once"), (12, "dragon")]
    assert parse_constraints("") == [] and parse_constraints("  ") == []


@pytest.mark.parametrize("text, message", [
    ("Once", "is not POSITION: WORD"),
    ("0:", "is not POSITION: WORD"),
    ("x: Once", "does not start with a position"),
    ("-2: Once", "must be 0 or more"),
])
def test_bad_constraint_text_is_one_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_constraints(text)


def test_words_are_encoded_with_a_leading_space(tiny_tokenizer):
    expected = tiny_tokenizer(" dragon", add_special_tokens=False)["input_ids"]
    assert encode_word(tiny_tokenizer, "dragon") == expected
    assert constraints_from_text(tiny_tokenizer, "3: dragon") == {3: expected}
    with pytest.raises(ValueError, match="position 3 has two constraints"):
        constraints_from_text(tiny_tokenizer, "3: dragon, 3: cat")


def test_parse_infill_holes():
    assert parse_infill("The capital of France is [____].") == ["The capital of France is ", 4, "."]
    assert parse_infill("[_:12] and [__]") == [12, " and ", 2]
    assert parse_infill("a [___: 3 ]") == ["a ", 3]


@pytest.mark.parametrize("text, message", [
    ("no holes here", "no hole to fill"),
    ("[_:0]", "1 to 4096 tokens"),
    ("[_:5000]", "1 to 4096 tokens"),
])
def test_bad_infill_text_is_one_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_infill(text)


def test_infill_canvas_places_the_text_around_the_holes(tiny_tokenizer):
    canvas = infill_canvas(tiny_tokenizer, "The capital of France is [____]. It is [__:3]")
    before = tiny_tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    middle = tiny_tokenizer(". It is", add_special_tokens=False)["input_ids"]
    n = len(before)
    assert canvas.holes == [(n, 4), (n + 4 + len(middle), 3)]
    assert canvas.length == n + 4 + len(middle) + 3 and canvas.hole_tokens == 7
    assert [canvas.fixed[p] for p in range(n)] == before
    assert [canvas.fixed[n + 4 + i] for i in range(len(middle))] == middle
    assert set(canvas.fixed) | {p for s, k in canvas.holes for p in range(s, s + k)} == \
        set(range(canvas.length))
    assert canvas.constraints()[0] == [before[0]]
    tokens = list(range(canvas.length))
    assert canvas.filled(tokens) == [tokens[n:n + 4], tokens[-3:]]
