"""`llada app` (also `llada-desktop` and `python -m app`): the window.

With --prompt and --screenshot it runs a script: open the window, send the prompt, wait for the
answer, save a screenshot of the whole window and exit 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from app.cli.options import add_model_options, add_sampler_options, check_sampler_settings
from app.models.defaults import sampler_defaults as model_sampler_defaults


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    add_sampler_options(parser)
    # The window reopens the last model that loaded; the first time, the bundled demo model
    # when nothing else is installed, else the welcome page.
    parser.set_defaults(model=None, pick_model=False)
    parser.add_argument("--data-dir", default=None,
                        help="folder for the history database (default: $LLADA_DESKTOP_DATA, "
                             "else the platform's app-data folder)")
    parser.add_argument("--prompt", default=None, help="send this message once the model is loaded")
    parser.add_argument("--screenshot", default=None, metavar="OUT.png",
                        help="with --prompt: save a screenshot of the window after the answer, "
                             "then exit")
    parser.add_argument("--screenshot-step", type=int, default=None, metavar="K",
                        help="with --screenshot: take it while step K is on the canvas "
                             "(mid-answer) instead of after the answer")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="with --screenshot: give up after this many seconds (exit 1)")
    parser.add_argument("--colour-mode", choices=["state", "confidence", "reveal"],
                        default="state", help="how the denoising canvas colours tokens")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("app", help="open the desktop window",
                                   description="Open the LLaDA Desktop window.")
    add_arguments(parser)
    parser.set_defaults(run=run)


def sampler_defaults(args: argparse.Namespace) -> dict:
    return {"gen_length": args.gen_length, "block_length": args.block_length,
            "steps": args.steps, "temperature": args.temperature, "cfg_scale": args.cfg_scale,
            "remasking": args.remasking, "seed": args.seed, "mode": args.mode,
            "threshold": args.threshold}


def first_run_model() -> str | None:
    """With no model installed, the bundled demo model (if this build has one)."""
    from app.models.catalog import bundled_demo_model
    from app.models.defaults import installed_catalog_model

    demo = bundled_demo_model()
    if demo is None or installed_catalog_model() is not None:
        return None
    return str(demo)


WELCOMED = "welcome_shown"    # preference: the welcome page greeted this data folder once


def is_first_launch(store) -> bool:
    """A real first launch: this data folder has never had a model loaded nor shown the welcome
    page (a new user, or a fresh --data-dir)."""
    return store.preference("last_model") is None and store.preference(WELCOMED) is None


def startup_model(store, named: Optional[str], scripted: bool) -> Optional[str]:
    """The model the window opens with: the one named; else the last one that loaded; else, on a
    real first launch, none (the welcome page says what LLaDA is and offers the demo, a
    download or a folder); after that, the bundled demo when nothing else is installed. A
    scripted run (--prompt) never stops at the welcome page."""
    if named:
        return named
    last = store.preference("last_model")
    if last:
        return last
    if is_first_launch(store) and not scripted:
        return None
    return first_run_model()


def run(args: argparse.Namespace) -> int:
    check_sampler_settings(args)
    if args.screenshot and not args.prompt:
        raise ValueError("--screenshot needs --prompt (the message to send first)")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.history.store import Store, StoreError
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LLaDA Desktop")
    app.setOrganizationName("LLaDA Desktop")
    app.setDesktopFileName("llada-desktop")
    try:
        store = Store.in_folder(args.data_dir)
    except StoreError as error:
        # one sentence naming the folder (unwritable, a file in its place, a read-only database)
        print(f"{getattr(args, 'prog', 'llada app')}: error: {error}", file=sys.stderr)
        return 2
    if store.notice:
        print(f"llada app: {store.notice}", file=sys.stderr)
    from app.ui.main_window import app_icon

    app.setWindowIcon(app_icon())
    first_launch = is_first_launch(store)
    model = startup_model(store, args.model, scripted=bool(args.prompt))
    settings = sampler_defaults(args)
    settings.update({key: value for key, value in model_sampler_defaults(model).items()
                     if key not in args.lengths_given})
    window = MainWindow(store, model=model, backend=args.backend,
                        load_options={"dtype": args.dtype, "device": args.device},
                        default_settings=settings)
    window.live.set_mode(args.colour_mode)
    if args.prompt:
        # A scripted run starts a fresh conversation with the command line's settings.
        window.new_conversation()
    window.show()
    if first_launch and window.welcome_shown:
        store.set_preference(WELCOMED, True)
    outcome = {"code": 0}

    if args.prompt:
        def send(_info=None) -> None:
            window.composer.setPlainText(args.prompt)
            if not window.send():
                outcome["code"] = 1
                finish()

        def finish(_=None) -> None:
            if (args.screenshot and args.screenshot_step is not None and not shot["taken"]
                    and not outcome["code"]):
                print(f"llada app: the answer finished after {shot['passes']} passes, before "
                      f"pass {args.screenshot_step}; no screenshot taken (use --screenshot-step "
                      f"{max(1, shot['passes'])} or less)", file=sys.stderr)
                outcome["code"] = 2
                app.exit(2)
                return
            if args.screenshot:
                QTimer.singleShot(250, save_and_quit)
            elif outcome["code"]:
                app.exit(outcome["code"])

        def save_and_quit() -> None:
            if shot["taken"]:
                app.exit(outcome["code"])
                return
            show_pending_frames(window)
            app.processEvents()
            if not window.grab().save(args.screenshot):
                print(f"llada app: could not write {args.screenshot}", file=sys.stderr)
                outcome["code"] = 1
            app.exit(outcome["code"])

        def failed(message: str) -> None:
            print(f"llada app: error: {message}", file=sys.stderr)
            outcome["code"] = 2
            finish()

        def timed_out() -> None:
            print(f"llada app: no answer within {args.timeout:g} s", file=sys.stderr)
            outcome["code"] = 1
            finish()

        def frame(_request_id: int, step_frame) -> None:
            shot["passes"] = int(step_frame.index) + 1
            if args.screenshot_step is not None and step_frame.index == args.screenshot_step - 1:
                # the worker is throttled by nothing here, so save now, before the next frame
                show_pending_frames(window)
                window.grab().save(args.screenshot)
                shot["taken"] = True

        shot = {"taken": False, "passes": 0}
        window.frame_received.connect(frame)
        window.model_loaded.connect(send)
        window.model_failed.connect(failed)
        window.generation_failed.connect(failed)
        window.answer_stored.connect(finish)
        if model is None:
            failed("--prompt needs --model (the model folder to load)")
        if args.screenshot:
            QTimer.singleShot(int(args.timeout * 1000), timed_out)

    code = app.exec()
    window.shutdown()
    store.close()
    return code or outcome["code"]


def show_pending_frames(window) -> None:
    """Canvases paint at the screen's rate: put their latest frame up now, for a screenshot (the
    answer denoising in its message, and the inspector)."""
    window.live.canvas.flush()
    live_answer = window.transcript.live
    if live_answer is not None:
        live_answer.canvas.flush()
        live_answer.canvas.repaint()


def gui_main(argv: Optional[Sequence[str]] = None) -> int:
    """`llada-desktop` / `python -m app`: the same options as `llada app`."""
    parser = argparse.ArgumentParser(prog="llada-desktop", description="The LLaDA Desktop window.")
    add_arguments(parser)
    from app.cli import add_log_level_option
    from app.session.logs import DEFAULT_LEVEL, setup_logging

    add_log_level_option(parser, default=DEFAULT_LEVEL)
    args = parser.parse_args(argv)
    args.prog = parser.prog
    setup_logging(args.log_level)
    from app.session.backends import BackendUnavailable
    from llada_core.checkpoint import CheckpointError

    try:
        return run(args)
    except (ValueError, CheckpointError, BackendUnavailable, FileNotFoundError) as error:
        print(f"llada-desktop: error: {error}", file=sys.stderr)
        return 2
