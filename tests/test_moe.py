"""LLaDA-MoE on both backends: an independent float64 NumPy forward written here from
`../shared/llada-moe-spec.md` §3 against each backend in float32, routing rules, the KV cache,
exact-mode answers equal across backends, fast mode, and malformed checkpoints.

Each backend's tests skip where it is not installed (the torch-free pass runs this file too)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from llada_core.checkpoint import CheckpointError
from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint

# Float32 against the float64 reference: max |logit diff| within this fraction of max |logit|.
LOGIT_TOLERANCE = 1e-4

SPECS = {
    # The real model's shape in miniature: QK-norm, full rotary, mask id from the tokenizer.
    "default": TinyMoESpec(),
    # Partial rotary, grouped K/V heads, more experts, mask id in config.json.
    "partial": TinyMoESpec(partial_rotary_factor=0.5, num_key_value_heads=2, num_experts=6,
                           num_experts_per_tok=3, mask_in_config=True, seed=1, shards=3),
    # A dense first layer (moe_layer_freq 0) and a shared expert on the MoE layers, as the
    # reference's LLaDAMoEDecoderLayer builds them.
    "dense": TinyMoESpec(num_hidden_layers=3, dense_layers=(0,), shared_expert_intermediate_size=24,
                         seed=2),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return {name: make_tiny_moe_checkpoint(tmp_path_factory.mktemp(f"moe_{name}"), spec)
            for name, spec in SPECS.items()}


@pytest.fixture(scope="module")
def torch_models(checkpoints):
    torch = pytest.importorskip("torch")
    from llada_torch import load

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models run fastest on one thread of a shared CPU
    yield {name: load(path, device="cpu") for name, path in checkpoints.items()}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mlx_models(checkpoints):
    pytest.importorskip("mlx.core")
    from llada_mlx import load

    return {name: load(path) for name, path in checkpoints.items()}


# ---------------------------------------------------------------- the NumPy float64 reference

def read_checkpoint(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    tensors: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update({k: v.astype(np.float64) for k, v in load_file(str(path)).items()})
    return json.loads((folder / "config.json").read_text()), tensors


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def rope(t: np.ndarray, rotary: int, theta: float) -> np.ndarray:
    """Half-split (NeoX) rotary over the first `rotary` dims of t (heads, L, head_dim)."""
    positions = np.arange(t.shape[1], dtype=np.float64)
    inv_freq = 1.0 / theta ** (np.arange(0, rotary, 2, dtype=np.float64) / rotary)
    angles = np.concatenate([np.outer(positions, inv_freq)] * 2, axis=-1)
    part, rest = t[..., :rotary], t[..., rotary:]
    half = rotary // 2
    rotated = np.concatenate([-part[..., half:], part[..., :half]], axis=-1)
    return np.concatenate([part * np.cos(angles) + rotated * np.sin(angles), rest], axis=-1)


def reference_forward(folder: Path, ids: list[int]) -> np.ndarray:
    """Spec §3 in float64, one sequence: logits (L, vocab)."""
    config, w = read_checkpoint(folder)
    d, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads, eps = config["num_key_value_heads"], config["rms_norm_eps"]
    hd = d // heads
    rotary = int(hd * config["partial_rotary_factor"])
    experts, top = config["num_experts"], config["num_experts_per_tok"]
    h = w["model.embed_tokens.weight"][ids]
    length = len(ids)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = (x @ w[p + "self_attn.q_proj.weight"].T).reshape(length, heads, hd)
        k = (x @ w[p + "self_attn.k_proj.weight"].T).reshape(length, kv_heads, hd)
        v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(length, kv_heads, hd)
        if config["qk_layernorm"]:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = rope(q.transpose(1, 0, 2), rotary, config["rope_theta"])
        k = rope(k.transpose(1, 0, 2), rotary, config["rope_theta"])
        v = v.transpose(1, 0, 2)
        k, v = np.repeat(k, heads // kv_heads, axis=0), np.repeat(v, heads // kv_heads, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)  # no mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = (scores / scores.sum(-1, keepdims=True)) @ v
        h = h + attention.transpose(1, 0, 2).reshape(length, d) @ w[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)

        def swiglu(at: str, x: np.ndarray) -> np.ndarray:
            gate, up = x @ w[at + "gate_proj.weight"].T, x @ w[at + "up_proj.weight"].T
            return (gate / (1 + np.exp(-gate)) * up) @ w[at + "down_proj.weight"].T

        if config["moe_layer_freq"][i] == 0:  # a dense layer
            h = h + swiglu(p + "mlp.", x)
            continue
        logits = x @ w[p + "mlp.gate.weight"].T
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        moe = np.zeros_like(x)
        for token in range(length):
            chosen = np.argsort(-probabilities[token], kind="stable")[:top]
            for e in chosen:  # weights as they are: no renormalisation
                e_ = f"{p}mlp.experts.{e}."
                gate = x[token] @ w[e_ + "gate_proj.weight"].T
                up = x[token] @ w[e_ + "up_proj.weight"].T
                out = (gate / (1 + np.exp(-gate)) * up) @ w[e_ + "down_proj.weight"].T
                moe[token] += probabilities[token, e] * out
        if config.get("shared_expert_intermediate_size"):
            moe += swiglu(p + "shared_expert.", x)  # the same normed input as the experts
        h = h + moe
    return rms_norm(h, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def canvas(model_args, tokenizer, answer: int = 24) -> list[int]:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Who made the light?"}],
                                           add_generation_prompt=True, tokenize=False)
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids += [model_args.mask_token_id] * answer
    ids[-10:-4] = list(range(40, 46))  # real tokens on both sides of masks
    return ids


def assert_close_to_reference(got: np.ndarray, expected: np.ndarray, label: str) -> None:
    diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    print(f"\n{label}: max |logit diff| {diff:.3g}, max |logit| {scale:.3g}, ratio {diff / scale:.3g}")
    assert diff <= LOGIT_TOLERANCE * scale
    assert (got.argmax(-1) == expected.argmax(-1)).all()


@pytest.mark.parametrize("name", list(SPECS))
def test_torch_forward_matches_numpy_reference(name, checkpoints, torch_models):
    import torch

    model, tokenizer = torch_models[name]
    ids = canvas(model.args, tokenizer)
    with torch.no_grad():
        got = model(torch.tensor([ids])).numpy()[0]
    assert_close_to_reference(got, reference_forward(checkpoints[name], ids), f"torch {name}")


@pytest.mark.parametrize("name", list(SPECS))
def test_mlx_forward_matches_numpy_reference(name, checkpoints, mlx_models):
    import mlx.core as mx

    model, tokenizer = mlx_models[name]
    ids = canvas(model.args, tokenizer)
    got = np.array(model(mx.array([ids])))[0]
    assert_close_to_reference(got, reference_forward(checkpoints[name], ids), f"mlx {name}")


def test_model_args_and_token_ids(checkpoints, torch_models, mlx_models):
    for name, path in checkpoints.items():
        config = json.loads((path / "config.json").read_text())
        for model, tokenizer in (torch_models[name], mlx_models[name]):
            args = model.args
            assert args.hidden_size == config["hidden_size"]
            assert args.num_experts == config["num_experts"]
            assert args.rotary_dims == int(args.head_dim * config["partial_rotary_factor"])
            assert args.mask_token_id == tokenizer.convert_tokens_to_ids("<|mask|>")
            assert args.eos_token_id == tokenizer.convert_tokens_to_ids("<|endoftext|>")
            assert args.eot_token_id == tokenizer.convert_tokens_to_ids("<|role_end|>")
            assert args.rows == config["vocab_size"]


def test_mask_id_comes_from_the_tokenizer_with_a_warning(tmp_path, caplog):
    pytest.importorskip("mlx.core")
    from llada_mlx import load

    path = make_tiny_moe_checkpoint(tmp_path / "m", TinyMoESpec(mask_in_config=True))
    config = json.loads((path / "config.json").read_text())
    config["mask_token_id"] = 7  # disagrees with the tokenizer's <|mask|>
    (path / "config.json").write_text(json.dumps(config))
    model, tokenizer = load(path)
    assert model.args.mask_token_id == tokenizer.convert_tokens_to_ids("<|mask|>") != 7
    assert any("mask_token_id 7 is not the tokenizer's" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------- routing

# Rows of router probabilities with exact ties, and the top-2 the spec's rule picks (the largest,
# equal values lowest expert first).
TIES = np.array([
    [0.1, 0.3, 0.3, 0.3],     # a three-way tie for first: experts 1, 2
    [0.4, 0.2, 0.2, 0.2],     # a tie for second place: 0, then 1
    [0.25, 0.25, 0.25, 0.25],  # all equal: 0, 1
    [0.05, 0.15, 0.5, 0.3],   # no tie: 2, 3
], dtype=np.float32)
TIE_EXPERTS = [[1, 2], [0, 1], [0, 1], [2, 3]]


def test_torch_route_top_k_ties_and_no_renormalisation():
    torch = pytest.importorskip("torch")
    from llada_torch.moe import route

    weights, experts = route(torch.from_numpy(TIES), 2)
    assert experts.tolist() == TIE_EXPERTS
    # The chosen probabilities themselves: their sum stays below 1.
    np.testing.assert_array_equal(weights.numpy(), np.take_along_axis(TIES, np.array(TIE_EXPERTS), 1))
    assert (weights.sum(-1) < 1).any()


def test_mlx_route_top_k_and_ties():
    mx = pytest.importorskip("mlx.core")
    from llada_mlx.moe import route

    assert np.array(route(mx.array(TIES), 2)).tolist() == TIE_EXPERTS
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 7, 16)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.argsort(-probabilities, axis=-1, kind="stable")[..., :4]
    assert np.array_equal(np.array(route(mx.array(probabilities), 4)), expected)


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_moe_block_weights_are_not_renormalised(backend, torch_models, mlx_models):
    """One layer's MoE output equals Σ p_k · expert_k(x) with the raw softmax probabilities;
    renormalising them (they sum below 1 with 2 of 4 experts) would not match."""
    models = torch_models if backend == "torch" else mlx_models
    model, _ = models["default"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, model.args.hidden_size)).astype(np.float32)
    block = model.model.layers[0].mlp
    if backend == "torch":
        import torch

        with torch.no_grad():
            got = block(torch.from_numpy(x)).numpy()
            gate = block.gate.weight.numpy()
            w = [p.weight.numpy() for p in (block.switch_mlp.gate_proj, block.switch_mlp.up_proj,
                                            block.switch_mlp.down_proj)]
    else:
        import mlx.core as mx

        got = np.array(block(mx.array(x)))
        gate = np.array(block.gate.weight)
        w = [np.array(p.weight) for p in (block.switch_mlp.gate_proj, block.switch_mlp.up_proj,
                                          block.switch_mlp.down_proj)]
    logits = x[0].astype(np.float64) @ gate.T
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.zeros_like(x[0], dtype=np.float64)
    renormalised = np.zeros_like(expected)
    for t in range(x.shape[1]):
        chosen = np.argsort(-p[t], kind="stable")[:model.args.num_experts_per_tok]
        for e in chosen:
            g, u = x[0, t] @ w[0][e].T, x[0, t] @ w[1][e].T
            out = (g / (1 + np.exp(-g)) * u) @ w[2][e].T
            expected[t] += p[t, e] * out
            renormalised[t] += p[t, e] / p[t, chosen].sum() * out
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got[0], renormalised, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------- the KV cache

@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_cache_window_equals_full_pass(backend, torch_models, mlx_models):
    """The dual cache's partial pass: a window over a filled cache gives the full pass's logits
    for the window (keys cached after RoPE, attention over the whole canvas)."""
    from llada_core.kv_cache import KVCache

    models = torch_models if backend == "torch" else mlx_models
    model, tokenizer = models["partial"]
    ids = canvas(model.args, tokenizer)
    start, end = len(ids) - 12, len(ids) - 4
    if backend == "torch":
        import torch

        def run(x, cache=None, offset=0):
            with torch.no_grad():
                return model(torch.tensor([x]), cache=cache, offset=offset).numpy()
    else:
        import mlx.core as mx

        def run(x, cache=None, offset=0):
            return np.array(model.model(mx.array([x]), cache, offset))
    cache = KVCache()
    full = run(ids, cache)
    window = run(ids[start:end], cache, start)
    np.testing.assert_allclose(window[0], full[0, start:end], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- samplers

GRID = [
    dict(gen_length=16, block_length=4, steps=16, cfg_scale=0.0),
    dict(gen_length=16, block_length=16, steps=8, cfg_scale=1.5),
    dict(gen_length=24, block_length=8, steps=12, cfg_scale=0.0, logits_eos_inf=True),
    dict(gen_length=32, block_length=32, steps=32, cfg_scale=0.0, confidence_eos_eot_inf=True),
    dict(gen_length=32, block_length=8, steps=16, cfg_scale=1.5, confidence_eos_eot_inf=True),
]


def prompt_ids(tokenizer) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "And the earth?"}],
                                         add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("settings", GRID, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_exact_answers_equal_across_backends(settings, torch_models, mlx_models):
    import llada_mlx
    import llada_torch

    for name in SPECS:
        tmodel, tokenizer = torch_models[name]
        mmodel, _ = mlx_models[name]
        prompt = prompt_ids(tokenizer)
        ours = list(llada_mlx.generate_steps(mmodel, prompt, mode="exact", **settings))
        theirs = list(llada_torch.generate_steps(tmodel, prompt, mode="exact", **settings))
        assert len(ours) == len(theirs) == settings["steps"]
        for a, b in zip(ours, theirs):
            assert (a.index, a.block, a.nfe) == (b.index, b.block, b.nfe)
            np.testing.assert_array_equal(a.tokens, b.tokens)
            np.testing.assert_array_equal(a.committed_at, b.committed_at)
        assert (ours[-1].tokens != mmodel.args.mask_token_id).all()


@pytest.mark.parametrize("cache", ["dual", "prefix"])
def test_fast_mode_runs_with_the_moe_attention(cache, torch_models, mlx_models):
    import llada_mlx
    import llada_torch

    tmodel, tokenizer = torch_models["default"]
    mmodel, _ = mlx_models["default"]
    prompt = prompt_ids(tokenizer)
    settings = dict(gen_length=32, block_length=8, steps=32, mode="fast", cache=cache,
                    threshold=0.5, early_stop=False)
    ours = list(llada_mlx.generate_steps(mmodel, prompt, **settings))
    theirs = list(llada_torch.generate_steps(tmodel, prompt, **settings))
    for frames in (ours, theirs):
        assert all(f.committed >= 1 for f in frames)
        assert (frames[-1].tokens != mmodel.args.mask_token_id).all()
    np.testing.assert_array_equal(ours[-1].tokens, theirs[-1].tokens)


# ---------------------------------------------------------------------------- malformed

def edited(source: Path, target: Path, config_edit=None, drop: str | None = None,
           add: dict | None = None) -> Path:
    """A copy of `source` with config.json edited and/or one tensor dropped or some added."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, target)
    if config_edit is not None:
        config = json.loads((target / "config.json").read_text())
        config_edit(config)
        (target / "config.json").write_text(json.dumps(config))
    if drop or add:
        (target / "model.safetensors.index.json").unlink()
        tensors: dict[str, np.ndarray] = {}
        for path in sorted(target.glob("*.safetensors")):
            tensors.update(load_file(str(path)))
            path.unlink()
        tensors.pop(drop, None)
        tensors.update(add or {})
        save_file(tensors, str(target / "model.safetensors"))
    return target


def _set(key, value):
    return lambda config: config.__setitem__(key, value)


def _del(key):
    return lambda config: config.pop(key)


MALFORMED = {
    "missing field": (dict(config_edit=_del("num_experts_per_tok")), "num_experts_per_tok"),
    "missing rotary factor": (dict(config_edit=_del("partial_rotary_factor")),
                              "partial_rotary_factor"),
    # config.json asks for a shared expert or a dense layer that the weights do not hold
    "shared expert without weights": (dict(config_edit=_set("shared_expert_intermediate_size", 32)),
                                      "missing tensor(s): model.layers.0.shared_expert."),
    "dense layer without weights": (dict(config_edit=_set("moe_layer_freq", [0, 1])),
                                    "missing tensor(s): model.layers.0.mlp.down_proj.weight"),
    "moe_layer_freq of the wrong length": (dict(config_edit=_set("moe_layer_freq", [1])),
                                           "moe_layer_freq"),
    "dense layer without its width": (dict(config_edit=lambda c: c.update(
        moe_layer_freq=[0, 1], dense_intermediate_size=None)), "dense_intermediate_size"),
    "expert bias": (dict(config_edit=_set("moe_router_enable_expert_bias", True)), "expert bias"),
    "bad rotary": (dict(config_edit=_set("partial_rotary_factor", 0.01)), "rotary"),
    "top-k > experts": (dict(config_edit=_set("num_experts_per_tok", 9)), "num_experts_per_tok"),
    "missing expert": (dict(drop="model.layers.1.mlp.experts.2.up_proj.weight"),
                       "model.layers.1.mlp.experts.2.up_proj.weight"),
    "extra expert": (dict(add={"model.layers.0.mlp.experts.4.up_proj.weight":
                               np.zeros((32, 64), np.float32)}), "experts.4"),
    "expert bias tensor": (dict(add={"model.layers.0.mlp.expert_bias": np.zeros(4, np.float32)}),
                           "expert_bias"),
    "missing router": (dict(drop="model.layers.0.mlp.gate.weight"), "model.layers.0.mlp.gate.weight"),
    "dense architecture": (dict(config_edit=_set("architectures", ["LLaDAModelLM"])),
                           "architectures"),
}


@pytest.fixture(scope="module")
def malformed(checkpoints, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("malformed")
    return {name: edited(checkpoints["default"], root / name.replace(" ", "_"), **edit)
            for name, (edit, _) in MALFORMED.items()}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_malformed_checkpoint_is_one_named_error(backend, case, malformed):
    pytest.importorskip("torch" if backend == "torch" else "mlx.core")
    if backend == "torch":
        from llada_torch import load

        def loads(path):
            return load(path, device="cpu")
    else:
        from llada_mlx import load as loads
    with pytest.raises(CheckpointError, match=re.escape(MALFORMED[case][1])):
        loads(malformed[case])


def test_no_mask_token_anywhere_is_named(checkpoints, tmp_path):
    pytest.importorskip("mlx.core")
    from llada_mlx import load

    target = tmp_path / "nomask"
    shutil.copytree(checkpoints["default"], target)
    tokenizer = json.loads((target / "tokenizer.json").read_text())
    for token in tokenizer["added_tokens"]:
        if token["content"] == "<|mask|>":
            token["content"] = "<|not_mask|>"
    (target / "tokenizer.json").write_text(json.dumps(tokenizer))
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("mask_token")
    for entry in config["added_tokens_decoder"].values():
        if entry["content"] == "<|mask|>":
            entry["content"] = "<|not_mask|>"
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    special = json.loads((target / "special_tokens_map.json").read_text())
    special.pop("mask_token")
    (target / "special_tokens_map.json").write_text(json.dumps(special))
    with pytest.raises(CheckpointError, match="mask"):
        load(target)


def test_tiny_moe_checkpoint_layout(checkpoints):
    """The official layout: spec §2's names, architectures[0] and model_type, the role template."""
    from llada_core.chat import load_tokenizer

    path = checkpoints["default"]
    config, tensors = read_checkpoint(path)
    assert config["architectures"][0] == "LLaDAMoEModelLM" and config["model_type"] == "llada"
    assert "model.layers.0.mlp.experts.3.down_proj.weight" in tensors
    assert tensors["model.layers.0.self_attn.q_norm.weight"].shape == (16,)
    assert tensors["model.layers.1.mlp.gate.weight"].shape == (4, 64)
    assert "lm_head.weight" in tensors
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(tensors)
    tokenizer = load_tokenizer(path)
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        add_generation_prompt=True, tokenize=False)
    assert text == ("<role>SYSTEM</role>Be brief.<|role_end|><role>HUMAN</role>Hi<|role_end|>"
                    "<role>ASSISTANT</role>")
    for token in ("<|mask|>", "<|endoftext|>", "<|role_end|>", "<role>", "</role>"):
        assert token in tokenizer.get_vocab()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<|role_end|>") in ids


def test_what_the_reference_ignores_is_accepted_with_a_warning(checkpoints, tmp_path, caplog):
    """The published config's routing fields that the reference never reads load, warn once,
    and change nothing: the logits equal the default checkpoint's."""
    torch = pytest.importorskip("torch")
    from llada_torch import load

    def ignored(config):
        config.update(norm_topk_prob=True, routed_scaling_factor=2.5, router_num_group=4,
                      router_topk_group=2, moe_router_score_function="sigmoid",
                      architectures=["LLaDAMoEModel"])

    path = edited(checkpoints["default"], tmp_path / "published", config_edit=ignored)
    model, _ = load(path, device="cpu")
    warnings = [r.getMessage() for r in caplog.records if "reference code ignores" in r.getMessage()]
    assert len(warnings) == 1 and "norm_topk_prob=true" in warnings[0]
    reference, _ = load(checkpoints["default"], device="cpu")
    ids = torch.arange(12)[None]
    with torch.inference_mode():
        assert torch.equal(model(ids), reference(ids))
