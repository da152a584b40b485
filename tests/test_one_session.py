"""One conversation, every front end, one answer: the window's worker, `llada chat`,
`llada generate`, the HTTP server and the lm-eval model all reach the model through the session
layer (app.session), so the same conversation gives the same answer ids and the same context
decision everywhere.

The demo model's context is cut to CONTEXT tokens (a copy of its folder), so that the second and
third turns no longer fit as a continuation of the previous prompt and answer: every front end
then re-encodes the conversation from its text and leaves out the oldest messages, the one
policy of app.session.conversation.build_prompt, and says how many it left out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.eval.evaluate import held_out_conversations
from app.models.catalog import bundled_demo_model
from app.models.defaults import sampler_defaults
from app.session.conversation import TOKENIZER_KEY, plan_prompt
from app.session.model import load_model
from backend_choice import BACKEND
from llada_core.chat import answer_text, visible_answer_ids
from llada_core.settings import SamplerSettings

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = 120
TURNS = 3


@pytest.fixture(scope="module")
def small_context_demo(tmp_path_factory) -> Path:
    demo = bundled_demo_model()
    if demo is None:
        pytest.skip("the bundled demo model is not here")
    folder = tmp_path_factory.mktemp("models") / "demo-small-context"
    shutil.copytree(demo, folder)
    config = json.loads((folder / "config.json").read_text())
    config["max_sequence_length"] = CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def questions() -> list[str]:
    return [item.question for item in held_out_conversations(["count", "add2"], 1, TURNS, seed=2)[0]]


def load(folder: Path):
    return load_model(str(folder), BACKEND, dtype="float32",
                      device="cpu" if BACKEND == "torch" else None)


def settings_of(folder: Path) -> dict:
    return SamplerSettings(**sampler_defaults(str(folder))).to_dict()


class Turn(SimpleNamespace):
    """One answered turn as a front end saw it."""


# --- the front ends ----------------------------------------------------------------------------

def through_window_worker(folder: Path, qtbot) -> list[Turn]:
    """The window's Qt worker, planned as the window plans (plan_prompt over stored messages)."""
    from app.ui.worker import Worker

    worker = Worker()
    events: dict[str, Any] = {}
    worker.loaded.connect(lambda info: events.__setitem__("info", info))
    worker.load_failed.connect(lambda message: events.__setitem__("error", message))
    worker.started.connect(lambda _, info: events.__setitem__("started", info))
    worker.frame.connect(lambda _, frame, __: events.__setitem__("frame", frame))
    worker.finished.connect(lambda _, result: events.__setitem__("result", result))
    worker.failed.connect(lambda _, message: events.__setitem__("error", message))
    worker.load(str(folder), BACKEND, {"dtype": "float32",
                                       "device": "cpu" if BACKEND == "torch" else None})
    assert "error" not in events, events.get("error")
    fingerprint = events["info"]["fingerprint"]
    messages: list[SimpleNamespace] = []
    answers: dict[int, list[int]] = {}
    turns = []
    for number, question in enumerate(questions()):
        plan = plan_prompt(messages, question, fingerprint, lambda m: answers.get(id(m)))
        worker.generate(number, plan, settings_of(folder))
        assert "error" not in events, events.get("error")
        result, ids = events["result"], [int(t) for t in events["frame"].tokens]
        turns.append(Turn(ids=ids, dropped=events["started"]["dropped"],
                          reencoded=events["started"]["reencoded"],
                          prompt=list(events["started"]["prompt_ids"])))
        stats = result["stats"]  # what the window stores with the answer
        assert stats[TOKENIZER_KEY] == fingerprint
        messages.append(SimpleNamespace(role="user", text=question, stats={}, prompt_ids=None,
                                        has_trace=False))
        answer = SimpleNamespace(role="assistant", text=result["text"], stats=stats,
                                 prompt_ids=result["prompt_ids"], has_trace=True)
        answers[id(answer)] = ids
        messages.append(answer)
    worker.unload()
    return turns


def through_llada_chat(folder: Path, monkeypatch) -> list[Turn]:
    """`llada chat` in process, each answer's last frame and prompt recorded at the backend."""
    import io

    import app.cli.chat as chat_cmd
    from app.cli import build_parser

    seen: list[Turn] = []
    real_load = chat_cmd.load_model

    def recording_load(args):
        loaded = real_load(args)
        backend = loaded.backend

        class Recording:
            def __getattr__(self, name):
                return getattr(backend, name)

            def generate_steps(self, model, prompt, **kwargs):
                frame = None
                for frame in backend.generate_steps(model, prompt, **kwargs):
                    yield frame
                seen.append(Turn(ids=[int(t) for t in frame.tokens], prompt=list(prompt)))

        loaded.backend = Recording()
        return loaded

    monkeypatch.setattr(chat_cmd, "load_model", recording_load)
    args = build_parser().parse_args(["chat", "--backend", BACKEND, "--model", str(folder),
                                      "--dtype", "float32"])
    lines = iter([*questions(), "/quit"])
    out = io.StringIO()
    assert chat_cmd.run(args, input_fn=lambda _: next(lines), out=out) == 0
    # The notice chat prints before an answer whose prompt left messages out.
    notices = [0] * len(seen)
    answer_number = 0
    for line in out.getvalue().splitlines():
        found = re.search(r"the oldest (\d+) messages were left out|the oldest message was", line)
        if found:
            notices[answer_number] = int(found.group(1) or 1)
        if "LLaDA: " in line:
            answer_number += 1
    for turn, dropped in zip(seen, notices):
        turn.dropped = dropped
    return seen


def through_llada_generate(folder: Path, prompts: list[list[int]]) -> list[Turn]:
    """`llada generate --prompt-ids` on the prompts the conversation was asked with."""
    import os

    turns = []
    for prompt in prompts:
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "generate", "--backend", BACKEND, "--model",
             str(folder), "--dtype", "float32", "--json",
             "--prompt-ids", ",".join(map(str, prompt))],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
            env=dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1"))
        assert result.returncode == 0, result.stderr
        turns.append(Turn(ids=json.loads(result.stdout)["answer_ids"], prompt=prompt))
    return turns


def through_server(folder: Path) -> list[Turn]:
    """The OpenAI chat endpoint, streaming with llada frames; the client sends the conversation
    as text, as OpenAI clients do."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from app.server import make_server
    from serve_support import serve

    server = make_server(lambda: load(folder), model_id="demo", defaults=settings_of(folder),
                         backend_name=BACKEND)
    running = serve(server)
    port = running.port
    messages: list[dict] = []
    turns = []
    try:
        for question in questions():
            messages.append({"role": "user", "content": question})
            body = json.dumps({"messages": messages, "stream": True, "llada_frames": True,
                               "max_tokens": settings_of(folder)["gen_length"]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                             data=body, headers={"Content-Type": "application/json"})
            frame, dropped, text = None, 0, ""
            with urllib.request.urlopen(request, timeout=300) as response:
                for raw in response:
                    line = raw.decode().strip()
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[len("data: "):])
                    frame = chunk.get("llada_frame") or frame
                    dropped = chunk.get("llada", {}).get("dropped_messages", dropped)
                    for choice in chunk.get("choices", []):
                        text += choice.get("delta", {}).get("content") or ""
            turns.append(Turn(ids=frame["tokens"], dropped=dropped, text=text))
            messages.append({"role": "assistant", "content": text})
    finally:
        running.stop()
    return turns


# --- the test ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_same_conversation_through_every_front_end(small_context_demo, qtbot, monkeypatch):
    folder = small_context_demo
    window = through_window_worker(folder, qtbot)
    chat = through_llada_chat(folder, monkeypatch)
    assert len(window) == len(chat) == TURNS

    # The context decision: later turns outgrow the context and leave messages out, the same
    # number in every front end.
    assert any(turn.dropped for turn in window), [t.dropped for t in window]
    assert [t.dropped for t in chat] == [t.dropped for t in window]
    assert [t.prompt for t in chat] == [t.prompt for t in window]
    assert [t.ids for t in chat] == [t.ids for t in window]

    generate = through_llada_generate(folder, [t.prompt for t in window])
    assert [t.ids for t in generate] == [t.ids for t in window]

    # The server's clients send the conversation as text (the OpenAI API has no ids to continue
    # from), so its prompts are the window's whenever the window builds from text too: the first
    # turn, and every turn that no longer fits as a continuation. Messages left out are left out
    # everywhere.
    served = through_server(folder)
    assert [t.dropped for t in served] == [t.dropped for t in window]
    from_text = [n for n, turn in enumerate(window) if n == 0 or turn.reencoded]
    assert len(from_text) >= 2
    # The server stops an answer once its text is final (end of turn committed), so compare
    # the answers up to their end.
    loaded = load(folder)
    visible = [visible_answer_ids(loaded.tokenizer, turn.ids) for turn in window]
    assert [visible_answer_ids(loaded.tokenizer, served[n].ids) for n in from_text] == [
        visible[n] for n in from_text]
    assert [served[n].text for n in from_text] == [
        answer_text(loaded.tokenizer, window[n].ids) for n in from_text]

    # The lm-eval model answers the first question (one user turn, the chat template) alike.
    pytest.importorskip("lm_eval")
    from app.eval.lm_eval_llada import LLaDAHarnessModel
    from llada_core.chat import render_chat

    harness = LLaDAHarnessModel(model=str(folder), backend=BACKEND, dtype="float32",
                                device="cpu" if BACKEND == "torch" else None)
    context = render_chat(harness.tokenizer, [{"role": "user", "content": questions()[0]}])
    request = SimpleNamespace(args=(context, {"until": []}))
    assert harness._context(context) == window[0].prompt
    assert harness.generate_until([request], disable_tqdm=True) == [
        answer_text(loaded.tokenizer, window[0].ids)]


def test_only_the_session_layer_calls_a_backends_sampler():
    """Every front end reaches generation through app.session.answer.answer_steps."""
    callers = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "generate_steps(" in line and not line.lstrip().startswith(("def ", "#")):
                callers.append(f"{path.relative_to(ROOT)}:{number}")
    assert callers == ["app/session/answer.py:40"] or (
        len(callers) == 1 and callers[0].startswith("app/session/answer.py:")), callers
