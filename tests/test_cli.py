"""The `llada` command: generate --json, errors, chat in a pipe and in a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend_choice import BACKEND
from llada_core.chat import answer_text, encode_chat, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--gen-length", "16", "--steps", "8", "--block-length", "8"]


def llada(*args, stdin=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def test_generate_json(tiny_checkpoint):
    result = llada("generate", "--backend", BACKEND, "--model", str(tiny_checkpoint),
                   "--prompt", "Hello there", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is exactly one JSON object, nothing else
    tokenizer = load_tokenizer(tiny_checkpoint)
    assert data["prompt_ids"] == encode_chat(tokenizer, [{"role": "user", "content": "Hello there"}])
    assert len(data["answer_ids"]) == 16
    assert data["text"] == answer_text(tokenizer, data["answer_ids"])
    assert data["nfe"] == 8 and data["steps"] == 8
    assert isinstance(data["seconds"], float) and data["seconds"] >= 0
    assert data["backend"] == BACKEND and data["dtype"] == "float32"
    assert data["settings"]["block_length"] == 8


def test_generate_matches_the_library(tiny_checkpoint, tiny_torch):
    from llada_torch import generate_steps

    model, _ = tiny_torch
    result = llada("generate", "--model", str(tiny_checkpoint), "--prompt-ids", "5,6,7", "--json",
                   "--mode", "exact", "--cfg-scale", "1.5", "--confidence-eos-eot-inf", *SMALL)
    data = json.loads(result.stdout)
    assert data["prompt_ids"] == [5, 6, 7] and data["nfe"] == 16
    frames = list(generate_steps(model, [5, 6, 7], gen_length=16, steps=8, block_length=8,
                                 cfg_scale=1.5, confidence_eos_eot_inf=True))
    assert data["answer_ids"] == frames[-1].tokens.tolist()


def test_raw_prompt_skips_the_template(tiny_checkpoint):
    result = llada("generate", "--model", str(tiny_checkpoint), "--prompt", "In the beginning",
                   "--raw", "--json", *SMALL)
    tokenizer = load_tokenizer(tiny_checkpoint)
    expected = tokenizer("In the beginning", add_special_tokens=False)["input_ids"]
    assert json.loads(result.stdout)["prompt_ids"] == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gen-length", "64", "--block-length", "24"], "block length 24 does not divide answer length 64"),
        (["--prompt-ids", "1,x"], "--prompt-ids must be comma-separated whole numbers"),
        (["--prompt-ids", "1,99999"], "prompt token 99999 at position 1 is not a valid id"),
        (["--temperature", "-1"], "temperature must be a number from 0 to 2"),
    ],
)
def test_errors_are_one_clear_line(tiny_checkpoint, extra, message):
    args = ["generate", "--model", str(tiny_checkpoint)]
    if "--prompt-ids" not in extra:
        args += ["--prompt", "hi"]
    result = llada(*args, *extra)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_is_reported(tmp_path):
    result = llada("generate", "--model", str(tmp_path / "nope"), "--prompt", "hi")
    assert result.returncode == 2
    assert "no model folder" in result.stderr and "Traceback" not in result.stderr


def test_make_tiny_command(tmp_path):
    result = llada("make-tiny", str(tmp_path / "t"), "--d-model", "32", "--heads", "2", "--shards", "1")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["d_model"] == 32 and (tmp_path / "t" / "model.safetensors").is_file()


def test_chat_keeps_the_history_between_turns(tiny_checkpoint):
    result = llada("chat", "--model", str(tiny_checkpoint), *SMALL, stdin="Hello\nAnd again\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("LLaDA:") == 2
    assert "\r" not in result.stdout  # no live view when not in a terminal


ANSWER = b"\x1b[2KLLaDA: "  # the finished answer, printed over the live line


LIVE = re.compile(r" (LLaDA \[pass \d+/\d+\]: |\[\d+/\d+\] )")  # wide, narrow terminal


def live_lines(text: str) -> list[str]:
    """Each redraw of the live line (its pass counter first), as the terminal shows it."""
    return [part for part in text.split("\r\x1b[2K") if LIVE.match(part)]


class Terminal:
    """`llada chat` on a pseudo-terminal, read with deadlines so a test fails instead of hanging."""

    def __init__(self, checkpoint, *args, columns: int = 100):
        self.main, child = pty.openpty()
        env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", COLUMNS=str(columns))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "chat", "--backend", BACKEND, "--model", str(checkpoint),
             *args], stdin=child, stdout=child, stderr=child, cwd=ROOT, env=env)
        os.close(child)
        self.output = b""

    def write(self, data: bytes) -> None:
        os.write(self.main, data)

    def read_until(self, marker: bytes, after: int = 0, timeout: float = 90) -> int:
        """Reads until `marker` appears at or after offset `after`; its offset."""
        import select

        deadline = time.monotonic() + timeout
        while (found := self.output.find(marker, after)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.main], [], [], left)[0]:
                self.process.kill()
                raise AssertionError(f"no {marker!r} in {self.text()!r}")
            try:
                chunk = os.read(self.main, 4096)
            except OSError:  # the chat has exited and the terminal is closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"the chat ended without {marker!r}: {self.text()!r}")
            self.output += chunk
        return found

    def finish(self) -> str:
        """Ctrl-D at the prompt; the whole output once the chat has exited."""
        self.write(b"\x04")
        try:
            while chunk := os.read(self.main, 4096):
                self.output += chunk
        except OSError:
            pass
        self.process.wait(timeout=60)
        os.close(self.main)
        return self.text()

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


def test_chat_shows_a_live_line_in_a_terminal(tiny_checkpoint):
    term = Terminal(tiny_checkpoint, *SMALL)
    term.read_until(b"You: ")
    term.write(b"Hello\n")
    term.read_until(b"You: ", after=term.read_until(ANSWER) + 1)
    text = term.finish()
    assert term.process.returncode == 0, text
    assert "\r\x1b[2K LLaDA [pass 1/" in text and "░" in text  # the masked canvas, redrawn in place
    assert "LLaDA:" in text


def test_typing_during_an_answer_stays_out_of_the_line_and_the_next_prompt(tiny_checkpoint):
    """Keys pressed while an answer is generated are neither echoed into the live line nor
    read as the next message; at the next prompt typing is echoed again. In a narrow terminal
    every redraw of the live line fits its columns (by display width), so it never wraps into
    a second line that \\r cannot erase."""
    from app.session.frame_text import display_width

    term = Terminal(tiny_checkpoint, "--gen-length", "128", "--steps", "128", "--block-length", "128",
                    "--mode", "exact", "--threshold", "none", "--no-early-stop", columns=24)
    term.read_until(b"You: ")
    term.write(b"Hello\n")
    first_frame = term.read_until(b"\r\x1b[2K [1/128] ")  # 24 columns: the short counter
    term.write(b"sneaky typing\n")  # mid-answer: 128 steps are still to come
    typed_at = len(term.output)
    answer = term.read_until(ANSWER, after=first_frame)
    assert term.output.count(b"\r\x1b[2K [", typed_at) > 10  # it was still running
    prompt = term.read_until(b"You: ", after=answer)
    term.write(b"/reset\n")
    term.read_until(b"(conversation cleared)", after=prompt)
    text = term.finish()
    assert term.process.returncode == 0, text
    assert "sneaky" not in text
    assert text.count(ANSWER.decode()) == 1  # the typing never became a message
    assert "You: /reset" in text  # echo is back at the prompt
    lines = live_lines(text)
    assert len(lines) >= 100 and any(line.endswith("…") for line in lines)
    assert all(display_width(line) <= 24 - 1 and "\n" not in line for line in lines), lines


def test_fast_mode_flags(tiny_checkpoint):
    result = llada("generate", "--model", str(tiny_checkpoint), "--prompt-ids", "5,6,7", "--json",
                   "--mode", "fast", "--cache", "prefix", "--threshold", "none", "--no-early-stop", *SMALL)
    data = json.loads(result.stdout)
    assert data["settings"]["mode"] == "fast" and data["settings"]["threshold"] is None
    assert data["settings"]["cache"] == "prefix" and data["settings"]["early_stop"] is False
    assert data["nfe"] == 8 and isinstance(data["seconds"], float)
    bad = llada("generate", "--model", str(tiny_checkpoint), "--prompt", "hi", "--threshold", "often")
    assert bad.returncode == 2 and "threshold must be a number or 'none'" in bad.stderr


# --- word constraints and infilling (issue 15) ---------------------------------------------------

def test_generate_constraints_stay_at_their_positions(tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    for mode in ("exact", "fast"):
        result = llada("generate", "--backend", BACKEND, "--model", str(tiny_checkpoint),
                       "--prompt", "Hi", "--json", "--mode", mode, "--constraint", "0:Once",
                       "--constraint", "9: upon", *SMALL)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        once = tokenizer(" Once", add_special_tokens=False)["input_ids"]
        upon = tokenizer(" upon", add_special_tokens=False)["input_ids"]
        assert data["constraints"] == {"0": once, "9": upon}
        assert data["answer_ids"][:len(once)] == once
        assert data["answer_ids"][9:9 + len(upon)] == upon


@pytest.mark.parametrize("extra, message", [
    (["--constraint", "16:Once"], "the constraint at position 16 is past the answer (answer length 16)"),
    (["--constraint", "15:dragons and more"], "runs past the answer length 16"),
    (["--constraint", "0:Once", "--constraint", "2:upon"], "overlap at position 2"),
    (["--constraint", "Once"], "is not POS:TEXT"),
])
def test_bad_constraints_are_one_line(tiny_checkpoint, extra, message):
    result = llada("generate", "--backend", BACKEND, "--model", str(tiny_checkpoint),
                   "--prompt", "Hi", *extra, *SMALL)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 or "usage:" in result.stderr


def test_infill_fills_exactly_the_holes(tiny_checkpoint):
    from llada_core.constraints import infill_canvas

    tokenizer = load_tokenizer(tiny_checkpoint)
    text = "The capital of France is [____]. It is [_:3]"
    canvas = infill_canvas(tokenizer, text)
    for mode in ("exact", "fast"):
        result = llada("infill", text, "--backend", BACKEND, "--model", str(tiny_checkpoint),
                       "--json", "--mode", mode)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        ids = data["canvas_ids"]
        assert len(ids) == canvas.length
        assert all(ids[p] == t for p, t in canvas.fixed.items())  # the text is untouched
        assert [(h["start"], h["length"]) for h in data["holes"]] == canvas.holes
        mask = json.loads((tiny_checkpoint / "config.json").read_text())["mask_token_id"]
        assert mask not in ids  # every hole is filled
        assert data["settings"]["block_length"] == canvas.length
        if mode == "exact":
            assert data["steps"] == canvas.hole_tokens == data["nfe"]
    plain = llada("infill", text, "--backend", BACKEND, "--model", str(tiny_checkpoint))
    assert plain.returncode == 0 and plain.stdout.startswith("The capital of France is")


@pytest.mark.parametrize("extra, message", [
    (["no holes"], "no hole to fill"),
    (["a [__]", "--gen-length", "8"], "leave out --gen-length"),
    (["a [__]", "--steps", "3"], "steps must be 1 to 2"),
])
def test_infill_errors_are_one_line(tiny_checkpoint, extra, message):
    result = llada("infill", *extra, "--backend", BACKEND, "--model", str(tiny_checkpoint))
    assert result.returncode == 2 and message in result.stderr
