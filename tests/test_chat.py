"""Chat template, multi-turn history and the visible answer, on the tiny tokenizer."""

import pytest

from llada_core import tokens
from llada_core.chat import (
    answer_text, continue_conversation, encode_chat, load_tokenizer, render_chat, visible_answer_ids,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return load_tokenizer(tiny_checkpoint)


def ids_of(tokenizer, *names):
    return [tokenizer.convert_tokens_to_ids(n) for n in names]


def test_fixed_conversation_renders_as_the_official_template(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "  What is 2+2?\n"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]
    assert render_chat(tokenizer, messages) == (
        "<|startoftext|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_encode_chat_has_exactly_one_bos_and_ends_with_the_assistant_header(tokenizer):
    bos, start, end = ids_of(tokenizer, tokens.BOS, tokens.START_HEADER, tokens.END_HEADER)
    ids = encode_chat(tokenizer, [{"role": "user", "content": "Hello"}])
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids[1] == start
    assert tokenizer.decode(ids).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert end in ids
    assert tokenizer.decode(ids) == render_chat(tokenizer, [{"role": "user", "content": "Hello"}])


def test_empty_or_malformed_conversations_are_rejected(tokenizer):
    with pytest.raises(ValueError, match="no messages"):
        encode_chat(tokenizer, [])
    with pytest.raises(ValueError, match="message 1 needs a 'role' and a 'content'"):
        encode_chat(tokenizer, [{"content": "hi"}])


def test_multi_turn_history_follows_the_reference_chat(tokenizer):
    eos, eot, bos = ids_of(tokenizer, tokens.EOS, tokens.EOT, tokens.BOS)
    first = continue_conversation(tokenizer, None, "Hi")
    assert first == encode_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    answer = [40, 41, eot, eos, eos, eos]
    second = continue_conversation(tokenizer, first + answer, "More")
    new_turn = encode_chat(tokenizer, [{"role": "user", "content": "More"}])
    assert second == first + [40, 41, eot] + new_turn[1:]
    assert eos not in second and second.count(bos) == 1


def test_visible_answer_ends_at_the_first_eos_or_eot(tokenizer):
    eos, eot = ids_of(tokenizer, tokens.EOS, tokens.EOT)
    hello = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    assert visible_answer_ids(tokenizer, hello + [eot] + hello + [eos]) == hello
    assert visible_answer_ids(tokenizer, hello + [eos, eos]) == hello
    assert answer_text(tokenizer, hello + [eot, 50, 51]) == "Hello world"
    assert answer_text(tokenizer, [eos] + hello) == ""
