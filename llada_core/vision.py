"""LLaDA-V's pictures, framework-free (Pillow and numpy): reading an image with one-sentence
errors, the anyres_max_4 tiling and the 384-px tile preprocessing of the reference, how many
tokens an image becomes, and the merge of the tiles' projected features into that token sequence
(`../shared/llada-v-spec.md` §3). The backends run the vision tower and projector in between.

Geometry (spec §3.2-3.3): the image is matched to the best of the grid pinpoints, letterboxed on
black into it and cut into tiles; the tiles follow a base image (the whole picture squashed to one
tile). Each tile gives unit × unit patch features; the base's are kept as they are, the tiles'
form a grid that is unpadded back to the image's aspect, shrunk bilinearly when it holds more than
1.1² × 4 tiles' worth, and closed by the image_newline vector after every row.

One deliberate difference: the picture is converted to RGB before any resize (the reference
resizes P, L and RGBA images in their own mode, with NEAREST for palettes); RGB pictures, the
usual case, are processed exactly as the reference does.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

# The reference tower when config.json names none (google/siglip2-so400m-patch14-384, 26 layers).
SO400M = {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16,
          "num_hidden_layers": 26, "image_size": 384, "patch_size": 14, "layer_norm_eps": 1e-6}
MAX_PIXELS = 40_000_000     # larger pictures are refused (Pillow's bomb warning is at 89 M)
MAX_IMAGES = 4


class ImageError(ValueError):
    """A picture that cannot be used, in one sentence."""


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_hidden_layers: int
    image_size: int
    patch_size: int
    layer_norm_eps: float
    pinpoints: tuple[tuple[int, int], ...]

    @property
    def unit(self) -> int:
        """Patches per tile side (27 for 384-px tiles of 14-px patches: 6 px are never seen)."""
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.unit * self.unit

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VisionConfig":
        given = config.get("vision_config") or {}
        values = {key: given.get(key, default) for key, default in SO400M.items()}
        tile = int(values["image_size"])
        return cls(pinpoints=parse_pinpoints(config.get("image_grid_pinpoints"), tile), **values)


def parse_pinpoints(value: Any, tile: int) -> tuple[tuple[int, int], ...]:
    """The grid pinpoints as (width, height) pairs: config.json's list of [w, h], or the training
    flag's "(1x1),...,(6x6)" string in tiles."""
    if value is None:
        return ((tile, tile),)
    if isinstance(value, str):
        found = re.findall(r"\((\d+)x(\d+)\)", value)
        if not found:
            raise ValueError(f"image_grid_pinpoints {value!r} is not a list of sizes")
        low = [tuple(int(n) for n in pair) for pair in found]
        (w0, h0), (w1, h1) = low[0], low[-1]
        return tuple((i * tile, j * tile) for i in range(w0, w1 + 1) for j in range(h0, h1 + 1))
    pairs = tuple((int(w), int(h)) for w, h in value)
    if not pairs or any(w < tile or h < tile for w, h in pairs):
        raise ValueError("image_grid_pinpoints must be sizes of at least one tile")
    return pairs


# --- reading a picture ---------------------------------------------------------------------------

def load_image(source: str | Path | bytes, name: Optional[str] = None) -> Any:
    """A PIL image in RGB from a path or bytes; ImageError says in one sentence why not, naming
    the file as `name` (default: a path's file name, "the attached file" for bytes)."""
    from PIL import Image, UnidentifiedImageError

    if name is None:
        name = "the attached file" if isinstance(source, bytes) else Path(source).name
    try:
        handle = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not a picture (PNG, JPEG, WebP, GIF, ...)") from None
    except OSError as error:
        raise ImageError(f"{name} cannot be read: {error}") from None
    width, height = handle.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is {width}×{height}, more than {MAX_PIXELS // 1_000_000} "
                         "million pixels; scale it down first")
    try:
        handle.seek(0)  # an animation: its first frame
        handle.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{name} is damaged or cut short ({error})") from None
    if handle.mode in ("RGBA", "LA", "PA") or (handle.mode == "P" and "transparency" in handle.info):
        # transparency over white, as a viewer shows it
        background = Image.new("RGB", handle.size, (255, 255, 255))
        background.paste(handle.convert("RGBA"), mask=handle.convert("RGBA").getchannel("A"))
        return background
    return handle.convert("RGB")


# --- tiling (spec §3.2) --------------------------------------------------------------------------

def select_best_resolution(size: tuple[int, int], candidates: Sequence[tuple[int, int]]
                           ) -> tuple[int, int]:
    """The pinpoint that keeps the most of the picture, then wastes the least (first on a tie)."""
    width, height = size
    best, best_effective, best_waste = None, -1, math.inf
    for w, h in candidates:
        scale = min(w / width, h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = w * h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (w, h), effective, waste
    return best


def resize_and_pad(image: Any, target: tuple[int, int]) -> Any:
    """Scaled to fill one side of `target` exactly, centred on black."""
    from PIL import Image

    width, height = image.size
    tw, th = target
    if tw / width < th / height:
        new_w, new_h = tw, min(math.ceil(height * tw / width), th)
    else:
        new_w, new_h = min(math.ceil(width * th / height), tw), th
    canvas = Image.new("RGB", target, (0, 0, 0))
    canvas.paste(image.resize((new_w, new_h)), ((tw - new_w) // 2, (th - new_h) // 2))
    return canvas


def tile_pixels(image: Any, tile: int) -> np.ndarray:
    """One tile as the tower takes it: bicubic to tile × tile, /255, (x − 0.5) / 0.5, CHW float32."""
    from PIL import Image

    resized = image.resize((tile, tile), Image.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float64) / 255.0
    return ((pixels - 0.5) / 0.5).transpose(2, 0, 1).astype(np.float32)


@dataclass(frozen=True)
class ImageInput:
    """A picture ready for the tower: the base tile and the grid's tiles, row by row."""

    pixels: np.ndarray          # float32 [1 + cols·rows, 3, tile, tile]
    size: tuple[int, int]       # the picture's (width, height)
    grid: tuple[int, int]       # tiles (cols, rows)
    tokens: int                 # how many positions its features take in the prompt


def tile_grid(size: tuple[int, int], vision: VisionConfig) -> tuple[int, int]:
    """(columns, rows) of tiles a picture of `size` is cut into (its best pinpoint)."""
    best = select_best_resolution(size, vision.pinpoints)
    return best[0] // vision.image_size, best[1] // vision.image_size


def picture_tokens(size: tuple[int, int], vision: VisionConfig) -> int:
    """How many prompt positions a picture of `size` takes, without preparing its pixels."""
    return image_tokens(size, tile_grid(size, vision), vision.unit)


def prepare_image(image: Any, vision: VisionConfig) -> ImageInput:
    tile = vision.image_size
    padded = resize_and_pad(image, select_best_resolution(image.size, vision.pinpoints))
    cols, rows = tile_grid(image.size, vision)
    tiles = [padded.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile))
             for r in range(rows) for c in range(cols)]
    base = image.resize((tile, tile))
    pixels = np.stack([tile_pixels(t, tile) for t in [base, *tiles]])
    return ImageInput(pixels, image.size, (cols, rows),
                      image_tokens(image.size, (cols, rows), vision.unit))


# --- the features' order (spec §3.3) -------------------------------------------------------------

def grid_plan(size: tuple[int, int], grid: tuple[int, int], unit: int
              ) -> tuple[slice, slice, Optional[tuple[int, int]]]:
    """(rows kept, columns kept, shrunk size or None) of the tiles' unit-cell grid."""
    width, height = size
    hc, wc = grid[1] * unit, grid[0] * unit
    rows, cols = slice(0, hc), slice(0, wc)
    if width / height > wc / hc:
        new_h = int(height * (wc / width))
        pad = (hc - new_h) // 2
        rows = slice(pad, hc - pad)
    else:
        new_w = int(width * (hc / height))
        pad = (wc - new_w) // 2
        cols = slice(pad, wc - pad)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    times = math.sqrt(h * w / (4 * unit * unit))
    shrunk = (int(h // times), int(w // times)) if times > 1.1 else None
    return rows, cols, shrunk


def image_tokens(size: tuple[int, int], grid: tuple[int, int], unit: int) -> int:
    rows, cols, shrunk = grid_plan(size, grid, unit)
    h, w = shrunk or (rows.stop - rows.start, cols.stop - cols.start)
    return unit * unit + h * (w + 1)


def bilinear(features: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """[h, w, D] resized bilinearly, align_corners=False, no antialiasing (PyTorch's rule)."""
    h, w = features.shape[:2]

    def axis(out: int, size: int):
        source = np.maximum((np.arange(out) + 0.5) * size / out - 0.5, 0.0)
        low = np.minimum(np.floor(source).astype(int), size - 1)
        high = np.minimum(low + 1, size - 1)
        return low, high, source - low

    r0, r1, fr = axis(out_h, h)
    c0, c1, fc = axis(out_w, w)
    top = features[r0][:, c0] * (1 - fc)[None, :, None] + features[r0][:, c1] * fc[None, :, None]
    bottom = features[r1][:, c0] * (1 - fc)[None, :, None] + features[r1][:, c1] * fc[None, :, None]
    return top * (1 - fr)[:, None, None] + bottom * fr[:, None, None]


def merge_features(features: np.ndarray, newline: np.ndarray, image: ImageInput, unit: int
                   ) -> np.ndarray:
    """[1 + tiles, unit², D] projected features -> [image.tokens, D] in prompt order."""
    cols, rows = image.grid
    dim = features.shape[-1]
    base = features[0]
    tiles = features[1:].reshape(rows, cols, unit, unit, dim)
    grid = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * unit, cols * unit, dim)
    kept_rows, kept_cols, shrunk = grid_plan(image.size, image.grid, unit)
    grid = grid[kept_rows, kept_cols]
    if shrunk is not None:
        grid = bilinear(grid, *shrunk)
    h, w = grid.shape[:2]
    closed = np.concatenate([grid, np.broadcast_to(newline, (h, 1, dim))], axis=1)
    merged = np.concatenate([base, closed.reshape(h * (w + 1), dim)])
    assert len(merged) == image.tokens
    return merged


@dataclass(frozen=True)
class ImageSpan:
    """Where an image's features go in a prompt: `tokens` positions from `start`."""

    start: int
    image: ImageInput


NO_VISION = ("this model has no vision, so it cannot look at a picture; choose LLaDA-V to ask "
             "about one")


def with_images(model: Any, frames: Any, spans: list) -> Any:
    """A vision model's frames of one answer with its pictures (ImageSpans) in place, cleared
    when the answer ends or is closed; a model without vision (no `images`) is one sentence."""
    if not callable(getattr(model, "images", None)):
        raise ValueError(NO_VISION)
    return _pictured(model, frames, spans)


def _pictured(model: Any, frames: Any, spans: list) -> Any:
    model.images(spans)
    try:
        yield from frames
    finally:
        model.images([])

