"""`llada chat`: multi-turn chat in the terminal, like the reference chat.py, with a live view."""

from __future__ import annotations

import argparse
import shutil
import sys

from app.cli.options import (
    add_model_options, add_sampler_options, check_sampler_settings, load_backend_model,
    sampler_kwargs,
)
from app.frame_text import TokenPieces, one_line
from llada_core.chat import answer_text, continue_conversation, is_base_model

BASE_NOTE = ("This is a base model (no chat tokens): it continues your text, without roles; "
             "each message is appended to the text so far.")
HELP = "Type a message and press Enter. /reset starts over, /quit (or Ctrl-D) leaves, Ctrl-C stops an answer."


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("chat", help="chat in the terminal",
                                   description="Multi-turn chat in the terminal. " + HELP)
    add_model_options(parser)
    add_sampler_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, input_fn=input, out=None) -> int:
    out = out or sys.stdout
    check_sampler_settings(args)
    _, backend, model, tokenizer = load_backend_model(args)
    live = out.isatty()
    pieces = TokenPieces(tokenizer, model.args.mask_token_id)
    print(f"Answer length {args.gen_length} | steps {args.steps} | block {args.block_length}. {HELP}",
          file=out)
    if is_base_model(tokenizer):
        print(BASE_NOTE, file=out)
    history: list[int] | None = None
    while True:
        try:
            message = input_fn("You: ")
        except EOFError:
            print(file=out)
            return 0
        message = message.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return 0
        if message == "/reset":
            history = None
            print("(conversation cleared)", file=out)
            continue
        prompt = continue_conversation(tokenizer, history, message)
        frame = None
        try:
            for frame in backend.generate_steps(model, prompt, **sampler_kwargs(args)):
                if live:
                    width = shutil.get_terminal_size().columns
                    line = one_line(pieces(frame.tokens), width - 8)
                    out.write(f"\r\x1b[2K LLaDA: {line}")
                    out.flush()
        except KeyboardInterrupt:
            if live:
                out.write("\r\x1b[2K")
            print("(stopped; that answer is not kept)", file=out)
            continue
        if live:
            out.write("\r\x1b[2K")
        answer = [int(t) for t in frame.tokens]
        print(f"LLaDA: {answer_text(tokenizer, answer)}", file=out)
        history = prompt + answer
