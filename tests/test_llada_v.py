"""LLaDA-V: the picture's geometry against the reference's token counts, a float64 NumPy tower,
projector and merge written here from `../shared/llada-v-spec.md` §3-5 against both backends,
answers equal across backends with a picture, the picture changing what the model predicts,
one-sentence errors for bad pictures, and `llada generate --image` / `llada chat` `/image`."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llada_core.vision import (
    ImageError, ImageSpan, VisionConfig, image_tokens, load_image, picture_tokens, prepare_image,
    select_best_resolution,
)
from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(gen_length=16, block_length=8, steps=16, mode="exact")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_tiny_llada_v_checkpoint(tmp_path_factory.mktemp("llada_v"))


@pytest.fixture(scope="module")
def picture_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    files = {"photo": folder / "photo.png", "tall": folder / "tall.jpg"}
    Image.fromarray((rng.random((50, 70, 3)) * 255).astype("uint8")).save(files["photo"])
    Image.fromarray((rng.random((95, 40, 3)) * 255).astype("uint8")).save(files["tall"])
    return files


# --- geometry: the reference's counts (spec §3.3, checked there against the authors' code) -------

REAL = VisionConfig.from_config({"image_grid_pinpoints": "(1x1),...,(6x6)"})
COUNTS = {(384, 384): 1485, (320, 240): 1317, (99, 55): 1149, (640, 480): 2929,
          (480, 640): 2943, (800, 600): 3627, (1280, 720): 3649, (1920, 1080): 3649,
          (853, 1280): 3633, (2304, 2304): 3699, (1375, 375): 3402, (820, 369): 2349}


@pytest.mark.parametrize("size", list(COUNTS))
def test_image_tokens_equal_the_references(size):
    best = select_best_resolution(size, REAL.pinpoints)
    grid = (best[0] // REAL.image_size, best[1] // REAL.image_size)
    assert image_tokens(size, grid, REAL.unit) == COUNTS[size]
    assert picture_tokens(size, REAL) == COUNTS[size]  # the context line's count


def test_the_pinpoints_string_and_list_agree():
    assert len(REAL.pinpoints) == 36 and REAL.pinpoints[:2] == ((384, 384), (384, 768))
    listed = VisionConfig.from_config({"image_grid_pinpoints": [list(p) for p in REAL.pinpoints]})
    assert listed.pinpoints == REAL.pinpoints and REAL.unit == 27


# --- the float64 reference of the tower, projector and merge (spec §3.3, §4, §5) --------------------

def reference_features(folder: Path, pixels: np.ndarray, size, grid) -> np.ndarray:
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    w = {}
    for path in sorted(folder.glob("*.safetensors")):
        w.update({k: v.astype(np.float64) for k, v in load_file(str(path)).items()})
    v = config["vision_config"]
    T = "model.vision_tower.vision_tower.vision_model."
    p, d, heads = v["patch_size"], v["hidden_size"], v["num_attention_heads"]
    unit = v["image_size"] // p
    x = pixels.astype(np.float64)[:, :, :unit * p, :unit * p]  # valid conv: the edge unseen
    n = x.shape[0]
    patches = x.reshape(n, 3, unit, p, unit, p).transpose(0, 2, 4, 1, 3, 5).reshape(n, unit * unit, -1)
    kernel = w[T + "embeddings.patch_embedding.weight"].reshape(d, -1)
    h = patches @ kernel.T + w[T + "embeddings.patch_embedding.bias"]
    h = h + w[T + "embeddings.position_embedding.weight"]

    def layer_norm(t, at):
        mean, var = t.mean(-1, keepdims=True), t.var(-1, keepdims=True)
        return (t - mean) / np.sqrt(var + v["layer_norm_eps"]) * w[at + ".weight"] + w[at + ".bias"]

    def linear(t, at):
        return t @ w[at + ".weight"].T + w[at + ".bias"]

    for m in range(v["num_hidden_layers"]):
        L = f"{T}encoder.layers.{m}."
        a = layer_norm(h, L + "layer_norm1")
        hd = d // heads

        def split(t):
            return t.reshape(n, -1, heads, hd).transpose(0, 2, 1, 3)

        q, k, vv = (split(linear(a, L + f"self_attn.{x}_proj")) for x in "qkv")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        out = ((scores / scores.sum(-1, keepdims=True)) @ vv).transpose(0, 2, 1, 3).reshape(n, -1, d)
        h = h + linear(out, L + "self_attn.out_proj")
        b = linear(layer_norm(h, L + "layer_norm2"), L + "mlp.fc1")
        b = 0.5 * b * (1 + np.tanh(math.sqrt(2 / math.pi) * (b + 0.044715 * b ** 3)))
        h = h + linear(b, L + "mlp.fc2")
    erf = np.vectorize(math.erf)
    g = linear(h, "model.mm_projector.0")
    g = 0.5 * g * (1 + erf(g / math.sqrt(2)))
    feats = linear(g, "model.mm_projector.2")                         # [1 + tiles, unit², D]
    # merge: base first; then the tiles' grid, unpadded, shrunk if large, a newline per row
    cols, rows = grid
    D = feats.shape[-1]
    full = feats[1:].reshape(rows, cols, unit, unit, D).transpose(0, 2, 1, 3, 4).reshape(
        rows * unit, cols * unit, D)
    W, H = size
    hc, wc = full.shape[:2]
    if W / H > wc / hc:
        pad = (hc - int(H * (wc / W))) // 2
        full = full[pad:hc - pad]
    else:
        pad = (wc - int(W * (hc / H))) // 2
        full = full[:, pad:wc - pad]
    times = math.sqrt(full.shape[0] * full.shape[1] / (4 * unit * unit))
    if times > 1.1:  # shrink bilinearly, align_corners=False, as torch's interpolate
        out_h, out_w = int(full.shape[0] // times), int(full.shape[1] // times)
        shrunk = np.zeros((out_h, out_w, D))
        for i in range(out_h):
            for j in range(out_w):
                y = max((i + 0.5) * full.shape[0] / out_h - 0.5, 0.0)
                x = max((j + 0.5) * full.shape[1] / out_w - 0.5, 0.0)
                y0, x0 = min(int(y), full.shape[0] - 1), min(int(x), full.shape[1] - 1)
                y1, x1 = min(y0 + 1, full.shape[0] - 1), min(x0 + 1, full.shape[1] - 1)
                a, b = y - y0, x - x0
                shrunk[i, j] = ((1 - a) * ((1 - b) * full[y0, x0] + b * full[y0, x1])
                                + a * ((1 - b) * full[y1, x0] + b * full[y1, x1]))
        full = shrunk
    newline = w["model.image_newline"]
    rows_out = [np.concatenate([row, newline[None]]) for row in full]
    return np.concatenate([feats[0], *rows_out])


@pytest.mark.parametrize("backend", ["torch", "mlx"])
@pytest.mark.parametrize("name", ["photo", "tall"])
def test_the_picture_features_match_the_float64_reference(backend, name, checkpoint,
                                                         picture_files):
    pytest.importorskip("torch" if backend == "torch" else "mlx.core")
    module = __import__(f"llada_{backend}")
    model, _ = module.load(checkpoint, **({"device": "cpu"} if backend == "torch" else {}))
    image = prepare_image(load_image(picture_files[name]), model.vision_config)
    got = np.asarray(model.encode_image(image)).astype(np.float64)
    expected = reference_features(checkpoint, image.pixels, image.size, image.grid)
    assert got.shape == expected.shape == (image.tokens, model.args.d_model)
    diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    print(f"\n{backend} {name}: max |diff| {diff:.3g} of {scale:.3g}")
    assert diff <= 1e-4 * scale


# --- answers ---------------------------------------------------------------------------------------

def ask(module, model, tokenizer, path, question="What do you see?"):
    from llada_core.chat import encode_image_chat

    image = prepare_image(load_image(path), model.vision_config)
    ids, start = encode_image_chat(tokenizer, [{"role": "user", "content": question}],
                                   image.tokens, model.placeholder)
    frames = list(module.generate_steps(model, ids, images=[ImageSpan(start, image)], **SETTINGS))
    return ids, start, image, [int(t) for t in frames[-1].tokens]


def test_answers_with_a_picture_are_equal_across_backends(checkpoint, picture_files):
    pytest.importorskip("torch")
    pytest.importorskip("mlx.core")
    import llada_mlx
    import llada_torch

    tm, tokenizer = llada_torch.load(checkpoint, device="cpu")
    mm, _ = llada_mlx.load(checkpoint)
    for name in picture_files:
        ids, start, image, ours = ask(llada_torch, tm, tokenizer, picture_files[name])
        assert ids[start:start + image.tokens] == [tm.placeholder] * image.tokens
        assert ask(llada_mlx, mm, tokenizer, picture_files[name])[3] == ours


def test_the_picture_changes_the_predictions(checkpoint, picture_files):
    """The features replace the placeholder positions' embeddings: another picture, other logits
    at the answer's positions; guidance's unconditional copy (the prompt masked) sees none."""
    torch = pytest.importorskip("torch")
    import llada_torch
    from llada_core.chat import encode_image_chat

    model, tokenizer = llada_torch.load(checkpoint, device="cpu")
    logits = []
    for name in ("photo", "tall", "photo"):
        image = prepare_image(load_image(picture_files[name]), model.vision_config)
        ids, start = encode_image_chat(tokenizer, [{"role": "user", "content": "What is it?"}],
                                       image.tokens, model.placeholder)
        canvas = torch.tensor([ids + [model.args.mask_token_id] * 8])
        model.images([ImageSpan(start, image)])
        logits.append(model(canvas)[0, -8:])
        masked = canvas.clone()
        masked[0, :len(ids)] = model.args.mask_token_id
        unconditional = model(masked)[0, -8:]
        model.images([])
        assert torch.equal(unconditional, model(masked)[0, -8:])  # no picture where masked
    assert not torch.allclose(logits[0], logits[1], atol=1e-3)
    assert torch.equal(logits[0], logits[2])


def test_the_picture_changes_the_answer(tmp_path):
    """Two pictures, one question: different answers, the same on both backends. (A random tiny
    model mostly answers one token whatever it sees; with seed 2 a black picture tips some of its
    positions, which is all a model that knows nothing can show.)"""
    from llada_train.tiny_llada_v import TinyLLaDAVSpec

    checkpoint = make_tiny_llada_v_checkpoint(tmp_path / "seed2", TinyLLaDAVSpec(seed=2))
    pictures = {}
    for name, value in (("black", 0), ("white", 255)):
        pictures[name] = tmp_path / f"{name}.png"
        Image.fromarray(np.full((40, 60, 3), value, np.uint8)).save(pictures[name])
    answers = {}
    for backend in ("torch", "mlx"):
        try:
            module = __import__(f"llada_{backend}")
        except ImportError:
            continue
        model, tokenizer = module.load(checkpoint, **({"device": "cpu"} if backend == "torch"
                                                      else {}))
        answers[backend] = [ask(module, model, tokenizer, pictures[name])[3]
                            for name in ("black", "white")]
    assert answers, "no backend is installed"
    for black, white in answers.values():
        assert black != white
    assert len({repr(a) for a in answers.values()}) == 1, answers


# --- bad pictures and models without vision -------------------------------------------------------

def test_bad_pictures_are_one_sentence(tmp_path):
    (tmp_path / "text.png").write_text("not a picture")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(good, "PNG")
    (tmp_path / "cut.png").write_bytes(good.getvalue()[:-40])
    cases = {tmp_path / "text.png": "is not a picture", tmp_path / "missing.png": "does not exist",
             tmp_path / "cut.png": "damaged or cut short"}
    for path, words in cases.items():
        with pytest.raises(ImageError, match=words) as caught:
            load_image(path)
        assert "\n" not in str(caught.value)


def test_odd_pictures_become_rgb(tmp_path):
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    for name in ("cmyk.jpg", "clear.png", "moving.gif"):
        image = load_image(tmp_path / name)
        assert image.mode == "RGB"
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)  # over white


def llada(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1"))


def test_llada_generate_and_chat_take_a_picture(checkpoint, picture_files, tiny_checkpoint):
    flags = ["--model", str(checkpoint), "--gen-length", "16", "--block-length", "8", "--steps",
             "16", "--mode", "exact"]
    result = llada("generate", *flags, "--image", str(picture_files["photo"]), "--prompt",
                   "What do you see?", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["answer_ids"]) == 16 and len(data["prompt_ids"]) > 19
    bad = llada("generate", *flags, "--image", str(checkpoint / "config.json"), "--prompt", "x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a picture" in bad.stderr
    blind = llada("generate", "--model", str(tiny_checkpoint), "--image",
                  str(picture_files["photo"]), "--prompt", "x")
    assert blind.returncode == 2 and "has no vision" in blind.stderr
    chat = llada("chat", *flags, stdin=f"/image {picture_files['tall']}\nWhat is it?\n"
                                       "And then?\n/image nowhere.png\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "(picture attached: 40×95" in chat.stdout and chat.stdout.count("LLaDA: ") == 2
    assert "nowhere.png does not exist" in chat.stdout


def test_the_server_takes_a_picture_as_a_data_url(checkpoint, picture_files, tiny_checkpoint):
    pytest.importorskip("starlette")
    import base64

    from starlette.testclient import TestClient

    from app.server import make_server
    from app.session.model import load_model

    def served(folder):
        return make_server(lambda: load_model(str(folder), None, dtype="float32"), model_id="m",
                           defaults={"gen_length": 16, "block_length": 8, "steps": 16,
                                     "mode": "exact"})

    encoded = base64.b64encode(picture_files["photo"].read_bytes()).decode()

    def body(url, text="What do you see?"):
        return {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}]}

    server = served(checkpoint)
    try:
        with TestClient(server.app) as client:
            ok = client.post("/v1/chat/completions", json=body(f"data:image/png;base64,{encoded}"))
            assert ok.status_code == 200, ok.text
            assert ok.json()["usage"]["prompt_tokens"] > 19  # the picture's positions counted
            for url, words in (("https://example.com/cat.png", "data: URL"),
                               ("data:image/png;base64,@@@", "damaged"),
                               ("data:image/png;base64," + base64.b64encode(b"hi").decode(),
                                "the attached file is not a picture")):
                refused = client.post("/v1/chat/completions", json=body(url))
                assert refused.status_code == 400 and words in refused.json()["error"]["message"]
    finally:
        server.worker.stop()
    blind = served(tiny_checkpoint)
    try:
        with TestClient(blind.app) as client:
            refused = client.post("/v1/chat/completions", json=body(f"data:image/png;base64,{encoded}"))
            assert refused.status_code == 400 and "no vision" in refused.json()["error"]["message"]
    finally:
        blind.worker.stop()


def test_the_fit_check_reads_a_llada_v_config(checkpoint):
    from app.models.fit import Dimensions, model_needs

    config = json.loads((checkpoint / "config.json").read_text())
    dims = Dimensions.of(config)
    assert (dims.layers, dims.heads, dims.width, dims.ffn_width) == (
        config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"],
        config["intermediate_size"])
    assert model_needs(checkpoint).weights_bytes > 0


def test_make_tiny_writes_a_llada_v_checkpoint(tmp_path, picture_files):
    """`llada make-tiny --arch llada-v DIR`: the official layout (config, tensor names and the
    preprocessing files of make_tiny_llada_v_checkpoint), and it answers about a picture."""
    out = tmp_path / "tiny-v"
    made = llada("make-tiny", "--arch", "llada-v", str(out))
    assert made.returncode == 0 and "LLaDA-V" in made.stdout, made.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llava_llada"
    expected = make_tiny_llada_v_checkpoint(tmp_path / "direct")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in expected.iterdir())
    answer = llada("generate", "--model", str(out), "--image", str(picture_files["photo"]),
                   "--prompt", "What is it?", "--gen-length", "8", "--block-length", "8",
                   "--steps", "8")
    assert answer.returncode == 0, answer.stderr


def test_conversion_to_mlx_8_and_4_bit(tmp_path, picture_files):
    """llada convert of LLaDA-V: the language model quantized, the vision tower and projector
    kept float (written in the conversion's dtype); loaded back it sees the picture as the float
    model does (8-bit logits within 0.99 cosine) and 4-bit still answers; torch says it cannot."""
    mx = pytest.importorskip("mlx.core")
    import llada_mlx
    from llada_core.chat import encode_image_chat

    source = make_tiny_llada_v_checkpoint(tmp_path / "src")
    reference, tokenizer = llada_mlx.load(source, dtype="float32")
    image = prepare_image(load_image(picture_files["photo"]), reference.vision_config)
    ids, start = encode_image_chat(tokenizer, [{"role": "user", "content": "What is it?"}],
                                   image.tokens, reference.placeholder)
    canvas = mx.array([ids + [reference.args.mask_token_id] * 8])
    reference.images([ImageSpan(start, image)])
    expected = np.array(reference(canvas)).ravel()
    for bits, floor in ((8, 0.99), (4, 0.8)):
        out = llada_mlx.convert(source, tmp_path / f"{bits}bit", bits=bits, group_size=32)
        names = [n for p in out.glob("*.safetensors") for n in mx.load(str(p))]
        assert any(n.endswith("q_proj.scales") for n in names)
        assert not any(n.startswith(("vision.", "projector.")) and n.endswith(".scales")
                       for n in names)
        model, _ = llada_mlx.load(out, dtype="float32")
        assert type(model.model.layers[0].q_proj).__name__ == "QuantizedLinear"
        model.images([ImageSpan(start, image)])
        got = np.array(model(canvas)).ravel()
        model.images([])
        cosine = float(got @ expected / np.linalg.norm(got) / np.linalg.norm(expected))
        print(f"\n{bits}-bit: logit cosine {cosine:.4f} to float")
        assert cosine > floor
        frames = list(llada_mlx.generate_steps(model, ids, images=[ImageSpan(start, image)],
                                               **SETTINGS))
        assert frames[-1].done
    torch_run = llada("generate", "--model", str(out), "--backend", "torch", "--image",
                      str(picture_files["photo"]), "--prompt", "x")
    assert torch_run.returncode != 0 and torch_run.stderr.strip().count("\n") == 0
