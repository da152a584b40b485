"""Entry point of the bundled app (PyInstaller).

Opened from the Finder / a launcher it shows the window (like `llada-desktop`); given a `llada`
subcommand first (`app`, `download`, `generate`, ...) it runs that command, so the bundle's one
executable is also the command line: `"LLaDA Desktop" download GSAI-ML/LLaDA-8B-Instruct`.
"""

import argparse
import multiprocessing
import sys


def main() -> int:
    from app.cli import build_parser, gui_main, main as cli_main

    # macOS passes -psn_... to apps started by LaunchServices on old systems; ignore it.
    argv = [a for a in sys.argv[1:] if not a.startswith("-psn_")]
    # the names the parser knows (`eval` lives in evaluate.py: module names are not enough)
    commands = {name for action in build_parser()._actions
                if isinstance(action, argparse._SubParsersAction) for name in action.choices}
    if argv and (argv[0] in commands or argv[0] in ("-h", "--help", "--version")):
        return cli_main(argv)
    return gui_main(argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
