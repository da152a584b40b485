"""`llada export-animation OUT`: a stored answer's denoising as a GIF, an animated PNG or one PNG
per step (and a contact sheet), drawn offscreen by the window's canvas painter."""

from __future__ import annotations

import argparse
import sys

COLOUR_MODES = ("state", "confidence", "reveal")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-animation", help="a stored answer's denoising as GIF, APNG or PNGs",
        description="Draw a stored answer's denoising, step by step, with the window's canvas "
                    "and write it as OUT: out.gif (animated GIF), out.png (animated PNG) or "
                    "DIR/ (one PNG per step and contact-sheet.png). No display is needed.")
    parser.add_argument("out", help="out.gif, out.png or DIR/")
    parser.add_argument("--data-dir", default=None,
                        help="the history's folder (default: the app's data folder, or "
                             "$LLADA_DESKTOP_DATA)")
    parser.add_argument("--message", type=int, default=None, metavar="ID",
                        help="the answer's message id (default: the latest answer)")
    parser.add_argument("--colour-mode", choices=COLOUR_MODES, default="state",
                        help="state (masked / new / earlier), confidence or reveal order")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.history.animation import kind_of
    from app.history.store import Store, StoreError
    from app.history.trace import decode

    kind_of(args.out)
    try:
        store = Store.in_folder(args.data_dir)
    except StoreError as error:
        raise ValueError(str(error)) from error
    try:
        message_id = args.message if args.message is not None else latest_answer(store)
        message = store.message(message_id)
        if message is None or message.role != "assistant":
            raise ValueError(f"there is no answer with message id {message_id} in {store.path}")
        blob = store.trace_blob(message_id)
        if blob is None:
            raise ValueError(f"answer {message_id} has no stored denoising (it was imported)")
        trace = decode(blob)
    finally:
        store.close()

    from app.session.stats_text import plural
    from app.ui.animation_render import export_trace

    written = export_trace(trace, args.out, args.colour_mode)
    shown = written[0] if len(written) == 1 else f"{len(written)} files in {args.out}"
    print(f"llada export-animation: answer {message_id}, {plural(trace.num_steps, 'pass')}: {shown}")
    return 0


def latest_answer(store) -> int:
    for conversation in store.conversations():
        answers = [m for m in store.messages(conversation.id)
                   if m.role == "assistant" and m.has_trace]
        if answers:
            return answers[-1].id
    raise ValueError(f"there is no stored answer in {store.path}")
