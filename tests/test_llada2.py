"""LLaDA 2.x on both backends: a float64 NumPy forward written here from `../shared/llada2-spec.md`
B3-B4 against each backend in float32, the official generate() of LLaDA2.0 and LLaDA2.1
(B5-B6) written here in NumPy against both backends' answers, editing visible in the frames, and
the checkpoint rules (ids from the tokenizer, 2.0 vs 2.1, block-causal attention).

Each backend's tests skip where it is not installed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

ROOT = Path(__file__).resolve().parents[1]
LOGIT_TOLERANCE = 1e-4  # float32 against float64: max |diff| within this share of max |logit|
BLOCK = 8


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return {version: make_tiny_llada2_checkpoint(tmp_path_factory.mktemp(f"llada{version}"),
                                                 TinyLLaDA2Spec(version=version))
            for version in ("2.0", "2.1")}


@pytest.fixture(scope="module")
def torch_models(checkpoints):
    pytest.importorskip("torch")
    from llada_torch import load

    return {v: load(path, device="cpu") for v, path in checkpoints.items()}


@pytest.fixture(scope="module")
def mlx_models(checkpoints):
    pytest.importorskip("mlx.core")
    from llada_mlx import load

    return {v: load(path) for v, path in checkpoints.items()}


# --- the float64 NumPy reference ------------------------------------------------------------------

def read(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update({k: v.astype(np.float64) for k, v in load_file(str(path)).items()})
    return json.loads((folder / "config.json").read_text()), tensors


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(t, rotary, theta):
    """NeoX half-split RoPE on dims 0..rotary-1 of t (heads, L, hd), absolute positions."""
    positions = np.arange(t.shape[1], dtype=np.float64)
    inv = 1.0 / theta ** (np.arange(0, rotary, 2, dtype=np.float64) / rotary)
    angles = np.concatenate([np.outer(positions, inv)] * 2, axis=-1)
    part, rest = t[..., :rotary], t[..., rotary:]
    half = rotary // 2
    turned = np.concatenate([-part[..., half:], part[..., :half]], axis=-1)
    return np.concatenate([part * np.cos(angles) + turned * np.sin(angles), rest], axis=-1)


def silu_glu(x, w, at):
    gate, up = x @ w[at + "gate_proj.weight"].T, x @ w[at + "up_proj.weight"].T
    return (gate / (1 + np.exp(-gate)) * up) @ w[at + "down_proj.weight"].T


def reference_forward(folder: Path, ids: list[int], block: int) -> np.ndarray:
    """Logits (L, vocab) of one canvas prefix under block-causal attention, float64."""
    c, w = read(folder)
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, rotary = c["rms_norm_eps"], int(hd * c["partial_rotary_factor"])
    L = len(ids)
    blocks = np.arange(L) // block
    mask = np.where(blocks[None, :] <= blocks[:, None], 0.0, -np.inf)
    h = w["model.word_embeddings.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, w[p + "input_layernorm.weight"], eps)
        qkv = (x @ w[p + "attention.query_key_value.weight"].T).reshape(L, H + 2 * KV, hd)
        q, k, v = qkv[:, :H], qkv[:, H:H + KV], qkv[:, H + KV:]
        q = rms(q, w[p + "attention.query_layernorm.weight"], eps)
        k = rms(k, w[p + "attention.key_layernorm.weight"], eps)
        q = rope(q.transpose(1, 0, 2), rotary, c["rope_theta"])
        k = np.repeat(rope(k.transpose(1, 0, 2), rotary, c["rope_theta"]), H // KV, axis=0)
        v = np.repeat(v.transpose(1, 0, 2), H // KV, axis=0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        out = (scores / scores.sum(-1, keepdims=True)) @ v
        h = h + out.transpose(1, 0, 2).reshape(L, H * hd) @ w[p + "attention.dense.weight"].T
        x = rms(h, w[p + "post_attention_layernorm.weight"], eps)
        if i < c["first_k_dense_replace"]:
            h = h + silu_glu(x, w, p + "mlp.")
            continue
        E, G, TG, K = c["num_experts"], c["n_group"], c["topk_group"], c["num_experts_per_tok"]
        s = 1 / (1 + np.exp(-(x @ w[p + "mlp.gate.weight"].T)))
        biased = s + w[p + "mlp.gate.expert_bias"]
        moe = np.zeros_like(x)
        for t in range(L):
            groups = biased[t].reshape(G, E // G)
            group_score = np.sort(groups, axis=-1)[:, -2:].sum(-1)
            kept = np.argsort(-group_score, kind="stable")[:TG]
            allowed = np.full(E, -np.inf)
            for g in kept:
                allowed[g * (E // G):(g + 1) * (E // G)] = 0.0
            chosen = np.argsort(-(biased[t] + allowed), kind="stable")[:K]
            weights = s[t, chosen] / (s[t, chosen].sum() + 1e-20) * c["routed_scaling_factor"]
            for e, weight in zip(chosen, weights):
                moe[t] += weight * silu_glu(x[t], w, f"{p}mlp.experts.{e}.")
        h = h + moe + silu_glu(x, w, p + "mlp.shared_experts.")
    return rms(h, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def reference_generate(folder: Path, prompt: list[int], gen: int, block: int, steps: int,
                       threshold: float, mask: int, eos: int, editing: float | None = None,
                       max_post: int = 16) -> list[int]:
    """The official generate() (spec B5; B6 with `editing`), temperature 0, no cache: the answer's
    gen_length tokens (an EOS stop leaves the rest masked, shown as EOS)."""
    P = len(prompt)
    blocks = math.ceil((P + gen) / block)
    x = np.full(blocks * block, mask, dtype=np.int64)
    x[:P] = prompt
    per_step = [block // steps + (1 if s < block % steps else 0) for s in range(steps)]
    for b in range(P // block, blocks):
        start, end = b * block, (b + 1) * block

        def predict():
            logits = reference_forward(folder, list(x[:end]), block)[start:end]
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            x0 = logits.argmax(-1)
            return x0, probs[np.arange(block), x0]

        if editing is None:
            for count in per_step:
                active = x[start:end] == mask
                if not active.any():
                    break
                x0, p = predict()
                conf = np.where(active, p, -np.inf)
                count = min(count, int(active.sum()))
                above = conf > threshold
                pick = np.flatnonzero(above) if above.sum() >= count and above.any() else \
                    np.argsort(-conf, kind="stable")[:count]
                x[start + pick] = x0[pick]
            if (x[P:end] == eos).any():
                break
        else:
            post, in_prompt = 0, np.arange(start, end) < P
            while True:
                old = x[start:end].copy()
                active = old == mask
                if not active.any():
                    post += 1
                    if post > max_post:
                        break
                x0, p = predict()
                gamma = active & (p > threshold)
                if gamma.sum() < 1 and active.any():
                    gamma = np.zeros(block, bool)
                    gamma[np.argsort(-np.where(active, p, -np.inf), kind="stable")[0]] = True
                delta = ~active & ~in_prompt & (p > editing) & (x0 != old)
                x[start:end] = np.where(gamma | delta, x0, old)
                if not active.any() and not delta.any():
                    break
    answer = x[P:P + gen]
    return [int(t) if t != mask else eos for t in answer]


def as_numpy(array) -> np.ndarray:
    return array.detach().numpy() if hasattr(array, "detach") else np.array(array)


def chat_prompt(tokenizer, question="In the beginning") -> list[int]:
    from llada_core.chat import encode_chat

    return encode_chat(tokenizer, [{"role": "user", "content": question}])


# --- the forward pass ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_forward_matches_the_float64_reference(backend, checkpoints, request):
    models = request.getfixturevalue(f"{backend}_models")
    model, tokenizer = models["2.0"]
    ids = chat_prompt(tokenizer) + [model.args.mask_token_id] * 13
    expected = reference_forward(checkpoints["2.0"], ids, BLOCK)
    if backend == "torch":
        import torch

        got = model(torch.tensor([ids]), BLOCK).numpy()[0]
    else:
        import mlx.core as mx

        got = np.array(model(mx.array([ids]), BLOCK))[0]
    diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    print(f"\n{backend}: max |logit diff| {diff:.3g} of {scale:.3g}")
    assert diff <= LOGIT_TOLERANCE * scale
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_attention_is_block_causal(torch_models):
    """A later block never changes an earlier block's logits; a change inside a block does."""
    import torch

    model, tokenizer = torch_models["2.0"]
    ids = chat_prompt(tokenizer)[:2 * BLOCK] + [model.args.mask_token_id] * BLOCK
    base = model(torch.tensor([ids]), BLOCK)[0]
    later = list(ids)
    later[-1] = 40
    changed = model(torch.tensor([later]), BLOCK)[0]
    assert torch.equal(base[:2 * BLOCK], changed[:2 * BLOCK])
    assert not torch.equal(base[2 * BLOCK:], changed[2 * BLOCK:])


# --- the decoders ----------------------------------------------------------------------------------

SETTINGS = dict(gen_length=24, block_length=BLOCK, steps=24, mode="exact", temperature=0.0)


@pytest.mark.parametrize("threshold", [0.9, 0.15])  # the schedule's count; many above threshold
@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_answers_equal_the_reference_generate_on_both_backends(version, threshold, checkpoints,
                                                               request):
    answers = {}
    for backend in ("torch", "mlx"):
        try:
            models = request.getfixturevalue(f"{backend}_models")
        except pytest.skip.Exception:
            continue
        module = __import__(f"llada_{backend}")
        model, tokenizer = models[version]
        prompt = chat_prompt(tokenizer)
        frames = list(module.generate_steps(model, prompt, threshold=threshold, **SETTINGS))
        assert frames[-1].done and not frames[0].done
        assert [f.nfe for f in frames] == list(range(1, len(frames) + 1))
        answers[backend] = [int(t) for t in frames[-1].tokens]
    assert answers, "no backend is installed"
    args = (models[version][0]).args
    expected = reference_generate(
        checkpoints[version], prompt, SETTINGS["gen_length"], BLOCK, SETTINGS["steps"] // 3, threshold,
        args.mask_token_id, args.eos_token_id,
        editing=args.editing_threshold, max_post=args.max_post_steps)
    for backend, answer in answers.items():
        assert answer == expected, backend
    if threshold < 0.5:  # parallel commits happened: fewer passes than tokens
        assert len(frames) < SETTINGS["gen_length"]


def test_editing_is_visible_in_the_frames(torch_models):
    """LLaDA2.1 rewrites tokens it wrote: the frames say when each position was last edited, the
    token shown changes then, and 2.0 never edits."""
    import llada_torch

    model, tokenizer = torch_models["2.1"]
    assert model.args.editing_threshold == 0.5  # from its generation_config.json
    prompt = chat_prompt(tokenizer)
    frames = list(llada_torch.generate_steps(model, prompt, threshold=0.9, editing_threshold=0.0,
                                             **SETTINGS))
    last = frames[-1]
    assert last.edited_at is not None and (last.edited_at >= 0).any()
    edited = int(np.flatnonzero(last.edited_at >= 0)[0])
    step = int(last.edited_at[edited])
    before, at = frames[step - 1], frames[step]
    assert at.edited_at[edited] == at.index == step
    assert before.tokens[edited] != at.tokens[edited]  # the canvas showed the token change
    assert before.committed_at[edited] == at.committed_at[edited] >= 0  # first written earlier
    plain = list(llada_torch.generate_steps(torch_models["2.0"][0], prompt, threshold=0.9,
                                            **SETTINGS))
    assert (plain[-1].edited_at == -1).all()  # 2.0 never edits


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_the_prefix_cache_is_exact(backend, request):
    """Finished blocks' keys and values are cached (spec B7): the current block's logits equal
    the whole-prefix forward's, every frame of a 2.0 and a 2.1 answer (with edits) is the same
    with and without the cache, and a new canvas drops the cache."""
    from llada_core import block_diffusion
    from llada_core.settings import SamplerSettings

    models = request.getfixturevalue(f"{backend}_models")
    module = __import__(f"llada_{backend}.llada2", fromlist=["BlockBackend"])
    model, tokenizer = models["2.1"]
    prompt = chat_prompt(tokenizer)
    mask = model.args.mask_token_id
    rng = np.random.default_rng(0)
    length = (len(prompt) // BLOCK + 3) * BLOCK
    canvas = np.array(prompt + [int(t) for t in rng.integers(0, 100, length - len(prompt))],
                      dtype=np.int64)
    cached = module.BlockBackend(model, 0.0, 0)
    plain = module.BlockBackend(model, 0.0, 0, prefix_cache=False)
    for end in range(len(prompt) // BLOCK * BLOCK + BLOCK, len(canvas) + 1, BLOCK):
        ids, rows = canvas[:end].copy(), slice(end - BLOCK, end)
        ids[rows][:2] = mask
        with_cache, without = (as_numpy(b.logits(ids, BLOCK, rows)) for b in (cached, plain))
        assert np.abs(with_cache - without).max() <= 1e-4 * np.abs(without).max()
    assert cached.cache.length == len(canvas) - BLOCK
    other = canvas.copy()
    other[0] += 1  # another conversation: the cache must not be reused
    ids, rows = other[:2 * BLOCK + BLOCK], slice(2 * BLOCK, 3 * BLOCK)
    assert np.allclose(as_numpy(cached.logits(ids, BLOCK, rows)),
                       as_numpy(plain.logits(ids, BLOCK, rows)), rtol=1e-4, atol=1e-4)
    assert cached.cache.length == 2 * BLOCK

    settings = SamplerSettings(**{**SETTINGS, "threshold": 0.9})
    for version, editing in (("2.0", None), ("2.1", 0.0)):
        model = models[version][0]
        runs = [list(block_diffusion.run(module.BlockBackend(model, 0.0, 0, prefix_cache=use),
                                         prompt, settings, editing_threshold=editing))
                for use in (True, False)]
        assert len(runs[0]) == len(runs[1])
        for a, b in zip(*runs):
            assert (a.tokens == b.tokens).all() and (a.committed_at == b.committed_at).all()
            assert (a.edited_at == b.edited_at).all()
        if editing is not None:
            assert (runs[0][-1].edited_at >= 0).any()


def test_ids_and_version_come_from_the_checkpoint_files(checkpoints, torch_models):
    from llada_core.chat import load_tokenizer

    for version, folder in checkpoints.items():
        model, _ = torch_models[version]
        tokenizer = load_tokenizer(folder)
        assert model.args.mask_token_id == tokenizer.convert_tokens_to_ids("<|mask|>")
        assert model.args.eos_token_id == tokenizer.convert_tokens_to_ids("<|endoftext|>")
        assert model.args.eot_token_id == tokenizer.convert_tokens_to_ids("<|role_end|>")
        assert model.args.mask_token_id - model.args.eos_token_id == 3  # as 156895 - 156892
    assert torch_models["2.0"][0].args.editing_threshold is None      # 2.0 ships no editing
    assert torch_models["2.1"][0].args.editing_threshold is not None


def test_a_bad_config_is_one_named_error(checkpoints, tmp_path):
    import shutil

    pytest.importorskip("torch")
    from llada_core.checkpoint import CheckpointError
    from llada_torch import load

    folder = tmp_path / "bad"
    shutil.copytree(checkpoints["2.0"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_experts_per_tok"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="num_experts_per_tok 99"):
        load(folder, device="cpu")


def test_llada_generate_answers_with_a_llada2_checkpoint(checkpoints):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "generate", "--model", str(checkpoints["2.1"]),
         "--prompt", "In the beginning", "--gen-length", "16", "--block-length", "8",
         "--steps", "16", "--mode", "exact", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["answer_ids"]) == 16 and data["nfe"] >= 2


def test_the_server_answers_alike_on_both_backends(checkpoints):
    """A chat completion from a tiny LLaDA2.1 through `llada serve`'s app, on torch and on MLX:
    the same text (float32, temperature 0)."""
    pytest.importorskip("torch")
    pytest.importorskip("mlx.core")
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from app.server import make_server
    from app.session.model import load_model

    replies = {}
    for backend in ("torch", "mlx"):
        server = make_server(lambda: load_model(str(checkpoints["2.1"]), backend, dtype="float32"),
                             model_id="tiny", backend_name=backend,
                             defaults={"gen_length": 16, "block_length": BLOCK, "steps": 16,
                                       "mode": "exact", "threshold": 0.9})
        try:
            with TestClient(server.app) as client:
                response = client.post("/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": "In the beginning"}]})
            assert response.status_code == 200, response.text
            replies[backend] = response.json()["choices"][0]["message"]["content"]
        finally:
            server.worker.stop()
    assert replies["torch"] and replies["torch"] == replies["mlx"]


def test_the_fit_check_reads_a_llada2_config(checkpoints):
    from app.models.fit import Dimensions, model_needs

    config = json.loads((checkpoints["2.0"] / "config.json").read_text())
    dims = Dimensions.of(config)
    spec = TinyLLaDA2Spec()
    assert (dims.layers, dims.heads, dims.kv_heads, dims.head_dim) == (
        spec.num_hidden_layers, spec.num_attention_heads, spec.num_key_value_heads, spec.head_dim)
    # a token passes the wider of the dense first layer and its experts plus the shared one
    assert dims.ffn_width == max(spec.intermediate_size, (spec.num_experts_per_tok + 1)
                                 * spec.moe_intermediate_size)
    report = model_needs(checkpoints["2.0"])
    assert report.weights_bytes > 0 and report.working.kv_cache > 0


def test_conversion_to_mlx_8_and_4_bit(tmp_path):
    """llada convert: experts and every Linear quantized (the router and its bias kept in float),
    loaded back close to the float model; 4-bit still answers."""
    pytest.importorskip("mlx.core")
    import mlx.core as mx

    import llada_mlx

    source = make_tiny_llada2_checkpoint(tmp_path / "src", TinyLLaDA2Spec(
        version="2.1", moe_intermediate_size=32, intermediate_size=128, dtype="bfloat16"))
    reference, tokenizer = llada_mlx.load(source, dtype="float32")
    prompt = chat_prompt(tokenizer)
    ids = prompt + [reference.args.mask_token_id] * BLOCK
    # cosine of the logits to the float model's, measured from bfloat16 random weights: 8-bit
    # 0.9985, 4-bit 0.894 (random tiny weights lose more to 4 bits than trained ones)
    for bits, floor in ((8, 0.998), (4, 0.85)):
        out = llada_mlx.convert(source, tmp_path / f"{bits}bit", bits=bits, group_size=32)
        config = json.loads((out / "config.json").read_text())
        assert config["quantization"] == {"group_size": 32, "bits": bits}
        model, _ = llada_mlx.load(out, dtype="float32")
        assert type(model.model.layers[1].mlp.switch_mlp.up_proj).__name__ == "QuantizedSwitchLinear"
        assert model.model.layers[1].mlp.gate.expert_bias.dtype == mx.float32
        a = np.array(model(mx.array([ids]), BLOCK)).ravel()
        b = np.array(reference(mx.array([ids]), BLOCK)).ravel()
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > floor, bits
        frames = list(llada_mlx.generate_steps(model, prompt, **SETTINGS))
        assert frames[-1].done and (frames[-1].tokens != model.args.mask_token_id).all()


def test_each_version_brings_its_own_decoder_settings(checkpoints, tmp_path):
    """With nothing set, a LLaDA 2.x folder gets its official decoder's settings in the window and
    on the command line (2.0: threshold 0.95; 2.1: Q mode's 0.7, its editing threshold from
    generation_config.json); a generation_config threshold wins; LLaDA 8B keeps fast mode."""
    import argparse
    import json
    import shutil

    from app.cli.options import add_sampler_options, resolve_model
    from app.models.defaults import window_defaults

    assert window_defaults(str(checkpoints["2.0"]))["threshold"] == 0.95
    own = window_defaults(str(checkpoints["2.1"]))
    assert (own["threshold"], own["mode"], own["block_length"]) == (0.7, "exact", 32)
    custom = shutil.copytree(checkpoints["2.1"], tmp_path / "custom")
    config = json.loads((custom / "generation_config.json").read_text())
    (custom / "generation_config.json").write_text(json.dumps({**config, "threshold": 0.8}))
    assert window_defaults(str(custom))["threshold"] == 0.8
    assert window_defaults(str(tmp_path))["mode"] == "fast"  # not a LLaDA 2.x folder

    parser = argparse.ArgumentParser()
    add_sampler_options(parser)
    parser.add_argument("--model")
    args = parser.parse_args(["--model", str(checkpoints["2.1"])])
    resolve_model(args)
    assert (args.threshold, args.mode) == (0.7, "exact")
    args = parser.parse_args(["--model", str(checkpoints["2.1"]), "--threshold", "0.6"])
    resolve_model(args)
    assert args.threshold == 0.6


def test_the_server_streams_only_what_editing_cannot_change(tmp_path, torch_models):
    """LLaDA2.1 may rewrite a token of the current block, so the server's stream (and the end of
    an answer) only takes text from finished blocks (StepFrame.settled): the streamed text is the
    answer the whole run gives, which the window shows too, with and without streaming."""
    pytest.importorskip("starlette")
    import llada_torch
    from starlette.testclient import TestClient

    from app.server import make_server
    from app.session.model import load_model
    from llada_core.chat import answer_text

    folder = make_tiny_llada2_checkpoint(tmp_path / "edits", TinyLLaDA2Spec(
        version="2.1", editing_threshold=0.0))
    model, tokenizer = llada_torch.load(folder, device="cpu")
    prompt = chat_prompt(tokenizer)
    frames = list(llada_torch.generate_steps(model, prompt, threshold=0.9, **dict(
        SETTINGS, gen_length=24)))
    assert any((f.edited_at >= 0).any() for f in frames)
    assert [f.settled for f in frames[:2]] == [0, 0] and frames[-1].settled > 0
    whole = answer_text(tokenizer, [int(t) for t in frames[-1].tokens])
    server = make_server(lambda: load_model(str(folder), "torch", dtype="float32"),
                         model_id="tiny", backend_name="torch",
                         defaults={"gen_length": 24, "block_length": BLOCK, "steps": 24,
                                   "mode": "exact", "threshold": 0.9})
    try:
        with TestClient(server.app) as client:
            body = {"messages": [{"role": "user", "content": "In the beginning"}]}
            plain = client.post("/v1/chat/completions", json=body).json()
            streamed = client.post("/v1/chat/completions", json={**body, "stream": True,
                                                                 "llada_frames": True})
        text, frames_seen = "", 0
        for line in streamed.text.splitlines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            frames_seen += "llada_frame" in chunk
            for choice in chunk.get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
        assert plain["choices"][0]["message"]["content"] == text == whole
        assert frames_seen == len(frames)  # every pass, the last (done) one included
    finally:
        server.worker.stop()
