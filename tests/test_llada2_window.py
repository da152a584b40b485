"""A tiny LLaDA2.1 checkpoint in the window: the answer arrives block by block, and a token the
editing decoder replaces is drawn as an edit (its own colour at the step it changes, underlined
after). The screenshot out/llada21-edit.png shows such a step in the Inspector's canvas."""

from __future__ import annotations

import pytest

from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint
from window_support import LOAD_TIMEOUT, Windows, collect_earlier_windows, shot  # noqa: F401

SETTINGS = {"gen_length": 24, "block_length": 8, "steps": 24, "mode": "exact", "threshold": 0.9}


@pytest.fixture
def editing_model(tmp_path_factory):
    # An editing threshold of 0: every confident change is taken, so a random model edits.
    return make_tiny_llada2_checkpoint(tmp_path_factory.mktemp("llada21"),
                                       TinyLLaDA2Spec(version="2.1", editing_threshold=0.0))


def test_an_edit_is_drawn_as_an_edit(qtbot, tmp_path, editing_model):
    from app.ui.canvas import EDITED, CanvasFrame

    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(editing_model), settings=SETTINGS)
        panel = window.settings_panel
        summary = panel.summary.text()  # the panel describes this model's decoder
        assert summary.startswith("Block diffusion (LLaDA 2.x): 3 blocks of 8 tokens")
        assert "predicts another at least 0.00 confident" in summary
        assert panel.threshold.isEnabled()  # block diffusion's threshold counts in exact mode
        seen = []
        window.workers.worker.frame.connect(lambda _, frame, pieces: seen.append((frame, pieces)))
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("In the beginning")
        qtbot.waitUntil(lambda: seen and seen[-1][0].done, timeout=10_000)
        edits = [(f, p) for f, p in seen if f.edited_at is not None and (f.edited_at == f.index).any()]
        assert edits, "the editing decoder changed nothing"
        frame, pieces = edits[0]
        position = int((frame.edited_at == frame.index).nonzero()[0][0])
        shown = CanvasFrame.of(frame, pieces, SETTINGS["block_length"], SETTINGS["steps"])
        window.inspector_dock.show()
        window.resize(1100, 700)
        window.show()
        qtbot.waitExposed(window)
        window.live.show_now(shown)
        canvas = window.live.canvas
        assert canvas.colours(position)[0] == EDITED
        later = CanvasFrame.of(seen[-1][0], seen[-1][1], SETTINGS["block_length"], SETTINGS["steps"])
        assert later.edited(position) >= 0 and canvas.colours(position)[0] == EDITED
        canvas.show_now(later)
        assert canvas.colours(position)[0] != EDITED  # an earlier edit: underlined, not filled
        window.live.show_now(shown)
        assert "(purple)" in window.live.details.text()  # the pass report names the edits
        qtbot.wait(50)  # let the dock lay out before the grab
        shot(window, "llada21-edit.png")
    finally:
        windows.close_all()


def test_a_stored_answer_replays_its_edits(qtbot, tmp_path, editing_model):
    """The stored trace keeps each rewrite: every frame the window drew live comes back from it
    (tokens, text, edits), a click on an edited cell of the replay tells its history, and an
    exported animation draws the edit in the edit colour."""
    from app.history import trace as trace_mod
    from app.ui.animation_render import FrameRenderer, trace_frames
    from app.ui.canvas import EDITED
    from app.ui.replay import ReplayView, position_history

    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(editing_model), settings=SETTINGS)
        seen = []
        window.workers.worker.frame.connect(lambda _, frame, pieces: seen.append((frame, pieces)))
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT) as stored:
            assert window.send("In the beginning")
        trace = trace_mod.decode(window.store.trace_blob(stored.args[0]))
        assert trace.edits and trace.num_steps == len(seen)
        assert trace.num_steps > SETTINGS["steps"]  # editing passes on top: never "of up to"
        assert window.store.message(stored.args[0]).stats["steps"] == trace.num_steps
        assert "steps set and editing passes" in window.transcript.views[-1].meta.text()
        for k, (frame, pieces) in enumerate(seen):
            replayed = trace.frame(k)
            assert (replayed.tokens == frame.tokens).all(), k
            assert (replayed.edited_at == frame.edited_at).all(), k
            assert (replayed.committed_at == frame.committed_at).all(), k
            assert list(trace.pieces_at(k)) == list(pieces), k
        edit = trace.edits[0]
        history = trace.history(edit.position)
        assert len(history) >= 2 and history[0][1] == edit.before
        assert history[-1][1] == trace.tokens[edit.position]

        # the Inspector's canvas, showing the answer as it ended, tells a position's history too
        window.live.canvas.flush()
        window.live.canvas.position_clicked.emit(edit.position)
        assert window.live.details.text() == position_history(trace, edit.position)

        view = ReplayView(trace)
        qtbot.addWidget(view)
        view.seek(edit.step)
        assert "edited" in view.details.text()
        view.canvas.position_clicked.emit(edit.position)
        text = view.details.text()
        assert text.startswith(f"Position {edit.position}: ") and "edit)" in text
        assert f"at pass {edit.step + 1}" in text

        frames = trace_frames(trace)
        renderer = FrameRenderer(frames)
        cell = next(c for c in renderer.cells(edit.step + 1) if c.position == edit.position)
        image = renderer.render(edit.step + 1)
        middle = cell.rect.center()
        inside = image.pixelColor(int(cell.rect.left()) + 2, int(middle.y()))
        assert inside == EDITED, (inside.name(), EDITED.name())
    finally:
        windows.close_all()
