"""What a Mac user expects of the window's chrome (issue 21 §5, issue 22's Help ▸ Open Log):
the model picker, the title, banners that clear, the narrow window, typed numbers beside the
sliders, the model's defaults, the colour tick, About, the dark banner, the download question,
Send on an empty composer, the message menu, long tokens, progress, the draft's count, the
first launch. Offscreen with pytest-qt on the tiny checkpoint; screenshots go to out/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QTimer, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox, QWidget

from app.models.defaults import DEMO_NOTE
from app.session.progress_text import progress_line, time_left
from app.history.store import Store
from llada_core.settings import SamplerSettings
from window_support import SHOTS, LOAD_TIMEOUT, Windows, collect_earlier_windows, shot  # noqa: F401

SMALL = {"gen_length": 16, "block_length": 8, "steps": 8, "mode": "exact"}
REPO = "GSAI-ML/LLaDA-8B-Instruct"
GB = 1_000_000_000


@pytest.fixture
def windows(qtbot, tmp_path):
    made = Windows(qtbot, tmp_path / "data")
    yield made
    made.close_all()


@pytest.fixture
def window(windows, tiny_checkpoint, tmp_path):
    win = windows.open(str(tiny_checkpoint), settings=SMALL, hub_cache_dir=str(tmp_path / "hub"))
    win.show()
    return win


def send_and_wait(qtbot, window, text):
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT) as blocker:
        assert window.send(text)
    return blocker.args[0]


# --- toolbar and Models dialog ----------------------------------------------------------------
def test_toolbar_shows_the_model_and_switches_through_its_picker(qtbot, window, tiny_checkpoint,
                                                                 tiny_bf16_checkpoint,
                                                                 monkeypatch):
    picker = window.model_picker
    assert picker.isVisible() and picker.text() == window.identity.label
    picker.fill_menu()
    actions = [a for a in picker.picker_menu.actions() if not a.isSeparator()]
    names = [a.text() for a in actions]
    assert "Models…" in names and "Open model folder…" in names
    ticked = [a for a in actions if a.isChecked()]
    assert len(ticked) == 1 and Path(ticked[0].toolTip()) == Path(tiny_checkpoint)
    # the picker open, over the window, for a person to look at
    picker.picker_menu.popup(picker.mapToGlobal(QPoint(0, picker.height())))
    qtbot.waitExposed(picker.picker_menu)
    image = window.grab()
    painter = QPainter(image)
    painter.drawPixmap(picker.mapTo(window, QPoint(0, picker.height())),
                       picker.picker_menu.grab())
    painter.end()
    SHOTS.mkdir(exist_ok=True)
    assert image.save(str(SHOTS / "toolbar-model-picker.png"))
    picker.picker_menu.hide()
    # switching goes through the window's usual path and the toolbar follows
    from app.models import local

    local.add_folder(window.store, tiny_bf16_checkpoint)
    picker.fill_menu()
    other = next(a for a in picker.picker_menu.actions()
                 if a.toolTip() and Path(a.toolTip()) == Path(tiny_bf16_checkpoint))
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT) as blocker:
        other.trigger()
        assert picker.text() == f"Loading {Path(tiny_bf16_checkpoint).name}…"
    assert Path(blocker.args[0]["path"]) == Path(tiny_bf16_checkpoint)
    assert picker.text() == window.identity.label
    # the known models not downloaded yet, each through the download path (which asks first)
    asked = []
    monkeypatch.setattr(window, "download_model", asked.append)
    picker.fill_menu()
    downloads = picker.download_menu.actions()
    assert downloads and all(a.text().endswith("GB…") for a in downloads)
    downloads[0].trigger()
    from app.models.catalog import recommended_entry

    assert asked == [recommended_entry().repo_id]
    models = next(a for a in picker.picker_menu.actions() if a.text() == "Models…")
    models.trigger()
    assert window.model_manager.isVisible()


def test_models_dialog_marks_the_loaded_model(qtbot, windows, tiny_checkpoint, tmp_path):
    win = windows.open(None, settings=SMALL, hub_cache_dir=str(tmp_path / "hub"))
    with qtbot.waitSignal(win.model_loaded, timeout=LOAD_TIMEOUT):
        assert win.open_folder(str(tiny_checkpoint))      # remembered as an added folder
    manager = win.show_model_manager()
    loaded = [row for row in manager.rows if row["loaded"]]
    assert len(loaded) == 1 and Path(loaded[0]["folder"]) == Path(tiny_checkpoint)
    r = manager.rows.index(loaded[0])
    status = manager.table.item(r, len(manager.COLUMNS) - 1)
    assert status.text().startswith("Loaded") and status.font().bold()
    assert not any(manager.table.item(i, 0).font().bold()
                   for i in range(len(manager.rows)) if i != r)


# --- title, banners ----------------------------------------------------------------------------
def test_window_title_follows_the_chat(qtbot, window):
    assert window.windowTitle() == "New chat — LLaDA Desktop"
    send_and_wait(qtbot, window, "Tell me a story")
    assert window.windowTitle() == "Tell me a story — LLaDA Desktop"
    window.rename_conversation(window.current_id, "Stories")
    assert window.windowTitle() == "Stories — LLaDA Desktop"
    first = window.current_id
    window.new_conversation()
    assert window.windowTitle() == "New chat — LLaDA Desktop"
    window.open_conversation(first)
    assert window.windowTitle() == "Stories — LLaDA Desktop"


def test_error_banners_clear_when_their_cause_is_gone(qtbot, windows, tiny_checkpoint, tmp_path):
    win = windows.open(None, settings=SMALL)
    win.composer.setPlainText("Hello")
    assert not win.send()
    assert win.banner.kind == "error" and "No model is loaded" in win.banner.text()
    with qtbot.waitSignal(win.model_failed, timeout=LOAD_TIMEOUT):
        win.load_model(str(tmp_path / "missing"))
    assert win.banner.text()
    with qtbot.waitSignal(win.model_loaded, timeout=LOAD_TIMEOUT):
        win.load_model(str(tiny_checkpoint))
    assert win.banner.text() == ""                    # the load error went with the new model
    win.banner.show_message("The answer failed: out of memory.", "error")
    send_and_wait(qtbot, win, "Hello again")
    assert win.banner.text() == ""                    # a new answer: the failure is history
    win.banner.show_message(DEMO_NOTE, "info")
    send_and_wait(qtbot, win, "Once more")
    assert win.banner.text() == DEMO_NOTE             # notices are not errors


# --- settings panel ---------------------------------------------------------------------------
def test_usable_at_900_px_wide_with_settings_open(qtbot, window):
    window.resize(900, 700)
    window.show_settings()
    qtbot.waitUntil(lambda: window.width() == 900)
    QApplication.processEvents()
    panel = window.settings_panel
    assert window.settings_dock.isVisible()
    panel_right = panel.mapTo(window, QPoint(panel.width(), 0)).x()
    assert panel_right <= window.width()                     # the panel itself is not cut off
    assert panel.width() >= panel.minimumSizeHint().width()
    visible = panel.rect()
    for widget in panel.findChildren(QWidget):
        if not widget.isVisibleTo(panel) or widget.width() == 0:
            continue
        top_left = widget.mapTo(panel, QPoint(0, 0))
        assert visible.contains(top_left) and top_left.x() + widget.width() <= visible.width(), \
            f"{widget.objectName() or type(widget).__name__} runs past the panel"
        if isinstance(widget, QAbstractButton) or widget.inherits("QAbstractSpinBox"):
            assert widget.width() >= widget.minimumSizeHint().width(), \
                f"{widget.objectName() or type(widget).__name__} is clipped"
    centre = window.centralWidget()
    assert window.send_button.mapTo(window, QPoint(window.send_button.width(), 0)).x() \
        <= centre.mapTo(window, QPoint(centre.width(), 0)).x()
    assert window.composer.width() >= 200
    shot(window, "window-900px-settings.png")


def test_typed_numbers_beside_sliders_stay_in_sync_and_valid(qtbot, window):
    panel = window.settings_panel
    changes = []
    panel.changed.connect(changes.append)
    panel.gen_length.box.setValue(48)
    panel.gen_length.box.setValue(40)          # not on the slider's list: taken as typed
    assert panel.gen_length.value() == 40 and changes[-1]["gen_length"] == 40
    assert panel.gen_length.choices[panel.gen_length.slider.value()] == 40
    assert 40 % panel.block_length.value() == 0              # the others followed
    panel.block_length.box.setValue(7)         # 7 does not divide 40: the nearest divisor
    block = panel.block_length.value()
    assert 40 % block == 0 and block in (5, 8) and panel.block_length.box.value() == block
    panel.steps.box.setValue(3)
    settings = panel.settings()
    SamplerSettings(**{k: v for k, v in settings.items() if k != "constraints"})
    assert panel.steps.box.value() == settings["steps"] and changes[-1] == settings
    panel.steps.slider.setValue(panel.steps.slider.maximum())
    assert panel.steps.box.value() == panel.steps.value() == 40
    panel.mode.setCurrentIndex(panel.mode.findData("fast"))
    panel.parallel.setChecked(True)
    panel.threshold_box.setValue(0.8)
    assert panel.threshold.value() == 80 and panel.settings()["threshold"] == 0.8
    panel.threshold.setValue(95)
    assert panel.threshold_box.value() == pytest.approx(0.95)


def test_model_defaults_button_returns_to_the_models_own(qtbot, windows, tiny_checkpoint,
                                                          tmp_path):
    folder = tmp_path / "model-with-defaults"
    shutil.copytree(tiny_checkpoint, folder)
    own = {"gen_length": 48, "block_length": 16, "steps": 24, "mode": "fast", "threshold": 0.85}
    (folder / "sampler_defaults.json").write_text(json.dumps(own))
    win = windows.open(str(folder))
    panel = win.settings_panel
    panel.gen_length.box.setValue(128)
    panel.temperature.setValue(0.7)
    assert panel.settings()["gen_length"] == 128
    panel.reset.click()
    settings = panel.settings()
    assert {k: settings[k] for k in own} == own
    assert settings["temperature"] == 0.0
    assert win.store.conversation(win.current_id).settings["gen_length"] == 48


# --- menus and About -------------------------------------------------------------------------
def test_colour_menu_has_one_tick_that_follows_the_mode(qtbot, window):
    actions = window.colour_actions
    assert all(a.isCheckable() for a in actions.values())
    assert actions["state"].isChecked()
    actions["confidence"].trigger()
    assert [k for k, a in actions.items() if a.isChecked()] == ["confidence"]
    assert window.colour_mode == "confidence"
    window.live.set_mode("reveal")                       # changed from the inspector
    assert [k for k, a in actions.items() if a.isChecked()] == ["reveal"]


def test_about_says_what_runs_and_where_files_live(qtbot, window, monkeypatch):
    from app import __version__
    from app.session.logs import log_dir, log_path

    window.about_action.trigger()
    about = window.about_dialog
    qtbot.waitExposed(about)
    values = {name: label.text() for name, label in about.values.items()}
    assert values["Version"] == __version__
    assert values["Backend"].startswith(window.model_info["backend"])
    assert values["Weights"] == str(window.model_info["dtype"])
    assert window.identity.label in values["Model"]
    assert Path(values["Data folder"]) == Path(window.store.path).parent
    assert Path(values["Log folder"]) == log_dir()
    shot(about, "about.png")
    opened = []
    monkeypatch.setattr("app.ui.about.QDesktopServices.openUrl",
                        lambda url: opened.append(url) or True)
    log_path().parent.mkdir(parents=True, exist_ok=True)
    log_path().touch()
    window.open_log_action.trigger()
    assert opened == [QUrl.fromLocalFile(str(log_path()))]


def test_open_log_without_a_log_file_says_so(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("LLADA_LOG_DIR", str(tmp_path / "no-logs"))
    assert not window.open_log()
    assert "no log file yet" in window.banner.text()


def test_demo_banner_follows_dark_mode(qtbot, window):
    app = QApplication.instance()
    light = app.palette()
    window.banner.show_message(DEMO_NOTE, "info")
    light_background = QColor(window.banner.colours()[0])
    dark = QPalette(light)
    for role, colour in ((QPalette.ColorRole.Window, "#1e1e1e"),
                         (QPalette.ColorRole.WindowText, "#e6e6e6"),
                         (QPalette.ColorRole.Base, "#262626"),
                         (QPalette.ColorRole.AlternateBase, "#303030"),
                         (QPalette.ColorRole.Text, "#e6e6e6"),
                         (QPalette.ColorRole.Button, "#333333"),
                         (QPalette.ColorRole.ButtonText, "#e6e6e6")):
        dark.setColor(role, QColor(colour))
    app.setPalette(dark)
    try:
        qtbot.waitUntil(lambda: QColor(window.banner.colours()[0]).lightness() < 100)
        qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Window).lightness()
                        < 100)
        background, foreground = (QColor(c) for c in window.banner.colours())
        assert background.name() in window.banner.styleSheet()
        assert foreground.lightness() - background.lightness() > 120      # readable
        assert light_background.lightness() > 180
        shot(window, "demo-banner-dark.png")
    finally:
        app.setPalette(light)
    qtbot.waitUntil(lambda: QColor(window.banner.colours()[0]).lightness() > 180)


# --- downloads -------------------------------------------------------------------------------
def answer_question(qtbot, button_text: str, seen: list) -> None:
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append((box.text(), box.informativeText()))
        shot(box, "download-question.png" if button_text == "Cancel" else "download-refused.png")
        next(b for b in box.buttons() if b.text().replace("&", "") == button_text).click()

    QTimer.singleShot(0, answer)


def test_a_large_download_asks_first_with_size_and_free_disk(qtbot, window, monkeypatch):
    monkeypatch.setattr("app.models.download.free_space", lambda folder: 100 * GB)
    seen = []
    answer_question(qtbot, "Cancel", seen)
    assert window.download_model(REPO) is None
    text, detail = seen[0]
    assert "16.0 GB" in text and "100 GB free" in detail
    assert window.download_dialog is None


def test_a_download_without_room_is_refused_politely(qtbot, window, monkeypatch):
    monkeypatch.setattr("app.models.download.free_space", lambda folder: 5 * GB)
    seen = []
    answer_question(qtbot, "OK", seen)
    assert window.download_model(REPO) is None
    text, detail = seen[0]
    assert "not enough disk space" in text and "16.0 GB" in detail and "5.0 GB free" in detail
    assert window.download_dialog is None


# --- composer and messages -------------------------------------------------------------------
def test_send_is_disabled_on_an_empty_composer(qtbot, window):
    assert not window.send_button.isEnabled()
    window.composer.setPlainText("   \n ")
    assert not window.send_button.isEnabled()
    window.composer.setPlainText("Hi")
    assert window.send_button.isEnabled()
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        window.send_button.click()
    assert window.composer.toPlainText() == "" and not window.send_button.isEnabled()


def test_message_menu_copies_and_retries(qtbot, window):
    send_and_wait(qtbot, window, "Say **hello**")
    question, answer = window.transcript.views
    menu = question.menu()
    labels = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert labels[:3] == ["Copy", "Copy as Markdown", "Retry"]
    action = {a.text(): a for a in menu.actions()}
    action["Copy"].trigger()
    assert QGuiApplication.clipboard().text() == "Say **hello**"    # a question reads as typed
    action["Copy as Markdown"].trigger()
    assert QGuiApplication.clipboard().text() == "Say **hello**"
    answer_menu = answer.menu()
    answer_menu.popup(answer.mapToGlobal(QPoint(40, 20)))
    qtbot.waitExposed(answer_menu)
    shot(answer_menu, "message-context-menu.png")
    answer_menu.hide()
    old = answer.message.id
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT) as blocker:
        {a.text(): a for a in answer_menu.actions()}["Retry"].trigger()
    messages = window.store.messages(window.current_id)
    assert [m.role for m in messages] == ["user", "assistant"]     # answered again, in place
    assert messages[-1].id == blocker.args[0] != old
    # Retry on the question of an earlier turn asks it again at the end
    send_and_wait(qtbot, window, "Second question")
    first_question = window.transcript.views[0]
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        {a.text(): a for a in first_question.menu().actions()}["Retry"].trigger()
    texts = [(m.role, m.text) for m in window.store.messages(window.current_id)
             if m.role == "user"]
    assert texts == [("user", "Say **hello**"), ("user", "Second question"),
                     ("user", "Say **hello**")]


def test_long_unbroken_tokens_wrap_inside_the_bubble(qtbot, window):
    long_token = "x" * 400
    conversation = window.current_id
    window.store.add_message(conversation, "user", f"See {long_token} and https://example.com/"
                             + "a" * 200)
    window.resize(900, 700)
    window.show_messages()
    qtbot.waitUntil(lambda: bool(window.transcript.views))
    QApplication.processEvents()
    view = window.transcript.views[0]
    viewport = window.transcript.viewport().width()
    qtbot.waitUntil(lambda: view.width() <= viewport)
    assert view.body.width() <= viewport and view.body.height() > 3 * view.fontMetrics().height()
    assert window.store.message(view.message.id).text.count("\u200b") == 0
    shot(window, "long-token-wrap.png")


# --- progress and the context count -----------------------------------------------------------
def test_progress_line_arithmetic():
    assert progress_line(4, 16, 0.2) == "pass 4/16 (25 %)"           # too soon for a rate
    assert progress_line(4, 16, 2.0) == "pass 4/16 (25 %) · about 6 s left"
    assert progress_line(10, 100, 20.0) == "pass 10/100 (10 %) · about 3 min 00 s left"
    assert time_left(16, 16, 9.0) is None


def test_long_answers_show_progress_and_time_left(qtbot, windows, tiny_checkpoint):
    win = windows.open(str(tiny_checkpoint), step_delay=0.15,
                       settings={"gen_length": 16, "block_length": 16, "steps": 16,
                                 "mode": "exact"})
    lines = []
    win.frame_received.connect(lambda *_: lines.append(win.status.text()))
    send_and_wait(qtbot, win, "Count with me")
    assert lines[0].startswith("Generating… pass 1/16")
    assert any("left" in line for line in lines)
    assert lines[-1].startswith("Generating… pass 16/16 (100 %)")


def test_token_counter_includes_the_draft(qtbot, window):
    count = window.context.count
    qtbot.waitUntil(lambda: "token" in count.text(), timeout=10_000)
    empty = count.text()
    window.composer.setPlainText("A draft with a good number of words in it, typed but not sent")
    qtbot.waitUntil(lambda: count.text() != empty, timeout=10_000)
    used = lambda text: int(text.split()[0].replace(",", ""))  # noqa: E731
    assert used(count.text()) > used(empty)


# --- first launch ---------------------------------------------------------------------------
def test_welcome_page_on_a_real_first_launch(qtbot, windows, tmp_path, monkeypatch):
    from app.cli.app_cmd import WELCOMED, is_first_launch, startup_model

    monkeypatch.setattr("app.models.defaults.installed_catalog_model", lambda: None)
    store = Store.in_folder(tmp_path / "first")
    try:
        assert is_first_launch(store)
        assert startup_model(store, None, scripted=False) is None      # the welcome page
        assert startup_model(store, None, scripted=True) is not None   # --prompt: the demo
        assert startup_model(store, "/some/model", scripted=False) == "/some/model"
        store.set_preference(WELCOMED, True)
        assert not is_first_launch(store)
        assert startup_model(store, None, scripted=False) is not None  # then the demo
        store.set_preference("last_model", "/the/last")
        assert startup_model(store, None, scripted=False) == "/the/last"
    finally:
        store.close()
    win = windows.open(None, data=tmp_path / "fresh")
    win.show()
    assert win.welcome_shown and win.welcome.isVisible()
    shot(win, "welcome-first-launch.png")


def test_screenshot_step_past_the_last_pass_says_so(tiny_checkpoint, tmp_path):
    import subprocess
    import sys

    from backend_choice import BACKEND
    from test_app_cli import ROOT, app_env

    out = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--model", str(tiny_checkpoint),
         "--backend", BACKEND, "--device", "cpu", "--prompt", "Hello",
         "--screenshot", str(out), "--screenshot-step", "99", "--data-dir", str(tmp_path / "d"),
         "--gen-length", "16", "--steps", "8", "--block-length", "8", "--mode", "exact",
         "--timeout", "300"],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 2, result.stderr
    assert "finished after 8 passes, before pass 99" in result.stderr
    assert not out.exists()


def test_llada_app_greets_a_new_data_folder_once_then_opens_the_demo(qtbot, tmp_path,
                                                                      monkeypatch):
    from app.cli import build_parser
    from app.cli.app_cmd import WELCOMED, run
    from app.models.catalog import bundled_demo_model

    monkeypatch.setattr("app.models.defaults.installed_catalog_model", lambda: None)
    seen = []

    def look_then_quit() -> None:
        """Once the window has settled (welcome page, or its model loaded): note, close, quit."""
        window = next((w for w in QApplication.topLevelWidgets()
                       if type(w).__name__ == "MainWindow" and w.isVisible()), None)
        if window is None or not (window.welcome_shown or window.model_info is not None):
            QTimer.singleShot(50, look_then_quit)
            return
        seen.append((window.welcome_shown, window.model_path))
        window.hide()
        QApplication.instance().exit(0)

    data = tmp_path / "data"
    for _ in range(2):
        args = build_parser().parse_args(["app", "--data-dir", str(data), "--device", "cpu"])
        QTimer.singleShot(0, look_then_quit)
        assert run(args) == 0
    (first_welcome, first_model), (second_welcome, second_model) = seen
    assert first_welcome and first_model is None            # greeted, nothing loaded
    assert not second_welcome and Path(second_model) == bundled_demo_model()
    store = Store.in_folder(data)
    try:
        assert store.preference(WELCOMED) is True
    finally:
        store.close()
