"""Export to Markdown / JSON / HTML / PDF, and JSON import."""

import json

import pytest

from app.history import export
from app.history.store import Store

EVIL = 'Try this: <script>alert("owned")</script> & <img src=x onerror=alert(1)>'


@pytest.fixture
def filled(tmp_path):
    store = Store.in_folder(tmp_path / "data")
    cid = store.create_conversation("Demo <chat>", {"gen_length": 64, "steps": 64,
                                                   "block_length": 32})
    store.add_message(cid, "user", "Show me **Markdown** and code:\n\n```\nprint(1)\n```")
    store.add_message(cid, "assistant", EVIL, settings={"gen_length": 64, "steps": 64,
                                                        "block_length": 32},
                      stats={"steps": 64, "nfe": 64, "seconds": 2.0, "tokens_per_second": 32.0},
                      prompt_ids=[5, 6, 7], trace=b"LLTR-not-real")
    return store, cid


def test_markdown_export(filled, tmp_path):
    store, cid = filled
    path = export.export(store, cid, tmp_path / "chat.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Demo &lt;chat>")
    assert "## You" in text and "## LLaDA" in text
    assert "```\nprint(1)\n```" in text
    # no HTML takes effect where the Markdown is viewed; code stays as written
    assert "<script>" not in text and "<img" not in text
    assert '&lt;script>alert("owned")&lt;/script> & &lt;img src=x onerror=alert(1)>' in text
    assert export.inert_markdown("a `<b>` b\n```\n<i>\n```\n<u>") == "a `<b>` b\n```\n<i>\n```\n&lt;u>"
    assert "64 passes (NFE)" in text and "answer length 64" in text


def test_json_export_round_trips(filled, tmp_path):
    store, cid = filled
    path = export.export(store, cid, tmp_path / "chat.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == export.JSON_FORMAT and data["version"] == export.JSON_VERSION
    other = Store.in_folder(tmp_path / "other")
    new_id = export.import_json(other, path.read_text(encoding="utf-8"))
    before, after = store.messages(cid), other.messages(new_id)
    assert other.conversation(new_id).title == "Demo <chat>"
    assert other.conversation(new_id).settings == store.conversation(cid).settings
    assert [(m.role, m.text, m.settings, m.stats, m.prompt_ids, m.created) for m in before] == \
           [(m.role, m.text, m.settings, m.stats, m.prompt_ids, m.created) for m in after]
    assert other.trace_blob(after[1].id) == store.trace_blob(before[1].id)
    # and exporting the import gives the same messages again
    again = json.loads(export.to_json(other.conversation(new_id), after, other))
    assert again["messages"] == data["messages"]


def test_json_import_rejects_other_files(filled):
    store, _ = filled
    with pytest.raises(ValueError, match="not JSON"):
        export.import_json(store, "{nope")
    with pytest.raises(ValueError, match="not a LLaDA Desktop"):
        export.import_json(store, json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="version"):
        export.import_json(store, json.dumps({"format": export.JSON_FORMAT, "version": 99}))


def test_html_export_is_self_contained_and_inert(filled, tmp_path):
    store, cid = filled
    page = export.export(store, cid, tmp_path / "chat.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert "<title>Demo &lt;chat&gt;</title>" in page
    assert "http" not in page  # no external resources


def test_pdf_export(qapp, filled, tmp_path):
    store, cid = filled
    path = export.export(store, cid, tmp_path / "chat.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 1000


def test_unknown_format(filled, tmp_path):
    store, cid = filled
    with pytest.raises(ValueError, match="cannot export"):
        export.export(store, cid, tmp_path / "chat.docx")


def test_json_import_is_one_transaction(filled, tmp_path):
    """A file that breaks at its last message adds nothing, not a half conversation."""
    store, cid = filled
    data = json.loads(export.to_json(store.conversation(cid), store.messages(cid), store))
    before = [c.id for c in store.conversations()]
    for broken in ({"role": "assistant", "text": 42}, {"role": "robot", "text": "hi"},
                   {"role": "user", "text": "hi", "prompt_ids": "1,2"},
                   {"role": "assistant", "text": "hi", "trace": "%%%not base64"}):
        bad = {**data, "messages": data["messages"] + [broken]}
        with pytest.raises(ValueError, match="message 3"):
            export.import_json(store, json.dumps(bad))
        assert [c.id for c in store.conversations()] == before
    # a failure inside the database rolls back too
    original = store._insert_message
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("disk says no")
        return original(*args, **kwargs)

    store._insert_message = second_fails
    with pytest.raises(ValueError, match="disk says no"):
        export.import_json(store, json.dumps(data))
    store._insert_message = original
    assert [c.id for c in store.conversations()] == before
    assert len(store.db.execute("SELECT id FROM messages").fetchall()) == 2
