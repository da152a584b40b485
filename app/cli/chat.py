"""`llada chat`: multi-turn chat in the terminal, like the reference chat.py, with a live view."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from app.cli.options import (
    add_constraint_option, add_model_options, add_sampler_options, check_sampler_settings,
    constraints_of, load_model, sampler_settings,
)
from app.session.answer import answer_steps
from app.session.conversation import Prompt, build_prompt, dropped_notice
from app.session.errors import generation_error_message
from app.session.frame_text import TokenPieces, one_line
from app.session.progress_text import passes_text
from llada_core.chat import answer_text, is_base_model

log = logging.getLogger(__name__)

BASE_NOTE = ("This is a base model (no chat tokens): it continues your text, without roles; "
             "each message is appended to the text so far.")
HELP = ("Type a message and press Enter. /image FILE shows the next question a picture (LLaDA-V), "
        "/reset starts over, /quit (or Ctrl-D) leaves, Ctrl-C stops an answer.")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("chat", help="chat in the terminal",
                                   description="Multi-turn chat in the terminal. " + HELP)
    add_constraint_option(parser)
    add_model_options(parser)
    add_sampler_options(parser)
    parser.set_defaults(run=run)


LIVE_PREFIX = " LLaDA: "


MIN_CANVAS_COLUMNS = 8


def live_line(done: int, total: int, pieces, columns: int) -> str:
    """The line redrawn in place while an answer denoises: ' LLaDA [pass 3/16]: text…', or
    ' [3/16] text…' in a terminal too narrow to leave the text MIN_CANVAS_COLUMNS. It never
    fills the last column (a full line wraps in some terminals, and \r cannot erase that)."""
    total = max(total, done)
    prefix = f" LLaDA [{passes_text(done, total)}]: "
    if columns - len(prefix) - 1 < MIN_CANVAS_COLUMNS:
        prefix = f" [{done}/{total}] "
    width = max(1, columns - len(prefix) - 1)
    return f"\r\x1b[2K{prefix}{one_line(pieces, width)}"


@contextlib.contextmanager
def typing_hidden(stream: TextIO | Any) -> Iterator[None]:
    """While an answer is generated: what is typed into the terminal is not echoed (it would
    break the live line), and it is thrown away before the next prompt (it would otherwise
    become the next message). Nothing happens unless `stream` is a terminal; Ctrl-C still stops
    the answer (only echo is turned off, signals stay on)."""
    fd = _terminal_fd(stream)
    if fd is None:
        yield
        return
    try:
        import termios
    except ImportError:  # Windows: the console echoes typing only once it is read; drop it then
        try:
            yield
        finally:
            _drain_windows_console()
        return
    try:
        saved = termios.tcgetattr(fd)
        quiet = list(saved)
        quiet[3] &= ~termios.ECHO  # the local-modes word
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except termios.error:
        yield
        return
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        termios.tcflush(fd, termios.TCIFLUSH)


def _terminal_fd(stream: Any) -> int | None:
    try:
        return stream.fileno() if stream is not None and stream.isatty() else None
    except (AttributeError, OSError, ValueError):
        return None


def _drain_windows_console() -> None:
    try:
        import msvcrt
    except ImportError:
        return
    while msvcrt.kbhit():
        msvcrt.getwch()


def is_text(line: str) -> bool:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run(args: argparse.Namespace, input_fn=input, out=None) -> int:
    out = out or sys.stdout
    check_sampler_settings(args)
    settings = sampler_settings(args)
    loaded = load_model(args)
    tokenizer = loaded.tokenizer
    live = out.isatty()
    pieces = TokenPieces(tokenizer, loaded.mask_id)
    constraints = constraints_of(args, tokenizer)
    print(f"Answer length {args.gen_length} | steps {args.steps} | block {args.block_length}. {HELP}",
          file=out)
    if is_base_model(tokenizer):
        print(BASE_NOTE, file=out)
    # The conversation as text (for re-encoding when it outgrows the context) and as the ids to
    # continue from (the reference chat.py rule): app.session.conversation's one context policy.
    turns: list[dict] = []
    history: list[int] | None = None
    history_dropped = 0
    spans: list = []       # the pictures in the conversation's ids (LLaDA-V)
    picture = None         # attached with /image, for the next question
    if input_fn is input and hasattr(sys.stdin, "reconfigure"):
        # Bytes that are not UTF-8 come through as lone surrogates (refused below), not as an
        # exception that would end the chat.
        sys.stdin.reconfigure(errors="surrogateescape")
    while True:
        try:
            message = input_fn("You: ")
        except EOFError:
            print(file=out)
            return 0
        except UnicodeDecodeError:
            print("(that line is not UTF-8 text; nothing was sent)", file=out)
            continue
        except KeyboardInterrupt:
            # Ctrl-C at the prompt: a fresh prompt on a new line, as in a shell (Ctrl-D leaves)
            print(file=out)
            continue
        if not is_text(message):
            print("(that line is not UTF-8 text; nothing was sent)", file=out)
            continue
        message = message.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return 0
        if message == "/reset":
            turns, history, history_dropped, spans, picture = [], None, 0, [], None
            print("(conversation cleared)", file=out)
            continue
        if message.startswith("/image"):
            picture = attach_picture(message[len("/image"):].strip(), loaded, out)
            continue
        asked = [*turns, {"role": "user", "content": message}]
        plan: dict = {"turns": asked}
        if history is not None:
            plan.update(history_ids=history, user_text=message, history_dropped=history_dropped)
        frame = None
        try:
            if picture is not None:  # a picture starts the conversation over around it
                from llada_core.chat import encode_image_chat
                from llada_core.vision import ImageSpan

                prompt, start = encode_image_chat(tokenizer, asked, picture.tokens,
                                                  loaded.model.placeholder)
                built = Prompt(prompt, reencoded=True)
                asking_spans = [ImageSpan(start, picture)]
            else:
                built = build_prompt(tokenizer, plan, settings.gen_length, loaded.max_length)
                prompt = built.ids
                asking_spans = spans if not built.reencoded else []
                if spans and built.reencoded:
                    print("(the picture no longer fits in the model's context and was left out)",
                          file=out)
            steps = answer_steps(loaded, prompt, settings, constraints=constraints,
                                 images=asking_spans)
        except ValueError as error:  # e.g. this message alone and its answer outgrow the context
            print(f"(error: {error}; /reset starts a new conversation)", file=out)
            continue
        if built.dropped:
            print(f"({dropped_notice(built.dropped)})", file=out)
        try:
            with typing_hidden(sys.stdin):
                for frame in steps:
                    if live:
                        out.write(live_line(frame.index + 1, settings.steps, pieces(frame.tokens),
                                            shutil.get_terminal_size().columns))
                        out.flush()
        except KeyboardInterrupt:
            # The live line is wiped (no half line), the history stays as it was.
            if live:
                out.write("\r\x1b[2K")
            print("(stopped; that answer is not kept)", file=out)
            out.flush()
            continue
        except Exception as error:  # noqa: BLE001 - the chat goes on; the log has the traceback
            # The sampler stopped (llada_core.driver.SamplerError), memory ran out, or the
            # backend failed: one sentence, the history stays as it was.
            if not isinstance(error, ValueError):
                log.exception("llada chat: an answer failed")
            if live:
                out.write("\r\x1b[2K")
            print(f"(error: {generation_error_message(error)}; that answer is not kept)", file=out)
            continue
        if live:
            out.write("\r\x1b[2K")
        answer = [int(t) for t in frame.tokens]
        text = answer_text(tokenizer, answer)
        print(f"LLaDA: {text}", file=out)
        turns = [*asked, {"role": "assistant", "content": text}]
        history, history_dropped = prompt + answer, built.dropped
        spans, picture = asking_spans, None


def attach_picture(path: str, loaded: Any, out: Any) -> Any:
    """`/image FILE`: the picture prepared for the model, or None with one sentence why not."""
    from llada_core.vision import ImageError, load_image, prepare_image

    if not path:
        print("(/image needs a file: /image photo.jpg)", file=out)
        return None
    if loaded.vision is None:
        from app.session.pictures import NO_VISION

        print(f"({NO_VISION})", file=out)
        return None
    try:
        image = prepare_image(load_image(path), loaded.vision)
    except ImageError as error:
        print(f"(error: {error}; nothing was attached)", file=out)
        return None
    print(f"(picture attached: {image.size[0]}×{image.size[1]}, {image.tokens} positions; "
          "ask your question)", file=out)
    return image
