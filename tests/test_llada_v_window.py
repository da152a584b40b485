"""A tiny LLaDA-V in the window: a picture attached (button or drop: attach_picture) goes with
the next question, the question shows its thumbnail and keeps the picture in the history, and a
model without vision says so in one sentence, the question back in the composer.
Screenshot: out/llada-v-window.png."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint
from window_support import LOAD_TIMEOUT, Windows, collect_earlier_windows, shot  # noqa: F401

SETTINGS = {"gen_length": 16, "block_length": 8, "steps": 16, "mode": "exact"}


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "stripes.png"
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[::10] = (230, 80, 40)
    Image.fromarray(pixels).save(path)
    return path


def test_a_question_about_a_picture(qtbot, tmp_path, picture):
    from app.session.settings_logic import PICTURE_KEY

    model = make_tiny_llada_v_checkpoint(tmp_path / "llada-v")
    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(model), settings=SETTINGS)
        window.resize(1100, 720)
        window.show()
        qtbot.waitExposed(window)
        window.attach_picture(str(picture))
        assert "stripes.png" in window.picture_button.text()
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("What is in this picture?")
        assert window.picture is None and window.picture_button.text() == "Picture…"
        question, answer = window.store.messages(window.current_id)[-2:]
        assert question.settings[PICTURE_KEY] == str(picture) and answer.role == "assistant"
        assert len(answer.prompt_ids) > 20  # the picture's positions are in the prompt
        view = window.transcript.views[-2]
        assert view.picture.pixmap() is not None and not view.picture.pixmap().isNull()
        qtbot.wait(50)  # layout before the grab
        shot(window, "llada-v-window.png")
        # the next question has no picture: its prompt is the conversation's text
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("And the colours?")
    finally:
        windows.close_all()


def test_a_model_without_vision_says_so(qtbot, tmp_path, picture, tiny_checkpoint):
    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(tiny_checkpoint), settings=SETTINGS)
        window.attach_picture(str(picture))
        with qtbot.waitSignal(window.generation.failed, timeout=LOAD_TIMEOUT) as failed:
            assert window.send("What is this?")
        assert "no vision" in failed.args[0] and "\n" not in failed.args[0]
        assert window.composer.toPlainText() == "What is this?"  # nothing lost
    finally:
        windows.close_all()
