"""Tokenizer loading, the chat template, multi-turn history and the visible answer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

from llada_core import tokens

Message = dict[str, str]


def load_tokenizer(folder: str | Path) -> Any:
    """The model folder's fast tokenizer, chat template included.

    Loaded as PreTrainedTokenizerFast straight from tokenizer.json and tokenizer_config.json, so
    no code shipped with a model runs and transformers never asks about remote code.

    A special_tokens_map.json that is not valid JSON (LLaDA-8B-Base publishes one with a missing
    comma) is never handed to transformers, which parses it whenever tokenizer_config.json lacks
    added_tokens_decoder: the tokenizer is then built from tokenizer.json with the special tokens
    and chat template of tokenizer_config.json.
    """
    # Without torch (a Mac's MLX install) transformers advises at import that models are
    # unavailable; we only use its tokenizer.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder} has no tokenizer.json")
    if _readable_json(folder / "special_tokens_map.json") is None:
        config = _readable_json(folder / "tokenizer_config.json")
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(folder / "tokenizer.json"),
            **_tokenizer_kwargs(config if isinstance(config, dict) else {}),
        )
    else:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), trust_remote_code=False)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = tokens.CHAT_TEMPLATE
    return tokenizer


def _readable_json(path: Path) -> Any:
    """The file's JSON value; None when it is absent or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _tokenizer_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The special tokens (every *_token spelled as text), extra special tokens and chat template
    of a tokenizer_config.json, as PreTrainedTokenizerFast's keyword arguments."""
    kwargs: dict[str, Any] = {
        key: value for key, value in config.items()
        if key.endswith("_token") and isinstance(value, str)
    }
    extra = config.get("additional_special_tokens")
    if isinstance(extra, list) and all(isinstance(token, str) for token in extra):
        kwargs["additional_special_tokens"] = extra
    if isinstance(config.get("chat_template"), str):
        kwargs["chat_template"] = config["chat_template"]
    kwargs["clean_up_tokenization_spaces"] = bool(config.get("clean_up_tokenization_spaces", False))
    return kwargs


def render_chat(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The conversation as template text, ending with the assistant header."""
    _check_messages(messages)
    return tokenizer.apply_chat_template(
        list(messages), add_generation_prompt=True, tokenize=False
    )


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Ids of text a person wrote or imported: always text, so typing a special token's spelling
    (<|eot_id|>, <role>) gives its characters, never the control token (no forged turns)."""
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def _encode_template(tokenizer: Any, text: str) -> list[int]:
    """Ids of text the chat template wrote: its special tokens are control tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_chat(tokenizer: Any, messages: Sequence[Message], *,
                insert: Optional[dict[int, list[int]]] = None,
                inserted_at: Optional[dict[int, int]] = None) -> list[int]:
    """Token ids of the conversation in the official template: one BOS, assistant header last.

    The template's own text is tokenized with its special tokens; each message's content only as
    text (encode_text). The template is rendered twice, once with a mark for every content, to
    tell one from the other; the contents are then read back from the real rendering (a template
    may trim them).
    """
    rendered = render_chat(tokenizer, messages)
    marks = [f"LLADAMESSAGE{number}MARK" for number in range(len(messages))]
    skeleton = render_chat(tokenizer, [{**message, "content": mark}
                                       for message, mark in zip(messages, marks)])
    ids = _encode_around_contents(tokenizer, rendered, skeleton, marks,
                                  [message["content"] for message in messages], insert or {},
                                  inserted_at if inserted_at is not None else {})
    if ids is None:
        raise ValueError("this model's chat template rewrites message text, so it cannot be "
                         "encoded safely")
    return ids


def _encode_around_contents(tokenizer: Any, rendered: str, skeleton: str, marks: Sequence[str],
                            contents: Sequence[str], insert: Optional[dict[int, list[int]]] = None,
                            inserted_at: Optional[dict[int, int]] = None) -> list[int] | None:
    """`rendered` as ids: the template's pieces (read from `skeleton`, where each content is its
    mark) with special tokens, the contents between them as text; None when they do not line up."""
    pieces, rest = [], skeleton
    for mark in marks:
        if rest.count(mark) != 1:
            return None
        before, rest = rest.split(mark)
        pieces.append(before)
    pieces.append(rest)
    ids: list[int] = []
    position = 0
    for number, content in enumerate(contents):
        piece, following = pieces[number], pieces[number + 1]
        if not rendered.startswith(piece, position):
            return None
        ids += _encode_template(tokenizer, piece)
        position += len(piece)
        if insert and number in insert:  # ids before this message's text (a picture's positions)
            if inserted_at is not None:
                inserted_at[number] = len(ids)
            ids += insert[number]
        # The content as rendered is at least the content without its outer whitespace, and
        # the template's next piece starts right after it.
        end = rendered.find(following, position + len(content.strip())) if following else len(rendered)
        if end < 0 or rendered[position:end] not in content:
            return None
        ids += encode_text(tokenizer, rendered[position:end])
        position = end
    if rendered[position:] != pieces[-1]:
        return None
    return ids + _encode_template(tokenizer, pieces[-1])


# The tokens a chat template needs, per family; a tokenizer without them as added special tokens
# (LLaDA-8B-Base) would spell the template's headers out as ordinary text.
CHAT_TOKENS = (tokens.START_HEADER, tokens.END_HEADER, tokens.EOT)
LING_CHAT_TOKENS = (tokens.ROLE_OPEN, tokens.ROLE_CLOSE, tokens.ROLE_END)
# Where an answer ends, besides EOS: end of turn in either family.
END_OF_TURN_TOKENS = (tokens.EOT, tokens.ROLE_END)


def is_base_model(tokenizer: Any) -> bool:
    """True for a base (pre-trained only) model: its tokenizer has neither family's chat tokens
    (LLaDA: <|start_header_id|>, <|end_header_id|>, <|eot_id|>; LLaDA-MoE: <role>, </role>,
    <|role_end|>) as added special tokens.

    LLaDA-8B-Base's tokenizer_config.json still carries the Instruct chat template, so the
    template's presence says nothing; the tokens decide. (LLaDA-8B's tokenizers also carry
    <role> and </role>, but not <|role_end|>.)
    """
    special = {
        str(token) for token in getattr(tokenizer, "added_tokens_decoder", {}).values()
        if getattr(token, "special", True)
    }
    return not any(all(name in special for name in family)
                   for family in (CHAT_TOKENS, LING_CHAT_TOKENS))


def bos_id(tokenizer: Any) -> int | None:
    """The id of <|startoftext|> (the tokenizer's BOS), None when it has none."""
    for name in (getattr(tokenizer, "bos_token", None), tokens.BOS):
        if name:
            token_id = tokenizer.convert_tokens_to_ids(name)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                return int(token_id)
    return None


def encode_raw(tokenizer: Any, text: str) -> list[int]:
    """BOS + the text's ids, no template: how a base model is prompted (it was pre-trained on
    sequences that start with BOS; the tokenizer adds no BOS by itself)."""
    if not isinstance(text, str):
        raise ValueError("the prompt must be text")
    bos = bos_id(tokenizer)
    return ([bos] if bos is not None else []) + encode_text(tokenizer, text)


def encode_prompt(tokenizer: Any, messages_or_text: str | Sequence[Message]) -> list[int]:
    """Prompt ids for any LLaDA: the chat template for an Instruct model, raw text for a base one.

    Text is one user message for an Instruct model. A base model gets BOS + the text; given
    messages, it gets their contents joined in order without roles (the conversation read as
    one text it continues), with a space between two texts when neither side has one, as
    continue_conversation does.
    """
    if isinstance(messages_or_text, str):
        if is_base_model(tokenizer):
            return encode_raw(tokenizer, messages_or_text)
        return encode_chat(tokenizer, [{"role": "user", "content": messages_or_text}])
    if is_base_model(tokenizer):
        _check_messages(messages_or_text)
        return encode_raw(tokenizer, join_continuations(m["content"] for m in messages_or_text))
    return encode_chat(tokenizer, messages_or_text)


def join_continuations(texts: Iterable[str]) -> str:
    """Texts read as one: a space between two when neither side has whitespace there."""
    joined = ""
    for text in texts:
        if joined and text and not joined[-1].isspace() and not text[0].isspace():
            joined += " "
        joined += text
    return joined


def continue_conversation(
    tokenizer: Any, history_ids: Sequence[int] | None, user_message: str
) -> list[int]:
    """The prompt for the next turn: the history's ids kept as they are, then what the
    checkpoint's own chat template writes after an answer.

    history_ids is the previous turn's prompt plus its whole generated region. For an Instruct
    model the result is the previous prompt + the visible answer (up to its first EOS or end of
    turn) + the template's tail after an assistant message (end of turn, the new user turn, the
    assistant header), so a second turn equals rendering the whole conversation with the
    template, for LLaDA-8B (<|eot_id|>) and LLaDA-MoE (<|role_end|>) alike. When the history does
    not end in a turn the template wrote, it falls back to the reference chat.py: every EOS
    dropped, the new user turn appended without its BOS.
    A base model has no turns: the first prompt is BOS + the text, and each later text is
    appended to the history as a continuation (after a space when neither side has one).
    """
    base = is_base_model(tokenizer)
    turn = encode_prompt(tokenizer, user_message)
    if not history_ids:
        return turn
    history = [int(t) for t in history_ids]
    if not base:
        templated = _continue_with_template(tokenizer, history, user_message)
        if templated is not None:
            return templated
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    kept = [t for t in history if t != eos]
    bos = bos_id(tokenizer)
    if turn and turn[0] == bos:
        turn = turn[1:]
    if base and kept and user_message and not user_message[0].isspace():
        tail = tokenizer.decode(known_ids(tokenizer, kept[-1:]), skip_special_tokens=True)
        if tail and not tail[-1].isspace():
            turn = encode_text(tokenizer, " " + user_message)
    return kept + turn


# Stand-in message contents, found again in the rendered template to cut it into pieces. Plain
# words: a template that trims or escapes content leaves them as they are.
_USER_MARK = "LLADAUSERMARK"
_ANSWER_MARK = "LLADAANSWERMARK"
_NEXT_MARK = "LLADANEXTMARK"


def _template_pieces(tokenizer: Any, user_message: str) -> tuple[list[int], list[int]] | None:
    """(assistant header, next turn) as ids, read from the tokenizer's own chat template.

    The assistant header is what the template writes after a user message's content (for
    LLaDA-8B <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n, for LLaDA-MoE
    <|role_end|><role>ASSISTANT</role>): every prompt ends with it. The next turn is what it
    writes after an answer's content: end of turn, the user's turn with `user_message`, the
    assistant header. None when the template does not render the marks back (no way to cut it).
    """
    first = render_chat(tokenizer, [{"role": "user", "content": _USER_MARK}])
    turns = [{"role": "user", "content": _USER_MARK}, {"role": "assistant", "content": _ANSWER_MARK}]
    second = render_chat(tokenizer, [*turns, {"role": "user", "content": user_message}])
    skeleton = render_chat(tokenizer, [*turns, {"role": "user", "content": _NEXT_MARK}])
    if first.count(_USER_MARK) != 1 or second.count(_ANSWER_MARK) != 1 \
            or skeleton.count(_ANSWER_MARK) != 1:
        return None
    header = first[first.index(_USER_MARK) + len(_USER_MARK):]
    following = second[second.index(_ANSWER_MARK) + len(_ANSWER_MARK):]
    following_skeleton = skeleton[skeleton.index(_ANSWER_MARK) + len(_ANSWER_MARK):]
    if not header or not following:
        return None
    # The user's message is text; only the template's own pieces around it are control tokens.
    following_ids = _encode_around_contents(tokenizer, following, following_skeleton,
                                            [_NEXT_MARK], [user_message])
    if following_ids is None:
        return None
    return _encode_template(tokenizer, header), following_ids


def _continue_with_template(tokenizer: Any, history: list[int],
                            user_message: str) -> list[int] | None:
    """Previous prompt + visible answer + the template's next turn; None when the history holds
    no assistant header to tell the prompt from the answer.

    The previous prompt ends at the last assistant header before the generated region's first
    EOS (a prompt the template wrote holds no EOS; a generated region ends in EOS padding), or
    at the last assistant header when the region was filled without one.
    """
    pieces = _template_pieces(tokenizer, user_message)
    if pieces is None:
        return None
    header, following = pieces
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    searched = history[:history.index(eos)] if eos in history else history
    end = _last_end_of(searched, header)
    if end is None:
        return None
    return history[:end] + visible_answer_ids(tokenizer, history[end:]) + following


def _last_end_of(ids: Sequence[int], part: Sequence[int]) -> int | None:
    """The index just past the last occurrence of `part` in `ids`; None when absent."""
    size = len(part)
    for start in range(len(ids) - size, -1, -1):
        if list(ids[start:start + size]) == list(part):
            return start + size
    return None


def answer_stop_ids(tokenizer: Any) -> set[int]:
    """The ids that end an answer: EOS and end of turn (<|eot_id|>, or LLaDA-MoE's
    <|role_end|>), those the tokenizer has."""
    stops = {tokenizer.convert_tokens_to_ids(name) for name in (tokens.EOS, *END_OF_TURN_TOKENS)}
    stops.discard(tokenizer.unk_token_id)
    stops.discard(None)
    return stops


def visible_answer_ids(tokenizer: Any, answer_ids: Sequence[int]) -> list[int]:
    """The answer up to (not including) the first EOS or end of turn (<|eot_id|>, or
    LLaDA-MoE's <|role_end|>)."""
    stops = answer_stop_ids(tokenizer)
    visible = []
    for token in answer_ids:
        if int(token) in stops:
            break
        visible.append(int(token))
    return visible


def known_ids(tokenizer: Any, ids: Sequence[int]) -> list[int]:
    """The ids the tokenizer has a token for. The embedding has rows past the tokenizer (LLaDA
    8B: 126464 rows, 126349 tokens) that a model can still predict; they carry no text."""
    size = len(tokenizer)
    return [int(t) for t in ids if 0 <= int(t) < size]


def answer_text(tokenizer: Any, answer_ids: Sequence[int]) -> str:
    """The text a person sees: decoded up to the first stop token, special tokens skipped, ids
    past the tokenizer's vocabulary dropped."""
    return tokenizer.decode(known_ids(tokenizer, visible_answer_ids(tokenizer, answer_ids)),
                            skip_special_tokens=True)


def _check_messages(messages: Sequence[Message]) -> None:
    if not messages:
        raise ValueError("the conversation has no messages")
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"message {number} needs a 'role' and a 'content'")
        if not isinstance(message["content"], str):
            raise ValueError(f"message {number} content must be text")


# LLaDA-V's fixed system turn (its conversation template llava_llada).
VISION_SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the "
                 "visual content that the user provides, and assist the user with a variety of "
                 "tasks using natural language.")


def encode_image_chat(tokenizer: Any, messages: Sequence[Message], image_tokens: int,
                      placeholder: int) -> tuple[list[int], int]:
    """(ids, start) of a conversation whose last user message comes with a picture: LLaDA-V's
    system turn first (unless the conversation has one), then the turns, with `image_tokens`
    placeholder positions at the start of the last user message, where the reference puts
    `<image>` (its text follows at once: the reference drops the newline after `<image>`)."""
    turns = list(messages)
    if not turns or turns[0].get("role") != "system":
        turns.insert(0, {"role": "system", "content": VISION_SYSTEM})
    last_user = max(i for i, m in enumerate(turns) if m.get("role") == "user")
    at: dict[int, int] = {}
    ids = encode_chat(tokenizer, turns, insert={last_user: [placeholder] * image_tokens},
                      inserted_at=at)
    return ids, at[last_user]
