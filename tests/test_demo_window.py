"""The first launch as a new user sees it: no model installed, so the window opens the bundled
demo with its own settings; a click on an example prompt asks it to count, and the answer
denoises in place over more than one block. The screenshot (out/first-launch-counting.png) is
taken mid-denoising, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models import defaults
from app.models.defaults import DEMO_EXAMPLES, DEMO_NOTE, default_model, sampler_defaults
from app.ui.transcript import LiveAnswerView
from window_support import LOAD_TIMEOUT, Windows, collect_earlier_windows  # noqa: F401

SHOT = Path(__file__).resolve().parents[1] / "out" / "first-launch-counting.png"


@pytest.fixture
def first_launch(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: None)  # nothing downloaded
    windows = Windows(qtbot, tmp_path / "data")
    yield lambda **options: windows.open(default_model(), **options)
    windows.close_all()


def test_first_launch_counts_in_place_over_two_blocks(qtbot, first_launch):
    window = first_launch(step_delay=0.12)
    window.resize(1180, 760)
    window.show()
    qtbot.waitExposed(window)
    assert defaults.is_bundled_demo(window.model_info["path"])
    assert window.banner.text() == DEMO_NOTE
    settings = window.settings_panel.settings()
    own = sampler_defaults(window.model_info["path"])
    assert {k: settings[k] for k in ("gen_length", "block_length")} == {
        k: own[k] for k in ("gen_length", "block_length")}
    assert settings["gen_length"] >= 2 * settings["block_length"]     # at least two blocks
    prompt = next(p for p in DEMO_EXAMPLES if p.startswith("Count"))
    chip = next(b for b in window.transcript.examples.buttons if b.text() == prompt)
    with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
        chip.click()
        qtbot.waitUntil(lambda: isinstance(window.transcript.live, LiveAnswerView), timeout=5000)
        live = window.transcript.live

        def mid_answer() -> bool:
            frame = live.canvas.frame
            if frame is None:
                return False
            done = sum(at >= 0 for at in frame.committed_at)
            return 0.45 * len(frame.committed_at) <= done <= 0.8 * len(frame.committed_at)

        qtbot.waitUntil(mid_answer, timeout=LOAD_TIMEOUT)
        SHOT.parent.mkdir(exist_ok=True)
        assert window.grab().save(str(SHOT))
    answer = window.store.messages(window.current_id)[-1]
    start, end = (int(n) for n in prompt.rstrip(".").split()[2::2])
    assert answer.text.split() == [str(n) for n in range(start, end + 1)]
