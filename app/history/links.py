"""Which links in a transcript may be opened: web pages only (answers are data, and a link to
file:, javascript: or a custom scheme could do more than show a page)."""

from __future__ import annotations

from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")


def is_web_link(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.netloc)
