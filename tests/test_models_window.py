"""The window's model side with pytest-qt, offscreen: welcome page, download dialog against the
local fake Hub, fit check, model manager. Screenshots go to out/ (git-ignored) for a person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.models import catalog, fit, local, units
from app.models.download import cached_model, downloaded_snapshot
from window_support import Windows, collect_earlier_windows, shot  # noqa: F401

SMALL = {"gen_length": 16, "block_length": 8, "steps": 8}
REPO = "GSAI-ML/LLaDA-8B-Instruct"       # served by the fake Hub with the tiny checkpoint
LOAD_TIMEOUT = 120_000


@pytest.fixture
def hub(fake_hub):
    return fake_hub(REPO)


def agree_to_downloads(monkeypatch) -> None:
    """The fake Hub serves the tiny checkpoint under a 16 GB catalog entry: the question before
    a large download is answered Download, on a disk with room (tests/test_window_chrome.py
    covers the question itself)."""
    monkeypatch.setattr("app.models.download.free_space", lambda folder: 10 ** 12)

    def agree(parent, name, needed, free):
        box, room = real_box(parent, name, needed, free)
        box.exec = lambda: next(b for b in box.buttons() if b.text() == "Download").click()
        return box, room

    import app.ui.models_ui as models_ui
    real_box = models_ui.download_box
    monkeypatch.setattr(models_ui, "download_box", agree)


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    windows = Windows(qtbot, tmp_path / "data")
    monkeypatch.setattr("app.session.backends.is_apple_silicon", lambda: False)
    agree_to_downloads(monkeypatch)

    def make(model=None, endpoint=None):
        window = windows.open(model, settings=SMALL, wait=False,
                              hub_cache_dir=str(tmp_path / "hub"), hub_endpoint=endpoint)
        window.show()
        return window

    yield make
    windows.close_all()


def test_first_run_shows_the_welcome_page(qtbot, make_window, monkeypatch):
    monkeypatch.setattr("app.ui.models_ui.bundled_demo_model", lambda: None)  # a build without it
    window = make_window()
    assert window.welcome_shown and not window.composer_box.isVisible()
    page = window.welcome
    from PySide6.QtWidgets import QLabel

    texts = " ".join(label.text() for label in page.findChildren(QLabel))
    assert "writes by diffusion" in texts and "watch every answer unmask" in texts
    assert page.download_button.isVisible()
    assert "LLaDA 8B Instruct (original, bf16)" in page.download_button.text()
    assert "16.0 GB" in page.download_button.text()
    assert page.open_button.isVisible()
    assert not page.demo_button.isVisible()
    assert not page.use_button.isVisible()
    shot(window, "welcome-page.png")


def test_welcome_offers_the_demo_only_when_it_is_bundled(qtbot, make_window, monkeypatch,
                                                         tiny_checkpoint):
    monkeypatch.setattr("app.ui.models_ui.bundled_demo_model", lambda: tiny_checkpoint)
    window = make_window()
    assert window.welcome.demo_button.isVisible()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        window.welcome.demo_button.click()
    assert not window.welcome_shown and window.composer_box.isVisible()


def test_an_example_on_the_welcome_page_loads_the_demo_and_asks_it(qtbot, make_window):
    from app.models.defaults import DEMO_EXAMPLES

    window = make_window()
    chips = window.welcome.demo_examples
    assert chips.isVisible() and chips.prompts() == list(DEMO_EXAMPLES)
    shot(window, "welcome-demo-examples.png")
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        chips.buttons[0].click()
    messages = window.store.messages(window.current_id)
    assert [(m.role, m.text) for m in messages][0] == ("user", DEMO_EXAMPLES[0])
    assert messages[1].role == "assistant"
    # a new chat with the demo offers the same prompts, and a click sends one
    window.new_conversation()
    examples = window.transcript.examples
    qtbot.waitUntil(examples.isVisible)
    assert examples.prompts() == list(DEMO_EXAMPLES)
    qtbot.wait(50)  # the previous chat's messages are deleted by the event loop
    shot(window, "demo-empty-chat.png")
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        examples.buttons[1].click()
    assert window.store.messages(window.current_id)[0].text == DEMO_EXAMPLES[1]
    assert not window.transcript.placeholder.isVisible()
    qtbot.waitUntil(lambda: len(window.transcript.views) == 2
                    and window.transcript.views[1].isVisible())
    shot(window, "demo-example-answered.png")


def test_other_models_offer_no_examples(qtbot, make_window, tiny_checkpoint):
    window = make_window(str(tiny_checkpoint))
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        pass
    assert window.transcript.placeholder.isVisible()
    assert window.transcript.examples.prompts() == []
    assert not window.transcript.examples.isVisible()


def test_recommended_model_on_apple_silicon_is_mlx(qtbot):
    page = __import__("app.ui.models_ui", fromlist=["WelcomePage"]).WelcomePage(
        catalog.recommended_entry(apple_silicon=True, memory=16 * 2**30))
    qtbot.addWidget(page)
    assert "MLX 8-bit" in page.download_button.text() and "8.5 GB" in page.download_button.text()


def test_download_from_the_welcome_page_then_load(qtbot, make_window, hub, tmp_path):
    hub.delay_per_chunk = 0.005
    hub.hold_after = 160 * 1024
    window = make_window(endpoint=hub.url)
    window.welcome.download_button.click()
    dialog = window.download_dialog
    assert dialog is not None and dialog.running
    assert hub.holding.wait(60)
    qtbot.waitUntil(lambda: 0.1 < dialog.bar.value() / 1000 < 0.9, timeout=60_000)
    assert " of " in dialog.detail.text() and "/s" in dialog.detail.text()
    assert "left" in dialog.detail.text()
    shot(dialog, "download-dialog.png")
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        hub.release.set()
    assert dialog.bar.value() == 1000
    assert not window.welcome_shown
    assert downloaded_snapshot(REPO, tmp_path / "hub") is not None


def test_cancel_in_the_dialog_then_resume(qtbot, make_window, hub, tmp_path):
    hub.hold_after = 160 * 1024
    window = make_window(endpoint=hub.url)
    dialog = window.download_model(REPO)
    assert hub.holding.wait(60)
    qtbot.waitUntil(lambda: dialog.bar.value() > 100, timeout=60_000)
    dialog.cancel_button.click()
    hub.release.set()
    qtbot.waitUntil(lambda: dialog.resume_button.isVisible(), timeout=30_000)
    assert dialog.resume_button.text() == "Resume" and "cancelled" in dialog.message.text()
    shot(dialog, "download-cancelled.png")
    assert downloaded_snapshot(REPO, tmp_path / "hub") is None       # no half model
    assert window.model_info is None and window.welcome_shown
    hub.hold_after = None
    hub.requests.clear()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        dialog.resume_button.click()
    assert any("Range" in r.headers for r in hub.requests if r.method == "GET")


def test_download_errors_are_one_sentence_with_retry(qtbot, make_window, hub):
    window = make_window(endpoint=hub.url)
    dialog = window.download_model("nobody/nothing")
    qtbot.waitUntil(lambda: dialog.resume_button.isVisible(), timeout=30_000)
    assert dialog.resume_button.text() == "Retry"
    assert dialog.message.text().startswith("There is no model called nobody/nothing")


def click_in_modal(qtbot, button_text: str, shots: list, name: str):
    """Answer the next modal message box (after saving its picture)."""
    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, answer)
            return
        shots.append(box.text() + " " + box.informativeText())
        shot(box, name)
        for button in box.buttons():
            if button.text().replace("&", "") == button_text:
                button.click()
                return
        raise AssertionError([b.text() for b in box.buttons()])

    QTimer.singleShot(50, answer)


def test_fit_check_warns_with_numbers_and_lets_the_user_choose(qtbot, make_window,
                                                               tiny_checkpoint, monkeypatch):
    window = make_window()
    size = fit.model_bytes(tiny_checkpoint)
    monkeypatch.setattr(window, "memory_limit",
                        lambda: fit.MemoryLimit(size // 2, "memory in this computer"))
    texts: list[str] = []
    click_in_modal(qtbot, "Cancel", texts, "fit-warning.png")
    assert not window.request_model(str(tiny_checkpoint))
    assert "may not fit" in texts[0] and units.format_bytes(size) in texts[0]
    assert "memory in this computer" in texts[0]
    assert not window.loading and window.welcome_shown

    click_in_modal(qtbot, "Load anyway", texts, "fit-warning.png")
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        assert window.request_model(str(tiny_checkpoint))

    # a model that fits loads without a question
    monkeypatch.setattr(window, "memory_limit", lambda: fit.MemoryLimit(10 ** 12, "x"))
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        assert window.request_model(str(tiny_checkpoint))
    assert len(texts) == 2


def test_open_folder_validates_and_remembers_it(qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not window.open_folder(str(empty))
    assert "has no config.json" in window.banner.text()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        assert window.open_folder(str(tiny_checkpoint))
    assert local.added_folders(window.store) == [str(tiny_checkpoint.resolve())]


def test_model_manager_lists_downloads_and_deletes(qtbot, make_window, hub, tmp_path,
                                                  tiny_checkpoint):
    window = make_window(endpoint=hub.url)
    from app.models.download import ModelDownload

    ModelDownload(REPO, cache_dir=tmp_path / "hub", endpoint=hub.url).run()
    local.add_folder(window.store, tiny_checkpoint)
    manager = window.show_model_manager()
    status = {manager.table.item(r, 0).text(): manager.table.item(r, 4).text()
              for r in range(manager.table.rowCount())}
    assert status["LLaDA 8B Instruct (original, bf16)"] == "Downloaded"
    assert status["LLaDA 8B Base (bf16)"] == "Not downloaded"
    assert any(v == "Local folder" for v in status.values())
    shot(manager, "model-manager.png")
    manager.select(REPO)
    assert manager.use_button.isEnabled() and manager.delete_button.isEnabled()
    size = cached_model(REPO, tmp_path / "hub").size_bytes
    assert manager.delete_selected(confirm=False) == size
    assert f"{units.format_bytes(size)} freed" in manager.status.text()
    assert downloaded_snapshot(REPO, tmp_path / "hub") is None
    # the welcome page then offers the model that is still here: the added folder
    assert window.model_on_disk()[1] == str(tiny_checkpoint.resolve())


def test_on_a_mac_a_download_is_converted_to_mlx_8bit_before_it_loads(qtbot, make_window, hub,
                                                                       tmp_path, monkeypatch):
    pytest.importorskip("mlx.core")
    import app.session.backends

    monkeypatch.setattr(app.session.backends, "is_apple_silicon", lambda: True)
    window = make_window(endpoint=hub.url)
    requested = []
    monkeypatch.setattr(window, "request_model", requested.append)  # the folder it would load
    dialog = window.download_model(REPO)
    qtbot.waitUntil(lambda: bool(requested), timeout=LOAD_TIMEOUT)
    assert dialog.bar.value() == 1000
    converted = Path(requested[0])
    assert converted.name.endswith("-mlx-8bit") and converted.parent.name == "models"
    config = json.loads((converted / "config.json").read_text())
    assert config["quantization"]["bits"] == 8
