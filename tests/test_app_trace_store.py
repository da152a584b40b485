"""Traces (compact, replayable) and the SQLite history store."""

import sqlite3

import numpy as np
import pytest

from app.history import trace as trace_mod
from app.history.store import DB_NAME, SCHEMA_VERSION, Store


def live_frames(tiny_torch, **settings):
    from llada_torch import encode_chat, generate_steps

    model, tokenizer = tiny_torch
    prompt = encode_chat(tokenizer, [{"role": "user", "content": "Tell me a story"}])
    return list(generate_steps(model, prompt, **settings))


def recorded(frames, mask_id, block_length):
    recorder = trace_mod.TraceRecorder(mask_id, block_length)
    for frame in frames:
        recorder.add(frame)
    return recorder.trace(["x"] * len(frames[-1].tokens))


def assert_same_frame(a, b):
    assert (a.index, a.block, a.committed, a.nfe, a.done) == (b.index, b.block, b.committed,
                                                              b.nfe, b.done)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.committed_at, b.committed_at)
    np.testing.assert_array_equal(a.confidence, b.confidence)


@pytest.mark.parametrize("settings", [
    dict(gen_length=16, block_length=8, steps=8),
    dict(gen_length=16, block_length=4, steps=16, remasking="random", temperature=0.7, seed=3),
])
def test_trace_reproduces_every_live_frame(tiny_torch, settings):
    model, _ = tiny_torch
    frames = live_frames(tiny_torch, **settings)
    trace = recorded(frames, model.args.mask_token_id, settings["block_length"])
    blob = trace_mod.encode(trace)
    again = trace_mod.decode(blob)
    assert again.num_steps == len(frames)
    for live, replayed in zip(frames, again.frames()):
        assert_same_frame(live, replayed)


def test_partial_trace_of_a_stopped_answer(tiny_torch):
    model, _ = tiny_torch
    frames = live_frames(tiny_torch, gen_length=16, block_length=8, steps=16)[:5]
    trace = trace_mod.decode(trace_mod.encode(
        recorded(frames, model.args.mask_token_id, 8)))
    assert not trace.done
    for live, replayed in zip(frames, trace.frames()):
        assert_same_frame(live, replayed)


def test_trace_blob_is_compact(tiny_torch):
    model, _ = tiny_torch
    frames = live_frames(tiny_torch, gen_length=32, block_length=8, steps=32)
    blob = trace_mod.encode(recorded(frames, model.args.mask_token_id, 8))
    every_frame = sum(f.tokens.nbytes + f.committed_at.nbytes + f.confidence.nbytes
                      for f in frames)
    assert len(blob) < every_frame / 8


def test_decode_rejects_other_bytes(tiny_torch):
    with pytest.raises(ValueError):
        trace_mod.decode(b"not a trace")
    with pytest.raises(ValueError, match="damaged"):
        trace_mod.decode(b"LLTR")
    model, _ = tiny_torch
    frames = live_frames(tiny_torch, gen_length=16, block_length=8, steps=8)
    blob = trace_mod.encode(recorded(frames, model.args.mask_token_id, 8))
    import zlib
    raw = zlib.decompress(blob[4:])
    with pytest.raises(ValueError, match="damaged"):
        trace_mod.decode(b"LLTR" + zlib.compress(raw[:-10]))


def test_an_edit_outside_the_answer_is_damage(tiny_torch):
    from dataclasses import replace

    model, _ = tiny_torch
    frames = live_frames(tiny_torch, gen_length=16, block_length=8, steps=8)
    trace = recorded(frames, model.args.mask_token_id, 8)
    early = trace.committed_at.index(0)  # written at the first step, rewritten at the third
    good = replace(trace, edits=[trace_mod.Edit(early, 2, 7, 0.5, b"x")])
    back = trace_mod.decode(trace_mod.encode(good))
    assert back.edits == good.edits and back.frame(1).tokens[early] == 7
    assert back.frame(2).tokens[early] == trace.tokens[early]
    assert back.frame(2).edited_at[early] == 2 and back.frame(1).edited_at[early] == -1
    for edit in (trace_mod.Edit(16, 2, 7, 0.5), trace_mod.Edit(3, trace.num_steps, 7, 0.5)):
        with pytest.raises(ValueError, match="damaged"):
            trace_mod.decode(trace_mod.encode(replace(trace, edits=[edit])))


def test_store_schema_and_messages(tmp_path):
    store = Store.in_folder(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cid = store.create_conversation("First", {"gen_length": 64})
    store.add_message(cid, "user", "hello")
    mid = store.add_message(cid, "assistant", "hi", settings={"steps": 8},
                            stats={"nfe": 8}, prompt_ids=[1, 2, 3], trace=b"blob")
    store.close()

    store = Store.in_folder(tmp_path)
    assert store.notice is None
    [conversation] = store.conversations()
    assert conversation.title == "First" and conversation.settings == {"gen_length": 64}
    user, answer = store.messages(cid)
    assert (user.role, user.text, user.has_trace) == ("user", "hello", False)
    assert answer.prompt_ids == [1, 2, 3] and answer.stats == {"nfe": 8} and answer.has_trace
    assert store.trace_blob(mid) == b"blob"
    store.rename_conversation(cid, "Renamed")
    assert store.conversation(cid).title == "Renamed"
    assert [c.id for c in store.conversations("hell")] == [cid]   # matches message text
    assert [c.id for c in store.conversations("renam")] == [cid]  # and titles
    assert store.conversations("zebra") == []
    assert store.conversations("%") == []                         # LIKE wildcards escaped
    store.delete_conversation(cid)
    assert store.messages(cid) == [] and store.trace_blob(mid) is None


def test_migrations_run_from_an_older_version(tmp_path):
    path = tmp_path / DB_NAME
    sqlite3.connect(path).close()  # an empty database at user_version 0
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.conversations() == []


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / DB_NAME
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(RuntimeError, match="newer version"):
        Store(path)


def test_garbage_database_is_moved_aside_not_deleted(tmp_path):
    path = tmp_path / DB_NAME
    garbage = b"this is not a database " * 200
    path.write_bytes(garbage)
    store = Store(path)
    assert store.notice and "moved" in store.notice
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(DB_NAME + ".corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert aside[0].name in store.notice
    cid = store.create_conversation("works")
    store.add_message(cid, "user", "still works")
    assert store.messages(cid)[0].text == "still works"


def test_version_1_database_is_migrated_with_its_data(tmp_path):
    from app.history.store import MIGRATIONS

    path = tmp_path / DB_NAME
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    db.execute("INSERT INTO conversations (title, created, updated) VALUES ('Old', 1, 1)")
    db.execute("INSERT INTO messages (conversation_id, role, text, created) "
               "VALUES (1, 'user', 'from version 1', 1)")
    db.commit()
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 2
    assert store.messages(1)[0].text == "from version 1"
    assert store.preference("last_model") is None
    store.set_preference("last_model", "/models/llada")
    store.set_preference("last_model", "/models/other")
    assert store.preference("last_model") == "/models/other"
