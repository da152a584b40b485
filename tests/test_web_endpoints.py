"""The browser page's server side without a browser (app/web): the page and its assets open
without the key while the API keeps it, /v1/llada/info, /v1/llada/infill checked like `llada
infill`, and the frame fields the canvas draws from."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("openai")

from test_serve import DEFAULTS, KEY, demo, http, sse_events  # noqa: E402,F401

from llada_core.constraints import infill_canvas  # noqa: E402


def get(url: str, key: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def root(running: Any) -> str:
    return running.url[:-len("/v1")]


def test_the_page_needs_no_key_and_the_api_still_does(demo):
    status, headers, body = get(root(demo) + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/web/app.js"' in body
    assert "script-src 'self'" in headers["content-security-policy"]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, _ = get(f"{root(demo)}/web/{name}")
        assert status == 200 and headers["content-type"].startswith(kind)
    # Only the page's own files are open; nothing else in the folder is served, key or not.
    for path in ("/web/..%2F__init__.py", "/web/__init__.py", "/web/index.html.bak"):
        assert get(root(demo) + path)[0] == 401
        assert get(root(demo) + path, KEY)[0] == 404
    assert get(demo.url + "/llada/info")[0] == 401
    assert http(demo.url + "/llada/infill", {"text": "a [__]"}, key=None)[0] == 401


def test_info_names_the_model_backend_dtype_and_defaults(demo):
    status, info = http(demo.url + "/llada/info")
    assert status == 200
    assert info["model"] == "llada-demo" and info["backend"] == demo.server.backend_name
    assert info["dtype"] in ("float32", "bfloat16", "float16")
    assert info["defaults"]["gen_length"] == DEFAULTS["gen_length"]
    assert info["defaults"]["mode"] == DEFAULTS["mode"] and info["api_key_required"] is True


def test_infill_fills_the_holes_and_keeps_the_text(demo):
    text = "Count from 14 to 27: 14 15 16 [____] 21 22"
    status, body = http(demo.url + "/llada/infill", {"text": text, "mode": "exact"})
    assert status == 200, body
    canvas = infill_canvas(demo.server.worker.tokenizer, text)
    assert [(h["start"], h["length"]) for h in body["holes"]] == canvas.holes
    for position, token in canvas.fixed.items():
        assert body["canvas_ids"][position] == token  # the text around the holes stays
    assert body["steps"] == 4 and body["text"].startswith("Count from 14 to 27: 14 15 16")
    # Streamed: frames with the holes, then the same result.
    events = sse_events(demo.url + "/llada/infill", {"text": text, "mode": "exact", "stream": True})
    frames = [data["llada_frame"] for name, data in events if name == "llada.frame"]
    assert frames and frames[0]["holes"] == [list(h) for h in canvas.holes]
    assert frames[-1]["done"] and events[-1][1]["text"] == body["text"]


@pytest.mark.parametrize("body, words", [
    ({"text": "no holes"}, "no hole to fill"),
    ({"text": "a [____]", "steps": 9}, "steps must be 1 to 4"),
    ({"text": "a [__]", "mode": "slow"}, "mode"),
    ({"text": "a [__]", "temperature": "hot"}, "'temperature' must be a number"),
    ({"text": 3}, "'text' must be a string"),
    ({"text": "a [__]", "gen_length": 8}, "not a field of an infill request"),
])
def test_infill_refuses_bad_requests_in_one_sentence(demo, body, words):
    status, answer = http(demo.url + "/llada/infill", body)
    assert status == 400 and words in answer["error"]["message"], answer


def test_frames_carry_confidence_block_length_and_the_step_budget(demo):
    events = sse_events(demo.url + "/chat/completions", {
        "messages": [{"role": "user", "content": "Count from 14 to 27."}], "stream": True,
        "max_tokens": 16, "block_length": 8, "steps": 16, "mode": "exact", "llada_frames": True})
    frames = [data["llada_frame"] for name, data in events if name == "llada.frame"]
    assert frames
    for frame in frames:
        assert frame["block_length"] == 8 and frame["total_steps"] == 16
        assert len(frame["confidence"]) == len(frame["tokens"]) == 16
        for at, confidence in zip(frame["committed_at"], frame["confidence"]):
            assert (confidence == 0) if at < 0 else (0 < confidence <= 1)
