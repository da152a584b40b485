"""The `llada` command: one entry point with a module per subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Optional

from app import __version__
from app.session.logs import DEFAULT_LEVEL, LEVELS, setup_logging
from app.cli import (
    app_cmd, bench, chat, convert, download, evaluate, export_animation, generate, infill,
    make_tiny, serve, train,
)

SUBCOMMANDS = [app_cmd, generate, infill, chat, download, bench, evaluate, serve, convert, train, make_tiny,
               export_animation]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llada", description="LLaDA Desktop: chat with the LLaDA diffusion language model.")
    parser.add_argument("--version", action="version", version=f"llada-desktop {__version__}")
    add_log_level_option(parser, default=DEFAULT_LEVEL)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    for subparser in subparsers.choices.values():
        # after the subcommand too; the top-level value stands unless repeated here
        add_log_level_option(subparser, default=argparse.SUPPRESS)
    return parser


def add_log_level_option(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument("--log-level", choices=LEVELS, default=default, type=str.lower,
                        help=f"how much to write to the log file (default: {DEFAULT_LEVEL}; "
                             "the file is in the platform's log folder, or $LLADA_LOG_DIR)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from app.session.backends import BackendUnavailable
    from llada_core.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    setup_logging(args.log_level)
    log = logging.getLogger("app.cli")
    log.info("llada %s %s", args.command, __version__)
    try:
        check_text_arguments(args)
        return args.run(args)
    except (ValueError, CheckpointError, BackendUnavailable) as error:
        log.warning("llada %s: %s", args.command, error, exc_info=True)
        print(f"llada {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        log.warning("llada %s: %s", args.command, error, exc_info=True)
        print(f"llada {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.info("llada %s: interrupted", args.command)
        print(file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - out of memory is one sentence, the rest a bug
        from app.session.errors import GENERATION_OUT_OF_MEMORY, is_out_of_memory

        log.exception("llada %s failed", args.command)
        if not is_out_of_memory(error):
            raise
        print(f"llada {args.command}: error: {GENERATION_OUT_OF_MEMORY}", file=sys.stderr)
        return 2


def check_text_arguments(args: argparse.Namespace) -> None:
    """Every text argument must be UTF-8: Python keeps other bytes as lone surrogates, which no
    tokenizer (and no file name on some systems) takes."""
    for name, value in vars(args).items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} is not valid UTF-8 text") from None


def describe_os_error(error: OSError) -> str:
    """One sentence naming the path: 'cannot use /x/y: permission denied'."""
    import os

    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    if isinstance(error, FileExistsError) and os.path.isfile(error.filename):
        reason = "it is a file, not a folder"
    return f"cannot use {error.filename}: {reason[:1].lower() + reason[1:]}"


def gui_main(argv: Optional[Sequence[str]] = None) -> int:
    """The window (`llada-desktop`, `python -m app`); same options as `llada app`."""
    return app_cmd.gui_main(argv)
