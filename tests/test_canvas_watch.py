"""Issue 21 §3–4: the demo's default answer is worth watching (exact, ≥ 16 distinct frames), one
stats vocabulary everywhere, the Inspector's padding/wrapping/idle line, a stopped answer said
plainly, and fill-the-blanks text fixed from frame 0 and shown as typed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from PIL import Image

from app.session import stats_text
from app.history import trace as trace_mod
from app.cli import main
from app.models.defaults import model_settings, sampler_defaults
from app.history.store import Message, Store
from app.history.trace import Trace, TraceRecorder, fixed_positions
from backend_choice import BACKEND

DEMO = Path(__file__).resolve().parents[1] / "app" / "resources" / "llada-demo"
OUT = Path("/tmp/issue21-canvas")  # screenshots for a person to look at
OLD_WORDING = re.compile(r"\bsteps? \d+/\d+|\bsteps \d+\b|\d+ steps each|NFE \d+ ·")


def distinct_images(folder: Path) -> int:
    digests = set()
    for path in sorted(folder.glob("step-*.png")):
        with Image.open(path) as image:
            digests.add(hashlib.sha256(image.convert("RGB").tobytes()).hexdigest())
    return len(digests)


# --- the watch decision -------------------------------------------------------------------------
def test_the_demo_defaults_to_exact_mode_and_a_real_model_to_fast():
    assert sampler_defaults(str(DEMO))["mode"] == "exact"
    assert model_settings(str(DEMO))["mode"] == "exact"
    assert model_settings("GSAI-ML/LLaDA-8B-Instruct")["mode"] == "fast"


def test_the_demo_default_answer_leaves_at_least_16_distinct_frames(qapp, tmp_path, capsys):
    """Done when: `llada export-animation DIR/` of a demo answer at its default settings."""
    from app.session.backends import get_backend
    from app.session.frame_text import TokenPieces
    from llada_core.chat import encode_prompt

    backend = get_backend(BACKEND)
    model, tokenizer = backend.load(str(DEMO), dtype="float32")
    settings = {k: v for k, v in model_settings(str(DEMO)).items()
                if k in ("gen_length", "block_length", "steps", "mode", "threshold")}
    mask = int(model.args.mask_token_id)
    recorder = TraceRecorder(mask, settings["block_length"])
    for frame in backend.generate_steps(model, encode_prompt(tokenizer, "Count from 36 to 51."),
                                        **settings):
        recorder.add(frame)
    pieces = TokenPieces(tokenizer, mask, glyph="")
    trace = recorder.trace(pieces([int(t) for t in recorder.last.tokens]))
    store = Store.in_folder(tmp_path / "data")
    conversation = store.create_conversation("watch")
    store.add_message(conversation, "user", "Count from 36 to 51.")
    store.add_message(conversation, "assistant", "…", trace=trace_mod.encode(trace))
    store.close()
    folder = tmp_path / "frames"
    assert main(["export-animation", "--data-dir", str(tmp_path / "data"), f"{folder}/"]) == 0
    assert distinct_images(folder) >= 16
    assert "passes" in capsys.readouterr().out


# --- one vocabulary -----------------------------------------------------------------------------
def test_fast_stats_say_passes_of_up_to_the_budget_never_steps_run():
    fast = {"steps": 2, "nfe": 2, "step_budget": 64, "seconds": 0.05, "tokens": 47, "padding": 17,
            "tokens_per_second": 940.0, "tokens_per_pass": 23.5}
    line = stats_text.stats_line(fast)
    assert line.startswith("2 passes (NFE) of up to 64 steps")
    assert "23.50 tokens/pass" in line and "940.0 tokens/s" in line and "0.05 s" in line
    assert "47 tokens + 17 padding" in line
    assert not OLD_WORDING.search(line)
    caption = stats_text.pass_caption(1, 2, 64, 0, 2)
    assert caption == "pass 2 of up to 64 · block 1/2" and not OLD_WORDING.search(caption)
    assert "NFE 4" in stats_text.pass_caption(1, 4, 64)   # CFG: passes and NFE differ


def test_old_stored_stats_still_display():
    old = {"steps": 8, "nfe": 8, "seconds": 1.0, "tokens": 6, "tokens_per_nfe": 0.75,
           "tokens_per_second": 6.0}
    assert "8 passes (NFE)" in stats_text.stats_line(old)
    assert "0.75 tokens/pass" in stats_text.stats_line(old)
    assert stats_text.stats_line({"steps": 3}) == "3 steps"


def test_the_settings_summary_says_the_mode_in_passes():
    fast = stats_text.schedule_summary({"gen_length": 64, "block_length": 32, "steps": 64,
                                        "mode": "fast", "threshold": 0.9})
    exact = stats_text.schedule_summary({"gen_length": 64, "block_length": 32, "steps": 64,
                                         "mode": "exact", "threshold": 0.9})
    assert fast.startswith("Fast:") and "up to 32 passes each" in fast
    assert exact.startswith("Exact:") and "64 passes in all" in exact
    assert not OLD_WORDING.search(fast + exact)


def test_generate_json_uses_the_vocabulary(capsys):
    assert main(["generate", "--backend", BACKEND, "--model", str(DEMO), "--mode", "fast",
                 "--prompt", "What is 47 + 58?", "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["step_budget"] == sampler_defaults(str(DEMO))["steps"]
    assert data["nfe"] <= data["step_budget"] and data["tokens"] >= 1
    assert data["tokens_per_pass"] == pytest.approx(data["tokens"] / data["nfe"], abs=1e-3)
    assert data["tokens_per_second"] > 0


# --- fixed text in infill traces -----------------------------------------------------------------
def fixed_trace() -> Trace:
    """8 positions: 0-2 the user's words (fixed, reported at step 0), 3-7 filled over 3 steps."""
    return Trace(mask_id=0, tokens=[5, 6, 7, 8, 9, 10, 11, 2],
                 committed_at=[0, 0, 0, 0, 1, 1, 2, 2], confidence=[1, 1, 1, .9, .8, .7, .6, .5],
                 blocks=[0, 0, 0], nfe=[1, 2, 3], block_length=8,
                 pieces=[" The", " cat", " sat", " on", " the", " mat", ".", ""], fixed=[0, 1, 2])


def test_fixed_positions_come_from_constraints_and_survive_the_store():
    assert fixed_positions({0: [5, 6], 4: [9]}) == [0, 1, 4]
    back = trace_mod.decode(trace_mod.encode(fixed_trace()))
    assert back.fixed == [0, 1, 2]
    plain = Trace(mask_id=0, tokens=[1], committed_at=[0], confidence=[1.0], blocks=[0], nfe=[1],
                  block_length=1)
    assert trace_mod.decode(trace_mod.encode(plain)).fixed == []


def test_fixed_text_is_fixed_in_every_frame(qapp, tmp_path):
    from app.ui.animation_render import FrameRenderer, trace_frames
    from app.ui.canvas import MASKED, NEW

    frames = trace_frames(fixed_trace())
    start, first = frames[0], frames[1]
    assert [start.committed_at[i] >= 0 for i in range(8)] == [True] * 3 + [False] * 5
    assert start.pieces[:3] == [" The", " cat", " sat"]
    from app.ui.animation_render import caption

    assert caption(start) == "start · 5 positions masked · up to 3 passes"
    assert not any(first.is_new(i) for i in range(3)) and first.is_new(3)
    assert first.new_count() == 1
    renderer = FrameRenderer(frames, "state")
    images = [renderer.render(k) for k in range(2)]
    OUT.mkdir(exist_ok=True)
    for k, image in enumerate(images):
        assert image.save(str(OUT / f"infill-frame-{k}.png"))
    canvas = renderer.canvas
    canvas.show_now(start)
    assert canvas.colours(0)[0] is None             # not a mask in frame 0
    canvas.show_now(first)
    assert canvas.colours(0)[0] is None and canvas.colours(3)[0] == NEW
    assert canvas.colours(4)[0] == MASKED


# --- the Inspector, padding, stopped answers, user messages ----------------------------------------
def padded_frame():
    from app.ui.canvas import CanvasFrame

    n = 8
    return CanvasFrame(index=2, block=0, committed_at=[0, 1, 2, 2, 2, 2, -1, -1],
                       confidence=[.9] * n, pieces=[" 1", " 2", " 3", "", "", "", "", ""],
                       block_length=8, total_steps=64, nfe=3)


def test_the_inspector_draws_padding_as_padding_wraps_and_clears(qtbot):
    from app.ui.canvas import NEW
    from app.ui.canvas_panel import CanvasPanel, step_report

    panel = CanvasPanel("Denoising — a title long enough to run off a narrow panel's edge")
    qtbot.addWidget(panel)
    panel.resize(260, 300)
    panel.show()
    frame = padded_frame()
    panel.show_now(frame)
    assert frame.is_padding(3) and not frame.is_padding(2) and not frame.is_padding(6)
    assert panel.canvas.colours(2)[0] == NEW
    background, colour = panel.canvas.colours(3)
    assert background is None and colour.alpha() < 255      # dim, not "new"
    report = step_report(frame)
    assert "committed 1 token" in report and "+ 3 padding" in report
    assert "pass 3 of up to 64" in panel.caption.text()
    assert panel.caption.wordWrap() and panel.minimumSizeHint().width() <= 260
    assert panel.caption.geometry().right() <= panel.width()
    qtbot.waitUntil(lambda: panel.caption.height() >= panel.caption.heightForWidth(
        panel.caption.width()) - 1)
    OUT.mkdir(exist_ok=True)
    assert panel.grab().save(str(OUT / "inspector-padding.png"))
    panel.clear()
    assert panel.details.text() == "" and panel.canvas.shown is None


def test_a_stopped_answer_says_so_and_user_text_is_shown_as_typed(qtbot):
    from PySide6.QtCore import Qt

    from app.ui.transcript import Composer, MessageView

    typed = "The [___] sat on the [_:2] mat_ *here*"
    user = MessageView(Message(1, 1, "user", typed, 0.0))
    qtbot.addWidget(user)
    assert user.body.textFormat() == Qt.TextFormat.PlainText and user.body.text() == typed
    stopped = MessageView(Message(2, 1, "assistant", "1 2 3", 0.0,
                                  stats={"steps": 3, "nfe": 3, "step_budget": 64, "stopped": True,
                                         "tokens": 3, "holes": 2}))
    qtbot.addWidget(stopped)
    assert "Stopped after pass 3" in stopped.stopped_note.text()
    assert "stopped after pass 3" in stopped.meta.text() and "filled 2 holes" in stopped.meta.text()
    composer = Composer()
    qtbot.addWidget(composer)
    usual = composer.placeholderText()
    composer.set_fill_blanks(True)
    assert "[___]" in composer.placeholderText()
    composer.set_fill_blanks(False)
    assert composer.placeholderText() == usual


def test_the_live_caption_leaves_starting_at_the_first_frame(qtbot):
    from app.ui.transcript import LiveAnswerView

    live = LiveAnswerView("state")
    qtbot.addWidget(live)
    assert live.details.text() == "Starting…"
    live.set_frame(padded_frame())
    assert live.details.text().startswith("pass 3 of up to 64")


@pytest.fixture
def demo_window(qtbot, tmp_path, monkeypatch):
    """Opens the bundled demo, shown at a size, as on a first launch (no model installed)."""
    from app.models import defaults
    from window_support import Windows

    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: None)
    windows = Windows(qtbot, tmp_path / "data")

    def open_demo(width: int, height: int, **options):
        window = windows.open(defaults.default_model(), **options)
        window.resize(width, height)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield open_demo
    windows.close_all()


# --- the window, as a first-time user opens it ----------------------------------------------------
def test_the_demo_at_its_defaults_fills_the_live_message_visibly(qtbot, demo_window):
    """No step delay: what is painted is what the sampler did, at its own pace."""
    from app.models.defaults import DEMO_EXAMPLES
    from app.ui.transcript import LiveAnswerView
    from window_support import LOAD_TIMEOUT

    window = demo_window(1180, 760)
    assert window.settings_panel.settings()["mode"] == "exact"
    assert window.settings_panel.summary.text().startswith("Exact:")
    prompt = next(p for p in DEMO_EXAMPLES if p.startswith("Count"))
    painted: set[int] = set()
    captions: list[str] = []
    from PySide6.QtCore import QTimer

    shot = OUT / "live-demo-default.png"
    OUT.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        window.composer.setPlainText(prompt)
        window.send()
        qtbot.waitUntil(lambda: isinstance(window.transcript.live, LiveAnswerView),
                        timeout=5000)
        live = window.transcript.live

        def on_paint(index: int) -> None:
            painted.add(index)
            captions.append(live.details.text())
            if len(painted) == 20 and not shot.is_file():  # mid-answer, once, after painting
                QTimer.singleShot(0, lambda: window.grab().save(str(shot)))

        live.canvas.painted.connect(on_paint)
    print(f"painted {len(painted)} distinct passes")
    assert len(painted) >= 16, sorted(painted)
    assert not any("Starting" in c for c in captions)
    assert all(c.startswith("pass ") and "of up to 64" in c for c in captions)
    assert shot.is_file()
    answer = window.store.messages(window.current_id)[-1]
    assert answer.stats["nfe"] == 64 and answer.stats["step_budget"] == 64


def test_the_fill_blanks_toggle_is_remembered_per_chat(qtbot, tmp_path):
    from app.session.settings_logic import FILL_BLANKS_KEY, sampler_part
    from window_support import Windows

    windows = Windows(qtbot, tmp_path / "data")
    window = windows.open(None)
    first = window.current_id
    window.fill_blanks.setChecked(True)
    assert window.store.conversation(first).settings[FILL_BLANKS_KEY] is True
    assert "[___]" in window.composer.placeholderText()
    window.store.add_message(first, "user", "The [___] sat.")  # so the next chat is a new one
    second = window.new_conversation()
    assert second != first
    assert not window.fill_blanks.isChecked()
    window.settings_panel.changed.emit(window.settings_panel.settings())  # a setting moved
    window.open_conversation(first)
    assert window.fill_blanks.isChecked()
    assert FILL_BLANKS_KEY not in window.store.conversation(second).settings
    window.fill_blanks.setChecked(False)
    assert FILL_BLANKS_KEY not in window.store.conversation(first).settings
    assert FILL_BLANKS_KEY not in sampler_part({FILL_BLANKS_KEY: True, "steps": 8})
    windows.close_all()


def test_an_infill_message_is_shown_as_typed_and_fixed_from_frame_0(qtbot, demo_window):
    from app.history.export import to_markdown
    from app.ui.animation_render import FrameRenderer, trace_frames
    from window_support import LOAD_TIMEOUT

    window = demo_window(1000, 600)
    window.fill_blanks.setChecked(True)
    typed = "36 37 38 [_:4] 41 42"
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT) as stored:
        window.composer.setPlainText(typed)
        assert window.send()
    user_view = window.transcript.views[-2]
    assert user_view.body.text() == typed            # not Markdown: [_:4] stays as typed
    OUT.mkdir(exist_ok=True)
    qtbot.waitUntil(lambda: window.transcript.views[-1].isVisible()
                    and window.transcript.views[-1].height() > 30)
    qtbot.wait(100)
    assert window.grab().save(str(OUT / "infill-message.png"))
    message_id = stored.args[0]
    answer = window.store.message(message_id)
    assert answer.stats["holes"] == 1
    assert "filled 1 hole" in window.transcript.views[-1].meta.text()
    conversation = window.store.conversation(window.current_id)
    assert "filled 1 hole" in to_markdown(conversation, window.store.messages(window.current_id))
    trace = trace_mod.decode(window.store.trace_blob(message_id))
    assert trace.fixed
    frames = trace_frames(trace)
    fixed = set(trace.fixed)
    assert all(frames[0].committed_at[i] >= 0 for i in fixed)
    assert all(at < 0 for i, at in enumerate(frames[0].committed_at) if i not in fixed)
    assert not any(frames[1].is_new(i) for i in fixed)
    renderer = FrameRenderer(frames, "state")
    for k in range(3):
        renderer.pil(k).save(OUT / f"infill-demo-frame-{k}.png")
    with Image.open(OUT / "infill-demo-frame-0.png") as first:
        assert first.size[0] > 100


def test_a_stopped_answer_keeps_what_was_committed(qtbot, demo_window):
    from app.session.frame_text import MASK_GLYPH
    from window_support import LOAD_TIMEOUT

    window = demo_window(1180, 700, step_delay=0.05)
    window.inspector_dock.show()
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT) as stored:
        window.composer.setPlainText("Count from 36 to 51.")
        assert window.send()
        qtbot.waitUntil(lambda: window.live.canvas.frame is not None
                        and window.live.canvas.frame.index >= 20, timeout=LOAD_TIMEOUT)
        window.stop()
    answer = window.store.message(stored.args[0])
    assert answer.stats["stopped"] and MASK_GLYPH not in answer.text
    k = answer.stats["steps"]
    assert 20 < k < 64
    view = window.transcript.views[-1]
    assert f"Stopped after pass {k}" in view.stopped_note.text()
    assert window.status.text().startswith(f"Stopped after pass {k}, ")
    OUT.mkdir(exist_ok=True)
    qtbot.waitUntil(lambda: view.isVisible() and view.height() > 30)
    qtbot.wait(100)
    assert window.grab().save(str(OUT / "stopped-answer.png"))
