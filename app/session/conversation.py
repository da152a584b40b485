"""The rules of a conversation, free of Qt: which model wrote what, how the next prompt is
planned and built, and what fits in the model's context.

The window plans (it owns the history database); the worker builds (it owns the tokenizer):

- plan_prompt(earlier, user_text, fingerprint, answer_ids_of) -> a plan dict. It always carries
  the conversation as text; it also carries token ids to continue from (the reference chat.py
  rule: the last prompt plus its whole generated region) when every earlier answer is intact
  and was written with the same tokenizer as the loaded model.
- build_prompt(tokenizer, plan, gen_length, max_length) -> Prompt: the ids, continued from the
  stored ids when they fit, else re-encoded from the text (encode_prompt: the chat template for
  an Instruct model, raw text for a Base one) with the oldest turns dropped until prompt +
  answer fit in the model's max_sequence_length.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

# Raised when even the last message alone and the answer do not fit in the model's context.
from llada_core.settings import ContextTooLong  # noqa: F401 (part of this module's API)

# Keys an assistant message's stats carry for the model that wrote it.
MODEL_KEY = "model"
TOKENIZER_KEY = "tokenizer"


# --- model identity ------------------------------------------------------------------------
def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of what turns text into ids: the vocabulary and the added tokens (with their
    ids and whether they are special). Two tokenizers with the same fingerprint give the same ids
    for the same text, so stored ids of one are valid prompts for the other."""
    vocab = sorted((str(token), int(i)) for token, i in tokenizer.get_vocab().items())
    added = sorted((int(i), str(token), bool(getattr(token, "special", False)))
                   for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items())
    payload = json.dumps([vocab, added], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def model_label(model: str) -> str:
    """A short name for a model: a repo id as is, a Hugging Face cache snapshot as its repo id,
    a folder by its name."""
    path = Path(model)
    for part in path.parts:
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/")
    if not path.is_absolute() and len(path.parts) == 2 and not path.exists():
        return model  # owner/name
    return path.name or model


@dataclass(frozen=True)
class ModelIdentity:
    """The loaded model as the conversation rules see it."""

    model: str                    # folder or repo id, as loaded
    fingerprint: str              # tokenizer_fingerprint
    base: bool = False            # a Base model: completion, no roles
    max_length: int = 4096        # config.json max_sequence_length

    @property
    def label(self) -> str:
        return model_label(self.model)

    def stamp(self) -> dict:
        """What an assistant message records about the model that wrote it."""
        return {MODEL_KEY: self.model, TOKENIZER_KEY: self.fingerprint}

    @classmethod
    def from_info(cls, info: dict) -> "ModelIdentity":
        return cls(model=str(info["path"]), fingerprint=str(info.get("fingerprint", "")),
                   base=bool(info.get("base", False)),
                   max_length=int(info.get("max_length") or 4096))


def written_by(stats: dict) -> str:
    """'model NAME (tokenizer abcd1234)' for a stored answer's meta line ('' when unknown)."""
    text = f"model {model_label(str(stats[MODEL_KEY]))}" if stats.get(MODEL_KEY) else ""
    if stats.get(TOKENIZER_KEY):
        text += f" (tokenizer {str(stats[TOKENIZER_KEY])[:8]})"
    return text.strip()


# --- an answer lost to a crash --------------------------------------------------------------
def interrupted_question(messages: Sequence[Any], answering: bool = False) -> Optional[Any]:
    """The question whose answer was lost, or None: a conversation's stored messages end with a
    user message only while its answer is being generated (`answering`) or when the app was
    killed or crashed before the answer was stored (a failed or stopped answer takes its
    question back out)."""
    if answering or not messages or messages[-1].role != "user":
        return None
    return messages[-1]


# --- planning (window side) ---------------------------------------------------------------
def _turns(messages: Sequence[Any]) -> list[dict]:
    return [{"role": m.role, "content": m.text} for m in messages]


def continues_by_ids(earlier: Sequence[Any], fingerprint: str) -> bool:
    """Whether the next prompt may continue from stored ids: the last message is an answer and
    every answer is complete (not stopped, has its prompt ids and trace) and was written with the
    loaded model's tokenizer."""
    if not earlier or earlier[-1].role != "assistant":
        return False
    for message in earlier:
        if message.role == "user":
            continue
        if (message.prompt_ids is None or not message.has_trace or message.stats.get("stopped")
                or message.stats.get(TOKENIZER_KEY) != fingerprint or not fingerprint):
            return False
    return True


def plan_prompt(earlier: Sequence[Any], user_text: Optional[str], fingerprint: str,
                answer_ids_of: Callable[[Any], Optional[list[int]]]) -> dict:
    """The plan for the prompt after `earlier` (Message-like objects with role, text, stats,
    prompt_ids, has_trace). `user_text` None answers `earlier` as it stands (it ends with the
    user turn to answer). `answer_ids_of(message)` gives an answer's generated ids."""
    turns = _turns(earlier)
    if user_text is not None:
        turns.append({"role": "user", "content": user_text})
    plan: dict = {"turns": turns}
    if user_text is not None and continues_by_ids(earlier, fingerprint):
        answer = answer_ids_of(earlier[-1])
        if answer is not None:
            plan["history_ids"] = list(earlier[-1].prompt_ids) + list(answer)
            plan["user_text"] = user_text
            # Messages the earlier prompt left out stay out of its continuation.
            plan["history_dropped"] = int(earlier[-1].stats.get("dropped", 0) or 0)
    return plan


def plan_regenerate(earlier: Sequence[Any], old_answer: Any, fingerprint: str) -> dict:
    """Answer the user turn ending `earlier` again: the old answer's own prompt when its
    tokenizer is the loaded one, else the conversation re-encoded from text."""
    plan: dict = {"turns": _turns(earlier)}
    if (old_answer is not None and old_answer.prompt_ids is not None and fingerprint
            and old_answer.stats.get(TOKENIZER_KEY) == fingerprint):
        plan["prompt_ids"] = list(old_answer.prompt_ids)
        plan["history_dropped"] = int(old_answer.stats.get("dropped", 0) or 0)
    return plan


# --- building (worker side) ---------------------------------------------------------------


@dataclass
class Prompt:
    ids: list[int]
    dropped: int = 0              # oldest messages left out to fit the context
    reencoded: bool = False       # built from the text, not from stored ids
    notes: list[str] = field(default_factory=list)

    def total(self, gen_length: int) -> int:
        return len(self.ids) + gen_length


def build_prompt(tokenizer: Any, plan: dict, gen_length: int, max_length: int) -> Prompt:
    """The prompt ids for `plan` (see plan_prompt) such that prompt + answer <= max_length."""
    from llada_core.chat import continue_conversation, encode_prompt

    budget = max_length - gen_length
    if budget < 1:
        raise ContextTooLong(f"an answer of {gen_length} tokens does not fit in this model's "
                             f"context of {max_length:,} tokens; choose a shorter answer")
    for key in ("prompt_ids", "history_ids"):
        if plan.get(key) is None:
            continue
        if key == "prompt_ids":
            ids = [int(t) for t in plan["prompt_ids"]]
        else:
            ids = continue_conversation(tokenizer, plan["history_ids"], plan["user_text"])
        if len(ids) <= budget:
            return Prompt(ids, dropped=int(plan.get("history_dropped", 0) or 0))
    turns = list(plan.get("turns") or [])
    if not turns:
        raise ValueError("there is nothing to answer")
    # A leading system message (the server's clients send one) is kept; the oldest of the others
    # go first.
    pinned = turns[:1] if turns[0].get("role") == "system" and len(turns) > 1 else []
    rest = turns[len(pinned):]
    dropped = 0
    while True:
        ids = list(encode_prompt(tokenizer, pinned + rest))
        if len(ids) <= budget:
            return Prompt(ids, dropped=dropped, reencoded=True)
        if len(rest) == 1:
            raise ContextTooLong(
                f"this message and its answer need {len(ids) + gen_length:,} tokens, more than "
                f"this model's context of {max_length:,}; shorten the message or the answer")
        # Drop the oldest message; never start the kept history with an answer.
        rest.pop(0)
        dropped += 1
        while len(rest) > 1 and rest[0]["role"] == "assistant":
            rest.pop(0)
            dropped += 1


def dropped_notice(dropped: int, *, kept: bool = True) -> str:
    """The sentence every front end shows when the oldest messages were left out of a prompt;
    `kept`: the front end's history still has them (the window, `llada chat`), not a server's."""
    what = "message was" if dropped == 1 else f"{dropped} messages were"
    return (f"The conversation is longer than the model's context: the oldest {what} left out "
            "of this prompt" + (" (the history keeps everything)." if kept else "."))


def context_line(used: int, limit: int) -> str:
    """'1,234 / 4,096 tokens' (prompt + answer against the model's context)."""
    return f"{used:,} / {limit:,} tokens"
