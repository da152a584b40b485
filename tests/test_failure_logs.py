"""A failure in the middle of an answer, in each front end, leaves its traceback in the log file:
the backend is made to fail after its first step (as a driver crash or an out-of-memory would),
and the log must hold the traceback and the exception."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from app import cli
from app.session.logs import setup_logging
from backend_choice import BACKEND

SMALL = ["--gen-length", "8", "--block-length", "8", "--steps", "8", "--mode", "exact"]


class FailingBackend:
    """The real backend, except that an answer fails after its first step."""

    def __init__(self, backend: Any, what: str):
        self.backend, self.what = backend, what

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate_steps(self, model: Any, prompt_ids: Any, **settings: Any) -> Iterator[Any]:
        frames = self.backend.generate_steps(model, prompt_ids, **settings)
        yield next(frames)
        raise RuntimeError(f"forced failure in {self.what}")


@pytest.fixture
def log_file(tmp_path, monkeypatch) -> Iterator[Path]:
    monkeypatch.setenv("LLADA_LOG_DIR", str(tmp_path / "logs"))
    setup_logging()
    yield tmp_path / "logs" / "llada.log"
    monkeypatch.delenv("LLADA_LOG_DIR")
    setup_logging()


def failing_loader(module: Any, monkeypatch, what: str) -> None:
    real = module.load_model

    def load(args):
        loaded = real(args)
        loaded.backend = FailingBackend(loaded.backend, what)
        return loaded

    monkeypatch.setattr(module, "load_model", load)


def assert_logged(log_file: Path, what: str) -> None:
    for handler in __import__("logging").getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text, text
    assert f"RuntimeError: forced failure in {what}" in text, text


@pytest.mark.parametrize("command", ["generate", "infill", "eval"])
def test_a_command_that_fails_mid_answer_logs_its_traceback(command, tiny_checkpoint, log_file,
                                                            monkeypatch):
    import importlib

    module = importlib.import_module({"eval": "app.cli.evaluate"}.get(command, f"app.cli.{command}"))
    failing_loader(module, monkeypatch, command)
    base = ["--model", str(tiny_checkpoint), "--backend", BACKEND]
    argv = {
        "generate": ["generate", *base, *SMALL, "--prompt", "hi"],
        "infill": ["infill", *base, "The [____] is here."],
        "eval": ["eval", *base, *SMALL, "--tasks", "count", "--items", "1"],
    }[command]
    with pytest.raises(RuntimeError, match=f"forced failure in {command}"):
        cli.main(argv)
    assert_logged(log_file, command)


def test_llada_chat_survives_a_failed_answer_and_logs_it(tiny_checkpoint, log_file, monkeypatch):
    import io

    import app.cli.chat as chat_cmd

    failing_loader(chat_cmd, monkeypatch, "chat")
    args = cli.build_parser().parse_args(["chat", "--model", str(tiny_checkpoint), "--backend",
                                          BACKEND, *SMALL])
    lines = iter(["hello", "hello again", "/quit"])
    out = io.StringIO()
    assert chat_cmd.run(args, input_fn=lambda _: next(lines), out=out) == 0
    failed = [line for line in out.getvalue().splitlines() if line.startswith("(error:")]
    assert len(failed) == 2 and all("that answer is not kept" in line for line in failed)
    assert "forced failure in chat" in failed[0]
    assert_logged(log_file, "chat")


def test_the_window_worker_logs_a_failed_answer(qtbot, tiny_checkpoint, log_file):
    from app.ui.worker import Worker

    worker = Worker()
    failures: list[str] = []
    worker.failed.connect(lambda _, message: failures.append(message))
    worker.load(str(tiny_checkpoint), BACKEND, {"device": "cpu" if BACKEND == "torch" else None})
    worker.current.backend = FailingBackend(worker.current.backend, "the window")
    worker.generate(1, {"turns": [{"role": "user", "content": "hi"}]},
                    {"gen_length": 8, "block_length": 8, "steps": 8, "mode": "exact"})
    assert len(failures) == 1 and failures[0].count(".") <= 2  # one sentence for the user
    assert_logged(log_file, "the window")
    worker.unload()


def test_the_server_logs_a_failed_answer_with_its_request_id(tiny_checkpoint, log_file):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from app.server import make_server
    from serve_support import serve
    from app.session.model import load_model

    def load():
        loaded = load_model(str(tiny_checkpoint), BACKEND,
                            device="cpu" if BACKEND == "torch" else None)
        loaded.backend = FailingBackend(loaded.backend, "the server")
        return loaded

    server = make_server(load, model_id="tiny", defaults={"gen_length": 8, "block_length": 8,
                                                          "steps": 8, "mode": "exact"},
                         backend_name=BACKEND)
    running = serve(server)
    port = running.port
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/completions",
            data=json.dumps({"prompt": "hi", "max_tokens": 8}).encode(),
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=120)
        body = json.loads(failed.value.read())
        request_id = failed.value.headers["X-Request-Id"]
    finally:
        running.stop()
    assert failed.value.code == 500 and "forced failure" not in json.dumps(body)
    assert_logged(log_file, "the server")
    assert request_id and request_id in log_file.read_text(encoding="utf-8")
