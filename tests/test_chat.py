"""Chat template, multi-turn history and the visible answer, on the tiny tokenizer."""

import pytest

from llada_core import tokens
from llada_core.chat import (
    answer_text, continue_conversation, encode_chat, is_base_model, known_ids, load_tokenizer,
    render_chat, visible_answer_ids,
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


def test_ids_past_the_tokenizer_carry_no_text(tokenizer, tiny_checkpoint):
    """The embedding has rows past the tokenizer (as LLaDA 8B's 126464 > 126349); a model can
    still predict them, and the visible answer skips them instead of failing."""
    import json

    rows = json.loads((tiny_checkpoint / "config.json").read_text())["embedding_size"]
    assert rows > len(tokenizer)
    hello = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    past = list(range(len(tokenizer), rows))
    assert answer_text(tokenizer, hello[:1] + past + hello[1:]) == "Hello world"
    assert known_ids(tokenizer, past + hello) == hello
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    assert visible_answer_ids(tokenizer, past + [eot, 5]) == past  # ids are kept, text is not


def test_a_broken_special_tokens_map_is_never_parsed(tiny_checkpoint, tmp_path):
    """LLaDA-8B-Base publishes a special_tokens_map.json with a missing comma; transformers parses
    that file when tokenizer_config.json has no added_tokens_decoder. We load it either way."""
    import json
    import shutil

    folder = shutil.copytree(tiny_checkpoint, tmp_path / "model")
    (folder / "special_tokens_map.json").write_text('{"additional_special_tokens": ["a" "b"]}')
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    loaded = load_tokenizer(folder)
    original = load_tokenizer(tiny_checkpoint)
    assert loaded.bos_token_id == original.bos_token_id and loaded.eos_token_id == original.eos_token_id
    assert loaded.chat_template == original.chat_template
    messages = [{"role": "user", "content": "Hello"}]
    assert encode_chat(loaded, messages) == encode_chat(original, messages)
    assert not is_base_model(loaded)


# ---------------------------------------------------------------------------------------------
# Typing while `llada chat` answers


def test_typing_is_hidden_while_answering_and_dropped_after():
    """On a terminal: no echo inside, the echo restored and pending typing thrown away after."""
    termios = pytest.importorskip("termios")
    import os
    import pty
    import select

    from app.cli.chat import typing_hidden

    main, child = pty.openpty()
    with os.fdopen(child, "r", closefd=True) as stdin:
        before = termios.tcgetattr(child)
        assert before[3] & termios.ECHO
        with typing_hidden(stdin):
            assert not termios.tcgetattr(child)[3] & termios.ECHO
            assert termios.tcgetattr(child)[3] & termios.ISIG  # Ctrl-C still stops an answer
            os.write(main, b"typed meanwhile\n")
            assert select.select([child], [], [], 5)[0]  # it is waiting to be read...
        assert not select.select([child], [], [], 0.2)[0]  # ...and now it is gone
        assert termios.tcgetattr(child) == before
        os.write(main, b"next\n")
        assert stdin.readline() == "next\n"
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C stops the answer: the terminal is restored
            with typing_hidden(stdin):
                raise KeyboardInterrupt
        assert termios.tcgetattr(child) == before
    os.close(main)


def test_typing_hidden_leaves_a_pipe_alone():
    import io
    import os

    from app.cli.chat import typing_hidden

    with typing_hidden(io.StringIO("a\n")):
        pass
    read, write = os.pipe()
    with os.fdopen(read, "r") as pipe:
        os.write(write, b"piped line\n")
        os.close(write)
        with typing_hidden(pipe):
            pass
        assert pipe.readline() == "piped line\n"  # nothing flushed, nothing broken
    with typing_hidden(None):
        pass
