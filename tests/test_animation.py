"""Animation export (issue 15): Pillow assembly, the canvas painter offscreen, and the commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

from app.history import animation
from app.history import trace as trace_mod
from app.cli import main
from app.models.defaults import sampler_defaults
from app.history.store import Store
from app.history.trace import Trace
from backend_choice import BACKEND

DEMO = Path(__file__).resolve().parents[1] / "app" / "resources" / "llada-demo"


def solid(colour: tuple[int, int, int], size=(40, 20)) -> Image.Image:
    return Image.new("RGB", size, colour)


def little_trace() -> Trace:
    """12 positions over 4 steps, 2 blocks of 6: three tokens committed per step."""
    n, steps = 12, 4
    committed_at = [(i * 5) % steps for i in range(n)]
    return Trace(mask_id=0, tokens=list(range(1, n + 1)), committed_at=committed_at,
                 confidence=[0.2 + 0.06 * i for i in range(n)], blocks=[0, 0, 1, 1],
                 nfe=[1, 2, 3, 4], block_length=6, pieces=[f" w{i}" for i in range(n)])


def rgb_at(image: Image.Image, cell) -> tuple[int, int, int]:
    """A cell's background: at its horizontal centre, just below its top edge (above the text)."""
    return image.convert("RGB").getpixel((int(cell.rect.center().x()), int(cell.rect.top() + 1.5)))


def near(a, b, tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


# --- Qt-free assembly ---------------------------------------------------------------------------
def test_kind_follows_the_path(tmp_path):
    assert animation.kind_of("a.gif") == "gif" and animation.kind_of("a.GIF") == "gif"
    assert animation.kind_of("a.png") == "apng" and animation.kind_of("a.apng") == "apng"
    assert animation.kind_of("steps/") == "pngs" and animation.kind_of(tmp_path) == "pngs"
    assert animation.kind_of(tmp_path / "frames") == "pngs"
    with pytest.raises(ValueError, match="not .mp4"):
        animation.kind_of("a.mp4")
    assert animation.durations(3) == [80, 80, 1500] and animation.durations(0) == []


def test_gif_apng_and_pngs_read_back(tmp_path):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (240, 240, 240)]
    frames = [solid(c) for c in colours]
    gif = animation.write_animation(frames, tmp_path / "a.gif")[0]
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 4 and image.size == (40, 20)
        seen = []
        for k in range(image.n_frames):
            image.seek(k)
            seen.append((image.convert("RGB").getpixel((5, 5)), image.info["duration"]))
    assert [d for _, d in seen] == [80, 80, 80, 1500]      # the last frame is held
    assert all(near(c, want, 4) for (c, _), want in zip(seen, colours))
    apng = animation.write_animation(frames, tmp_path / "a.png")[0]
    with Image.open(apng) as image:
        assert image.format == "PNG" and image.is_animated and image.n_frames == 4
        image.seek(3)
        assert image.convert("RGB").getpixel((5, 5)) == colours[3]
    written = animation.write_animation(frames, tmp_path / "steps")
    assert [p.name for p in written] == [f"step-00{k}.png" for k in range(4)] + ["contact-sheet.png"]
    with Image.open(written[-1]) as sheet:
        assert sheet.size == (4 * 40 + 5 * animation.SHEET_GAP, 20 + 2 * animation.SHEET_GAP)
    with pytest.raises(ValueError, match="differ in size"):
        animation.write_gif([solid((0, 0, 0)), solid((0, 0, 0), (10, 10))], tmp_path / "b.gif")
    with pytest.raises(ValueError, match="no frame"):
        animation.write_apng([], tmp_path / "c.png")


# --- drawn by the canvas's painter --------------------------------------------------------------
def test_frames_are_drawn_by_the_canvas_painter(qapp, tmp_path):
    from app.ui.animation_render import FrameRenderer, export_trace, trace_frames
    from app.ui.canvas import EARLIER, MASKED, NEW, confidence_colour

    trace = little_trace()
    path = export_trace(trace, tmp_path / "a.gif")[0]
    renderer = FrameRenderer(trace_frames(trace), "state")
    with Image.open(path) as gif:
        assert gif.n_frames == trace.num_steps + 1 and gif.size == renderer.size
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(gif.convert("RGB"))
    # the start is all masks; the last frame has none left
    first = renderer.cells(0)
    assert len(first) == trace.gen_length
    assert all(near(rgb_at(frames[0], c), MASKED.getRgb()[:3]) for c in first)
    # frame 2 (after step 1, 0-based): position 1 is new (committed at step 1), position 2 masked
    cells = {c.position: c for c in renderer.cells(2)}
    assert trace.committed_at[1] == 1 and trace.committed_at[2] == 2
    masked, new = rgb_at(frames[2], cells[2]), rgb_at(frames[2], cells[1])
    assert near(masked, MASKED.getRgb()[:3]) and near(new, NEW.getRgb()[:3])
    assert not near(masked, new, 60)
    last = renderer.cells(trace.num_steps)
    assert not any(near(rgb_at(frames[-1], c), MASKED.getRgb()[:3]) for c in last)

    # the confidence mode paints the same cells in its own colours
    apng = export_trace(trace, tmp_path / "c.png", "confidence")[0]
    with Image.open(apng) as image:
        assert image.is_animated and image.n_frames == trace.num_steps + 1
        image.seek(2)
        step2 = image.convert("RGB")
    assert rgb_at(step2, cells[1]) == confidence_colour(trace.confidence[1]).getRgb()[:3]
    assert rgb_at(step2, cells[0]) == EARLIER.getRgb()[:3]   # committed at step 0


def test_block_boundaries_are_drawn(qapp):
    from app.ui.animation_render import FrameRenderer, trace_frames

    trace = little_trace()
    plain = FrameRenderer(trace_frames(trace)).pil(trace.num_steps)
    boundary = {c.position: c for c in FrameRenderer(trace_frames(trace)).cells(trace.num_steps)}[6]
    x = int(boundary.rect.left() - 0.5)
    column = [plain.convert("RGB").getpixel((x, y))
              for y in range(int(boundary.rect.top()), int(boundary.rect.bottom()))]
    assert any(pixel != (255, 255, 255) for pixel in column)    # the faint dashed line


# --- commands -----------------------------------------------------------------------------------
def test_generate_writes_an_animation_of_the_demo(qapp, tmp_path, capsys):
    out = tmp_path / "demo.gif"
    assert main(["generate", "--backend", BACKEND, "--model", str(DEMO), "--mode", "exact",
                 "--prompt", "What is 47 + 58?", "--animation", str(out)]) == 0
    assert capsys.readouterr().out.strip() == "105"
    steps = sampler_defaults(str(DEMO))["steps"]
    with Image.open(out) as gif:
        assert gif.n_frames == steps + 1           # the start, then one per step
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == animation.HOLD_MS
    folder = tmp_path / "steps"
    assert main(["generate", "--backend", BACKEND, "--model", str(DEMO), "--mode", "exact",
                 "--prompt", "What is 47 + 58?", "--animation", f"{folder}/"]) == 0
    assert len(list(folder.glob("step-*.png"))) == steps + 1
    assert (folder / "contact-sheet.png").is_file()
    # the GIF's frames are the PNGs' frames, up to the GIF's palette
    with Image.open(out) as gif, Image.open(folder / "step-004.png") as png:
        gif.seek(4)
        difference = ImageChops.difference(gif.convert("RGB"), png.convert("RGB"))
        assert max(band[1] for band in difference.getextrema()) < 40


def test_generate_refuses_a_file_type_before_loading(capsys):
    assert main(["generate", "--model", "/nonexistent", "--prompt", "x",
                 "--animation", "out.mp4"]) == 2
    assert "not .mp4" in capsys.readouterr().err


def test_export_animation_of_a_stored_answer(qapp, tmp_path, capsys):
    store = Store.in_folder(tmp_path / "data")
    conversation = store.create_conversation("t")
    store.add_message(conversation, "user", "hi")
    first = store.add_message(conversation, "assistant", "a", trace=trace_mod.encode(little_trace()))
    store.add_message(conversation, "user", "more")
    store.add_message(conversation, "assistant", "imported, no trace")
    store.close()
    out = tmp_path / "answer.png"
    assert main(["export-animation", "--data-dir", str(tmp_path / "data"), "--message", str(first),
                 "--colour-mode", "reveal", str(out)]) == 0
    with Image.open(out) as image:
        assert image.is_animated and image.n_frames == 4 + 1
    assert "4 passes" in capsys.readouterr().out
    # without --message: the latest answer that has a trace
    assert main(["export-animation", "--data-dir", str(tmp_path / "data"),
                 str(tmp_path / "latest.gif")]) == 0
    assert main(["export-animation", "--data-dir", str(tmp_path / "data"), "--message", "999",
                 str(tmp_path / "x.gif")]) == 2
    assert "no answer with message id 999" in capsys.readouterr().err
