"""The conversation rules in the window (pytest-qt, offscreen): model switches, Base models,
context length, and nothing lost (broken folders, failed answers, regenerate, links, notices)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl

from app.session import conversation as conv
from app.models import local
from app.models.catalog import bundled_demo_model
from app.models.defaults import DEMO_NOTE, window_defaults
from app.history.store import DB_NAME
from app.ui.context import BASE_LINE
from llada_core.chat import encode_chat, encode_prompt, load_tokenizer
from window_support import FailsAfterFirstStep, Windows, collect_earlier_windows  # noqa: F401

SMALL = {"gen_length": 16, "block_length": 8, "steps": 8, "mode": "exact"}
TIMEOUT = 120_000
SCREENSHOT = Path("/tmp/issue12-switch.png")


@pytest.fixture
def make_window(qtbot, tmp_path):
    windows = Windows(qtbot, tmp_path / "data")

    def make(model, settings=None, data=None, step_delay=0.0, wait=True):
        return windows.open(str(model) if model else None, settings=settings, data=data,
                            step_delay=step_delay, wait=wait)

    yield make
    windows.close_all()


def send_and_wait(qtbot, window, text):
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as blocker:
        assert window.send(text)
    return window.store.message(blocker.args[0])


def copy_model(source: Path, target: Path, **config) -> Path:
    shutil.copytree(source, target)
    if config:
        data = json.loads((target / "config.json").read_text())
        data.update(config)
        (target / "config.json").write_text(json.dumps(data))
    return target


def test_demo_then_another_model_uses_its_defaults_and_text(qtbot, make_window, tiny_checkpoint,
                                                            tiny_tokenizer, tmp_path):
    demo = bundled_demo_model()
    if demo is None:
        pytest.skip("this build has no demo model")
    window = make_window(demo)
    assert DEMO_NOTE in window.banner.text()
    demo_defaults = window_defaults(str(demo))
    panel = window.settings_panel
    assert {k: panel.settings()[k] for k in ("gen_length", "block_length", "steps", "mode")} == \
        {k: demo_defaults[k] for k in ("gen_length", "block_length", "steps", "mode")}
    first = send_and_wait(qtbot, window, "What is 47 + 58?")
    demo_fp = window.fingerprint
    assert first.stats["model"] == str(demo) and first.stats["tokenizer"] == demo_fp
    assert first.settings["gen_length"] == demo_defaults["gen_length"]
    demo_chat = window.current_id
    # a second conversation whose settings the user changed keeps them
    changed = window.new_conversation()
    window.store.add_message(changed, "user", "mine")
    panel.temperature.setValue(0.5)
    window.open_conversation(demo_chat)

    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        assert window.request_model(str(tiny_checkpoint))
    assert window.banner.text() != DEMO_NOTE
    tiny = window_defaults(str(tiny_checkpoint))
    assert tiny["mode"] == "fast" and tiny["threshold"] == 0.9        # fast for real models
    shown = panel.settings()
    assert {k: shown[k] for k in ("gen_length", "block_length", "steps", "mode", "threshold")} \
        == {k: tiny[k] for k in ("gen_length", "block_length", "steps", "mode", "threshold")}
    assert window.store.conversation(changed).settings["temperature"] == 0.5
    assert window.store.conversation(changed).settings["gen_length"] == demo_defaults["gen_length"]

    second = send_and_wait(qtbot, window, "And now?")
    assert window.fingerprint != demo_fp
    assert second.stats["model"] == str(tiny_checkpoint)
    assert second.stats["tokenizer"] == conv.tokenizer_fingerprint(tiny_tokenizer)
    assert second.settings["gen_length"] == tiny["gen_length"]
    assert second.settings["mode"] == "fast"                          # stored with the answer
    assert second.prompt_ids == encode_chat(tiny_tokenizer, [
        {"role": "user", "content": "What is 47 + 58?"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And now?"}])
    metas = [v.meta.text() for v in window.transcript.views if v.message.role == "assistant"]
    assert f"model {demo.name}" in metas[0] and f"model {tiny_checkpoint.name}" in metas[1]
    assert "mode fast" in metas[1]
    qtbot.waitUntil(lambda: "tokens" in window.context.count.text(), timeout=TIMEOUT)
    window.show()
    qtbot.waitExposed(window)
    window.live.canvas.flush()
    assert window.grab().save(str(tmp_path / "switch.png"))
    assert window.grab().save(str(SCREENSHOT))


def test_a_broken_folder_keeps_the_working_model(qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint, SMALL)
    broken = copy_model(tiny_checkpoint, tmp_path / "broken")
    shard = sorted(broken.glob("*.safetensors"))[-1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])   # header intact
    local.validate_model_folder(broken)                 # passes the quick checks
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT) as loaded, \
            qtbot.waitSignal(window.model_failed, timeout=TIMEOUT) as failed:
        assert window.open_folder(str(broken))
    assert "broken" in failed.args[0] and "still loaded" in failed.args[0]
    assert loaded.args[0]["restored"] and loaded.args[0]["path"] == str(tiny_checkpoint)
    assert window.model_info["path"] == str(tiny_checkpoint)
    assert "still loaded" in window.banner.text()
    assert str(broken.resolve()) not in local.added_folders(window.store)
    assert send_and_wait(qtbot, window, "Still here?").stats["model"] == str(tiny_checkpoint)


def test_a_failed_answer_leaves_no_orphan_turn(qtbot, make_window, tiny_checkpoint):
    window = make_window(tiny_checkpoint, SMALL)
    first = send_and_wait(qtbot, window, "First")
    worker = window.workers.worker
    real = worker.current.backend
    worker.current.backend = FailsAfterFirstStep(real, MemoryError())
    with qtbot.waitSignal(window.generation_failed, timeout=TIMEOUT):
        assert window.send("This one fails")
    messages = window.store.messages(window.current_id)
    assert [m.id for m in messages] == [messages[0].id, first.id]      # no orphan user turn
    assert window.composer.toPlainText() == "This one fails"           # one Enter to retry
    assert "back in the box" in window.status.text()
    # Regenerate keeps the old answer while the new one runs, and when it fails
    with qtbot.waitSignal(window.generation_failed, timeout=TIMEOUT):
        assert window.regenerate()
        assert window.store.message(first.id) is not None
    assert [m.id for m in window.store.messages(window.current_id)][-1] == first.id
    assert window.composer.toPlainText() == "This one fails"
    worker.current.backend = real
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as blocker:
        assert window.regenerate()
        assert window.store.message(first.id) is not None             # still there meanwhile
    messages = window.store.messages(window.current_id)
    assert [m.role for m in messages] == ["user", "assistant"] and messages[1].id == blocker.args[0]
    assert window.store.message(first.id) is None


def test_a_base_model_gets_completion_mode(qtbot, make_window, tiny_checkpoint, tmp_path):
    base = copy_model(tiny_checkpoint, tmp_path / "base")
    data = json.loads((base / "tokenizer.json").read_text())
    chat = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in chat]
    (base / "tokenizer.json").write_text(json.dumps(data))
    config = json.loads((base / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {k: v for k, v in config.get("added_tokens_decoder", {}).items()
                                      if v["content"] not in chat}
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    window = make_window(base, SMALL)
    assert window.identity.base and window.context.mode.text() == BASE_LINE
    assert "continue" in window.composer.placeholderText()
    answer = send_and_wait(qtbot, window, "Once upon a time")
    tokenizer = load_tokenizer(base)
    assert answer.prompt_ids == encode_prompt(tokenizer, "Once upon a time")
    assert tokenizer.convert_tokens_to_ids("<|start_header_id|>") not in answer.prompt_ids
    # back to an Instruct model: the line goes
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        window.load_model(str(tiny_checkpoint))
    assert window.context.mode.text() == "" and not window.identity.base


def test_context_count_and_dropped_turns(qtbot, make_window, tiny_checkpoint, tmp_path):
    short = copy_model(tiny_checkpoint, tmp_path / "short", max_sequence_length=64)
    window = make_window(short, SMALL)
    assert window.identity.max_length == 64
    window.composer.setPlainText("Hello")
    qtbot.waitUntil(lambda: window.context.count.text().endswith("/ 64 tokens"), timeout=TIMEOUT)
    used = int(window.context.count.text().split(" /")[0])
    assert used == len(encode_chat(load_tokenizer(short),
                                   [{"role": "user", "content": "Hello"}])) + SMALL["gen_length"]
    window.composer.clear()
    for n in range(4):
        answer = send_and_wait(qtbot, window, f"Tell me about number {n}, please, in detail")
    assert answer.stats.get("dropped", 0) >= 2
    assert len(answer.prompt_ids) + SMALL["gen_length"] <= 64
    assert "left out" in window.status.text() or "left out" in window.context.count.text()
    assert len(window.store.messages(window.current_id)) == 8            # history keeps all
    window.composer.setPlainText("word " * 80)
    qtbot.waitUntil(lambda: "more than this model's context" in window.context.count.text(),
                    timeout=TIMEOUT)


def test_notices_links_and_the_demo_in_the_model_list(qtbot, make_window, tmp_path, monkeypatch):
    data = tmp_path / "garbage"
    data.mkdir()
    (data / DB_NAME).write_bytes(b"\x00garbage\xff" * 1000)
    demo = bundled_demo_model()
    window = make_window(demo, data=data, wait=demo is not None)
    # the history notice and the demo's note are both on screen
    assert "moved" in window.notice.text()
    if demo is not None:
        assert DEMO_NOTE in window.banner.text()
    window.show()
    assert window.notice.isVisible()
    manager = window.show_model_manager()
    if demo is not None:
        rows = [row for row in manager.rows if row["kind"] == "demo"]
        assert rows and rows[0]["folder"] == str(demo)
    manager.close()
    # links in answers: only http(s) reaches the browser
    opened = []
    monkeypatch.setattr("app.ui.transcript.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toString()) or True)
    window.store.add_message(window.current_id, "assistant",
                             "[a](https://example.com) [b](file:///etc/passwd) [c](javascript:x)")
    window.show_messages()
    view = window.transcript.views[-1]
    assert not view.body.openExternalLinks()
    for url in ("file:///etc/passwd", "javascript:x", "https://example.com"):
        view.body.linkActivated.emit(url)
    assert opened == [QUrl("https://example.com").toString()]
