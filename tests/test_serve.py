"""`llada serve`: the real server on a free loopback port, spoken to with the official `openai`
client (chat, streaming, a Base model's completion, cancellation by disconnect, 4xx and 401),
and the command itself in a subprocess (no window state, the warning off loopback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

import serve_support  # noqa: E402
from backend_choice import BACKEND  # noqa: E402
from test_base_models import make_base_like  # noqa: E402

from app.session.backends import get_backend  # noqa: E402
from app.session.model import LoadedModel  # noqa: E402
from app.models.catalog import bundled_demo_model  # noqa: E402
from app.server.api import (  # noqa: E402
    AnswerText, is_loopback, plan_schedule, served_model_id,
)
from app.server import make_server  # noqa: E402
from llada_core.chat import answer_text, encode_raw, load_tokenizer  # noqa: E402
from llada_core.settings import SamplerSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
DEMO = bundled_demo_model()
needs_demo = pytest.mark.skipif(DEMO is None, reason="the bundled demo model is not here")
# The server's own defaults, as `llada serve` would take them from its sampler flags.
DEFAULTS: dict[str, Any] = {**SamplerSettings(gen_length=8, block_length=8, steps=8, mode="fast").to_dict()}
EXACT = {"mode": "exact"}


class Running(serve_support.Running):
    def client(self, key: str | None = KEY) -> Any:
        return openai.OpenAI(base_url=self.url, api_key=key or "none", max_retries=0, timeout=120)


def start(load, model_id: str, api_key: str | None = KEY) -> Running:
    server = make_server(load, model_id=model_id, defaults=DEFAULTS, api_key=api_key,
                         backend_name=BACKEND)
    running = serve_support.serve(server)
    return Running(running.server, running.uvicorn, running.thread, running.port)


def loader(path: Path, slow: float = 0.0):
    def load():
        backend = get_backend(BACKEND)
        kwargs = {"device": "cpu"} if BACKEND == "torch" else {}
        model, tokenizer = backend.load(str(path), **kwargs)
        return LoadedModel(backend=SlowBackend(backend, slow) if slow else backend, model=model,
                           tokenizer=tokenizer, backend_name=BACKEND, path=str(path))
    return load


class SlowBackend:
    """The real backend with a pause after each step, so a test can disconnect mid-answer."""

    def __init__(self, backend: Any, pause: float):
        self.backend, self.pause = backend, pause

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate_steps(self, model: Any, prompt_ids: list[int], **kwargs: Any) -> Iterator[Any]:
        for frame in self.backend.generate_steps(model, prompt_ids, **kwargs):
            time.sleep(self.pause)
            yield frame


@pytest.fixture(scope="module")
def demo() -> Iterator[Running]:
    if DEMO is None:
        pytest.skip("the bundled demo model is not here")
    running = start(loader(DEMO), "llada-demo")
    yield running
    running.stop()


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def http(url: str, body: Any = None, *, key: str | None = KEY, timeout: float = 120) -> tuple[int, Any]:
    """(status, decoded JSON) of a plain request: bytes go as they are, anything else as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sse_events(url: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """A stream's events as (event name or None, decoded data), up to [DONE]."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    events, event = [], None
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line == "data: [DONE]":
                break
            elif line.startswith("data: "):
                events.append((event, json.loads(line[len("data: "):])))
                event = None
    return events


# --- pure parts -----------------------------------------------------------------------------

def test_plan_schedule_keeps_valid_settings():
    defaults = {"gen_length": 128, "block_length": 32, "steps": 128}
    assert plan_schedule(None, defaults) == {"gen_length": 128, "block_length": 32, "steps": 128}
    # the window's and the command line's rule: the length kept, the block the nearest divisor
    assert plan_schedule(100, defaults) == {"gen_length": 100, "block_length": 25, "steps": 100}
    assert plan_schedule(100, defaults, 32) == {"gen_length": 128, "block_length": 32, "steps": 128}
    assert plan_schedule(10, defaults) == {"gen_length": 10, "block_length": 10, "steps": 10}
    half = {"gen_length": 64, "block_length": 32, "steps": 32}
    assert plan_schedule(96, half) == {"gen_length": 96, "block_length": 32, "steps": 48}
    for wanted in range(1, 300, 7):
        for block in (None, 3, 16):
            SamplerSettings(**plan_schedule(wanted, defaults, block))  # always a valid schedule


def test_answer_text_holds_back_what_may_change(tiny_tokenizer):
    tok = tiny_tokenizer
    mask = tok.convert_tokens_to_ids("<|mdm_mask|>")
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    ids = list(tok("hello world again", add_special_tokens=False)["input_ids"])
    answer = AnswerText(tok, mask, max_tokens=50, stop=[])
    canvas = ids + [eot] + [mask] * 3
    assert answer.update([mask] * len(canvas), False) == ""
    assert answer.update(ids[:1] + [mask] * (len(canvas) - 1), False) == tok.decode(ids[:1])
    assert not answer.complete
    # End of turn settled: the answer is final although later positions are masked.
    rest = answer.update(canvas, False)
    assert answer.text == "hello world again" and rest == answer.text[len(tok.decode(ids[:1])):]
    assert answer.complete and answer.finish_reason == "stop" and answer.tokens == len(ids)

    hello = next(n for n in range(len(ids) + 1) if tok.decode(ids[:n]) == "hello")
    stopped = AnswerText(tok, mask, max_tokens=50, stop=[" wor"])
    assert stopped.update(ids[:hello] + [mask] * 5, False) == "hello"
    assert stopped.update(ids + [mask], False) == ""
    assert stopped.text == "hello" and stopped.finish_reason == "stop" and stopped.tokens == hello
    held = AnswerText(tok, mask, max_tokens=50, stop=["o w"])
    assert held.update(ids[:hello] + [mask] * 5, False) == "hell"  # "o" may begin the stop

    cut = AnswerText(tok, mask, max_tokens=1, stop=[])
    cut.update(ids + [eot], True)
    assert cut.text == tok.decode(ids[:1]) and cut.finish_reason == "length" and cut.tokens == 1


def test_loopback_and_model_id(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("::")
    assert served_model_id(str(tmp_path)) == tmp_path.name
    assert served_model_id("GSAI-ML/LLaDA-8B-Instruct") == "GSAI-ML/LLaDA-8B-Instruct"


# --- the server -----------------------------------------------------------------------------

@needs_demo
def test_models_and_chat_completion(demo):
    client = demo.client()
    assert [m.id for m in client.models.list().data] == ["llada-demo"]
    reply = client.chat.completions.create(model="llada-demo", messages=ask("What is 47 + 58?"))
    assert reply.choices[0].message.content == "105"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage.model_dump()
    assert usage["completion_tokens"] == len(load_tokenizer(DEMO)("105", add_special_tokens=False)["input_ids"])
    assert usage["prompt_tokens"] > 5 and usage["nfe"] >= 1
    # the app's one stats vocabulary (app/session/stats_text.py): passes of up to the step budget
    assert usage["nfe"] <= usage["step_budget"] and usage["seconds"] > 0
    assert usage["tokens_per_pass"] == pytest.approx(usage["completion_tokens"] / usage["nfe"],
                                                     abs=1e-3)
    # Extension fields reach the sampler: exact mode runs its fixed schedule up to the end of turn.
    exact = client.chat.completions.create(
        model="llada-demo", messages=ask("What is 12 + 30?"), max_tokens=8,
        extra_body={"mode": "exact", "steps": 8, "block_length": 8})
    assert exact.choices[0].message.content == "42"
    assert exact.model_extra["llada"]["sampler"]["mode"] == "exact"
    assert exact.usage.model_dump()["nfe"] == 8


@needs_demo
def test_stream_deltas_join_to_the_answer(demo):
    client = demo.client()
    settings = dict(model="llada-demo", messages=ask("Count from 36 to 51."),
                    max_tokens=64, extra_body={"mode": "exact", "steps": 64, "block_length": 16})
    whole = client.chat.completions.create(**settings)
    text = whole.choices[0].message.content
    assert text
    deltas, finish, usage = [], None, None
    with client.chat.completions.create(**settings, stream=True,
                                        stream_options={"include_usage": True}) as stream:
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    deltas.append(choice.delta.content)
                finish = choice.finish_reason or finish
    assert "".join(deltas) == text and text.split()[-1] == "51"
    assert len(deltas) >= 2  # sent as the settled prefix grew, not in one piece at the end
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens


@needs_demo
def test_stream_sends_frames_when_asked(demo):
    events = sse_events(demo.url + "/chat/completions", {
        "messages": ask("What is 47 + 58?"), "stream": True, "max_tokens": 8, "mode": "exact",
        "steps": 8, "llada_frames": True})
    frames = [data["llada_frame"] for name, data in events if name == "llada.frame"]
    assert [f["step"] for f in frames] == list(range(len(frames))) and frames
    assert all(len(f["tokens"]) == 8 == len(f["pieces"]) for f in frames)
    masked = [sum(p == "░" for p in f["pieces"]) for f in frames]
    assert masked == sorted(masked, reverse=True)  # one more commit each exact step
    text = "".join(d["choices"][0]["delta"].get("content") or "" for n, d in events
                   if n is None and d["choices"])
    assert text == "105"


@pytest.fixture(scope="module")
def base_server(tiny_checkpoint, tmp_path_factory) -> Iterator[tuple[Running, Path]]:
    folder = make_base_like(tiny_checkpoint, tmp_path_factory.mktemp("serve_base") / "model")
    running = start(loader(folder), "tiny-base")
    yield running, folder
    running.stop()


def test_completion_on_a_base_model(base_server):
    running, folder = base_server
    client = running.client()
    prompt = "In the beginning"
    reply = client.completions.create(model="tiny-base", prompt=prompt, max_tokens=8,
                                      extra_body={"mode": "exact", "steps": 8, "block_length": 8})
    assert reply.object == "text_completion"
    # The same prompt as raw text (BOS + text, no template) through the backend directly.
    backend = get_backend(BACKEND)
    model, tokenizer = backend.load(str(folder), **({"device": "cpu"} if BACKEND == "torch" else {}))
    ids = encode_raw(tokenizer, prompt)
    frame = None
    for frame in backend.generate_steps(model, ids, gen_length=8, block_length=8, steps=8, mode="exact"):
        pass
    assert reply.choices[0].text == answer_text(tokenizer, frame.tokens)
    assert reply.usage.prompt_tokens == len(ids)
    chunks = list(client.completions.create(model="tiny-base", prompt=prompt, max_tokens=8, stream=True,
                                            extra_body={"mode": "exact", "steps": 8}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text


def test_bad_requests_get_openai_errors(base_server):
    running, _ = base_server
    client = running.client()
    status, body = http(running.url + "/chat/completions", b"{not json")
    assert status == 400
    assert "not valid JSON" in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert error.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="tiny-base", prompt="hi", max_tokens=16, extra_body={"steps": 40})
    assert "steps 40 is more than the answer length 16" in error.value.body["message"]
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="tiny-base", prompt="hi", extra_body={"mode": "slow"})
    assert "mode 'slow' is unknown" in error.value.body["message"]
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="tiny-base", prompt="hi", max_tokens=10_000)
    assert error.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-base", messages=[{"role": "tool", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-base", messages=ask("hi"), temperature="hot")
    status, body = http(running.url + "/nowhere")
    assert status == 404 and "error" in body
    # Without the key, or with another, nothing is served.
    with pytest.raises(openai.AuthenticationError):
        running.client(key="wrong").models.list()
    status, body = http(running.url + "/models", key=None)
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"
    # The server still answers after all that.
    assert client.completions.create(model="tiny-base", prompt="hi", max_tokens=4).choices


def test_disconnect_cancels_the_generation(tiny_checkpoint):
    running = start(loader(tiny_checkpoint, slow=0.05), "tiny")
    worker = running.server.worker
    try:
        body = {"prompt": "Genesis", "max_tokens": 64, "steps": 64, "block_length": 64, "mode": "exact"}

        def idle_after(start_steps: int) -> int:
            deadline = time.monotonic() + 30
            while worker.busy or not worker._jobs.empty():
                assert time.monotonic() < deadline, "the worker kept going"
                time.sleep(0.05)
            return worker.steps_run - start_steps

        # A stream closed after a few frames.
        before = worker.steps_run
        stream = running.client().completions.create(model="tiny", prompt="Genesis", max_tokens=64,
                                                      stream=True, extra_body={**body, "llada_frames": True})
        for number, _ in enumerate(stream):
            if number == 2:
                break
        stream.close()
        ran = idle_after(before)
        assert worker.jobs_cancelled == 1
        assert ran < 32, f"{ran} of 64 steps ran after the client left"

        # A plain request whose client gives up.
        before = worker.steps_run
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            http(running.url + "/completions", body, timeout=0.4)
        ran = idle_after(before)
        assert worker.jobs_cancelled == 2
        assert ran < 40, f"{ran} of 64 steps ran after the client left"

        # The queue is not stuck: the next request gets a whole answer.
        status, reply = http(running.url + "/completions", {**body, "max_tokens": 8, "steps": 8,
                                                            "block_length": 8})
        assert status == 200 and reply["usage"]["nfe"] >= 1
    finally:
        running.stop()


# --- the command ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_imports_no_window_code():
    code = ("import sys, app.server.api, app.cli.serve; "
            "print([m for m in sys.modules if m.split('.')[0] == 'PySide6' or "
            "m in ('app.ui.worker', 'app.history.store') or m.startswith('app.ui')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_demo
def test_llada_serve_command(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "LLADA_API_KEY": KEY}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--backend", BACKEND, "--model", str(DEMO),
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                status, models = http(url + "/models")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "llada serve did not start"
                time.sleep(0.2)
        assert status == 200 and models["data"][0]["id"] == "llada-demo"
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=120)
        reply = client.chat.completions.create(model="llada-demo", messages=ask("What is 47 + 58?"))
        assert reply.choices[0].message.content == "105"
        assert http(url + "/models", key=None)[0] == 401  # the key came from $LLADA_API_KEY
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert f"llada-demo at http://127.0.0.1:{port}/v1" in err
    assert f"the browser page is at http://127.0.0.1:{port}/" in err
    assert "warning" not in err
    # The server keeps no conversations: nothing was written where the window keeps its data.
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*"))
    assert not any(p.is_file() for p in (tmp_path / "config").rglob("*"))


def test_llada_serve_warns_off_loopback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
         "--backend", BACKEND, "--model", str(tmp_path / "no-model")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "LLADA_API_KEY": ""})
    assert result.returncode == 2
    assert "warning: listening on 0.0.0.0" in result.stderr and "no --api-key" in result.stderr
