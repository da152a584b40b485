"""The browser page of `llada serve` (app/web), driven in headless Chromium with Playwright.

The real server runs on a free loopback port with the bundled demo model. Screenshots go to
a folder under pytest's tmp path (its path is printed) and the chat one to docs/browser-page.png
for the README. Skips with a reason where chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install playwright; the browser is Debian's chromium)")

from backend_choice import BACKEND  # noqa: E402

from app.session.backends import get_backend  # noqa: E402
from app.session.model import LoadedModel  # noqa: E402
from app.models.catalog import bundled_demo_model  # noqa: E402
from app.server import make_server  # noqa: E402
from app.server.api import uvicorn_server  # noqa: E402
from llada_core.frames import StepFrame  # noqa: E402
from llada_core.settings import SamplerSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEMO = bundled_demo_model()
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium here (apt-get install chromium)"),
    pytest.mark.skipif(DEMO is None, reason="the bundled demo model is not here"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
DEFAULTS = SamplerSettings(**json.loads((Path(str(DEMO)) / "sampler_defaults.json").read_text())).to_dict() \
    if DEMO is not None else {}
COUNT = " ".join(str(n) for n in range(14, 28))
HOSTILE = '<script>window.pwned=1</script> <img src=x onerror="window.pwned=2"> **bold**'


class Paced:
    """The real backend, waiting `delay` seconds after each step so a person (and the test) can
    see the canvas fill in; `answer` replaces the model's tokens with a fixed text."""

    def __init__(self, backend: Any):
        self.backend, self.delay, self.answer = backend, 0.0, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate_steps(self, model: Any, prompt: Any, **kwargs: Any):
        if self.answer is not None:
            yield from self._fixed(kwargs["gen_length"])
            return
        for frame in self.backend.generate_steps(model, prompt, **kwargs):
            yield frame
            time.sleep(self.delay)

    def _fixed(self, gen_length: int):
        import numpy as np

        tokenizer = self.tokenizer
        ids = list(tokenizer.encode(self.answer))[:gen_length]
        ids += [tokenizer.eos_token_id] * (gen_length - len(ids))
        yield StepFrame(index=0, block=0, tokens=np.array(ids), committed_at=np.zeros(gen_length, int),
                        confidence=np.ones(gen_length), committed=gen_length, nfe=1, done=True)


class Served:
    """`llada serve` on a free loopback port: the demo, or the model in `folder`."""

    def __init__(self, api_key: str | None = None, folder: Any = None,
                 model_id: str = "llada-demo", defaults: dict | None = None):
        self.paced: Paced | None = None
        folder = str(folder or DEMO)

        def load():
            backend = get_backend(BACKEND)
            kwargs = {"device": "cpu"} if BACKEND == "torch" else {}
            model, tokenizer = backend.load(folder, **kwargs)
            self.paced = Paced(backend)
            self.paced.tokenizer = tokenizer
            return LoadedModel(backend=self.paced, model=model, tokenizer=tokenizer,
                               backend_name=BACKEND, path=folder)

        self.server = make_server(load, model_id=model_id,
                                  defaults=DEFAULTS if defaults is None else defaults,
                                  api_key=api_key, backend_name=BACKEND)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.uvicorn = uvicorn_server(self.server, "127.0.0.1", sock.getsockname()[1], "warning")
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.uvicorn.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=30)
        self.server.worker.stop()


@pytest.fixture(scope="module")
def served():
    running = Served()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as error:  # noqa: BLE001 - a browser that cannot start is a skip, said why
            pytest.skip(f"chromium at {CHROMIUM} does not start: {error}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-screenshots")
    print(f"\nbrowser page screenshots: {folder}")
    return folder


def open_page(browser: Any, served: Served, model_id: str = "llada-demo", **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(served.url + "/")
    sync_api.expect(page.locator("#model-line")).to_contain_text(model_id)
    return page


def set_setting(page: Any, name: str, value: str) -> None:
    if not page.locator("#settings").get_attribute("open") is not None:
        page.locator("#settings summary").click()
    field = page.locator(f"#set-{name}")
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def test_count_fills_in_live_then_shows_the_numbers(browser, served, shots):
    page = open_page(browser, served)
    expect = sync_api.expect
    expect(page.locator("#model-line")).to_contain_text(BACKEND)
    # The model's own defaults are the settings the page starts from.
    assert page.locator("#set-max_tokens").input_value() == str(DEFAULTS["gen_length"])
    assert page.locator("#set-mode").input_value() == DEFAULTS["mode"]
    set_setting(page, "mode", "exact")
    set_setting(page, "steps", str(DEFAULTS["gen_length"]))
    served.paced.delay = 0.05
    try:
        page.locator("#prompt").click()
        page.keyboard.type("Count from 14 to 27.")
        page.keyboard.press("Enter")  # keyboard only: Enter sends
        expect(page.locator("#canvas .cell.masked").first).to_be_visible()
        expect(page.locator("#progress")).to_contain_text(f"of {DEFAULTS['gen_length']}")
        deadline = time.monotonic() + 20
        while page.locator("#canvas .cell:not(.masked)").count() <= 4:  # some tokens are in
            assert time.monotonic() < deadline, "the canvas did not fill in"
            page.wait_for_timeout(20)
        assert page.locator("#canvas .cell.masked").count() > 0
        assert page.locator("#canvas .cell.block-start").count() == DEFAULTS["gen_length"] // DEFAULTS["block_length"] - 1
        page.screenshot(path=str(shots / "1-count-masks.png"))
        answer = page.locator(".message.assistant .body")
        expect(answer).to_have_text(COUNT, timeout=30_000)
    finally:
        served.paced.delay = 0.0
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#progress")).to_contain_text("done")
    assert page.locator("#canvas .cell.masked").count() == 0
    page.select_option("#colour-mode", "reveal")
    page.screenshot(path=str(shots / "2-count-done.png"))
    # The README's picture: written where it is missing, or when asked for with
    # LLADA_DOCS_SCREENSHOT=1, so that a test run does not change a tracked file.
    readme_shot = ROOT / "docs" / "browser-page.png"
    if not readme_shot.exists() or os.environ.get("LLADA_DOCS_SCREENSHOT") == "1":
        page.screenshot(path=str(readme_shot))
    # Shift+Enter is a new line, not a send.
    page.locator("#prompt").click()
    page.keyboard.type("a")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("b")
    assert page.locator("#prompt").input_value() == "a\nb"
    assert page.locator(".message").count() == 2
    # Settings the sampler refuses: the server's sentence, and the message back in the composer.
    set_setting(page, "steps", "7")
    page.locator("#prompt").fill("Count from 14 to 27.")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#chat-error")).to_contain_text("steps")
    assert page.locator("#prompt").input_value() == "Count from 14 to 27."
    assert page.locator(".message").count() == 2
    assert page.errors == []


def test_stop_ends_an_answer_midway(browser, served, shots):
    page = open_page(browser, served)
    set_setting(page, "mode", "exact")
    set_setting(page, "steps", str(DEFAULTS["gen_length"]))
    cancelled = served.server.worker.jobs_cancelled
    served.paced.delay = 0.2
    try:
        page.locator("#prompt").fill("Count from 14 to 27.")
        page.locator("#send").click()
        deadline = time.monotonic() + 20
        while page.locator("#canvas .cell:not(.masked)").count() < 3:  # a few passes in
            assert time.monotonic() < deadline, "the canvas did not fill in"
            page.wait_for_timeout(20)
        page.locator("#stop").click()
        sync_api.expect(page.locator(".message.assistant .meta")).to_have_text("stopped")
        deadline = time.monotonic() + 10
        while served.server.worker.jobs_cancelled == cancelled:
            assert time.monotonic() < deadline, "the server kept running the stopped answer"
            time.sleep(0.05)
    finally:
        served.paced.delay = 0.0
    assert page.locator("#canvas .cell.masked").count() > 0  # it stopped before the end
    page.screenshot(path=str(shots / "3-stopped.png"))
    # Retry asks again and this time gets the whole answer.
    page.locator(".message.assistant .retry").click()
    sync_api.expect(page.locator(".message.assistant .body")).to_have_text(COUNT, timeout=30_000)


def test_infill_fills_the_holes_in_place(browser, served, shots):
    page = open_page(browser, served)
    page.locator("#tab-infill").click()
    text = "Count from 14 to 27: 14 15 16 [____] 21 22"
    page.locator("#infill-text").fill(text)
    page.locator("#infill-send").click()
    sync_api.expect(page.locator("#infill-send")).to_be_enabled(timeout=30_000)
    sync_api.expect(page.locator("#infill-result mark")).to_have_count(1)
    # The same request through the documented endpoint, not streamed: the same filling.
    request = urllib.request.Request(served.url + "/v1/llada/infill", data=json.dumps(
        {"text": text, "mode": DEFAULTS["mode"], "threshold": DEFAULTS["threshold"],
         "temperature": 0}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        expected = json.load(response)
    assert len(expected["holes"]) == 1 and expected["holes"][0]["length"] == 4
    assert page.locator("#infill-result").inner_text() == expected["text"]
    assert page.locator("#infill-result mark").inner_text() == expected["holes"][0]["text"]
    assert expected["text"].startswith("Count from 14 to 27: 14 15 16") and expected["text"].endswith(" 21 22")
    assert page.locator("#canvas .cell.hole").count() == 4
    page.screenshot(path=str(shots / "4-infill.png"))
    # A text without a hole is one sentence from the same check as `llada infill`.
    page.locator("#infill-text").fill("no holes here")
    page.locator("#infill-send").click()
    sync_api.expect(page.locator("#infill-error")).to_contain_text("no hole to fill")


def test_dark_mode_and_a_phone_width(browser, served, shots):
    page = open_page(browser, served, color_scheme="dark", viewport={"width": 390, "height": 844})
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]]
    assert max(channels) < 60, background
    page.locator("#prompt").fill("Count from 14 to 27.")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(".message.assistant .body")).to_have_text(COUNT, timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(shots / "5-dark-phone.png"), full_page=True)
    light = open_page(browser, served, color_scheme="light")
    assert light.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"


def test_the_key_is_asked_once_and_kept_in_the_tab(browser, shots):
    served = Served(api_key="page-key")
    try:
        page = browser.new_context().new_page()
        page.goto(served.url + "/")  # the page itself needs no key
        dialog = page.locator("#key-dialog")
        sync_api.expect(dialog).to_be_visible()
        page.screenshot(path=str(shots / "6-api-key.png"))
        page.locator("#key-input").fill("page-key")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#model-line")).to_contain_text("llada-demo")
        assert page.evaluate("sessionStorage.getItem('llada.apiKey')") == "page-key"
        page.reload()  # kept in the tab: not asked again
        sync_api.expect(page.locator("#model-line")).to_contain_text("llada-demo")
        assert not dialog.is_visible()
        page.locator("#prompt").fill("Count from 14 to 27.")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator(".message.assistant .body")).to_have_text(COUNT, timeout=30_000)
        # The API itself still needs the key.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served.url + "/v1/llada/info", timeout=10)
        assert refused.value.code == 401
    finally:
        served.stop()


def test_model_html_shows_as_text(browser, served, shots):
    page = open_page(browser, served)
    served.paced.answer = HOSTILE
    try:
        page.locator("#prompt").fill("Say something hostile.")
        page.keyboard.press("Enter")
        body = page.locator(".message.assistant .body")
        sync_api.expect(body).to_contain_text("<script>window.pwned=1</script>")
    finally:
        served.paced.answer = None
    assert '<img src=x onerror="window.pwned=2">' in body.inner_text()
    assert page.locator("#messages img, #messages script, #canvas img, #canvas script").count() == 0
    assert body.locator("strong").inner_text() == "bold"  # Markdown still works around it
    assert "<script>" in page.locator("#canvas").inner_text()
    page.wait_for_timeout(200)
    assert page.evaluate("window.pwned === undefined")
    page.screenshot(path=str(shots / "7-hostile-answer.png"))


def test_keyboard_only(browser, served):
    page = open_page(browser, served)
    # The composer has the focus on load: type, Enter sends, no mouse anywhere.
    page.keyboard.type("Count from 14 to 27.")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(".message.assistant .body")).to_have_text(COUNT, timeout=30_000)
    # Tab reaches every control, among them the Infill tab and the settings.
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert {"tab-infill", "new-chat", "colour-mode", "prompt", "send"} <= seen, seen
    page.locator("#tab-infill").focus()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#infill-page")).to_be_visible()
    page.locator("#infill-text").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Fill button
    sync_api.expect(page.locator("#infill-result mark")).to_have_count(1, timeout=30_000)
