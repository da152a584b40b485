"""Animation export, free of Qt: an answer's denoising frames (Pillow images, drawn elsewhere by
the canvas's own painter) written as an animated GIF, an APNG, per-step PNGs or a contact sheet.

The output kind follows the path: `.gif` is a GIF, `.png`/`.apng` an animated PNG, and a folder
(an existing one, or a path ending in a separator or without a suffix) gets one PNG per frame
plus `contact-sheet.png`. Frames are the all-masked start, then one per step; each lasts
FRAME_MS and the last is held HOLD_MS so a loop shows the finished answer before starting over.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image

FRAME_MS = 80
HOLD_MS = 1500
SHEET_COLUMNS = 4
SHEET_GAP = 6

Kind = Literal["gif", "apng", "pngs"]


def kind_of(path: str | Path) -> Kind:
    """What a path asks for; ValueError (one sentence) for a file type we cannot write."""
    text = str(path)
    target = Path(text)
    if target.is_dir() or text.endswith(("/", os.sep)) or not target.suffix:
        return "pngs"
    suffix = target.suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix in (".png", ".apng"):
        return "apng"
    raise ValueError(f"an animation is written as .gif, .png (animated) or a folder of PNGs, "
                     f"not {target.suffix}")


def durations(count: int, frame_ms: int = FRAME_MS, hold_ms: int = HOLD_MS) -> list[int]:
    """Each frame's duration in ms: frame_ms, and the last one held for hold_ms."""
    if count <= 0:
        return []
    return [frame_ms] * (count - 1) + [max(frame_ms, hold_ms)]


def _checked(images: Sequence[Image.Image]) -> list[Image.Image]:
    if not images:
        raise ValueError("there is no frame to write")
    sizes = {image.size for image in images}
    if len(sizes) != 1:
        raise ValueError(f"the frames differ in size ({sorted(sizes)})")
    return [image.convert("RGB") for image in images]


def write_gif(images: Sequence[Image.Image], path: str | Path, *, frame_ms: int = FRAME_MS,
              hold_ms: int = HOLD_MS) -> Path:
    frames = _checked(images)
    # One palette for every frame, from up to 16 of them spread over the answer (the first and
    # the last among them): colours stay put from frame to frame instead of flickering with a
    # palette of each frame's own.
    picks = sorted({round(i * (len(frames) - 1) / 15) for i in range(16)}) if len(frames) > 1 \
        else [0]
    width, height = frames[0].size
    sample = Image.new("RGB", (width, height * len(picks)))
    for row, k in enumerate(picks):
        sample.paste(frames[k], (0, row * height))
    palette = sample.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    paletted = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    target = Path(path)
    paletted[0].save(target, format="GIF", save_all=True, append_images=paletted[1:],
                     duration=durations(len(frames), frame_ms, hold_ms), loop=0,
                     disposal=1, optimize=False)
    return target


def write_apng(images: Sequence[Image.Image], path: str | Path, *, frame_ms: int = FRAME_MS,
               hold_ms: int = HOLD_MS) -> Path:
    frames = _checked(images)
    target = Path(path)
    frames[0].save(target, format="PNG", save_all=True, append_images=frames[1:],
                   duration=durations(len(frames), frame_ms, hold_ms), loop=0,
                   default_image=False, optimize=True)
    return target


def contact_sheet(images: Sequence[Image.Image], columns: int = SHEET_COLUMNS,
                  gap: int = SHEET_GAP) -> Image.Image:
    """Every frame in reading order on one image, `columns` to a row."""
    frames = _checked(images)
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    width, height = frames[0].size
    sheet = Image.new("RGB", (columns * width + (columns + 1) * gap,
                              rows * height + (rows + 1) * gap), (200, 200, 200))
    for i, frame in enumerate(frames):
        row, column = divmod(i, columns)
        sheet.paste(frame, (gap + column * (width + gap), gap + row * (height + gap)))
    return sheet


def write_pngs(images: Sequence[Image.Image], folder: str | Path) -> list[Path]:
    """step-000.png (the all-masked start), step-001.png … and contact-sheet.png in `folder`."""
    frames = _checked(images)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    digits = max(3, len(str(len(frames) - 1)))
    for i, frame in enumerate(frames):
        path = target / f"step-{i:0{digits}d}.png"
        frame.save(path, format="PNG", optimize=True)
        written.append(path)
    sheet = target / "contact-sheet.png"
    contact_sheet(frames).save(sheet, format="PNG", optimize=True)
    written.append(sheet)
    return written


def write_animation(images: Sequence[Image.Image], path: str | Path, *,
                    frame_ms: int = FRAME_MS, hold_ms: int = HOLD_MS) -> list[Path]:
    """Write the frames in the kind the path asks for; the files written."""
    kind = kind_of(path)
    if kind == "pngs":
        return write_pngs(images, path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = write_gif if kind == "gif" else write_apng
    return [writer(images, path, frame_ms=frame_ms, hold_ms=hold_ms)]


def rgba_image(width: int, height: int, data: bytes, stride: int) -> Image.Image:
    """A Pillow image from raw RGBA rows (a QImage in Format_RGBA8888 has this layout)."""
    return Image.frombuffer("RGBA", (width, height), data, "raw", "RGBA", stride, 1).copy()
