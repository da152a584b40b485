"""Export a conversation to Markdown, JSON (versioned, importable), HTML (self-contained,
escaped) and PDF (Qt's own PDF writer); import the JSON back.

A question's picture (LLaDA-V) goes along: inline in HTML and PDF, in the JSON as base64 (so an
import brings it back), and beside a Markdown file in a `<name>-pictures` folder it links to."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from pathlib import Path
from typing import Any

from app.session.conversation import TOKENIZER_KEY
from app.session.stats_text import stats_line
from app.history.store import Conversation, Message, Store
from app.session.pictures import Picture, checked_picture

Pictures = dict[int, Picture]  # a conversation's pictures by message id

JSON_FORMAT = "llada-desktop-conversation"
JSON_VERSION = 1
FORMATS = {"md": "Markdown", "json": "JSON", "html": "HTML", "pdf": "PDF"}

SETTING_LABELS = [("gen_length", "answer length"), ("steps", "steps"),
                  ("block_length", "block length"), ("temperature", "temperature"),
                  ("cfg_scale", "CFG scale"), ("remasking", "remasking"), ("seed", "seed"),
                  ("mode", "mode"), ("threshold", "threshold")]


def speaker(message: Message) -> str:
    return "You" if message.role == "user" else "LLaDA"


def settings_line(settings: dict) -> str:
    parts = [f"{label} {settings[key]}" for key, label in SETTING_LABELS
             if key in settings and settings[key] is not None]
    return ", ".join(parts)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


# --- Markdown ----------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+[^`]*`+)")


def inert_markdown(text: str) -> str:
    """Markdown in which no HTML tag takes effect: every `<` outside fenced code blocks and code
    spans becomes `&lt;`, which a renderer shows as `<` (inside code it would show the entity, so
    code stays as written, where a renderer never reads tags anyway)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(line)
        else:
            out.append("".join(part if part.startswith("`") else part.replace("<", "&lt;")
                               for part in _CODE_SPAN.split(line)))
    return "\n".join(out)


def to_markdown(conversation: Conversation, messages: list[Message],
                links: dict[int, str] | None = None) -> str:
    """`links`: where each question's picture was written, relative to the Markdown file. The
    text is the messages' own Markdown, made inert (inert_markdown): a viewer runs no HTML."""
    lines = [f"# {inert_markdown(conversation.title)}", "",
             f"*Exported from LLaDA Desktop, {_when(time.time())}*", ""]
    for message in messages:
        lines += [f"## {speaker(message)}", ""]
        if links and message.id in links:
            lines += [f"![picture](<{links[message.id]}>)", ""]
        if message.role == "assistant":
            meta = "; ".join(x for x in (settings_line(message.settings),
                                         stats_line(message.stats)) if x)
            if meta:
                lines += [f"*{meta}*", ""]
        lines += [inert_markdown(message.text), ""]
    return "\n".join(lines)


# --- JSON --------------------------------------------------------------------------------
def to_json(conversation: Conversation, messages: list[Message], store: Store | None = None) -> str:
    """Versioned JSON; with a store, each answer's trace goes along (base64)."""
    data: dict[str, Any] = {
        "format": JSON_FORMAT, "version": JSON_VERSION,
        "conversation": {"title": conversation.title, "created": conversation.created,
                         "settings": conversation.settings},
        "messages": [],
    }
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "text": message.text,
                                "created": message.created, "settings": message.settings,
                                "stats": message.stats, "prompt_ids": message.prompt_ids}
        if store is not None and message.has_trace:
            blob = store.trace_blob(message.id)
            if blob is not None:
                item["trace"] = base64.b64encode(blob).decode("ascii")
        picture = store.picture(message.id) if store is not None and message.has_picture else None
        if picture is not None:
            item["picture"] = {"name": picture.name, "type": picture.mime,
                               "data": base64.b64encode(picture.data).decode("ascii")}
        data["messages"].append(item)
    return json.dumps(data, indent=2, ensure_ascii=False)


def import_json(store: Store, text: str) -> int:
    """Add the conversation in an exported JSON file to the store; return its new id."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the file is not JSON ({error})") from error
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise ValueError("the file is not a LLaDA Desktop conversation export")
    if data.get("version") != JSON_VERSION:
        raise ValueError(f"export version {data.get('version')} is not supported "
                         f"(this version reads {JSON_VERSION})")
    meta = data.get("conversation") or {}
    if not isinstance(meta, dict) or not isinstance(data.get("messages") or [], list):
        raise ValueError("the file is not a LLaDA Desktop conversation export")
    messages = []
    for number, item in enumerate(data.get("messages") or [], start=1):
        messages.append(_imported_message(number, item))
    return store.import_conversation(str(meta.get("title") or "Imported chat"),
                                     meta.get("settings") if isinstance(meta.get("settings"), dict)
                                     else {}, messages)


def _imported_message(number: int, item: Any) -> dict:
    """add_message's arguments for one exported message; ValueError names what is wrong."""
    if not isinstance(item, dict) or item.get("role") not in ("user", "assistant") \
            or not isinstance(item.get("text"), str):
        raise ValueError(f"message {number} in the file has no valid role or text")
    for key in ("settings", "stats"):
        if not isinstance(item.get(key) or {}, dict):
            raise ValueError(f"message {number} in the file has unreadable {key}")
    ids = item.get("prompt_ids")
    if ids is not None and (not isinstance(ids, list)
                            or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids)):
        raise ValueError(f"message {number} in the file has unreadable prompt ids")
    created = item.get("created")
    if created is not None and (isinstance(created, bool) or not isinstance(created, (int, float))):
        raise ValueError(f"message {number} in the file has an unreadable date")
    try:
        trace = base64.b64decode(item["trace"], validate=True) if item.get("trace") else None
    except (ValueError, TypeError) as error:
        raise ValueError(f"message {number} in the file has an unreadable trace") from error
    # Imported ids are kept but never trusted as a prompt: without the tokenizer's fingerprint
    # the next turn is built from the text, so a file cannot smuggle in control tokens.
    stats = {key: value for key, value in (item.get("stats") or {}).items() if key != TOKENIZER_KEY}
    return {"role": item["role"], "text": item["text"], "settings": item.get("settings") or {},
            "stats": stats, "prompt_ids": ids, "trace": trace, "created": created,
            "picture": _imported_picture(number, item.get("picture"))}


def _imported_picture(number: int, value: Any) -> Picture | None:
    """A message's exported picture, checked like an attached one."""
    if value is None:
        return None
    try:
        if not isinstance(value, dict) or not isinstance(value.get("data"), str):
            raise ValueError("it is not a name and base64 data")
        data = base64.b64decode(value["data"], validate=True)
        name = value.get("name") if isinstance(value.get("name"), str) else "picture"
        return checked_picture(data, name)
    except (ValueError, TypeError) as error:
        raise ValueError(f"message {number} in the file has an unreadable picture ({error})") \
            from None


# --- HTML --------------------------------------------------------------------------------
HTML_STYLE = """
body { font-family: sans-serif; max-width: 50em; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #1d1d1f; background: #ffffff; }
h1 { font-size: 1.5em; }
.message { margin: 1em 0; padding: 0.6em 0.9em; border-radius: 8px; }
.user { background: #eef3fb; }
.assistant { background: #f5f5f5; }
.speaker { font-weight: bold; }
.meta { color: #666666; font-size: 0.85em; }
.text { white-space: pre-wrap; font-family: sans-serif; margin: 0.4em 0 0 0; }
.picture { max-width: 20em; max-height: 20em; margin: 0.4em 0 0 0; border-radius: 4px; }
@media (prefers-color-scheme: dark) {
  body { color: #e8e8e8; background: #1e1e1e; }
  .user { background: #243349; } .assistant { background: #2a2a2a; } .meta { color: #aaaaaa; }
}
"""


def data_url(picture: Picture) -> str:
    """The picture inline, for an <img> (only image types: anything else is not shown)."""
    return f"data:{picture.mime};base64," + base64.b64encode(picture.data).decode("ascii")


def to_html(conversation: Conversation, messages: list[Message],
            pictures: Pictures | None = None, source=data_url) -> str:
    """A self-contained page; every piece of text goes through html.escape, so it stays inert.
    Each question's picture is inline (`source` gives its <img> address)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(conversation.title)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>",
             f"<h1>{esc(conversation.title)}</h1>"]
    for message in messages:
        parts.append(f'<div class="message {esc(message.role)}">')
        parts.append(f'<div class="speaker">{esc(speaker(message))}</div>')
        if message.role == "assistant":
            meta = "; ".join(x for x in (settings_line(message.settings),
                                         stats_line(message.stats)) if x)
            if meta:
                parts.append(f'<div class="meta">{esc(meta)}</div>')
        picture = (pictures or {}).get(message.id)
        if picture is not None and picture.mime.startswith("image/"):
            parts.append(f'<div><img class="picture" width="240" alt="{esc(picture.name)}" '
                         f'src="{esc(source(picture))}"></div>')
        parts.append(f'<pre class="text">{esc(message.text)}</pre>')
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- PDF ---------------------------------------------------------------------------------
def write_pdf(conversation: Conversation, messages: list[Message], path: str | Path,
              pictures: Pictures | None = None) -> None:
    """Render the HTML export with Qt's QTextDocument onto a QPdfWriter (A4); the pictures are
    handed to the document as its resources."""
    from PySide6.QtCore import QMarginsF, QUrl
    from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

    writer = QPdfWriter(str(path))
    writer.setTitle(conversation.title)
    writer.setCreator("LLaDA Desktop")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    document = QTextDocument()
    names = {id(picture): f"picture-{number}" for number, picture in
             enumerate((pictures or {}).values())}
    for picture in (pictures or {}).values():
        document.addResource(QTextDocument.ResourceType.ImageResource,
                             QUrl(names[id(picture)]), QImage.fromData(picture.data))
    document.setHtml(to_html(conversation, messages, pictures,
                             source=lambda picture: names[id(picture)]))
    document.print_(writer)


def export(store: Store, conversation_id: int, path: str | Path, fmt: str | None = None) -> Path:
    """Write one conversation to `path` in the format named by `fmt` or the file's suffix."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == "markdown":
        fmt = "md"
    if fmt == "htm":
        fmt = "html"
    if fmt not in FORMATS:
        raise ValueError(f"cannot export to {fmt!r}; choose one of {', '.join(FORMATS)}")
    conversation = store.conversation(conversation_id)
    if conversation is None:
        raise ValueError(f"there is no conversation {conversation_id}")
    messages = store.messages(conversation_id)
    # JSON reads each picture as it writes it (to_json); the other formats show them all
    pictures = {} if fmt == "json" else {
        m.id: picture for m in messages if m.has_picture
        for picture in [store.picture(m.id)] if picture is not None}
    if fmt == "md":
        path.write_text(to_markdown(conversation, messages, write_pictures(pictures, path)),
                        encoding="utf-8")
    elif fmt == "json":
        path.write_text(to_json(conversation, messages, store), encoding="utf-8")
    elif fmt == "html":
        path.write_text(to_html(conversation, messages, pictures), encoding="utf-8")
    else:
        write_pdf(conversation, messages, path, pictures)
    return path


def write_pictures(pictures: Pictures, markdown: Path) -> dict[int, str]:
    """The pictures as files in `<name>-pictures/` beside the Markdown file (numbered, never
    named after their original names), and each one's relative link."""
    if not pictures:
        return {}
    folder = markdown.with_name(f"{markdown.stem}-pictures")
    folder.mkdir(exist_ok=True)
    links = {}
    for number, (message_id, picture) in enumerate(pictures.items(), start=1):
        name = f"{number}{picture.suffix}"
        (folder / name).write_bytes(picture.data)
        links[message_id] = f"{folder.name}/{name}"
    return links
