"""The window, offscreen with pytest-qt, on the tiny float32 checkpoint."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from PySide6.QtCore import QThread, Qt, QTimer
from PySide6.QtGui import QGuiApplication

from app.history import trace as trace_mod
from app.history.store import DB_NAME, Store
from app.ui.canvas import EARLIER, HIGH, LOW, MASKED, MID, NEW, CanvasFrame, DenoiseCanvas
from backend_choice import BACKEND
from llada_core.chat import answer_text, continue_conversation
from llada_core.settings import SamplerSettings
from window_support import FailsAfterFirstStep, Windows, collect_earlier_windows  # noqa: F401

SMALL = {"gen_length": 16, "block_length": 8, "steps": 8}
LOAD_TIMEOUT = 120_000
ANSWER_TIMEOUT = 120_000


@pytest.fixture
def make_window(qtbot, tmp_path, tiny_checkpoint):
    windows = Windows(qtbot, tmp_path / "data")

    def make(model="tiny", step_delay=0.0, settings=None, data=None, wait=True):
        path = str(tiny_checkpoint) if model == "tiny" else model
        # The reference sampler unless a test says otherwise (real models default to fast).
        return windows.open(path, settings={"mode": "exact", **(settings or SMALL)},
                            step_delay=step_delay, data=data, wait=wait)

    yield make
    windows.close_all()


def collect_frames(window):
    frames = []
    window.frame_received.connect(lambda _rid, frame: frames.append(frame))
    return frames


def send_and_wait(qtbot, window, text):
    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        assert window.send(text)
    return blocker.args[0]


def test_send_frames_reach_canvas_and_answer_is_stored(qtbot, make_window, tiny_tokenizer):
    window = make_window()
    frames = collect_frames(window)
    qtbot.keyClicks(window.composer, "Hello")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer, "there")
    assert window.composer.toPlainText() == "Hello\nthere"   # Shift+Enter: a new line
    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)    # Enter: send
        assert window.send_button.text() == "Stop"
        assert window.composer.toPlainText() == ""
    message_id = blocker.args[0]

    assert len(frames) == SMALL["steps"] and frames[-1].done
    canvas = window.live.canvas
    assert canvas.frames_received == len(frames)
    assert 1 <= canvas.frames_shown <= len(frames)
    assert canvas.frame.index == frames[-1].index and canvas.frame.done
    assert len(canvas.layout_cells(600)) == SMALL["gen_length"]
    assert window.send_button.text() == "Send"

    user, answer = window.store.messages(window.current_id)
    assert (user.role, user.text) == ("user", "Hello\nthere")
    assert answer.id == message_id and answer.role == "assistant"
    tokenizer = tiny_tokenizer
    assert answer.text == answer_text(tokenizer, [int(t) for t in frames[-1].tokens])
    assert answer.stats["nfe"] == SMALL["steps"] and answer.stats["steps"] == SMALL["steps"]
    assert answer.stats["seconds"] > 0 and answer.stats["tokens_per_second"] > 0
    assert {k: answer.settings[k] for k in SMALL} == SMALL
    assert answer.has_trace and answer.prompt_ids
    assert window.store.conversation(window.current_id).title == "Hello there"
    # the transcript shows both messages, with the answer's stats
    assert len(window.transcript.views) == 2
    assert "8 passes (NFE)" in window.transcript.views[1].meta.text()


def test_stop_mid_answer(qtbot, make_window):
    settings = {"gen_length": 32, "block_length": 8, "steps": 32}
    window = make_window(step_delay=0.05, settings=settings)
    frames = collect_frames(window)
    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        assert window.send("Count to ten")
        qtbot.waitUntil(lambda: len(frames) >= 3, timeout=ANSWER_TIMEOUT)
        window.stop_action.trigger()
        # said at once, before the worker has finished its step
        assert window.send_button.text() == "Stopping…" and not window.send_button.isEnabled()
        assert "Stopping" in window.status.text()
        frames_at_stop = len(frames)
    assert len(frames) <= frames_at_stop + 1  # the step being computed, then no more
    assert len(frames) < settings["steps"]
    assert not frames[-1].done
    answer = window.store.message(blocker.args[0])
    assert answer.stats["stopped"] is True and answer.stats["steps"] == len(frames)
    trace = trace_mod.decode(window.store.trace_blob(answer.id))
    assert trace.num_steps == len(frames) and not trace.done
    assert window.send_button.text() == "Send" and not window.send_button.isEnabled()  # empty
    assert not window.generating
    # the app goes on: the next message is answered in full
    more = collect_frames(window)
    send_and_wait(qtbot, window, "Again")
    assert len(more) == settings["steps"]


def test_event_loop_keeps_running_during_load_and_generation(qtbot, make_window):
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    window = make_window(step_delay=0.03, settings={"gen_length": 16, "block_length": 8,
                                                    "steps": 16}, wait=False)
    # loading happens on the worker thread: the constructor returned before the model is there
    assert window.model_info is None
    assert window.workers.worker.thread() is window.workers.thread
    assert window.workers.thread is not QThread.currentThread()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        pass
    ticks.clear()
    started = time.perf_counter()
    send_and_wait(qtbot, window, "Hi")
    elapsed = time.perf_counter() - started
    timer.stop()
    assert elapsed >= 16 * 0.03
    assert len(ticks) >= 20       # the GUI thread kept ticking while 16 steps were generated


def test_replay_reproduces_the_live_frames(qtbot, make_window):
    window = make_window(settings={"gen_length": 16, "block_length": 4, "steps": 16})
    frames = collect_frames(window)
    message_id = send_and_wait(qtbot, window, "Replay me")
    trace = trace_mod.decode(window.store.trace_blob(message_id))
    assert trace.num_steps == len(frames)
    for live, replayed in zip(frames, trace.frames()):
        assert (live.index, live.block, live.nfe, live.committed, live.done) == \
               (replayed.index, replayed.block, replayed.nfe, replayed.committed, replayed.done)
        np.testing.assert_array_equal(live.tokens, replayed.tokens)
        np.testing.assert_array_equal(live.committed_at, replayed.committed_at)
        np.testing.assert_array_equal(live.confidence, replayed.confidence)

    dialog = window.replay_message(message_id)   # in place, inside the answer's own message
    view = window.transcript.view_of(message_id)
    assert view.replay is dialog and view.body.isHidden()
    canvas = dialog.canvas
    for k in (5, 0, len(frames) - 1, 9):   # scrub back and forth
        dialog.timeline.setValue(k)
        shown = canvas.frame
        live = frames[k]
        assert shown.index == k and shown.block == live.block and shown.nfe == live.nfe
        assert shown.committed_at == [int(c) for c in live.committed_at]
        assert shown.confidence == [float(c) for c in live.confidence]
    assert dialog.position.text() == f"10/{len(frames)}"
    dialog.set_speed(0.25)
    slow = dialog.timer.interval()
    dialog.set_speed(4.0)
    assert dialog.timer.interval() * 16 == pytest.approx(slow, rel=0.05)
    dialog.timeline.setValue(0)
    dialog.play()
    qtbot.waitUntil(lambda: dialog.timeline.value() == len(frames) - 1, timeout=10_000)
    qtbot.waitUntil(lambda: not dialog.timer.isActive(), timeout=5_000)
    assert canvas.frame.done
    dialog.done_button.click()                    # back to the rendered text
    assert view.replay is None and not view.body.isHidden()


def test_sliders_never_offer_an_invalid_combination(qtbot, make_window):
    window = make_window(model=None)
    panel = window.settings_panel
    seen = []
    panel.changed.connect(seen.append)
    rng = random.Random(7)
    sliders = [panel.gen_length, panel.block_length, panel.steps]
    for _ in range(300):
        choice = rng.choice(sliders)
        if rng.random() < 0.5:
            choice.slider.setValue(rng.randint(choice.slider.minimum(), choice.slider.maximum()))
        else:
            choice.slider.triggerAction(rng.choice([
                choice.slider.SliderAction.SliderSingleStepAdd,
                choice.slider.SliderAction.SliderSingleStepSub,
                choice.slider.SliderAction.SliderToMinimum,
                choice.slider.SliderAction.SliderToMaximum]))
        values = panel.settings()
        SamplerSettings(**values)   # raises on an invalid combination
        for slider in sliders:
            assert slider.value() in slider.choices
    assert seen and all(SamplerSettings(**s) for s in seen)
    # invalid stored settings are snapped to a valid combination
    panel.set_settings({"gen_length": 64, "block_length": 24, "steps": 7})
    SamplerSettings(**panel.settings())
    # the window's defaults (no model loaded: what it was opened with; see
    # test_window_chrome.py for a model's own)
    panel.reset.click()
    assert {k: panel.settings()[k] for k in ("gen_length", "steps", "block_length")} == \
           {k: window.default_settings[k] for k in ("gen_length", "steps", "block_length")}


def test_settings_are_remembered_per_conversation(qtbot, make_window):
    window = make_window(model=None)
    first = window.current_id
    window.store.add_message(first, "user", "keep me")
    panel = window.settings_panel
    panel.gen_length.slider.setValue(panel.gen_length.choices.index(64))
    panel.block_length.slider.setValue(panel.block_length.choices.index(16))
    panel.steps.slider.setValue(panel.steps.choices.index(32))
    panel.temperature.setValue(0.5)
    panel.seed.setValue(42)
    wanted = panel.settings()
    second = window.new_conversation()
    assert second != first
    assert {k: panel.settings()[k] for k in SMALL} == SMALL
    window.open_conversation(first)
    assert panel.settings() == wanted
    assert window.store.conversation(first).settings == wanted


def test_multi_turn_prompt_follows_continue_conversation(qtbot, make_window, tiny_tokenizer):
    window = make_window()
    first = window.store.message(send_and_wait(qtbot, window, "First question"))
    second = window.store.message(send_and_wait(qtbot, window, "Second question"))
    tokenizer = tiny_tokenizer
    answer_ids = trace_mod.decode(window.store.trace_blob(first.id)).tokens
    assert second.prompt_ids == continue_conversation(
        tokenizer, first.prompt_ids + answer_ids, "Second question")
    assert first.prompt_ids == continue_conversation(tokenizer, None, "First question")


def test_regenerate_replaces_the_last_answer(qtbot, make_window):
    window = make_window(settings={"gen_length": 16, "block_length": 8, "steps": 8,
                                   "temperature": 1.0})
    first = window.store.message(send_and_wait(qtbot, window, "Say something"))
    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        window.regenerate_action.trigger()
    again = window.store.message(blocker.args[0])
    messages = window.store.messages(window.current_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].id == again.id != first.id
    assert again.prompt_ids == first.prompt_ids


def test_shortcuts(make_window):
    window = make_window(model=None)

    def keys(action):
        return [k.toString() for k in action.shortcuts()]

    assert "Ctrl+N" in keys(window.new_action)
    assert "Esc" in keys(window.stop_action)
    assert "Ctrl+E" in keys(window.export_action)
    assert "Ctrl+R" in keys(window.regenerate_action)
    assert "Ctrl+," in keys(window.settings_action)


def test_keyboard_shortcuts_work(qtbot, make_window):
    settings = {"gen_length": 32, "block_length": 8, "steps": 32}
    window = make_window(step_delay=0.05, settings=settings)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    ctrl = Qt.KeyboardModifier.ControlModifier

    window.settings_dock.hide()
    qtbot.keyClick(window.composer, Qt.Key.Key_Comma, ctrl)          # Ctrl+, settings
    assert not window.settings_dock.isHidden()

    frames = collect_frames(window)
    qtbot.keyClicks(window.composer, "Stop me with Esc")
    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(frames) >= 2, timeout=ANSWER_TIMEOUT)
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)           # Esc stops
    assert window.store.message(blocker.args[0]).stats.get("stopped")
    assert len(frames) < settings["steps"]

    with qtbot.waitSignal(window.answer_stored, timeout=ANSWER_TIMEOUT) as blocker:
        qtbot.keyClick(window.composer, Qt.Key.Key_R, ctrl)          # Ctrl+R regenerates
        qtbot.waitUntil(lambda: window.generating, timeout=5000)
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)
    messages = window.store.messages(window.current_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].id == blocker.args[0]

    before = window.current_id
    qtbot.keyClick(window.composer, Qt.Key.Key_N, ctrl)              # Ctrl+N new chat
    assert window.current_id != before and window.store.messages(window.current_id) == []


def test_model_that_fails_to_load_shows_one_message(qtbot, make_window, tmp_path,
                                                    tiny_checkpoint):
    missing = tmp_path / "no-such-model"
    window = make_window(model=str(missing), wait=False)
    with qtbot.waitSignal(window.model_failed, timeout=LOAD_TIMEOUT) as blocker:
        pass
    message = blocker.args[0]
    assert "no-such-model" in message and "Traceback" not in message
    assert not window.banner.isHidden() and window.banner.text() == message
    # the app stays usable
    assert not window.send("hello")
    assert "No model" in window.banner.text()
    cid = window.new_conversation()
    window.rename_conversation(cid, "Still works")
    assert window.store.conversation(cid).title == "Still works"

    wrong = tmp_path / "wrong-layout"
    wrong.mkdir()
    (wrong / "config.json").write_text('{"model_type": "gpt2"}')
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (wrong / name).write_bytes((tiny_checkpoint / name).read_bytes())
    with qtbot.waitSignal(window.model_failed, timeout=LOAD_TIMEOUT) as blocker:
        window.load_model(str(wrong))
    assert "gpt2" in blocker.args[0] and "Traceback" not in blocker.args[0]

    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
        window.load_model(str(tiny_checkpoint))
    assert not not window.banner.isHidden()
    send_and_wait(qtbot, window, "Now it works")


def test_garbage_database_is_moved_aside_and_the_app_works(qtbot, make_window, tmp_path):
    data = tmp_path / "garbage"
    data.mkdir()
    (data / DB_NAME).write_bytes(b"\x00garbage\xff" * 1000)
    window = make_window(data=data)
    assert not window.notice.isHidden() and "moved" in window.notice.text()
    assert any(p.name.startswith(DB_NAME + ".corrupt-") for p in data.iterdir())
    send_and_wait(qtbot, window, "Hello again")
    assert len(Store.in_folder(data).messages(window.current_id)) == 2


def test_conversation_list_new_rename_search_delete(qtbot, make_window):
    window = make_window(model=None)
    a = window.current_id
    window.store.add_message(a, "user", "apples and pears")
    b = window.new_conversation()
    window.store.add_message(b, "user", "bananas")
    window.rename_conversation(b, "Fruit talk")
    window.refresh_conversations()
    assert set(window.conversations.ids()) == {a, b}
    assert window.conversations.list.currentItem().text() == "Fruit talk"
    window.conversations.search.setText("pears")
    assert window.conversations.ids() == [a]
    window.conversations.search.setText("")
    window.conversations.list.setCurrentRow(window.conversations.ids().index(a))
    assert window.current_id == a
    window.delete_conversation(a, confirm=False)
    assert window.conversations.ids() == [b] and window.current_id == b
    assert window.store.conversation(a) is None


def test_copy_and_export_from_the_window(qtbot, make_window, tmp_path):
    window = make_window()
    send_and_wait(qtbot, window, "Copy <b>me</b>")
    before = window.current_id
    window.copy_message(window.store.messages(window.current_id)[0].id)
    assert QGuiApplication.clipboard().text() == "Copy <b>me</b>"
    for suffix in ("md", "json", "html", "pdf"):
        path = window.export_conversation(tmp_path / f"chat.{suffix}")
        assert path.stat().st_size > 100
    imported = window.import_conversation(tmp_path / "chat.json")
    assert imported != before and window.current_id == imported
    assert [m.text for m in window.store.messages(imported)][0] == "Copy <b>me</b>"


def canvas_frame(index=2, total=4):
    # positions: masked, committed at step 0 (earlier), committed now with 3 confidences
    return CanvasFrame(index=index, block=0, committed_at=[-1, 0, index, index, index],
                       confidence=[0.0, 0.9, 0.1, 0.5, 0.95],
                       pieces=["", " Hello", " low", " mid", " high"], block_length=4,
                       total_steps=total)


def test_canvas_colour_modes(qtbot):
    canvas = DenoiseCanvas()
    qtbot.addWidget(canvas)
    canvas.show_now(canvas_frame())
    canvas.set_mode("state")
    assert canvas.colours(0)[0] == MASKED and canvas.colours(1)[0] is None
    assert canvas.colours(2)[0] == NEW
    canvas.set_mode("confidence")
    assert [canvas.colours(i)[0] for i in range(5)] == [MASKED, EARLIER, LOW, MID, HIGH]
    canvas.set_mode("reveal")
    early, late = canvas.colours(1)[0], canvas.colours(2)[0]
    assert early.lightness() > late.lightness()        # light → dark blue
    assert late.blue() > late.red()
    with pytest.raises(ValueError):
        canvas.set_mode("rainbow")
    cells = canvas.layout_cells(400)
    assert [c.text for c in cells][0] == "░" and cells[1].text == " Hello"


def test_canvas_coalesces_frames_to_the_screen_rate(qtbot):
    canvas = DenoiseCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 200)
    canvas.show()
    assert 4 <= canvas.refresh_interval_ms() <= 50
    for k in range(200):
        canvas.set_frame(canvas_frame(index=k % 4))
    assert canvas.frames_shown == 0          # nothing painted synchronously
    qtbot.waitUntil(lambda: canvas.frames_shown >= 1, timeout=2000)
    qtbot.wait(100)
    assert canvas.frames_received == 200 and canvas.frames_shown == 1
    assert canvas.frame.index == 199 % 4
    image = canvas.grab().toImage()
    assert not image.isNull() and image.width() == 400


def test_deleting_the_conversation_being_answered(qtbot, make_window):
    window = make_window(step_delay=0.05, settings={"gen_length": 32, "block_length": 8,
                                                    "steps": 32})
    frames = collect_frames(window)
    assert window.send("Delete me while you answer")
    doomed = window.current_id
    qtbot.waitUntil(lambda: len(frames) >= 2, timeout=ANSWER_TIMEOUT)
    window.delete_conversation(doomed, confirm=False)
    qtbot.waitUntil(lambda: not window.generating, timeout=ANSWER_TIMEOUT)
    assert window.store.conversation(doomed) is None
    assert window.current_id != doomed and window.current_id is not None
    assert window.store.preference("last_model")   # remembered for the next start


def test_canvas_follows_the_palette(qtbot):
    from PySide6.QtGui import QColor, QPalette

    canvas = DenoiseCanvas()
    qtbot.addWidget(canvas)
    canvas.show_now(canvas_frame())
    canvas.set_mode("state")
    dark = QPalette(canvas.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    canvas.setPalette(dark)
    assert canvas.colours(1)[1] == QColor("#eeeeee")   # earlier tokens: the palette's text
    image = canvas.grab().toImage()
    assert image.pixelColor(2, 2) == QColor("#1e1e1e")


def test_transcript_renders_markdown_with_code_in_monospace(qtbot, make_window):
    from PySide6.QtGui import QTextDocument

    window = make_window(model=None)
    text = "Some **bold** and `inline`\n\n```python\nprint(1)\n```\n"
    window.store.add_message(window.current_id, "assistant", text)
    window.show_messages()
    [view] = window.transcript.views
    assert view.body.textFormat() == Qt.TextFormat.RichText
    # the label shows Qt's Markdown rendering: code fragments get a monospace family
    document = QTextDocument()
    document.setHtml(view.body.text())
    fonts = {}
    block = document.begin()
    while block.isValid():
        fragment_iter = block.begin()
        while not fragment_iter.atEnd():
            fragment = fragment_iter.fragment()
            fonts[fragment.text()] = fragment.charFormat()
            fragment_iter += 1
        block = block.next()
    assert "monospace" in (fonts["print(1)"].fontFamilies() or [])
    assert "monospace" in (fonts["inline"].fontFamilies() or [])
    assert fonts["bold"].fontWeight() >= 600


def test_html_in_an_answer_is_not_interpreted(qtbot, make_window):
    window = make_window(model=None)
    window.store.add_message(window.current_id, "assistant",
                             'Hi <img src="file:///etc/passwd"> <b>loud</b> <a href="x">link</a>')
    window.show_messages()
    [view] = window.transcript.views
    rendered = view.body.text()
    # The tags are shown as the text they are, never made into elements.
    assert "<img" not in rendered and "<a " not in rendered and "<b>" not in rendered
    assert "&lt;img src=&quot;file:///etc/passwd&quot;&gt;" in rendered
    assert "&lt;b&gt;loud&lt;/b&gt;" in rendered


def test_opening_a_conversation_shows_its_last_answer_on_the_canvas(qtbot, make_window):
    window = make_window()
    send_and_wait(qtbot, window, "Remember this one")
    answered = window.current_id
    window.store.add_message(answered, "user", "placeholder so a new chat is created")
    window.new_conversation()
    assert window.live.canvas.frame is None
    window.open_conversation(answered)
    frame = window.live.canvas.frame
    assert frame is not None and frame.done and frame.index == SMALL["steps"] - 1


def test_fast_mode_from_the_settings_panel(qtbot, make_window):
    window = make_window()
    panel = window.settings_panel
    assert panel.settings()["mode"] == "exact"
    assert not panel.threshold.isEnabled()
    panel.mode.setCurrentIndex(panel.mode.findData("fast"))
    panel.parallel.setChecked(True)
    panel.threshold.setValue(80)
    values = panel.settings()
    assert values["mode"] == "fast" and values["threshold"] == 0.8
    assert panel.threshold.isEnabled() and "0.80" in panel.summary.text()
    panel.remasking.setCurrentText("random")  # threshold decoding needs low_confidence
    assert panel.settings()["threshold"] is None and not panel.parallel.isEnabled()
    SamplerSettings(**panel.settings())  # what the panel offers is always valid
    panel.remasking.setCurrentText("low_confidence")

    frames = collect_frames(window)
    message_id = send_and_wait(qtbot, window, "Hello")
    answer = window.store.messages(window.current_id)[-1]
    assert answer.id == message_id
    assert answer.settings["mode"] == "fast" and answer.settings["threshold"] == 0.8
    assert all(frame.committed >= 1 for frame in frames)
    assert answer.stats["tokens"] + answer.stats["padding"] == SMALL["gen_length"]
    assert answer.stats["tokens_per_pass"] == pytest.approx(
        answer.stats["tokens"] / answer.stats["nfe"], abs=1e-3)
    assert "tokens/pass" in window.transcript.views[-1].meta.text()


def test_out_of_memory_mid_answer_is_one_sentence_and_the_app_goes_on(qtbot, make_window):
    window = make_window()
    worker = window.workers.worker
    real = worker.current.backend
    # answers fail after their first step as Metal does
    worker.current.backend = FailsAfterFirstStep(real, RuntimeError(
        "[METAL] Command buffer execution failed: Insufficient Memory "
        "(00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)"))
    with qtbot.waitSignal(window.generation_failed, timeout=ANSWER_TIMEOUT) as blocker:
        assert window.send("A long answer, please")
    message = blocker.args[0]
    assert message.startswith("There was not enough memory for this answer")
    assert "shorter answer" in message and "Traceback" not in message
    assert window.banner.text() == message and window.send_button.text() == "Send"
    worker.current.backend = real
    send_and_wait(qtbot, window, "Now a short one")
    answer = window.store.messages(window.current_id)[-1]
    assert answer.role == "assistant"
    assert answer.stats["backend"] == BACKEND and answer.stats["dtype"] == "float32"
    assert BACKEND in window.transcript.views[-1].meta.text()


def test_a_character_split_across_tokens_takes_one_cell(qtbot, tiny_tokenizer):
    from app.session.frame_text import TokenPieces

    tokenizer = tiny_tokenizer
    mask = tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    ids = list(tokenizer(" 中文 ok", add_special_tokens=False)["input_ids"])
    pieces = TokenPieces(tokenizer, mask)(ids)
    assert any(pieces.joined), "the tiny tokenizer should split 中 over several tokens"
    n = len(ids)
    frame = CanvasFrame(index=0, block=0, committed_at=[0] * n, confidence=[1.0] * n,
                        pieces=list(pieces), block_length=n, total_steps=1,
                        joined=pieces.joined)
    canvas = DenoiseCanvas()
    qtbot.addWidget(canvas)
    canvas.show_now(frame)
    cells = canvas.layout_cells(600)
    joined = [c for c in cells if pieces.joined[c.position]]
    assert joined and all(c.rect.width() == 0 for c in joined)
    # one line: 中文 is not broken up by the empty cells of its later tokens
    assert len({c.rect.top() for c in cells}) == 1
    assert "".join(c.text for c in cells) == "中文 ok"
