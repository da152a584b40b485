"""Word constraints in the window (issue 15): the settings field, the canvas click, the answer."""

from __future__ import annotations


import pytest
from PySide6.QtCore import Qt

from app.history import trace as trace_mod
from app.session.settings_logic import check_constraints_text, constraints_entry, sampler_part
from app.history.store import Store
from app.ui.main_window import MainWindow
from backend_choice import BACKEND
from window_support import collect_earlier_windows  # noqa: F401

SMALL = {"gen_length": 16, "block_length": 8, "steps": 8, "mode": "exact"}


@pytest.fixture
def window(qtbot, tmp_path, tiny_checkpoint):
    store = Store.in_folder(tmp_path / "data")
    window = MainWindow(store, model=str(tiny_checkpoint), backend=BACKEND,
                        load_options={"device": "cpu"}, default_settings=dict(SMALL))
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_loaded, timeout=120_000):
        pass
    yield window
    window.shutdown()
    store.close()


def test_settings_logic_without_qt():
    assert constraints_entry("  ") == {} and constraints_entry("0: Once, ") == {"constraints": "0: Once"}
    assert sampler_part({"steps": 8, "constraints": "0: a"}) == {"steps": 8}
    assert check_constraints_text("0: Once, 5: upon", 16) == [(0, "Once"), (5, "upon")]
    with pytest.raises(ValueError, match="past the answer"):
        check_constraints_text("16: x", 16)
    with pytest.raises(ValueError, match="two constraints"):
        check_constraints_text("3: x, 3: y", 16)


def test_constraints_are_stored_sent_and_kept_in_the_answer(qtbot, window, tiny_tokenizer):
    window.show()
    window.new_conversation()
    window.show_inspector()   # the detailed canvas, from View ▸ Inspector
    canvas = window.live.canvas
    assert canvas.frame is None and canvas.blank is not None
    cells = canvas.layout_cells(600)
    assert len(cells) == 16
    # clicking position 9 on the empty canvas writes "9: " into the field
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=cells[9].rect.center().toPoint())
    panel = window.settings_panel
    assert panel.constraints.text() == "9: "
    qtbot.keyClicks(panel.constraints, "dragon")
    panel.constraints.setText("0: Once, " + panel.constraints.text())
    assert window.store.conversation(window.current_id).settings["constraints"] == "0: Once, 9: dragon"

    with qtbot.waitSignal(window.answer_stored, timeout=120_000) as blocker:
        assert window.send("Tell me a story")
    trace = trace_mod.decode(window.store.trace_blob(blocker.args[0]))
    once = tiny_tokenizer(" Once", add_special_tokens=False)["input_ids"]
    dragon = tiny_tokenizer(" dragon", add_special_tokens=False)["input_ids"]
    assert trace.tokens[:len(once)] == once and trace.tokens[9:9 + len(dragon)] == dragon
    for k in range(trace.num_steps):  # at their positions in every frame, never changed
        frame = trace.frame(k)
        assert frame.tokens[:len(once)].tolist() == once
    message = window.store.messages(window.current_id)[-1]
    assert message.settings["constraints"] == "0: Once, 9: dragon"
    window.live.canvas.grab().save("/tmp/issue15-constrained.png")


def test_bad_constraints_are_one_sentence_in_the_banner(qtbot, window):
    window.new_conversation()
    window.settings_panel.constraints.setText("40: Once")
    assert not window.send("Hi")
    assert "past the answer (answer length 16)" in window.banner.text()
    window.settings_panel.constraints.setText("14: dragons and more")
    with qtbot.waitSignal(window.generation.failed, timeout=120_000) as blocker:
        assert window.send("Hi")
    assert "runs past the answer length 16" in blocker.args[0]


def test_fill_the_blanks_fills_exactly_the_holes(qtbot, window, tiny_tokenizer):
    from llada_core.constraints import infill_canvas

    window.show()
    window.new_conversation()
    text = "The capital of France is [____]. It is [_:3]"
    canvas = infill_canvas(tiny_tokenizer, text)
    frames = []
    window.frame_received.connect(lambda _rid, frame: frames.append(frame))
    window.fill_blanks.setChecked(True)
    with qtbot.waitSignal(window.answer_stored, timeout=120_000) as blocker:
        assert window.send(text)
    answer = window.store.messages(window.current_id)[-1]
    assert answer.id == blocker.args[0]
    trace = trace_mod.decode(window.store.trace_blob(answer.id))
    assert trace.gen_length == canvas.length and trace.block_length == canvas.length
    assert all(trace.tokens[p] == t for p, t in canvas.fixed.items())  # the text stays
    assert trace.mask_id not in trace.tokens                            # every hole is filled
    # the text is on the canvas from the first frame; only the holes change afterwards
    first = frames[0]
    assert all(int(first.tokens[p]) == t for p, t in canvas.fixed.items())
    changed = {p for a, b in zip(frames, frames[1:]) for p in range(canvas.length)
               if a.tokens[p] != b.tokens[p]}
    holes = {p for start, length in canvas.holes for p in range(start, start + length)}
    assert changed <= holes
    assert answer.text.startswith("The capital of France is")
    assert answer.settings["gen_length"] == canvas.length and answer.settings["steps"] == 7
    assert len(frames) == 7 and frames[-1].done
    window.live.canvas.grab().save("/tmp/issue15-infill.png")


def test_fill_the_blanks_needs_a_hole(window):
    window.new_conversation()
    window.fill_blanks.setChecked(True)
    assert not window.send("no holes here")
    assert "no hole to fill" in window.banner.text()
