"""An answer lost to a crash or a kill leaves no silent orphan question (issue 21): the next
start shows, under the question, that its answer was interrupted, with Retry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.session.conversation import interrupted_question
from app.history.store import Store
from test_app_cli import kill_app_mid_answer
from window_support import Windows, collect_earlier_windows  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120_000


@dataclass
class Said:
    role: str
    text: str = ""


def test_a_conversation_ending_with_a_question_lost_its_answer():
    question = Said("user", "Why?")
    assert interrupted_question([Said("user"), Said("assistant"), question]) is question
    assert interrupted_question([question]) is question


def test_nothing_is_interrupted_while_answering_or_when_answered():
    assert interrupted_question([]) is None
    assert interrupted_question([Said("user"), Said("assistant")]) is None
    assert interrupted_question([Said("user")], answering=True) is None


@pytest.fixture
def windows(qtbot, tmp_path):
    made = Windows(qtbot, tmp_path / "data")
    yield made
    made.close_all()


def test_a_stored_orphan_shows_the_notice_and_retry_answers_it(qtbot, windows, tiny_checkpoint,
                                                              tmp_path):
    store = Store.in_folder(tmp_path / "data")
    cid = store.create_conversation("Lost", settings={"gen_length": 16, "block_length": 8,
                                                      "steps": 8, "mode": "exact"})
    store.add_message(cid, "user", "Where did my answer go?")
    store.close()
    window = windows.open(str(tiny_checkpoint))
    notice = window.transcript.interrupted
    assert window.current_id == cid and notice.isVisibleTo(window)
    assert "interrupted" in notice.label.text()
    # the notice sits under the question
    column = window.transcript.column
    assert column.indexOf(notice) == column.indexOf(window.transcript.views[-1]) + 1
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as stored:
        notice.retry_button.click()
        assert not notice.isVisibleTo(window)  # the live answer takes its place
    answer = window.store.message(stored.args[0])
    assert answer.role == "assistant" and answer.settings["gen_length"] == 16
    roles = [m.role for m in window.store.messages(cid)]
    assert roles == ["user", "assistant"] and not notice.isVisibleTo(window)


def test_no_notice_while_the_question_is_being_answered(qtbot, windows, tiny_checkpoint):
    window = windows.open(str(tiny_checkpoint), step_delay=0.2,
                          settings={"gen_length": 16, "block_length": 8, "steps": 8,
                                    "mode": "exact"})
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT):
        assert window.send("Hello")
        window.show_messages()  # redrawn mid-answer (e.g. another conversation was opened)
        assert not window.transcript.interrupted.isVisibleTo(window)
        assert window.transcript.live is not None


def test_retry_waits_for_the_model(qtbot, windows, tmp_path):
    store = Store.in_folder(tmp_path / "data")
    cid = store.create_conversation("Lost")
    store.add_message(cid, "user", "Anyone?")
    store.close()
    window = windows.open(None)
    assert window.transcript.interrupted.isVisibleTo(window)
    assert not window.retry_interrupted()
    assert "not loaded" in window.banner.text()
    assert [m.role for m in window.store.messages(cid)] == ["user"]


@pytest.mark.slow
def test_killed_mid_answer_then_reopened_offers_retry(qtbot, windows, tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    kill_app_mid_answer(tiny_checkpoint, data, "An answer a kill will cut short",
                        tmp_path / "never.png")
    window = windows.open(str(tiny_checkpoint), data=data)
    notice = window.transcript.interrupted
    assert notice.isVisibleTo(window)
    assert window.transcript.views[-1].message.text == "An answer a kill will cut short"
    keep = ROOT / "out"
    keep.mkdir(exist_ok=True)
    window.resize(1100, 700)
    qtbot.wait(50)
    assert window.grab().save(str(keep / "interrupted-answer.png"))
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as stored:
        notice.retry_button.click()
    [conversation] = window.store.conversations()
    messages = window.store.messages(conversation.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].id == stored.args[0]
    # the same settings the killed answer was asked with (the command line's)
    assert messages[1].settings["gen_length"] == 32 and messages[1].settings["steps"] == 32


def test_retry_fills_an_interrupted_text_to_fill_again(qtbot, windows, tiny_checkpoint,
                                                       tiny_tokenizer):
    """A question sent with "Fill the blanks" keeps that with its settings: Retry fills it
    again rather than answering it as a chat message."""
    from app.history import trace as trace_mod
    from llada_core.constraints import infill_canvas

    window = windows.open(str(tiny_checkpoint), settings={"steps": 7})
    window.new_conversation()
    text = "The capital of France is [____]."
    window.fill_blanks.setChecked(True)
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as first:
        assert window.send(text)
    window.fill_blanks.setChecked(False)
    question, answer = window.store.messages(window.current_id)
    assert question.settings.get("infill") is True
    window.store.delete_message(first.args[0])  # as if the app had died mid-answer
    window.open_conversation(window.current_id)
    assert window.transcript.interrupted.isVisibleTo(window)
    with qtbot.waitSignal(window.answer_stored, timeout=TIMEOUT) as again:
        window.transcript.interrupted.retry_button.click()
    retried = window.store.message(again.args[0])
    canvas = infill_canvas(tiny_tokenizer, text)
    trace = trace_mod.decode(window.store.trace_blob(retried.id))
    assert trace.gen_length == canvas.length
    assert all(trace.tokens[p] == t for p, t in canvas.fixed.items())
    assert retried.text.startswith("The capital of France is")
