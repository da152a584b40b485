"""The MLX sampler against the PyTorch one: identical exact-mode answers over a grid of settings
for both weight layouts, the same ValueErrors, tie rules, randomness and threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mlx_support import (  # noqa: F401  (fixtures)
    chat_prompt, mlx_layout_checkpoint, tiny_mlx, tiny_mlx_renamed,
)

import llada_mlx  # noqa: E402
from llada_mlx.sampler import top_k_stable  # noqa: E402

# (answer length, block length) pairs; each runs with steps = length and length / 2, CFG 0 and
# 1.5, and one of the EOS variants in turn (MLX on a Linux CPU is slow: a full product would take
# minutes for the same coverage of code paths).
SHAPES = [(16, 4), (32, 32), (48, 8), (64, 16), (64, 64)]
EOS_OPTIONS = {
    "plain": {},
    "logits_eos_inf": {"logits_eos_inf": True},
    "confidence_eos_eot_inf": {"confidence_eos_eot_inf": True},
}
GRID = [
    dict(gen_length=g, block_length=b, steps=steps, cfg_scale=cfg,
         **list(EOS_OPTIONS.values())[number % len(EOS_OPTIONS)])
    for number, ((g, b), steps, cfg) in enumerate(
        ((g, b), steps, cfg)
        for (g, b) in SHAPES for steps in (g, g // 2) for cfg in (0.0, 1.5))
]
PROMPT = "Hi"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny reference model runs far faster on one thread on a shared CPU."""
    try:
        import torch
    except ImportError:  # an MLX-only install: nothing to set
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grid_id(settings: dict) -> str:
    eos = next((k for k, v in EOS_OPTIONS.items() if v and all(settings.get(o) for o in v)), "plain")
    return (f"G{settings['gen_length']}-B{settings['block_length']}-S{settings['steps']}"
            f"-cfg{settings['cfg_scale']:g}-{eos}")


def torch_frames(tiny_torch, prompt, **settings) -> list:
    from llada_torch import generate_steps

    return list(generate_steps(tiny_torch[0], prompt, **settings))


def assert_same_frames(mlx_frames, torch_frames_):
    assert len(mlx_frames) == len(torch_frames_)
    for ours, theirs in zip(mlx_frames, torch_frames_):
        assert (ours.index, ours.block, ours.committed, ours.nfe, ours.done) == (
            theirs.index, theirs.block, theirs.committed, theirs.nfe, theirs.done)
        assert ours.tokens.dtype == np.int32 and ours.committed_at.dtype == np.int32
        assert ours.confidence.dtype == np.float32
        np.testing.assert_array_equal(ours.tokens, theirs.tokens)
        np.testing.assert_array_equal(ours.committed_at, theirs.committed_at)
        np.testing.assert_allclose(ours.confidence, theirs.confidence, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("settings", GRID, ids=grid_id)
def test_exact_answers_equal_torch(settings, tiny_mlx, tiny_mlx_renamed, tiny_torch):
    """Token for token, frame by frame, for the official and the mlx-community layout."""
    prompt = chat_prompt(tiny_mlx[1], PROMPT)
    expected = torch_frames(tiny_torch, prompt, **settings)
    for model, _ in (tiny_mlx, tiny_mlx_renamed):
        assert_same_frames(list(llada_mlx.generate_steps(model, prompt, **settings)), expected)


def test_grid_covers_the_issue():
    assert len(GRID) == 20 and len({grid_id(s) for s in GRID}) == 20
    assert {s["cfg_scale"] for s in GRID} == {0.0, 1.5}
    assert {s["steps"] == s["gen_length"] for s in GRID} == {True, False}
    for cfg in (0.0, 1.5):
        assert {grid_id(s).split("-")[-1] for s in GRID if s["cfg_scale"] == cfg} == set(EOS_OPTIONS)


def test_nfe_counts_both_cfg_passes(tiny_mlx):
    model, tokenizer = tiny_mlx
    frames = list(llada_mlx.generate_steps(model, chat_prompt(tokenizer), gen_length=8,
                                           block_length=8, steps=4, cfg_scale=1.0))
    assert [f.nfe for f in frames] == [2, 4, 6, 8]


@pytest.mark.parametrize("kwargs", [
    dict(gen_length=64, block_length=24, steps=64),
    dict(gen_length=64, block_length=16, steps=30),
    dict(gen_length=16, block_length=16, steps=32),
    dict(gen_length=0, block_length=16, steps=16),
    dict(gen_length=16, block_length=16, steps=16, temperature=-1.0),
    dict(gen_length=16, block_length=16, steps=16, cfg_scale=float("nan")),
    dict(gen_length=16, block_length=16, steps=16, remasking="top"),
    dict(gen_length=16, block_length=16, steps=16, mode="slow"),
    dict(gen_length=16, block_length=16, steps=16, cache="lru"),
    dict(gen_length=16, block_length=16, steps=16, threshold=1.5),
    dict(gen_length=16, block_length=16, steps=16, seed=-3),
])
def test_bad_settings_raise_the_same_value_error(kwargs, tiny_mlx, tiny_torch):
    from llada_torch import generate_steps as torch_generate

    prompt = chat_prompt(tiny_mlx[1])
    with pytest.raises(ValueError) as ours:
        llada_mlx.generate_steps(tiny_mlx[0], prompt, **kwargs)
    with pytest.raises(ValueError) as theirs:
        torch_generate(tiny_torch[0], prompt, **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("bad", [-1, "rows", 2.5, True])
def test_bad_prompt_ids_are_refused_before_the_model(bad, tiny_mlx, tiny_torch):
    from llada_torch import generate_steps as torch_generate

    model = tiny_mlx[0]
    token = model.args.rows if bad == "rows" else bad
    prompt = [1, 2, token]
    with pytest.raises(ValueError, match="at position 2 is not a valid id") as ours:
        llada_mlx.generate_steps(model, prompt, gen_length=8, block_length=8, steps=8)
    with pytest.raises(ValueError) as theirs:
        torch_generate(tiny_torch[0], prompt, gen_length=8, block_length=8, steps=8)
    assert str(ours.value) == str(theirs.value)


FAST_GRID = [
    dict(gen_length=32, block_length=8, steps=32, cache="dual", threshold=None, early_stop=False),
    dict(gen_length=32, block_length=16, steps=16, cache="prefix", threshold=None, early_stop=False),
    dict(gen_length=32, block_length=8, steps=32, cache="dual", threshold=0.15),
    dict(gen_length=32, block_length=8, steps=32, cache="none", threshold=0.15, cfg_scale=1.5),
    dict(gen_length=16, block_length=8, steps=16, cache="dual", threshold=0.1,
         confidence_eos_eot_inf=True),
]


@pytest.mark.parametrize("settings", FAST_GRID, ids=lambda s: f"{s['cache']}-{s['threshold']}")
def test_fast_mode_answers_equal_torch(tiny_mlx, tiny_torch, settings):
    prompt = chat_prompt(tiny_mlx[1], PROMPT)
    ours = list(llada_mlx.generate_steps(tiny_mlx[0], prompt, mode="fast", **settings))
    theirs = torch_frames(tiny_torch, prompt, mode="fast", **settings)
    assert_same_frames(ours, theirs)
    assert all(frame.committed >= 1 for frame in ours)


def test_fast_mode_cache_first_pass_equals_the_full_pass(tiny_mlx):
    import mlx.core as mx

    from llada_mlx.fast import block_logits
    from llada_mlx.model import KVCache

    model = tiny_mlx[0]
    canvas = mx.array([[5, 6, 7, 8, 9] + [model.args.mask_token_id] * 16])
    full = model(canvas)[:, 5:13]
    for cache in ("dual", "prefix"):
        kv = KVCache()
        assert mx.array_equal(block_logits(model, canvas, kv, cache, 5, 13), full).item()
        again = block_logits(model, canvas, kv, cache, 5, 13)
        assert mx.allclose(again, full, atol=1e-5).item()


def test_signature_matches_torch():
    import inspect

    pytest.importorskip("torch")

    from llada_torch import generate_steps as torch_generate

    ours = inspect.signature(llada_mlx.generate_steps).parameters
    theirs = inspect.signature(torch_generate).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()]


def test_top_k_stable_takes_lowest_position_among_ties():
    confidence = np.array([0.5, 1.0, -np.inf, 1.0, 0.0, 1.0, 0.5], dtype=np.float32)
    assert top_k_stable(confidence, 2).tolist() == [1, 3]
    assert top_k_stable(confidence, 5).tolist() == [1, 3, 5, 0, 6]
    assert top_k_stable(np.zeros(6, np.float32), 3).tolist() == [0, 1, 2]


def test_argmax_ties_take_the_lowest_token_id():
    import mlx.core as mx

    logits = mx.array([[[0.0, 2.0, 1.0, 2.0, 2.0]]])
    assert mx.argmax(logits, axis=-1).item() == 1


@pytest.mark.parametrize("settings", [
    dict(temperature=0.8),
    dict(remasking="random"),
    dict(temperature=1.0, remasking="random", cfg_scale=1.0, confidence_eos_eot_inf=True),
    dict(temperature=0.5, logits_eos_inf=True),
])
def test_random_paths_are_seeded_and_complete(settings, tiny_mlx):
    """Random paths use MLX's generator: reproducible by seed, never equal to torch's by design."""
    model, tokenizer = tiny_mlx
    prompt = chat_prompt(tokenizer)
    common = dict(gen_length=32, block_length=8, steps=16, **settings)
    first = list(llada_mlx.generate_steps(model, prompt, seed=7, **common))
    again = list(llada_mlx.generate_steps(model, prompt, seed=7, **common))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.committed_at, b.committed_at)
    check_invariants(first, model.args.mask_token_id, per_block_steps=4, block_length=8)
    if settings.get("logits_eos_inf"):
        assert model.args.eos_token_id not in first[-1].tokens


def test_different_seeds_differ(tiny_mlx):
    model, tokenizer = tiny_mlx
    prompt = chat_prompt(tokenizer)
    answers = {
        tuple(list(llada_mlx.generate_steps(model, prompt, gen_length=32, block_length=32,
                                            steps=16, temperature=2.0, seed=seed))[-1].tokens)
        for seed in range(4)
    }
    assert len(answers) > 1


def check_invariants(frames, mask_id, per_block_steps, block_length):
    previous = None
    for frame in frames:
        masked = frame.tokens == mask_id
        assert ((frame.committed_at == -1) == masked).all()
        if previous is not None:
            # Never re-masks: what was committed stays, with its step.
            kept = previous.tokens != mask_id
            assert (frame.tokens[kept] == previous.tokens[kept]).all()
            assert (frame.committed_at[kept] == previous.committed_at[kept]).all()
        # Only the current block is written.
        end = (frame.block + 1) * block_length
        assert masked[end:].all()
        assert (frame.committed_at[frame.committed_at >= 0] <= frame.index).all()
        previous = frame
    assert frames[-1].done and not (frames[-1].tokens == mask_id).any()
    assert [f.index for f in frames] == list(range(len(frames)))


def test_confidence_eos_eot_inf_gives_stop_tokens_no_confidence(tiny_mlx):
    """At temperature 0 both EOS and <|eot_id|> get confidence 0, as in the reference: they are
    committed only when every other prediction in the block is a stop token too."""
    model, tokenizer = tiny_mlx
    frames = list(llada_mlx.generate_steps(model, chat_prompt(tokenizer), gen_length=32,
                                           block_length=32, steps=32, confidence_eos_eot_inf=True))
    final = frames[-1]
    stops = np.isin(final.tokens, [model.args.eos_token_id, model.args.eot_token_id])
    assert stops.any()  # this tiny model does predict EOS here
    assert (final.confidence[stops] == 0).all() and (final.confidence[~stops] > 0).all()


def test_load_and_generate_on_a_worker_thread(tiny_checkpoint):
    """The app's worker owns the model: load and every step happen on one long-lived thread."""
    result: dict = {}

    def work():
        try:
            model, tokenizer = llada_mlx.load(tiny_checkpoint)
            prompt = llada_mlx.encode_chat(tokenizer, [{"role": "user", "content": "hi"}])
            result["frames"] = list(llada_mlx.generate_steps(
                model, prompt, gen_length=16, block_length=8, steps=8, cfg_scale=1.0))
            result["mask"] = model.args.mask_token_id
        except BaseException as error:  # reported on the test's thread
            result["error"] = error

    thread = threading.Thread(target=work, name="llada-worker")
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    frames = result["frames"]
    assert len(frames) == 8 and frames[-1].done and frames[-1].nfe == 16
    assert not (frames[-1].tokens == result["mask"]).any()


def test_stopping_early_is_cancellation(tiny_mlx):
    model, tokenizer = tiny_mlx
    steps = llada_mlx.generate_steps(model, chat_prompt(tokenizer), gen_length=16,
                                     block_length=16, steps=16)
    first = next(steps)
    steps.close()
    assert first.index == 0 and first.committed == 1 and not first.done


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_constrained_answers_equal_torch(tiny_mlx, tiny_torch, mode):
    prompt = chat_prompt(tiny_mlx[1], PROMPT)
    settings = dict(gen_length=16, block_length=8, steps=16, mode=mode, cfg_scale=1.0,
                    constraints={0: [50, 51], 9: [60]})
    if mode == "fast":
        settings["threshold"] = 0.15
    ours = list(llada_mlx.generate_steps(tiny_mlx[0], prompt, **settings))
    assert_same_frames(ours, torch_frames(tiny_torch, prompt, **settings))
    assert ours[-1].tokens[[0, 1, 9]].tolist() == [50, 51, 60]


def test_bad_constraints_raise_the_same_value_error(tiny_mlx, tiny_torch):
    from llada_torch import generate_steps as torch_generate

    prompt = chat_prompt(tiny_mlx[1])
    kwargs = dict(gen_length=8, block_length=8, steps=8, constraints={6: [1, 2, 3]})
    with pytest.raises(ValueError, match="runs past") as ours:
        llada_mlx.generate_steps(tiny_mlx[0], prompt, **kwargs)
    with pytest.raises(ValueError) as theirs:
        torch_generate(tiny_torch[0], prompt, **kwargs)
    assert str(ours.value) == str(theirs.value)
