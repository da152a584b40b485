"""The browser page with a picture (a tiny LLaDA-V behind `llada serve`) and with LLaDA2.1's
editing decoder, in headless Chromium (Playwright, Debian's chromium): attach by the button,
the request carries the picture as an image_url part, the answer comes, the thumbnail shows in
the question and survives a reload; a model without vision disables the button and a pasted
picture is one sentence; an edited token is drawn in the edit colour, with its legend.
Screenshots go under pytest's tmp path (printed)."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytest.importorskip("starlette")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from test_browser_page import (  # noqa: E402
    Served, browser, open_page, pytestmark, served, shots,  # noqa: F401
)

from llada_core.settings import SamplerSettings  # noqa: E402

expect = sync_api.expect
SMALL = SamplerSettings(gen_length=16, block_length=8, steps=16, mode="exact").to_dict()
PURPLE = "rgb(142, 68, 173)"


@pytest.fixture(scope="module")
def seeing(tmp_path_factory):
    from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint

    folder = make_tiny_llada_v_checkpoint(tmp_path_factory.mktemp("llada-v"))
    running = Served(folder=folder, model_id="tiny-llada-v", defaults=SMALL)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def editing(tmp_path_factory):
    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

    folder = make_tiny_llada2_checkpoint(tmp_path_factory.mktemp("llada21"),
                                         TinyLLaDA2Spec(version="2.1", editing_threshold=0.0))
    settings = SamplerSettings(gen_length=24, block_length=8, steps=24, mode="exact",
                               threshold=0.9).to_dict()
    running = Served(folder=folder, model_id="tiny-llada2.1", defaults=settings)
    yield running
    running.stop()


def test_a_question_about_a_picture(browser, seeing, shots, picture):
    page = open_page(browser, seeing, model_id="tiny-llada-v")
    sent = []
    page.on("request", lambda r: sent.append(r.post_data) if r.url.endswith("/v1/chat/completions") else None)
    button = page.locator("#picture-button")
    expect(button).to_be_enabled()
    page.locator("#picture-input").set_input_files(str(picture))
    expect(page.locator("#attachment")).to_be_visible()
    expect(page.locator("#attachment-name")).to_have_text("stripes.png")
    page.locator("#prompt").fill("What is in this picture?")
    page.locator("#prompt").press("Enter")
    expect(page.locator(".message.assistant .actions .retry")).to_be_visible(timeout=60_000)
    body = json.loads(sent[-1])
    parts = body["messages"][-1]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": "What is in this picture?"}
    expect(page.locator("#attachment")).to_be_hidden()  # the picture went with the question
    thumb = page.locator(".message.user img.thumb")
    expect(thumb).to_have_attribute("alt", "stripes.png")
    assert thumb.evaluate("img => img.naturalWidth") == 90
    assert not page.locator("#chat-error").is_visible(), page.locator("#chat-error").text_content()
    page.screenshot(path=str(shots / "picture-question.png"))
    # a follow-up without a picture sends the earlier one's text only (the server reads one)
    page.locator("#prompt").fill("And the colours?")
    page.locator("#prompt").press("Enter")
    expect(page.locator(".message.assistant .actions .retry")).to_have_count(2, timeout=60_000)
    follow_up = json.loads(sent[-1])["messages"]
    assert follow_up[0]["content"] == "What is in this picture?" and follow_up[-1]["content"] == "And the colours?"
    page.reload()
    expect(page.locator(".message.user img.thumb")).to_have_count(1)  # kept in the tab
    assert page.errors == []


def test_a_model_without_vision_says_so(browser, served, picture):
    page = open_page(browser, served)
    button = page.locator("#picture-button")
    expect(button).to_be_disabled()
    assert "no vision" in button.get_attribute("title")
    page.locator("#prompt").fill("What is this?")
    page.evaluate("""async (bytes) => {
        const file = new File([new Uint8Array(bytes)], "pasted.png", { type: "image/png" });
        const data = new DataTransfer();
        data.items.add(file);
        document.getElementById("prompt").dispatchEvent(
            new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    }""", list(picture.read_bytes()))
    error = page.locator("#chat-error")
    expect(error).to_contain_text("no vision")
    assert error.text_content().count(".") == 1
    assert page.locator("#prompt").input_value() == "What is this?"  # nothing lost
    expect(page.locator("#attachment")).to_be_hidden()


def test_a_file_that_is_not_a_picture_is_one_sentence(browser, seeing, tmp_path):
    page = open_page(browser, seeing, model_id="tiny-llada-v")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.locator("#picture-input").set_input_files(str(notes))
    expect(page.locator("#chat-error")).to_contain_text("notes.txt is not a picture")
    expect(page.locator("#attachment")).to_be_hidden()


def test_llada21_edits_are_drawn_as_edits(browser, editing, shots):
    # the API's frames carry the edits
    request = urllib.request.Request(editing.url + "/v1/chat/completions", data=json.dumps({
        "messages": [{"role": "user", "content": "In the beginning"}], "stream": True,
        "llada_frames": True}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        events = [json.loads(line[5:]) for line in response.read().decode().splitlines()
                  if line.startswith("data:") and line.strip() != "data: [DONE]"]
    frames = [e["llada_frame"] for e in events if "llada_frame" in e]
    edit = next(f for f in frames if f["step"] in f["edited_at"])
    position = edit["edited_at"].index(edit["step"])

    page = open_page(browser, editing, model_id="tiny-llada2.1")
    page.locator("#prompt").fill("In the beginning")
    page.locator("#prompt").press("Enter")
    expect(page.locator("#progress")).to_contain_text("done", timeout=60_000)
    expect(page.locator("#legend-edited")).to_be_visible()
    assert page.locator("#canvas .cell.edited").count() > 0  # earlier edits, underlined
    # the pass that rewrote a token, as the page draws it
    page.evaluate("frame => drawFrame(frame)", edit)
    cell = page.locator("#canvas .cell").nth(position)
    assert cell.evaluate("c => getComputedStyle(c).backgroundColor") == PURPLE
    page.screenshot(path=str(shots / "llada21-edit.png"))
    assert page.errors == []


def test_frames_of_other_samplers_carry_no_edits(served):
    request = urllib.request.Request(served.url + "/v1/chat/completions", data=json.dumps({
        "messages": [{"role": "user", "content": "What is 12 + 30?"}], "stream": True,
        "llada_frames": True}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        text = response.read().decode()
    assert "llada_frame" in text and "edited_at" not in text
    info = json.loads(urllib.request.urlopen(served.url + "/v1/llada/info", timeout=30).read())
    assert info["vision"] is False and info["block_diffusion"] is None
