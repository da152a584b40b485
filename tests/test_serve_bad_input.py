"""`llada serve` against a hostile client: every malformed request is one sentence with a 4xx,
refused before the first byte; a failure inside the model is a logged traceback and an error id
(never the exception's text); a stream always ends with [DONE]; a full queue is a 503 with
Retry-After; tokenizing stays off the event loop; a port in use is one sentence."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("openai")

from backend_choice import BACKEND  # noqa: E402
from test_serve import KEY, ROOT, Running, ask, http, loader, start  # noqa: E402

from app.session.backends import get_backend  # noqa: E402
from app.session.model import LoadedModel  # noqa: E402

# (what is wrong, the body, the status, words the message must hold)
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("lone surrogate", {"messages": ask("\ud800")}, 400, "surrogate"),
    ("lone surrogate in a key", {"messages": ask("hi"), "metadata": {"\udfff": 1}}, 400, "surrogate"),
    ("seed 2**63", {"messages": ask("hi"), "seed": 2**63}, 400, "too large"),
    ("seed 10**400", {"messages": ask("hi"), "seed": 10**400}, 400, "too large"),
    ("negative seed", {"messages": ask("hi"), "seed": -1}, 400, "seed"),
    ("temperature 1e308", {"messages": ask("hi"), "temperature": 1e308}, 400, "temperature must be a number from 0 to 2"),
    ("temperature 3", {"messages": ask("hi"), "temperature": 3}, 400, "from 0 to 2"),
    ("cfg_scale 1e37", {"messages": ask("hi"), "cfg_scale": 1e37}, 400, "CFG scale must be a number from 0 to 10"),
    ("max_tokens 10**400", {"messages": ask("hi"), "max_tokens": 10**400}, 400, "too large"),
    ("max_tokens past the context", {"messages": ask("hi"), "max_tokens": 2**62}, 400, "context"),
    ("block_length 10**30", {"messages": ask("hi"), "block_length": 10**30}, 400, "block_length"),
    ("steps 1.5", {"messages": ask("hi"), "steps": 1.5}, 400, "whole number"),
    ("threshold nan", b'{"messages": [{"role": "user", "content": "hi"}], "threshold": NaN}', 400, "finite"),
    ("temperature Infinity", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}', 400, "finite"),
    ("tools", {"messages": ask("hi"), "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "'tools' is not supported"),
    ("tool_choice", {"messages": ask("hi"), "tool_choice": "auto"}, 400, "'tool_choice'"),
    ("response_format json", {"messages": ask("hi"), "response_format": {"type": "json_object"}}, 400, "'response_format' is not supported"),
    ("logprobs", {"messages": ask("hi"), "logprobs": True}, 400, "'logprobs' is not supported"),
    ("top_logprobs", {"messages": ask("hi"), "top_logprobs": 3}, 400, "'top_logprobs'"),
    ("top_p 0.5", {"messages": ask("hi"), "top_p": 0.5}, 400, "'top_p' is not supported"),
    ("presence penalty", {"messages": ask("hi"), "presence_penalty": 1.0}, 400, "'presence_penalty'"),
    ("logit bias", {"messages": ask("hi"), "logit_bias": {"5": 10}}, 400, "'logit_bias'"),
    ("unknown field", {"messages": ask("hi"), "temprature": 0.5}, 400, "'temprature' is not a field"),
    ("n 2", {"messages": ask("hi"), "n": 2}, 400, "'n' must be 1"),
    ("n true", {"messages": ask("hi"), "n": True}, 400, "'n' must be 1"),
    ("stream 'yes'", {"messages": ask("hi"), "stream": "yes"}, 400, "'stream'"),
    ("stream_options list", {"messages": ask("hi"), "stream_options": [1]}, 400, "stream_options"),
    ("no messages", {}, 400, "'messages'"),
    ("messages a string", {"messages": "hi"}, 400, "'messages'"),
    ("message a number", {"messages": [5]}, 400, "message 1"),
    ("role a list", {"messages": [{"role": ["user"], "content": "hi"}]}, 400, "role"),
    ("content a number", {"messages": [{"role": "user", "content": 5}]}, 400, "content"),
    ("image without a data URL", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "data: URL"),
    ("image from the network", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]}, 400, "fetches nothing"),
    ("audio content", {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, 400, "image_url"),
    ("body a list", [1, 2], 400, "JSON object"),
    ("body a string", "hello", 400, "JSON object"),
    ("not JSON", b"{nope", 400, "not valid JSON"),
    ("not UTF-8", b'{"messages": "\xff\xfe"}', 400, "not valid JSON"),
    ("nested 100 000 deep", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("nested object 100 000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "nested too deeply"),
    ("stop a number", {"messages": ask("hi"), "stop": 5}, 400, "'stop'"),
    ("five stops", {"messages": ask("hi"), "stop": ["a", "b", "c", "d", "e"]}, 400, "'stop'"),
    ("mode a number", {"messages": ask("hi"), "mode": 1}, 400, "'mode'"),
    ("remasking unknown", {"messages": ask("hi"), "remasking": "best"}, 400, "remasking"),
    ("model unknown", {"messages": ask("hi"), "model": "gpt-4o"}, 404, "does not exist"),
    ("model a dict", {"messages": ask("hi"), "model": {"a": 1}}, 404, "does not exist"),
    ("echo", {"messages": ask("hi"), "echo": True}, 400, "llada eval"),
    ("stream with seed 2**63", {"messages": ask("hi"), "seed": 2**63, "stream": True}, 400, "seed"),
]

BAD_COMPLETIONS: list[tuple[str, Any, int, str]] = [
    ("prompt ids out of range", {"prompt": [10**9]}, 400, "not a valid id"),
    ("prompt ids huge", {"prompt": [10**400]}, 400, "not a valid id"),
    ("prompt a dict", {"prompt": {"a": 1}}, 400, "'prompt'"),
    ("prompt empty list", {"prompt": []}, 400, "'prompt'"),
    ("suffix", {"prompt": "a", "suffix": "b"}, 400, "'suffix' is not supported"),
    ("best_of 3", {"prompt": "a", "best_of": 3}, 400, "'best_of'"),
    ("echo", {"prompt": "a", "echo": True}, 400, "lm-eval"),
    ("lone surrogate prompt", {"prompt": "\udc80"}, 400, "surrogate"),
    ("logprobs 5", {"prompt": "a", "logprobs": 5}, 400, "'logprobs'"),
]


def send(url: str, body: Any, *, stream_ok: bool = False) -> tuple[int, Any, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


class FailingBackend:
    """The real backend, except that answering fails with a message no client should see."""

    def __init__(self, backend: Any):
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate_steps(self, model: Any, prompt_ids: list[int], **kwargs: Any) -> Iterator[Any]:
        frames = self.backend.generate_steps(model, prompt_ids, **kwargs)
        yield next(frames)
        raise RuntimeError("secret detail at /home/someone/weights.bin")


@pytest.fixture(scope="module")
def tiny_server(tiny_checkpoint) -> Iterator[Running]:
    running = start(loader(tiny_checkpoint), "tiny")
    yield running
    running.stop()


def one_sentence(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message and len(message) < 400


def test_every_bad_request_is_one_sentence_and_costs_nothing(tiny_server, caplog):
    caplog.set_level(logging.INFO, logger="app.server.api")
    handled = 0
    tried = [("chat", *case) for case in BAD_BODIES] + [("completions", *case) for case in BAD_COMPLETIONS]
    for route, what, body, status, words in tried:
        got, reply, headers = send(f"{tiny_server.url}/{'chat/completions' if route == 'chat' else route}", body)
        assert got == status, (what, got, reply)
        message = reply["error"]["message"]
        assert words.lower() in message.lower(), (what, message)
        assert one_sentence(message), (what, message)
        assert headers.get("x-request-id"), what
        handled += 1
    assert handled == len(tried) == 58
    # Each refusal was logged with its request id.
    refused = [r for r in caplog.records if "refused (4" in r.getMessage()]
    assert len(refused) >= len(tried)
    # And the server still answers.
    status, reply, _ = send(tiny_server.url + "/chat/completions",
                            {"messages": ask("hi"), "max_tokens": 4, "top_p": 1, "logprobs": False,
                             "response_format": {"type": "text"}, "tools": [], "user": "me"})
    assert status == 200 and json.loads(reply)["choices"]


def test_a_failing_model_sends_an_error_id_never_its_text(tiny_checkpoint, caplog):
    caplog.set_level(logging.INFO, logger="app.server.api")

    def load():
        backend = get_backend(BACKEND)
        model, tokenizer = backend.load(str(tiny_checkpoint), **({"device": "cpu"} if BACKEND == "torch" else {}))
        return LoadedModel(backend=FailingBackend(backend), model=model, tokenizer=tokenizer,
                           backend_name=BACKEND, path=str(tiny_checkpoint))

    running = start(load, "tiny")
    try:
        body = {"prompt": "Genesis", "max_tokens": 8, "steps": 8, "block_length": 8, "mode": "exact"}
        status, reply, headers = send(running.url + "/completions", body)
        assert status == 500
        message = reply["error"]["message"]
        assert "secret" not in message and "RuntimeError" not in message and one_sentence(message)
        error_id = headers["x-request-id"]
        assert f"error id {error_id}" in message
        logged = [r for r in caplog.records if error_id in r.getMessage() and r.exc_info]
        assert logged and "secret detail" in str(logged[0].exc_info[1])

        # Streaming: 200, then an error event, then [DONE]; still no exception text.
        status, text, headers = send(running.url + "/completions", {**body, "stream": True})
        assert status == 200
        events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert "secret" not in error["message"] and headers["x-request-id"] in error["message"]
    finally:
        running.stop()


def test_a_full_queue_is_503_with_retry_after(tiny_server):
    worker = tiny_server.server.worker
    worker.max_waiting = 0  # every request finds the queue full
    try:
        status, reply, headers = send(tiny_server.url + "/chat/completions",
                                      {"messages": ask("hi"), "max_tokens": 4})
    finally:
        worker.max_waiting = 8
    assert status == 503
    assert headers["retry-after"].isdigit()
    assert "busy" in reply["error"]["message"] and one_sentence(reply["error"]["message"])


def test_tokenizing_a_long_prompt_leaves_the_server_answering(tiny_server):
    """While one request's prompt is being tokenized (held here until the test lets it go), the
    server answers another: tokenizing runs off the event loop."""
    worker = tiny_server.server.worker
    real = worker.tokenizer
    entered, release = threading.Event(), threading.Event()

    class SlowTokenizer:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
            entered.set()
            assert release.wait(60)
            return real.apply_chat_template(*args, **kwargs)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return real(*args, **kwargs)

    worker.loaded.tokenizer = SlowTokenizer()
    try:
        slow = threading.Thread(target=send, args=(tiny_server.url + "/chat/completions",
                                                   {"messages": ask("hi"), "max_tokens": 4}))
        slow.start()
        assert entered.wait(60), "the chat request never reached the tokenizer"
        status, _ = http(tiny_server.url + "/models")
        still_tokenizing = not release.is_set()
    finally:
        release.set()
        slow.join(timeout=60)
        worker.loaded.tokenizer = real
    assert status == 200 and still_tokenizing


def test_a_port_in_use_is_one_sentence(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--backend", BACKEND,
             "--model", str(tmp_path / "no-model")],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "LLADA_LOG_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "http://" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_a_conversation_longer_than_the_context_leaves_out_its_oldest_messages(tiny_server):
    """The window's context policy, in the server: the system message stays, the oldest turns
    go, and the response says how many (no 400 while the last message alone fits)."""
    context = tiny_server.server.worker.loaded.max_length
    messages = [{"role": "system", "content": "Be brief."}]
    for n in range(context // 8):
        messages += [{"role": "user", "content": f"question {n} " * 4},
                     {"role": "assistant", "content": f"answer {n} " * 4}]
    messages.append({"role": "user", "content": "last"})
    status, reply, _ = send(tiny_server.url + "/chat/completions",
                            {"messages": messages, "max_tokens": 8, "steps": 8, "block_length": 8})
    assert status == 200, reply
    reply = json.loads(reply)
    dropped = reply["llada"]["dropped_messages"]
    assert dropped >= 2 and dropped % 2 == 0 and dropped < len(messages) - 2
    assert f"oldest {dropped} messages were left out" in reply["llada"]["notice"]
    assert reply["usage"]["prompt_tokens"] + 8 <= context
    # a message that alone outgrows the context is refused in one sentence
    status, reply, _ = send(tiny_server.url + "/chat/completions",
                            {"messages": [{"role": "user", "content": "word " * context}]})
    assert status == 400 and reply["error"]["code"] == "context_length_exceeded"
    assert one_sentence(reply["error"]["message"])
