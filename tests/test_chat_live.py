"""`llada chat`'s live line: a pass counter while the answer denoises, and Ctrl-C (during an
answer or at the prompt) leaves a clean prompt and the history as it was."""

from __future__ import annotations

import io

import pytest

from app.cli import build_parser, chat
from backend_choice import BACKEND
from window_support import FailsAfterFirstStep


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_counts_passes_and_fits_the_terminal():
    from app.session.frame_text import display_width

    line = chat.live_line(3, 16, ["x"] * 50, 40)
    assert line.startswith("\r\x1b[2K LLaDA [pass 3/16]: ")
    assert display_width(line[len("\r\x1b[2K"):]) <= 39
    narrow = chat.live_line(100, 128, ["x"] * 50, 24)     # the long counter leaves no room
    assert narrow.startswith("\r\x1b[2K [100/128] ")
    assert display_width(narrow[len("\r\x1b[2K"):]) <= 23


@pytest.fixture
def chat_args(tiny_checkpoint):
    return build_parser().parse_args(
        ["chat", "--backend", BACKEND, "--device", "cpu", "--model", str(tiny_checkpoint),
         "--gen-length", "8", "--steps", "4", "--block-length", "8", "--mode", "exact"])


def test_live_line_shows_pass_k_of_n(chat_args):
    out = Terminal()
    replies = iter(["Hello", "/quit"])
    assert chat.run(chat_args, input_fn=lambda _: next(replies), out=out) == 0
    text = out.getvalue()
    for k in range(1, 5):
        assert f"LLaDA [pass {k}/4]: " in text
    assert "\r\x1b[2KLLaDA: " in text       # the live line wiped before the answer


def test_ctrl_c_during_an_answer_and_at_the_prompt_leaves_a_clean_prompt(chat_args, monkeypatch):
    real = chat.load_model

    def interrupted(args):
        loaded = real(args)
        loaded.backend = FailsAfterFirstStep(loaded.backend, KeyboardInterrupt())
        return loaded

    monkeypatch.setattr(chat, "load_model", interrupted)
    out = Terminal()
    prompts = []

    def reply(prompt):
        prompts.append(out.getvalue())
        step = len(prompts)
        if step == 1:
            return "Hello"
        if step == 2:
            raise KeyboardInterrupt        # Ctrl-C at the prompt
        raise EOFError

    assert chat.run(chat_args, input_fn=reply, out=out) == 0
    # before the second prompt: the live line wiped, one sentence, and a new line
    assert prompts[1].endswith("\r\x1b[2K(stopped; that answer is not kept)\n")
    assert prompts[2].endswith("(stopped; that answer is not kept)\n\n")


def test_ctrl_c_on_a_real_terminal(tiny_checkpoint):
    """On a pseudo-terminal: Ctrl-C mid-answer wipes the live line, says one sentence and gives
    the next prompt at the start of a clean line; Ctrl-C at the prompt gives a fresh one. (The
    chat is not in the pty's session, so Ctrl-C is sent as the SIGINT the terminal would send.)"""
    import signal
    import time

    from test_cli import Terminal

    term = Terminal(tiny_checkpoint, "--gen-length", "128", "--steps", "128", "--block-length",
                    "128", "--mode", "exact", "--threshold", "none", "--no-early-stop")
    term.read_until(b"You: ")
    term.write(b"Hello\n")
    live = term.read_until(b"\r\x1b[2K LLaDA [pass 2/128]: ")
    term.process.send_signal(signal.SIGINT)               # Ctrl-C mid-answer (128 passes)
    stopped = term.read_until(b"(stopped; that answer is not kept)", after=live)
    prompt = term.read_until(b"You: ", after=stopped)
    assert term.output[stopped - len(b"\r\x1b[2K"):stopped] == b"\r\x1b[2K"   # no half line
    assert term.output[stopped:prompt].rstrip(b"You: ").endswith(b"kept)\r\n")
    # Python's input() writes the prompt before it waits; a SIGINT in between is only seen at
    # the next key, so give it a moment to be waiting (a person is never that fast).
    time.sleep(0.5)
    term.process.send_signal(signal.SIGINT)               # Ctrl-C at the prompt
    again = term.read_until(b"You: ", after=prompt + 1)
    text = term.finish()
    assert term.process.returncode == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert term.output[prompt:again].count(b"\n") == 1   # one new line, then the prompt
