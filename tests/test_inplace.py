"""Answers denoise in place, in their own message (issue 15); replay in place; the inspector;
animation export from the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from app.history import trace as trace_mod
from app.ui.canvas import MASKED
from app.ui.main_window import MainWindow
from app.ui.transcript import LiveAnswerView, MessageView
from window_support import Windows, collect_earlier_windows  # noqa: F401

SETTINGS = {"mode": "exact", "gen_length": 32, "block_length": 8, "steps": 16}
TIMEOUT = 120_000
SCREENSHOT = Path("/tmp/issue15-inplace.png")


@pytest.fixture
def make_window(qtbot, tmp_path, tiny_checkpoint):
    windows = Windows(qtbot, tmp_path / "data")

    def make(step_delay: float = 0.0, settings: dict | None = None) -> MainWindow:
        return windows.open(str(tiny_checkpoint), settings=settings or SETTINGS,
                            step_delay=step_delay)

    yield make
    windows.close_all()


def test_the_answer_denoises_in_its_own_message(qtbot, make_window):
    window = make_window(step_delay=0.04)
    window.resize(1100, 700)
    window.show()
    qtbot.waitExposed(window)
    assert window.inspector_dock.isHidden()     # the detailed panel is the inspector now
    frames = []
    window.frame_received.connect(lambda _rid, frame: frames.append(frame))
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as blocker:
        assert window.send("Tell me about diffusion")
        live = window.transcript.live
        assert isinstance(live, LiveAnswerView) and live.isVisible()
        # the live answer is the transcript's last message, after the question
        column = window.transcript.column
        assert column.indexOf(live) == column.indexOf(window.transcript.views[-1]) + 1
        qtbot.waitUntil(lambda: live.canvas.frame is not None and 5 <= live.canvas.frame.index,
                        timeout=TIMEOUT)
        shown = live.canvas.frame
        assert any(at < 0 for at in shown.committed_at)        # still partly masked
        assert any(at >= 0 for at in shown.committed_at)
        assert "pass" in live.details.text() and "masked" in live.details.text()
        # mid-answer, the masks are painted in the message itself
        image = live.canvas.grab().toImage()
        masked = [c for c in live.canvas.cells if shown.committed_at[c.position] < 0]
        point = masked[0].rect.center().toPoint()
        point.setY(int(masked[0].rect.top() + 1.5))
        painted = image.pixelColor(point * image.devicePixelRatio())
        assert all(abs(a - b) <= 12 for a, b in zip(painted.getRgb()[:3], MASKED.getRgb()[:3]))
        window.set_colour_mode("confidence")                    # View ▸ Colour by confidence
        assert live.canvas.mode == "confidence" and window.live.canvas.mode == "confidence"
        assert window.grab().save(str(SCREENSHOT))
    assert len(frames) == SETTINGS["steps"]
    assert live.canvas.frames_received == len(frames)          # every frame reached the message
    assert 1 <= live.canvas.frames_shown <= len(frames)        # coalesced to the screen rate
    # stored: the live canvas gives way to the rendered answer
    assert window.transcript.live is None
    answer_view = window.transcript.views[-1]
    assert answer_view.message.id == blocker.args[0] and not answer_view.body.isHidden()
    assert answer_view.body.text() and "16 passes (NFE)" in answer_view.meta.text()


def test_the_live_answer_stays_in_its_conversation(qtbot, make_window):
    window = make_window(step_delay=0.05)
    first = window.current_id
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT):
        window.send("Hello")
        qtbot.waitUntil(lambda: window.transcript.live.canvas.frames_received >= 2,
                        timeout=TIMEOUT)
        window.store.add_message(first, "user", "so that a new chat is made")
        window.new_conversation()
        assert window.current_id != first and window.transcript.live.isHidden()
        window.open_conversation(first)
        assert not window.transcript.live.isHidden()
    assert window.transcript.live is None


def test_replay_in_place_and_the_inspector(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as blocker:
        window.send("Replay me")
    message_id = blocker.args[0]
    trace = trace_mod.decode(window.store.trace_blob(message_id))
    window.inspector_action.trigger()                            # View ▸ Inspector
    assert not window.inspector_dock.isHidden()
    replay = window.replay_message(message_id)
    view = window.transcript.view_of(message_id)
    assert isinstance(view, MessageView) and view.replay is replay and view.body.isHidden()
    for k in range(trace.num_steps):
        replay.timeline.setValue(k)
        stored = trace.frame(k)
        assert replay.canvas.frame.committed_at == [int(c) for c in stored.committed_at]
        assert replay.canvas.frame.confidence == [float(c) for c in stored.confidence]
        assert window.live.canvas.frame.index == k               # the inspector follows
    assert f"pass {trace.num_steps} of up to {trace.num_steps}" in window.live.caption.text()
    assert "This pass committed" in window.live.details.text()
    assert replay.details.text().startswith(f"pass {trace.num_steps} of up to ")
    window.set_colour_mode("reveal")
    assert replay.canvas.mode == "reveal"
    assert [a.text() for a in view.menu().actions() if not a.isSeparator()] == [
        "Copy", "Copy as Markdown", "Retry", "Replay", "Export animation…"]
    view.replay_button.setEnabled(True)
    replay.done_button.click()
    assert view.replay is None and not view.body.isHidden()


def test_export_animation_from_the_window(qtbot, make_window, tmp_path):
    window = make_window(settings={**SETTINGS, "gen_length": 16, "steps": 8})
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as blocker:
        window.send("Animate me")
    message_id = blocker.args[0]
    trace = trace_mod.decode(window.store.trace_blob(message_id))
    view = window.transcript.view_of(message_id)
    assert view.export_button is not None and view.export_button.text() == "Export animation…"
    for name in ("answer.gif", "answer.png"):
        export = window.export_animation(message_id, tmp_path / name)
        with qtbot.waitSignal(export.finished, timeout=30_000) as done:
            pass
        assert done.args[0] == [str(tmp_path / name)]
        with Image.open(tmp_path / name) as image:
            assert image.n_frames == trace.num_steps + 1 and image.size[1] > 20
            assert name.endswith(".gif") or image.is_animated
        assert "Animation written" in window.status.text()
    export = window.export_animation(message_id, tmp_path / "steps/")
    with qtbot.waitSignal(export.finished, timeout=30_000):
        pass
    assert len(list((tmp_path / "steps").glob("step-*.png"))) == trace.num_steps + 1
    bad = window.export_animation(message_id, tmp_path / "answer.mp4")
    with qtbot.waitSignal(bad.failed, timeout=5_000):
        pass
    assert "not .mp4" in window.banner.text()
