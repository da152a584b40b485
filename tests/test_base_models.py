"""Base models (no chat tokens) are prompted with raw text: detection from the tokenizer,
encode_prompt, the terminal chat's continuation, and `llada generate --json` (with its dtype)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from real_checkpoint import (
    BASE, INSTRUCT, LLADA_15, RealSpec, build_real_checkpoint, build_real_tokenizer,
    real_metadata_dir,
)

from llada_core import tokens
from llada_core.chat import (
    CHAT_TOKENS, continue_conversation, encode_chat, encode_prompt, is_base_model, load_tokenizer,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--gen-length", "8", "--steps", "4", "--block-length", "4"]
needs_real = pytest.mark.skipif(real_metadata_dir() is None,
                                reason="the real checkpoints' metadata (../shared/real-metadata) is not here")

# LLaDA-8B-Base's special_tokens_map.json has this very fault: no comma after "<|mdm_mask|>".
BROKEN_SPECIAL_TOKENS_MAP = """{
  "additional_special_tokens": [
    "<|mdm_mask|>"
    "<role>"
  ],
  "bos_token": "<|startoftext|>"
}
"""


def make_base_like(instruct: Path, out: Path) -> Path:
    """A copy of a tiny Instruct checkpoint shaped like LLaDA-8B-Base: the chat tokens removed
    from the tokenizer (they are its last ids, so no other id moves), the Instruct chat template
    kept in tokenizer_config.json, and Base's broken special_tokens_map.json."""
    shutil.copytree(instruct, out)
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] not in CHAT_TOKENS]
    (out / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["added_tokens_decoder"] = {
        key: value for key, value in config["added_tokens_decoder"].items()
        if value["content"] not in CHAT_TOKENS}
    assert config["chat_template"]
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (out / "special_tokens_map.json").write_text(BROKEN_SPECIAL_TOKENS_MAP, encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def base_like(tiny_checkpoint, tmp_path_factory) -> Path:
    return make_base_like(tiny_checkpoint, tmp_path_factory.mktemp("base_like") / "model")


@pytest.fixture(scope="module")
def base_tokenizer(base_like):
    return load_tokenizer(base_like)


@pytest.fixture(scope="module")
def instruct_tokenizer(tiny_checkpoint):
    return load_tokenizer(tiny_checkpoint)


def raw_ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def any_backend() -> str:
    """torch where it is installed (faster on a CPU), else MLX (a Mac's install); else skip."""
    import importlib.util

    for name, module in (("torch", "torch"), ("mlx", "mlx.core")):
        try:
            if importlib.util.find_spec(module) is not None:
                return name
        except ModuleNotFoundError:
            continue
    pytest.skip("neither torch nor mlx is installed")


def llada(*args, stdin=None, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Detection


@needs_real
@pytest.mark.parametrize("model, base", [(BASE, True), (INSTRUCT, False), (LLADA_15, False)])
def test_base_detection_on_the_real_metadata(model, base, tmp_path):
    tokenizer = load_tokenizer(build_real_tokenizer(model, tmp_path / "tok"))
    assert is_base_model(tokenizer) is base
    # Base's tokenizer_config still carries the Instruct template: the template decides nothing.
    assert "<|start_header_id|>" in tokenizer.chat_template


def test_base_detection_on_tiny_checkpoints(instruct_tokenizer, base_tokenizer):
    assert is_base_model(instruct_tokenizer) is False
    assert is_base_model(base_tokenizer) is True
    assert base_tokenizer.convert_tokens_to_ids(tokens.EOT) is None
    # removing the chat tokens moved no other id
    for name in (tokens.BOS, tokens.EOS, tokens.MASK):
        assert base_tokenizer.convert_tokens_to_ids(name) == instruct_tokenizer.convert_tokens_to_ids(name)


def test_a_tokenizer_with_chat_tokens_that_are_not_special_is_base(tiny_checkpoint, tmp_path):
    """Header tokens spelled as ordinary added tokens are not chat tokens: judged base."""
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "model")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_json = json.loads((folder / "tokenizer.json").read_text())
    for entry in list(config["added_tokens_decoder"].values()) + tokenizer_json["added_tokens"]:
        if entry["content"] == tokens.EOT:
            entry["special"] = False
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    assert is_base_model(load_tokenizer(folder)) is True


# ---------------------------------------------------------------------------------------------
# Prompts


def test_base_prompt_is_bos_and_the_raw_text(base_tokenizer):
    bos = base_tokenizer.convert_tokens_to_ids(tokens.BOS)
    text = "In the beginning God created"
    ids = encode_prompt(base_tokenizer, text)
    assert ids == [bos] + raw_ids(base_tokenizer, text)
    assert "header" not in base_tokenizer.decode(ids)
    # the template would have spelled the headers out as text, token by token
    templated = encode_chat(base_tokenizer, [{"role": "user", "content": text}])
    assert "<|start_header_id|>" in base_tokenizer.decode(templated, skip_special_tokens=True)
    messages = [{"role": "user", "content": "In the beginning"},
                {"role": "assistant", "content": " God created"}]
    assert encode_prompt(base_tokenizer, messages) == [bos] + raw_ids(
        base_tokenizer, "In the beginning God created")


def test_instruct_prompt_is_the_chat_template(instruct_tokenizer):
    message = {"role": "user", "content": "Hello"}
    assert encode_prompt(instruct_tokenizer, "Hello") == encode_chat(instruct_tokenizer, [message])
    messages = [{"role": "system", "content": "Be brief."}, message]
    assert encode_prompt(instruct_tokenizer, messages) == encode_chat(instruct_tokenizer, messages)
    eot = instruct_tokenizer.convert_tokens_to_ids(tokens.EOT)
    assert eot in encode_prompt(instruct_tokenizer, "Hello")


def test_base_conversation_continues_the_text(base_tokenizer):
    bos = base_tokenizer.convert_tokens_to_ids(tokens.BOS)
    eos = base_tokenizer.convert_tokens_to_ids(tokens.EOS)
    first = continue_conversation(base_tokenizer, None, "In the beginning")
    assert first == [bos] + raw_ids(base_tokenizer, "In the beginning")
    answer = raw_ids(base_tokenizer, " God created") + [eos, eos]
    second = continue_conversation(base_tokenizer, first + answer, "the heaven")
    assert second == first + answer[:-2] + raw_ids(base_tokenizer, " the heaven")
    assert second.count(bos) == 1 and eos not in second
    # no space is added where the history already ends in one
    spaced = raw_ids(base_tokenizer, "And God said ")
    assert continue_conversation(base_tokenizer, [bos] + spaced, "Let") == (
        [bos] + spaced + raw_ids(base_tokenizer, "Let"))


# ---------------------------------------------------------------------------------------------
# The command line


def test_generate_json_on_a_base_model_uses_the_raw_text(base_like, base_tokenizer):
    result = llada("generate", "--backend", any_backend(), "--model", str(base_like),
                   "--prompt", "In the beginning", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    bos = base_tokenizer.convert_tokens_to_ids(tokens.BOS)
    assert data["prompt_ids"] == [bos] + raw_ids(base_tokenizer, "In the beginning")
    assert data["dtype"] == "float32"


def test_generate_json_on_an_instruct_model_uses_the_chat_template(tiny_checkpoint, instruct_tokenizer):
    result = llada("generate", "--backend", any_backend(), "--model", str(tiny_checkpoint),
                   "--prompt", "In the beginning", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prompt_ids"] == encode_chat(
        instruct_tokenizer, [{"role": "user", "content": "In the beginning"}])
    header = instruct_tokenizer.convert_tokens_to_ids(tokens.START_HEADER)
    assert data["prompt_ids"].count(header) == 2


@needs_real
def test_generate_json_on_the_real_base_metadata(tmp_path):
    """The real Base tokenizer files and ids: BOS 126080 + text, no header ids, bf16 reported."""
    folder = build_real_checkpoint(BASE, tmp_path / "base", RealSpec(dtype="bfloat16"))
    result = llada("generate", "--backend", any_backend(), "--model", str(folder),
                   "--prompt", "In the beginning", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    tokenizer = load_tokenizer(folder)
    assert data["prompt_ids"] == [126080] + raw_ids(tokenizer, "In the beginning")
    assert not {126346, 126347, 126348} & set(data["prompt_ids"])
    assert data["dtype"] == "bfloat16"
    assert all(0 <= t < 126464 for t in data["answer_ids"])


@pytest.mark.parametrize("backend, module", [("torch", "torch"), ("mlx", "mlx.core")])
def test_generate_json_reports_the_loaded_dtype(backend, module, tiny_bf16_checkpoint):
    pytest.importorskip(module)
    result = llada("generate", "--backend", backend, "--model", str(tiny_bf16_checkpoint),
                   "--prompt-ids", "5,6,7", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == backend and data["dtype"] == "bfloat16"
    result = llada("generate", "--backend", backend, "--model", str(tiny_bf16_checkpoint),
                   "--dtype", "float16", "--prompt-ids", "5,6,7", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dtype"] == "float16"


def test_chat_with_a_base_model_continues_the_text_and_says_so(base_like, tiny_checkpoint):
    from app.cli.chat import BASE_NOTE

    backend = any_backend()
    result = llada("chat", "--backend", backend, "--model", str(base_like), *SMALL,
                   stdin="In the beginning\nthe heaven\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(BASE_NOTE) == 1
    assert result.stdout.count("LLaDA:") == 2
    instruct = llada("chat", "--backend", backend, "--model", str(tiny_checkpoint), *SMALL,
                     stdin="Hello\n/quit\n")
    assert instruct.returncode == 0, instruct.stderr
    assert BASE_NOTE not in instruct.stdout


def test_chat_prompts_of_a_base_model_are_the_growing_text(base_like, base_tokenizer, monkeypatch):
    """In process: the prompts `llada chat` hands the sampler for two base-model turns."""
    import io

    import app.cli.chat as chat_cmd
    from app.cli import build_parser

    prompts: list[list[int]] = []
    real_load = chat_cmd.load_model

    def recording_load(args):
        loaded = real_load(args)
        backend = loaded.backend

        class Recording:
            @staticmethod
            def generate_steps(model_, prompt, **settings):
                prompts.append(list(prompt))
                return backend.generate_steps(model_, prompt, **settings)

        loaded.backend = Recording
        return loaded

    monkeypatch.setattr(chat_cmd, "load_model", recording_load)
    args = build_parser().parse_args(["chat", "--backend", any_backend(), "--model", str(base_like),
                                      *SMALL])
    lines = iter(["In the beginning", "the heaven", "/quit"])
    out = io.StringIO()
    assert chat_cmd.run(args, input_fn=lambda _: next(lines), out=out) == 0
    bos = base_tokenizer.convert_tokens_to_ids(tokens.BOS)
    eos = base_tokenizer.convert_tokens_to_ids(tokens.EOS)
    first, second = prompts
    assert first == [bos] + raw_ids(base_tokenizer, "In the beginning")
    assert second[:len(first)] == first and second.count(bos) == 1 and eos not in second
    tail = raw_ids(base_tokenizer, "the heaven")
    spaced = raw_ids(base_tokenizer, " the heaven")
    assert second[-len(tail):] == tail or second[-len(spaced):] == spaced
    assert out.getvalue().count(chat_cmd.BASE_NOTE) == 1


def test_base_history_reads_as_one_text_with_spaces_where_needed():
    from llada_core.chat import join_continuations

    assert join_continuations(["Once upon", "a time", " there was", "\nA dragon."]) \
        == "Once upon a time there was\nA dragon."
    assert join_continuations(["", "text", ""]) == "text"


def test_llada_moe_instruct_uses_its_own_chat_template(tmp_path):
    """The Ling family's tokenizer has <role>, </role>, <|role_end|> and no header tokens: an
    Instruct model, prompted with its own template, whose answers end at <|role_end|>."""
    from llada_core.chat import encode_prompt, is_base_model, load_tokenizer, visible_answer_ids
    from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint

    folder = make_tiny_moe_checkpoint(tmp_path / "moe", TinyMoESpec())
    tokenizer = load_tokenizer(folder)
    assert not is_base_model(tokenizer)
    ids = encode_prompt(tokenizer, "Hi")
    role_end = tokenizer.convert_tokens_to_ids("<|role_end|>")
    assert tokenizer.convert_tokens_to_ids("<role>") in ids and role_end in ids
    word = tokenizer("ok", add_special_tokens=False)["input_ids"]
    assert visible_answer_ids(tokenizer, word + [role_end] + word) == word
