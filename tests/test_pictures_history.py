"""A question's picture (LLaDA-V) is kept with the conversation: in the history database (not as a
path to a file that may move), in every export (inline in HTML and PDF, a linked file beside
Markdown, base64 in JSON) and back from a JSON import; bad pictures are one sentence."""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from app.history import export as export_mod
from app.history.store import MIGRATIONS, SCHEMA_VERSION, Store
from app.session.pictures import MAX_PICTURE_BYTES, checked_picture, read_picture


def png(colour=(230, 80, 40), size=(30, 20)) -> bytes:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[::4] = colour
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def chat(tmp_path):
    store = Store(tmp_path / "history.sqlite3")
    conversation = store.create_conversation("Pictures <b>")
    picture = checked_picture(png(), "<script>alert(1)</script>.png")
    question = store.add_message(conversation, "user", "What is in <this>?", picture=picture)
    store.add_message(conversation, "assistant", "Stripes.")
    store.add_message(conversation, "user", "And now?")
    return store, conversation, question, picture


def test_the_store_keeps_the_picture_with_its_question(chat):
    store, conversation, question, picture = chat
    messages = store.messages(conversation)
    assert [m.has_picture for m in messages] == [True, False, False]
    assert store.picture(question) == picture and picture.mime == "image/png"
    assert store.picture(messages[1].id) is None
    store.delete_message(question)
    assert store.picture(question) is None  # goes with its question
    assert store.db.execute("SELECT COUNT(*) FROM pictures").fetchone()[0] == 0


def test_an_older_history_gains_the_pictures_table(tmp_path):
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    db.execute("INSERT INTO conversations (title, created, updated) VALUES ('old', 0, 0)")
    db.execute("INSERT INTO messages (conversation_id, role, text, created) VALUES (1, 'user', "
               "'hi', 0)")
    db.commit()
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == 3
    assert [(m.text, m.has_picture) for m in store.messages(1)] == [("hi", False)]


def test_html_shows_the_picture_inline_and_escapes_its_name(chat, tmp_path):
    store, conversation, _, picture = chat
    page = export_mod.export(store, conversation, tmp_path / "chat.html").read_text()
    assert page.count('<img class="picture"') == 1
    assert "data:image/png;base64," in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert "What is in &lt;this&gt;?" in page


def test_markdown_links_a_picture_file_beside_it(chat, tmp_path):
    store, conversation, _, picture = chat
    path = export_mod.export(store, conversation, tmp_path / "my chat.md")
    text = path.read_text()
    assert "![picture](<my chat-pictures/1.png>)" in text
    assert (tmp_path / "my chat-pictures" / "1.png").read_bytes() == picture.data


def test_json_carries_the_picture_and_an_import_brings_it_back(chat, tmp_path):
    store, conversation, _, picture = chat
    path = export_mod.export(store, conversation, tmp_path / "chat.json")
    data = json.loads(path.read_text())
    assert data["messages"][0]["picture"]["type"] == "image/png"
    copy = export_mod.import_json(store, path.read_text())
    first = store.messages(copy)[0]
    assert first.has_picture and store.picture(first.id) == picture

    data["messages"][0]["picture"]["data"] = "bm90IGEgcGljdHVyZQ=="  # "not a picture"
    before = len(store.conversations())
    with pytest.raises(ValueError, match="message 1 in the file has an unreadable picture"):
        export_mod.import_json(store, json.dumps(data))
    assert len(store.conversations()) == before  # nothing half-imported


def test_pdf_embeds_the_picture(chat, tmp_path, qapp):
    store, conversation, question, _ = chat
    with_picture = export_mod.export(store, conversation, tmp_path / "a.pdf").read_bytes()
    store.db.execute("DELETE FROM pictures")
    store.db.commit()
    without = export_mod.export(store, conversation, tmp_path / "b.pdf").read_bytes()
    assert with_picture.count(b"/Image") > without.count(b"/Image")


def test_a_picture_that_cannot_be_attached_is_one_sentence(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(MAX_PICTURE_BYTES + 1)
    cases = {tmp_path / "notes.png": "notes.png is not a picture",
             tmp_path / "gone.png": "gone.png does not exist",
             tmp_path: "is a folder", big: "pictures up to 20 MB"}
    for path, words in cases.items():
        with pytest.raises(ValueError) as caught:
            read_picture(path)
        assert words in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="the pasted picture is empty"):
        checked_picture(b"", "the pasted picture")
    assert read_picture(_saved(tmp_path)).name == "ok.png"


def _saved(folder):
    path = folder / "ok.png"
    path.write_bytes(png())
    return path
