"""The command line against bad input: one sentence on stderr and exit code 2, never a traceback;
`llada chat` survives a bad line and keeps the conversation going."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backend_choice import BACKEND
from test_cli import ROOT, SMALL

from llada_core.constraints import MAX_HOLES, parse_infill


def run_llada(*args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin,
                          capture_output=True, cwd=ROOT, env=env, timeout=180)


def one_sentence(result: subprocess.CompletedProcess) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("llada: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_bad_numbers_and_text_before_any_model_loads(tiny_checkpoint):
    model = ["--backend", BACKEND, "--model", str(tiny_checkpoint)]
    cases = [
        (["generate", *model, "--prompt", "hi", "--cfg-scale", "1e37"], "CFG scale must be a number from 0 to 10"),
        (["generate", *model, "--prompt", "hi", "--temperature", "1e308"], "temperature must be a number from 0 to 2"),
        (["generate", *model, "--prompt", "hi", "--seed", str(2**63)], "seed must be a whole number"),
        (["generate", *model, "--prompt", b"caf\xe9 \xff"], "--prompt is not valid UTF-8 text"),
        (["infill", *model, "[_] " * (MAX_HOLES + 1)], f"at most {MAX_HOLES} can be filled"),
        (["eval", *model, "--lm-eval", "x", "--limit", "0"], "--limit must be"),
        (["eval", *model, "--lm-eval", "x", "--limit", "-3"], "--limit must be"),
        (["eval", *model, "--lm-eval", "x", "--limit", "2.5"], "--limit must be"),
        (["eval", *model, "--items", "0"], "--items must be at least 1"),
        (["eval", *model, "--lm-eval", "x", "--num-fewshot", "-1"], "--num-fewshot must be 0 or more"),
    ]
    for args, words in cases:
        line = one_sentence(run_llada(*args))
        assert words in line, (args, line)


def test_an_answer_past_the_context_is_one_sentence(tiny_checkpoint):
    line = one_sentence(run_llada("generate", "--backend", BACKEND, "--model", str(tiny_checkpoint),
                                  "--prompt", "hi", "--gen-length", "100000", "--steps", "100000",
                                  "--block-length", "100000"))
    assert "this model's context is 4096" in line


def test_chat_survives_a_line_that_is_not_utf8(tiny_checkpoint):
    result = run_llada("chat", "--backend", BACKEND, "--model", str(tiny_checkpoint), *SMALL,
                       stdin=b"caf\xe9 \xff\nhello\n")
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "not UTF-8 text; nothing was sent" in stdout
    assert stdout.count("LLaDA: ") == 1  # the next line was answered


def test_infill_hole_count_is_bounded():
    assert len([s for s in parse_infill("[_] " * MAX_HOLES) if isinstance(s, int)]) == MAX_HOLES
    with pytest.raises(ValueError, match="holes; at most"):
        parse_infill("[_]" * 5000)
