"""The conversation rules without Qt: model identity, prompt planning and building, context
length, the sampler defaults that follow a model, and the answer-length schedule."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Optional

import pytest

from app.session import conversation as conv
from app.history.links import is_web_link
from app.models import defaults
from app.session.settings_logic import for_answer_length, is_valid
from llada_core.chat import continue_conversation, encode_chat, encode_prompt, load_tokenizer


@dataclass
class Msg:
    role: str
    text: str
    stats: dict = field(default_factory=dict)
    prompt_ids: Optional[list[int]] = None
    has_trace: bool = False
    answer: Optional[list[int]] = None


def answer_of(message: Msg):
    return message.answer


@pytest.fixture(scope="module")
def base_folder(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint's tokenizer without chat tokens: a Base model, as LLaDA-8B-Base."""
    folder = tmp_path_factory.mktemp("tiny_base")
    shutil.copytree(tiny_checkpoint, folder, dirs_exist_ok=True)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"]
                            if t["content"] not in ("<|start_header_id|>", "<|end_header_id|>",
                                                    "<|eot_id|>")]
    (folder / "tokenizer.json").write_text(json.dumps(data))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {
        k: v for k, v in config.get("added_tokens_decoder", {}).items()
        if v["content"] not in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_fingerprint_tells_tokenizers_apart(tiny_tokenizer, tiny_checkpoint, base_folder):
    again = load_tokenizer(tiny_checkpoint)
    assert conv.tokenizer_fingerprint(tiny_tokenizer) == conv.tokenizer_fingerprint(again)
    assert len(conv.tokenizer_fingerprint(tiny_tokenizer)) == 16
    base = load_tokenizer(base_folder)
    assert conv.tokenizer_fingerprint(base) != conv.tokenizer_fingerprint(tiny_tokenizer)


def test_demo_and_tiny_have_different_tokenizers(tiny_tokenizer):
    from app.models.catalog import bundled_demo_model

    demo = bundled_demo_model()
    if demo is None:
        pytest.skip("this build has no demo model")
    assert conv.tokenizer_fingerprint(load_tokenizer(demo)) != \
        conv.tokenizer_fingerprint(tiny_tokenizer)


def test_model_labels_and_the_meta_line(tmp_path):
    snapshot = tmp_path / "models--GSAI-ML--LLaDA-8B-Instruct" / "snapshots" / "abc123"
    assert conv.model_label(str(snapshot)) == "GSAI-ML/LLaDA-8B-Instruct"
    assert conv.model_label("GSAI-ML/LLaDA-8B-Base") == "GSAI-ML/LLaDA-8B-Base"
    assert conv.model_label(str(tmp_path / "my-model")) == "my-model"
    identity = conv.ModelIdentity(model=str(tmp_path / "my-model"), fingerprint="0123456789abcdef")
    assert identity.stamp() == {"model": str(tmp_path / "my-model"), "tokenizer": "0123456789abcdef"}
    assert conv.written_by(identity.stamp()) == "model my-model (tokenizer 01234567)"
    assert conv.written_by({}) == ""
    from app.history.export import stats_line

    assert "model my-model (tokenizer 01234567)" in stats_line({"nfe": 3, **identity.stamp()})


def intact_history(fingerprint: str) -> list[Msg]:
    return [Msg("user", "Hi"),
            Msg("assistant", "Hello", {"tokenizer": fingerprint}, [1, 2, 3], True, [7, 8])]


def test_plan_continues_by_ids_only_with_the_same_tokenizer():
    earlier = intact_history("aaaa")
    plan = conv.plan_prompt(earlier, "More", "aaaa", answer_of)
    assert plan["history_ids"] == [1, 2, 3, 7, 8] and plan["user_text"] == "More"
    assert plan["turns"][-1] == {"role": "user", "content": "More"}
    other = conv.plan_prompt(earlier, "More", "bbbb", answer_of)
    assert "history_ids" not in other
    assert other["turns"] == [{"role": "user", "content": "Hi"},
                              {"role": "assistant", "content": "Hello"},
                              {"role": "user", "content": "More"}]
    # answers written before fingerprints existed, stopped ones, imported ones: text
    for change in ({"stats": {}}, {"stats": {"tokenizer": "aaaa", "stopped": True}},
                   {"has_trace": False}, {"prompt_ids": None}):
        earlier = intact_history("aaaa")
        for key, value in change.items():
            setattr(earlier[1], key, value)
        assert "history_ids" not in conv.plan_prompt(earlier, "More", "aaaa", answer_of)


def test_regenerate_reuses_the_prompt_of_the_same_tokenizer_only():
    earlier, old = intact_history("aaaa")[:1], intact_history("aaaa")[1]
    assert conv.plan_regenerate(earlier, old, "aaaa")["prompt_ids"] == [1, 2, 3]
    assert "prompt_ids" not in conv.plan_regenerate(earlier, old, "bbbb")
    assert conv.plan_regenerate(earlier, None, "aaaa") == {
        "turns": [{"role": "user", "content": "Hi"}]}


def test_build_continues_then_reencodes_when_the_tokenizer_changed(tiny_tokenizer):
    tok = tiny_tokenizer
    first = continue_conversation(tok, None, "Hi")
    answer = tok("Hello", add_special_tokens=False)["input_ids"]
    fp = conv.tokenizer_fingerprint(tok)
    earlier = [Msg("user", "Hi"), Msg("assistant", "Hello", {"tokenizer": fp}, first, True, answer)]
    same = conv.build_prompt(tok, conv.plan_prompt(earlier, "More", fp, answer_of), 16, 4096)
    assert same.ids == continue_conversation(tok, first + answer, "More")
    assert not same.reencoded and same.dropped == 0
    other = conv.build_prompt(tok, conv.plan_prompt(earlier, "More", "other", answer_of), 16, 4096)
    assert other.reencoded
    assert other.ids == encode_chat(tok, [{"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello"},
                                          {"role": "user", "content": "More"}])


def test_a_base_model_is_prompted_with_raw_text(base_folder):
    tok = load_tokenizer(base_folder)
    plan = conv.plan_prompt([], "Once upon a time", "x", answer_of)
    built = conv.build_prompt(tok, plan, 16, 4096)
    assert built.ids == encode_prompt(tok, "Once upon a time")
    header = tok.convert_tokens_to_ids("<|start_header_id|>")
    assert header not in built.ids
    earlier = [Msg("user", "Once upon a time"), Msg("assistant", " there was")]
    again = conv.build_prompt(tok, conv.plan_prompt(earlier, " a king", "x", answer_of), 16, 4096)
    assert again.ids == encode_prompt(tok, [{"role": "user", "content": "Once upon a time"},
                                            {"role": "assistant", "content": " there was"},
                                            {"role": "user", "content": " a king"}])


def test_context_length_drops_the_oldest_turns(tiny_tokenizer):
    tok = tiny_tokenizer
    earlier = []
    for n in range(6):
        earlier += [Msg("user", f"question number {n} " * 5), Msg("assistant", f"answer {n} " * 5)]
    plan = conv.plan_prompt(earlier, "last", "x", answer_of)
    full = conv.build_prompt(tok, plan, 16, 4096)
    assert full.dropped == 0 and full.total(16) == len(full.ids) + 16
    limit = len(full.ids) // 2 + 16
    fitted = conv.build_prompt(tok, plan, 16, limit)
    assert fitted.dropped >= 2 and fitted.dropped % 2 == 0     # whole turns, oldest first
    assert fitted.total(16) <= limit and fitted.reencoded
    kept = plan["turns"][fitted.dropped:]
    assert kept[0]["role"] == "user" and fitted.ids == encode_chat(tok, kept)
    # stored ids that no longer fit are re-encoded from text too
    ids_plan = {"prompt_ids": full.ids, "turns": plan["turns"]}
    assert conv.build_prompt(tok, ids_plan, 16, limit).ids == fitted.ids
    with pytest.raises(conv.ContextTooLong, match="more than this model's context of 20"):
        conv.build_prompt(tok, {"turns": [{"role": "user", "content": "x " * 50}]}, 16, 20)
    with pytest.raises(conv.ContextTooLong, match="choose a shorter answer"):
        conv.build_prompt(tok, plan, 64, 64)
    assert conv.context_line(1234, 4096) == "1,234 / 4,096 tokens"
    assert "oldest 2 messages were left out" in conv.dropped_notice(2)
    assert "oldest message was left out" in conv.dropped_notice(1)


def test_a_system_message_is_kept_when_the_oldest_turns_go(tiny_tokenizer):
    tok = tiny_tokenizer
    turns = [{"role": "system", "content": "Be brief."}]
    for n in range(6):
        turns += [{"role": "user", "content": f"question number {n} " * 5},
                  {"role": "assistant", "content": f"answer {n} " * 5}]
    turns.append({"role": "user", "content": "last"})
    full = conv.build_prompt(tok, {"turns": turns}, 16, 4096)
    fitted = conv.build_prompt(tok, {"turns": turns}, 16, len(full.ids) // 2 + 16)
    assert fitted.dropped >= 2 and fitted.dropped % 2 == 0
    kept = [turns[0]] + turns[1 + fitted.dropped:]
    assert fitted.ids == encode_chat(tok, kept)


def test_messages_left_out_stay_left_out_of_a_continuation(tiny_tokenizer):
    """A prompt continued from an earlier one that left messages out still leaves them out, and
    says so (the window's notice, chat's line and the server's count agree)."""
    tok = tiny_tokenizer
    first = encode_chat(tok, [{"role": "user", "content": "one"}])
    earlier = [Msg("user", "one"), Msg("assistant", "two", stats={"tokenizer": "x", "dropped": 2},
                                       prompt_ids=first, has_trace=True, answer=[5, 6])]
    plan = conv.plan_prompt(earlier, "three", "x", answer_of)
    assert plan["history_dropped"] == 2
    continued = conv.build_prompt(tok, plan, 16, 4096)
    assert not continued.reencoded and continued.ids[:len(first) + 2] == first + [5, 6]
    assert continued.dropped == 2
    regenerate = conv.plan_regenerate(earlier[:1], earlier[1], "x")
    assert conv.build_prompt(tok, regenerate, 16, 4096).dropped == 2
    fresh = conv.plan_prompt(earlier[:1] + [Msg("assistant", "two", stats={"tokenizer": "x"},
                                                 prompt_ids=first, has_trace=True, answer=[5])],
                             "three", "x", answer_of)
    assert conv.build_prompt(tok, fresh, 16, 4096).dropped == 0


def test_window_defaults_follow_the_model(tmp_path, monkeypatch):
    reference = defaults.reference_settings()
    assert (reference["gen_length"], reference["steps"], reference["block_length"]) == (128, 128, 32)
    real = defaults.window_defaults(str(tmp_path))             # a real model: fast by default
    assert real["mode"] == "fast" and real["threshold"] == 0.9
    assert (real["gen_length"], real["steps"], real["block_length"]) == (128, 128, 32)
    own = tmp_path / "own"
    own.mkdir()
    (own / "sampler_defaults.json").write_text(json.dumps(
        {"gen_length": 64, "block_length": 16, "steps": 32, "mode": "exact", "threshold": None}))
    mine = defaults.window_defaults(str(own))
    assert (mine["gen_length"], mine["block_length"], mine["steps"], mine["mode"]) == \
        (64, 16, 32, "exact")
    assert mine["threshold"] is None
    # the demo keeps what its own file says, whatever that is
    monkeypatch.setattr(defaults, "bundled_demo_model", lambda: own)
    assert defaults.window_defaults(str(own))["mode"] == "exact"
    (own / "sampler_defaults.json").write_text(json.dumps({"gen_length": 8, "block_length": 8,
                                                           "steps": 8}))
    assert defaults.window_defaults(str(own))["mode"] == "exact"   # the reference's, not fast
    # what a caller asks for beyond a model's own defaults follows every model
    asked = {**defaults.window_defaults(str(own)), "temperature": 0.5}
    given = defaults.given_settings(asked, str(own))
    assert given == {"temperature": 0.5}
    assert defaults.window_defaults(str(tmp_path), given)["temperature"] == 0.5
    # an answer length asked for alone brings a valid schedule
    short = defaults.window_defaults(str(tmp_path), {"gen_length": 16})
    assert is_valid(short["gen_length"], short["block_length"], short["steps"])


def test_same_settings_ignores_the_threshold_in_exact_mode():
    a = {**defaults.reference_settings(), "mode": "exact", "threshold": None}
    b = {**defaults.reference_settings(), "mode": "exact", "threshold": 0.9}
    assert defaults.same_settings(a, b)
    assert not defaults.same_settings({**a, "mode": "fast"}, {**b, "mode": "fast"})
    assert not defaults.same_settings(a, {**a, "steps": 64})


@pytest.mark.parametrize("gen,block,steps,previous,expected", [
    (128, 8, 8, 8, (128, 32, 128)),      # the demo's single block grows to the reference's
    (64, 32, 128, 128, (64, 32, 64)),    # one token per step stays one token per step
    (256, 32, 64, 128, (256, 32, 128)),  # two tokens per step stay two
    (48, 32, 128, 128, (48, 24, 48)),
    (16, 8, 8, 16, (16, 8, 8)),
])
def test_changing_the_answer_length_alone_keeps_a_sensible_schedule(gen, block, steps, previous,
                                                                    expected):
    result = for_answer_length(gen, block, steps, previous)
    assert result == expected and is_valid(*result)


def test_any_answer_length_gives_a_valid_schedule():
    for previous in (8, 16, 128, 96):
        for gen in (1, 3, 7, 16, 24, 100, 128, 1000, 1024):
            for block, steps in ((8, 8), (32, 128), (1, previous)):
                assert is_valid(*for_answer_length(gen, block, steps, previous))


def test_only_web_links_open():
    assert is_web_link("https://example.com/a?b=c") and is_web_link("http://example.com")
    for url in ("file:///etc/passwd", "javascript:alert(1)", "mailto:a@b.c", "x",
                "ftp://example.com", "https:///no-host", "data:text/html,hi"):
        assert not is_web_link(url), url
