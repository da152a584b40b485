"""Multi-turn prompts equal the checkpoint's own chat template over the whole conversation, for
LLaDA-MoE's Ling template (<role>, <|role_end|>) and LLaDA-8B's (<|eot_id|>) alike."""

from __future__ import annotations

import pytest

from llada_core import tokens
from llada_core.chat import (
    answer_text, continue_conversation, encode_chat, is_base_model, load_tokenizer,
)
from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint
from real_checkpoint import INSTRUCT, RealSpec, build_real_checkpoint, real_metadata_dir


@pytest.fixture(scope="module")
def moe_tokenizer(tmp_path_factory):
    folder = make_tiny_moe_checkpoint(tmp_path_factory.mktemp("moe_chat"), TinyMoESpec())
    return load_tokenizer(folder)


@pytest.fixture(scope="module")
def real_tokenizer(tmp_path_factory):
    if real_metadata_dir() is None:
        pytest.skip("the real checkpoints' metadata (../shared/real-metadata) is not here")
    return load_tokenizer(build_real_checkpoint(INSTRUCT, tmp_path_factory.mktemp("real8b"),
                                                RealSpec()))


FAMILIES = ["moe", "dense", "real"]


@pytest.fixture(params=FAMILIES)
def tokenizer(request, moe_tokenizer, tiny_tokenizer):
    if request.param == "moe":
        return moe_tokenizer
    if request.param == "dense":
        return tiny_tokenizer
    return request.getfixturevalue("real_tokenizer")


def ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def one(tokenizer, name: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(name)
    assert token_id is not None and token_id != tokenizer.unk_token_id, name
    return int(token_id)


def end_of_turn(tokenizer) -> int:
    """The family's end of turn: whichever of <|role_end|> / <|eot_id|> the template writes."""
    rendered = encode_chat(tokenizer, [{"role": "user", "content": "x"}])
    found = [t for t in (tokens.ROLE_END, tokens.EOT) if one_or_none(tokenizer, t) in rendered]
    assert len(found) == 1
    return one(tokenizer, found[0])


def one_or_none(tokenizer, name: str):
    token_id = tokenizer.convert_tokens_to_ids(name)
    return None if token_id == tokenizer.unk_token_id else token_id


def endings(tokenizer) -> dict[str, list[int]]:
    """Generated regions a model may leave after the answer 'Hello world'."""
    eos, eot = one(tokenizer, tokens.EOS), end_of_turn(tokenizer)
    hello = ids(tokenizer, "Hello world")
    return {
        "end of turn then EOS": hello + [eot, eos, eos, eos],
        "EOS only": hello + [eos, eos],
        "filled, no stop": hello,
        "text after the end of turn": hello + [eot] + ids(tokenizer, " more text") + [eos],
        "end of turn only": hello + [eot, eot],
    }


def test_the_families_are_told_apart(tokenizer):
    assert not is_base_model(tokenizer)
    eot = end_of_turn(tokenizer)
    assert tokenizer.convert_ids_to_tokens(eot) in (tokens.ROLE_END, tokens.EOT)


def test_second_turn_is_the_whole_conversation_in_the_template(tokenizer):
    user = [{"role": "user", "content": "What is a cat?"}]
    first = continue_conversation(tokenizer, None, "What is a cat?")
    assert first == encode_chat(tokenizer, user)
    for name, region in endings(tokenizer).items():
        second = continue_conversation(tokenizer, first + region, "And a dog?")
        answer = answer_text(tokenizer, region)
        assert answer == "Hello world", name
        whole = encode_chat(tokenizer, user + [{"role": "assistant", "content": answer},
                                               {"role": "user", "content": "And a dog?"}])
        assert second == whole, f"{name}: {tokenizer.decode(second)!r}"


def test_third_turn_and_a_system_prompt(tokenizer):
    eos, eot = one(tokenizer, tokens.EOS), end_of_turn(tokenizer)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = encode_chat(tokenizer, messages)
    for number, (answer, question) in enumerate([("Hello there", "Again"), ("Once more", "Last")]):
        # The first answer ends at EOS without an end of turn, the second with one.
        region = ids(tokenizer, answer) + ([eot] if number else []) + [eos] * 3
        prompt = continue_conversation(tokenizer, prompt + region, question)
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": question}]
        assert prompt == encode_chat(tokenizer, messages)
    assert eos not in prompt


def test_the_template_is_read_not_assumed(moe_tokenizer):
    """Another template over the same tokens (lower-case roles, a different end of turn): the
    continuation follows it."""
    tok = moe_tokenizer
    original = tok.chat_template
    tok.chat_template = (
        "{% for message in messages %}"
        "{{ '<role>' + message['role'] + '</role>' + message['content'] + '<|arithmetic_end|>' }}"
        "{% endfor %}{{ '<role>assistant</role>' }}")
    try:
        first = continue_conversation(tok, None, "Hi")
        eos = one(tok, tokens.EOS)
        second = continue_conversation(tok, first + ids(tok, "Hello") + [eos, eos], "More")
        assert second == encode_chat(tok, [{"role": "user", "content": "Hi"},
                                           {"role": "assistant", "content": "Hello"},
                                           {"role": "user", "content": "More"}])
        assert one(tok, tokens.ROLE_END) not in second
    finally:
        tok.chat_template = original


def test_history_without_an_assistant_header_falls_back_to_the_reference(moe_tokenizer):
    """Ids no template wrote: every EOS dropped, the new turn appended (reference chat.py)."""
    tok = moe_tokenizer
    eos = one(tok, tokens.EOS)
    history = ids(tok, "Hello world") + [eos]
    turn = encode_chat(tok, [{"role": "user", "content": "More"}])
    assert continue_conversation(tok, history, "More") == ids(tok, "Hello world") + turn


def test_old_reference_behaviour_missed_the_moe_end_of_turn(moe_tokenizer):
    """The case that motivated reading the template: an answer that ends at EOS without
    <|role_end|> still gets one before the next user turn."""
    tok = moe_tokenizer
    first = continue_conversation(tok, None, "Hi")
    second = continue_conversation(tok, first + ids(tok, "Hello") + [one(tok, tokens.EOS)], "More")
    role_end = one(tok, tokens.ROLE_END)
    assert second[len(first) + len(ids(tok, "Hello"))] == role_end
    assert second.count(role_end) == 3
