"""A question's picture (LLaDA-V) as the app keeps it: its bytes and its file name, checked
once when it is attached, stored with the question so the history never depends on the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llada_core.vision import NO_VISION  # noqa: F401 - the front ends' one sentence
MAX_PICTURE_BYTES = 20_000_000  # larger files are refused before they are decoded

# Leading bytes of the formats Pillow reads that browsers and Qt also show.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"),
               (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


@dataclass(frozen=True)
class Picture:
    name: str
    data: bytes

    @property
    def mime(self) -> str:
        """The picture's media type, from its first bytes (never from its name)."""
        if self.data[:4] == b"RIFF" and self.data[8:12] == b"WEBP":
            return "image/webp"
        for signature, mime in _SIGNATURES:
            if self.data.startswith(signature):
                return mime
        return "application/octet-stream"

    @property
    def suffix(self) -> str:
        return {"image/jpeg": ".jpg", "application/octet-stream": ".bin"}.get(
            self.mime, "." + self.mime.split("/")[-1])


def checked_picture(data: bytes, name: str) -> Picture:
    """`data` as a Picture once it decodes as one; ValueError says in one sentence why not."""
    from llada_core.vision import load_image

    if not data:
        raise ValueError(f"{name} is empty")
    if len(data) > MAX_PICTURE_BYTES:
        raise ValueError(f"{name} is {len(data) / 1e6:.0f} MB; pictures up to "
                         f"{MAX_PICTURE_BYTES // 1_000_000} MB can be attached")
    load_image(data, name)
    return Picture(name=name, data=bytes(data))


def read_picture(path: str | Path) -> Picture:
    """The picture file at `path`; ValueError says in one sentence why it cannot be attached."""
    from llada_core.vision import load_image

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path.name} is a folder, not a picture")
    if path.is_file() and path.stat().st_size > MAX_PICTURE_BYTES:
        raise ValueError(f"{path.name} is {path.stat().st_size / 1e6:.0f} MB; pictures up to "
                         f"{MAX_PICTURE_BYTES // 1_000_000} MB can be attached")
    load_image(path)  # missing, unreadable or not a picture: one sentence
    try:
        return Picture(name=path.name, data=path.read_bytes())
    except OSError as error:
        raise ValueError(f"{path.name} cannot be read ({error.strerror or error})") from None
