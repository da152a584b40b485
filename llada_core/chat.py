"""Tokenizer loading, the chat template, multi-turn history and the visible answer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llada_core import tokens

Message = dict[str, str]


def load_tokenizer(folder: str | Path) -> Any:
    """The model folder's fast tokenizer, chat template included.

    Loaded as PreTrainedTokenizerFast straight from tokenizer.json and tokenizer_config.json, so
    no code shipped with a model runs and transformers never asks about remote code.
    """
    # Without torch (a Mac's MLX install) transformers advises at import that models are
    # unavailable; we only use its tokenizer.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder} has no tokenizer.json")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), trust_remote_code=False)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = tokens.CHAT_TEMPLATE
    return tokenizer


def render_chat(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The conversation as template text, ending with the assistant header."""
    _check_messages(messages)
    return tokenizer.apply_chat_template(
        list(messages), add_generation_prompt=True, tokenize=False
    )


def encode_chat(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the conversation in the official template: one BOS, assistant header last."""
    text = render_chat(tokenizer, messages)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def continue_conversation(
    tokenizer: Any, history_ids: Sequence[int] | None, user_message: str
) -> list[int]:
    """The prompt for the next turn, as the reference chat.py builds it.

    history_ids is the previous turn's prompt plus its whole generated region; every EOS is
    dropped from it (<|eot_id|> stays) and the new user turn is appended without its BOS.
    """
    turn = encode_chat(tokenizer, [{"role": "user", "content": user_message}])
    if not history_ids:
        return turn
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    kept = [int(t) for t in history_ids if int(t) != eos]
    return kept + turn[1:]


def visible_answer_ids(tokenizer: Any, answer_ids: Sequence[int]) -> list[int]:
    """The answer up to (not including) the first EOS or <|eot_id|>."""
    stops = {tokenizer.convert_tokens_to_ids(tokens.EOS), tokenizer.convert_tokens_to_ids(tokens.EOT)}
    stops.discard(tokenizer.unk_token_id)
    stops.discard(None)
    visible = []
    for token in answer_ids:
        if int(token) in stops:
            break
        visible.append(int(token))
    return visible


def answer_text(tokenizer: Any, answer_ids: Sequence[int]) -> str:
    """The text a person sees: decoded up to the first stop token, special tokens skipped."""
    return tokenizer.decode(visible_answer_ids(tokenizer, answer_ids), skip_special_tokens=True)


def _check_messages(messages: Sequence[Message]) -> None:
    if not messages:
        raise ValueError("the conversation has no messages")
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"message {number} needs a 'role' and a 'content'")
        if not isinstance(message["content"], str):
            raise ValueError(f"message {number} content must be text")
