"""A tiny LLaDA-V in the window: a picture attached (button, drop or paste) goes with the next
question, the question shows its thumbnail and keeps the picture in the history (the file can
go; a reopened window and a regenerated answer still have it), and a model without vision or a
file that is not a picture says so in one sentence, nothing lost.
Screenshot: out/llada-v-window.png."""

from __future__ import annotations

import numpy as np
from PIL import Image

from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint
from window_support import LOAD_TIMEOUT, Windows, collect_earlier_windows, shot  # noqa: F401

SETTINGS = {"gen_length": 16, "block_length": 8, "steps": 16, "mode": "exact"}


def test_a_question_about_a_picture(qtbot, tmp_path, picture):
    model = make_tiny_llada_v_checkpoint(tmp_path / "llada-v")
    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(model), settings=SETTINGS)
        window.resize(1100, 720)
        window.show()
        qtbot.waitExposed(window)
        window.composer.setPlainText("What is in this picture?")
        counts = []
        window.workers.worker.measured.connect(lambda _, result: counts.append(result["used"]))
        window.context.measure()
        qtbot.waitUntil(lambda: len(counts) == 1)
        window.attach_picture(str(picture))
        assert "stripes.png" in window.picture_button.text()
        window.context.measure()
        qtbot.waitUntil(lambda: len(counts) == 2)
        assert counts[1] > counts[0] + 20  # the context line counts the picture's positions
        window.composer.clear()
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("What is in this picture?")
        assert window.picture is None and window.picture_button.text() == "Picture…"
        question, answer = window.store.messages(window.current_id)[-2:]
        assert question.has_picture and answer.role == "assistant"
        assert window.store.picture(question.id).data == picture.read_bytes()
        assert len(answer.prompt_ids) > 20  # the picture's positions are in the prompt
        # the context line counted exactly that prompt (without preparing the pixels)
        assert counts[1] == len(answer.prompt_ids) + SETTINGS["gen_length"]
        view = window.transcript.views[-2]
        assert view.picture.pixmap() is not None and not view.picture.pixmap().isNull()
        qtbot.wait(50)  # layout before the grab
        shot(window, "llada-v-window.png")
        picture.unlink()  # the history does not depend on the file
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.regenerate()
        again = window.store.messages(window.current_id)[-1]
        assert again.prompt_ids == answer.prompt_ids  # asked again with the same picture
        # the next question has no picture: its prompt is the conversation's text
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("And the colours?")
        text_only = window.store.messages(window.current_id)[-1]
        assert len(text_only.prompt_ids) < len(answer.prompt_ids)  # no picture positions
        # a third turn with another picture: it goes with this question only
        tall = tmp_path / "tall.png"
        Image.fromarray(np.full((90, 40, 3), 200, np.uint8)).save(tall)
        assert window.attach_picture(str(tall))
        with qtbot.waitSignal(window.answer_stored, timeout=LOAD_TIMEOUT):
            assert window.send("And this one?")
        questions = [m for m in window.store.messages(window.current_id) if m.role == "user"]
        assert [q.has_picture for q in questions] == [True, False, True]
        assert window.store.picture(questions[2].id).name == "tall.png"
        conversation = window.current_id
        windows.close_all()

        reopened = windows.open(str(model), settings=SETTINGS)
        reopened.open_conversation(conversation)
        view = reopened.transcript.views[0]
        assert not view.picture.pixmap().isNull()  # from the history, the file long gone
    finally:
        windows.close_all()


def test_a_pasted_picture_is_attached(qtbot, tmp_path, picture):
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QImage

    model = make_tiny_llada_v_checkpoint(tmp_path / "llada-v")
    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(model), settings=SETTINGS)
        pasted = QMimeData()
        pasted.setImageData(QImage(str(picture)))
        window.composer.setPlainText("Look")
        window.composer.insertFromMimeData(pasted)
        assert window.picture is not None and window.picture.mime == "image/png"
        assert window.composer.toPlainText() == "Look"  # the image is not pasted as text
        assert "pasted picture" in window.picture_button.text()
        window.attach_picture(None)
        window.attach_picture(str(tmp_path / "missing.png"))
        assert window.picture is None
        sentence = window.banner.text()
        assert "missing.png does not exist" in sentence and "\n" not in sentence
    finally:
        windows.close_all()


def test_a_model_without_vision_says_so(qtbot, tmp_path, picture, tiny_checkpoint):
    windows = Windows(qtbot, tmp_path / "data")
    try:
        window = windows.open(str(tiny_checkpoint), settings=SETTINGS)
        window.composer.setPlainText("What is this?")
        assert not window.attach_picture(str(picture))
        assert window.picture is None and window.picture_button.text() == "Picture…"
        assert "no vision" in window.banner.text() and "\n" not in window.banner.text()
        assert window.composer.toPlainText() == "What is this?"  # nothing lost
    finally:
        windows.close_all()
