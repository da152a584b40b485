"""Fuzzing the parsers every front end shares (hypothesis, bounded to run in seconds): the
server's request parser, the constraint and infill parsers and the chat prompt builder. Any
input either parses or raises the one error type its callers turn into a sentence (RequestError
with a 4xx, ValueError); never anything else, never a hang, never a multi-line message."""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from app.server.api import RequestError, parse_generation  # noqa: E402
from llada_core.chat import encode_chat, encode_prompt  # noqa: E402
from llada_core.constraints import constraints_from_text, infill_canvas  # noqa: E402
from llada_core.settings import SamplerSettings  # noqa: E402

FUZZ = settings(max_examples=150, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DEFAULTS = SamplerSettings(gen_length=8, block_length=8, steps=8, mode="fast").to_dict()

# Text as clients send it, lone surrogates and control-token spellings included.
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
    st.sampled_from(["<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>", "<role>",
                     "<|role_end|>", "<|mdm_mask|>", "[___]", "[_:0]", "[_:99999]", "0:x", ""]),
)
numbers = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), texts,
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(texts, inner, max_size=3)),
    max_leaves=10,
)
FIELDS = ["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature",
          "seed", "stop", "stream", "stream_options", "n", "echo", "steps", "block_length", "mode",
          "threshold", "cfg_scale", "remasking", "llada_frames", "top_p", "logprobs", "tools",
          "response_format", "user", "unknown"]
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", 5]),
     "content": st.one_of(texts, st.lists(st.fixed_dictionaries(
         {"type": st.sampled_from(["text", "image_url"]), "text": texts}), max_size=2))}),
    max_size=4)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    st.fixed_dictionaries({"messages": messages},
                          optional={name: json_values for name in FIELDS[3:12]}),
    json_values,
)


def one_sentence(message: str) -> None:
    assert message and "\n" not in message and len(message) < 500, message
    assert "Traceback" not in message


@FUZZ
@given(body=bodies, kind=st.sampled_from(["chat", "text"]))
def test_request_parser_answers_4xx_or_a_valid_generation(tiny_tokenizer, body, kind):
    # Through JSON and back, as the server receives it (surrogates survive as \\ud800 escapes).
    body = json.loads(json.dumps(body))
    try:
        generation = parse_generation(body, kind, tokenizer=tiny_tokenizer, defaults=DEFAULTS,
                                      model_ids=["tiny"], max_sequence_length=4096,
                                      vocab_rows=len(tiny_tokenizer))
    except RequestError as error:
        assert 400 <= error.status < 500
        one_sentence(error.message)
        return
    assert isinstance(generation.settings, SamplerSettings)  # validated, what the host will run
    assert len(generation.prompt_ids) + generation.settings.gen_length <= 4096
    assert all(0 <= t < len(tiny_tokenizer) for t in generation.prompt_ids)


@FUZZ
@given(text=st.one_of(texts, st.text(alphabet="0123456789:, _[]abc-", max_size=60)))
def test_constraint_parser_is_a_sentence_or_valid(tiny_tokenizer, text):
    try:
        fixed = constraints_from_text(tiny_tokenizer, text)
    except ValueError as error:
        one_sentence(str(error))
        return
    assert all(position >= 0 and ids for position, ids in fixed.items())


@FUZZ
@given(text=st.one_of(texts, st.text(alphabet="[_:]0123456789 ab\n", max_size=80)))
def test_infill_parser_is_a_sentence_or_valid(tiny_tokenizer, text):
    try:
        canvas = infill_canvas(tiny_tokenizer, text)
    except ValueError as error:
        one_sentence(str(error))
        return
    assert canvas.holes and canvas.length >= canvas.hole_tokens


@FUZZ
@given(conversation=messages)
def test_chat_prompt_builder_is_a_sentence_or_text(tiny_tokenizer, conversation):
    try:
        ids = encode_chat(tiny_tokenizer, conversation)
    except ValueError as error:
        one_sentence(str(error))
        return
    except (TypeError, UnicodeEncodeError, KeyError, AttributeError) as error:
        # Only what the server's own checks refuse first (non-text content, odd roles,
        # surrogates) may fail here; a front end never passes it.
        assert any(not isinstance(m.get("content"), str) or not isinstance(m.get("role"), str)
                   or not _is_text(m["content"]) for m in conversation), error
        return
    assert ids == encode_prompt(tiny_tokenizer, conversation)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
