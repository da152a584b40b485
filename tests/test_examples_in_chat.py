"""The example prompts stay reachable in a chat under way: the empty chat offers them, and once
there are answers the same chips sit after the last one (hidden while an answer is generated);
a click asks the prompt."""

from __future__ import annotations

from app.history.store import Message
from app.ui.transcript import Transcript

PROMPTS = ["Count from 36 to 51.", "What is 23 + 55?"]


def messages(turns: int) -> list[Message]:
    made = []
    for n in range(turns):
        made.append(Message(2 * n + 1, 1, "user", f"What is {n} + 1?", 0.0))
        made.append(Message(2 * n + 2, 1, "assistant", str(n + 1), 0.0))
    return made


def test_the_examples_follow_the_last_answer_and_a_click_asks(qtbot):
    transcript = Transcript()
    qtbot.addWidget(transcript)
    transcript.resize(600, 500)
    transcript.show()
    transcript.set_examples(PROMPTS)
    transcript.set_messages([])
    assert transcript.placeholder.isVisible() and transcript.examples.prompts() == PROMPTS
    assert not transcript.more_examples.isVisible()
    transcript.set_messages(messages(3))
    assert not transcript.placeholder.isVisible() and transcript.more_examples.isVisible()
    assert transcript.more_examples.prompts() == PROMPTS
    column = transcript.column
    index = column.indexOf(transcript.more_examples)
    assert index > max(column.indexOf(view) for view in transcript.views)
    transcript.begin_live()                                    # an answer is being generated
    assert not transcript.more_examples.isVisible()
    assert column.indexOf(transcript.more_examples) > column.indexOf(transcript.live)
    transcript.end_live()
    transcript.set_messages(messages(4))
    assert transcript.more_examples.isVisible()
    with qtbot.waitSignal(transcript.example_chosen) as chosen:
        transcript.more_examples.buttons[1].click()
    assert chosen.args == [PROMPTS[1]]


def test_a_model_without_examples_shows_none_in_a_chat(qtbot):
    transcript = Transcript()
    qtbot.addWidget(transcript)
    transcript.show()
    transcript.set_examples([])
    transcript.set_messages(messages(2))
    assert not transcript.more_examples.isVisible()
