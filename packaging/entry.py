"""Entry point of the bundled app (PyInstaller).

Opened from the Finder / a launcher it shows the window (like `llada-desktop`); given a `llada`
subcommand first (`app`, `download`, `generate`, ...) it runs that command, so the bundle's one
executable is also the command line: `"LLaDA Desktop" download GSAI-ML/LLaDA-8B-Instruct`.
"""

import multiprocessing
import sys


def main() -> int:
    from app.cli import SUBCOMMANDS, gui_main, main as cli_main

    # macOS passes -psn_... to apps started by LaunchServices on old systems; ignore it.
    argv = [a for a in sys.argv[1:] if not a.startswith("-psn_")]
    commands = {m.__name__.rsplit(".", 1)[-1].replace("_cmd", "").replace("_", "-")
                for m in SUBCOMMANDS}
    if argv and (argv[0] in commands or argv[0] in ("-h", "--help", "--version")):
        return cli_main(argv)
    return gui_main(argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
