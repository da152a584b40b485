"""mode="fast": KV caches, threshold decoding, early stop; and the exact mode left untouched."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llada_torch import generate_steps
from llada_torch.fast import block_logits
from llada_torch.model import KVCache
from test_sampler import EOS, VOCAB, ScriptedModel, constant_logits

PROMPTS = [[5, 6, 7, 8, 9], [40, 41, 42], [100, 7, 300, 12, 19, 77, 5]]
GRID = dict(gen_length=64, block_length=16, steps=64)


def answer(model, prompt, **kwargs):
    frames = list(generate_steps(model, prompt, **kwargs))
    return frames, frames[-1].tokens


def test_exact_mode_is_untouched_by_fast_options(tiny_torch):
    model, _ = tiny_torch
    for prompt in PROMPTS:
        _, plain = answer(model, prompt, **GRID)
        _, with_options = answer(model, prompt, **GRID, cache="none", threshold=0.3, early_stop=False)
        assert (plain == with_options).all()


def test_fast_without_its_parts_is_the_exact_sampler(tiny_torch):
    model, _ = tiny_torch
    for prompt in PROMPTS:
        exact_frames, exact = answer(model, prompt, **GRID, cfg_scale=1.0)
        fast_frames, fast = answer(model, prompt, **GRID, cfg_scale=1.0, mode="fast", cache="none",
                                   threshold=None, early_stop=False)
        assert (exact == fast).all()
        assert [f.committed_at.tolist() for f in exact_frames] == [f.committed_at.tolist() for f in fast_frames]


@pytest.mark.parametrize("cache", ["dual", "prefix"])
def test_first_step_logits_of_a_cached_block_equal_the_full_pass(tiny_torch, cache):
    model, _ = tiny_torch
    canvas = torch.tensor([PROMPTS[0] + [model.args.mask_token_id] * 32])
    start, end = 5, 21
    full = model(canvas)[:, start:end]
    assert torch.equal(block_logits(model, canvas, KVCache(), cache, start, end), full)


@pytest.mark.parametrize("cache", ["dual", "prefix"])
def test_a_refreshed_cache_gives_the_full_pass_for_the_block(tiny_torch, cache):
    model, _ = tiny_torch
    canvas = torch.tensor([PROMPTS[2] + [model.args.mask_token_id] * 32])
    kv = KVCache()
    block_logits(model, canvas, kv, cache, 7, 23)
    again = block_logits(model, canvas, kv, cache, 7, 23)
    assert torch.allclose(again, model(canvas)[:, 7:23], atol=1e-5)


def test_dual_cache_alone_agrees_with_exact_at_most_positions(tiny_torch):
    model, _ = tiny_torch
    agree, total = 0, 0
    for prompt in PROMPTS:
        exact_frames, exact = answer(model, prompt, **GRID)
        fast_frames, fast = answer(model, prompt, **GRID, mode="fast", cache="dual", threshold=None,
                                   early_stop=False)
        assert len(fast_frames) == len(exact_frames) == 64  # same number of steps
        agree += int((exact == fast).sum())
        total += exact.size
    assert agree / total >= 0.6, f"dual cache agreed with exact on {agree}/{total} positions"


def test_threshold_commits_every_sure_token_and_at_least_one(tiny_torch):
    model, _ = tiny_torch
    mask = model.args.mask_token_id
    frames, final = answer(model, PROMPTS[0], **GRID, mode="fast", threshold=0.15)
    assert all(f.committed >= 1 for f in frames)
    assert (final != mask).all() and frames[-1].done
    for frame in frames:
        newly = frame.committed_at == frame.index
        if frame.committed > 1:
            assert (frame.confidence[newly] >= 0.15).all()
    assert len(frames) < 64  # parallel commits need fewer steps than tokens


def test_high_confidence_commits_a_whole_block_in_one_step():
    row = [0.0] * VOCAB
    row[3] = 20.0
    frames, final = answer(ScriptedModel(constant_logits(row)), [1, 2], gen_length=8, block_length=4,
                           steps=8, mode="fast", threshold=0.9)
    assert [f.committed for f in frames] == [4, 4]
    assert [f.nfe for f in frames] == [1, 2]
    assert final.tolist() == [3] * 8


def test_early_stop_fills_the_rest_with_eos():
    row = [0.0] * VOCAB
    row[EOS] = 20.0
    model = ScriptedModel(constant_logits(row))
    frames, final = answer(model, [1, 2], gen_length=16, block_length=4, steps=16, mode="fast")
    assert len(frames) == 1 and frames[-1].done
    assert final.tolist() == [EOS] * 16 and (frames[-1].committed_at == 0).all()
    assert frames[-1].committed == 16
    frames, _ = answer(ScriptedModel(constant_logits(row)), [1, 2], gen_length=16, block_length=4,
                       steps=16, mode="fast", early_stop=False)
    assert len(frames) == 4


def test_fast_mode_with_cfg_and_temperature_fills_every_mask(tiny_torch):
    model, _ = tiny_torch
    for cache in ("dual", "prefix", "none"):
        frames, final = answer(model, PROMPTS[1], gen_length=32, block_length=8, steps=32,
                               mode="fast", cache=cache, cfg_scale=1.5, temperature=0.7, seed=3)
        assert (final != model.args.mask_token_id).all()
        assert frames[-1].nfe == 2 * len(frames)
        seen = np.zeros(32, dtype=bool)
        for frame in frames:
            assert frame.committed >= 1
            seen |= frame.committed_at == frame.index
        assert seen.all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cache": "lru"}, "cache 'lru' is unknown"),
        ({"threshold": 0.0}, "threshold must be a number above 0 and at most 1"),
        ({"threshold": 1.5}, "threshold must be a number above 0 and at most 1"),
        ({"remasking": "random"}, "threshold decoding needs low_confidence remasking"),
    ],
)
def test_fast_mode_errors(kwargs, message):
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    with pytest.raises(ValueError, match=message):
        generate_steps(model, [1], gen_length=8, block_length=8, steps=8, mode="fast", **kwargs)


@pytest.mark.parametrize("cache", ["dual", "prefix", None])
def test_the_forward_reads_nothing_back_from_the_device(tiny_torch, monkeypatch, cache):
    """No host/device sync inside a pass (on CUDA each one stalls the queue): nothing in the
    forward turns a tensor into a Python number, a bool or host memory."""
    model, _ = tiny_torch
    canvas = torch.tensor([PROMPTS[0] + [model.args.mask_token_id] * 16])
    kv = None if cache is None else KVCache()
    if kv is not None:
        block_logits(model, canvas, kv, cache, 5, 13)  # fills the cache
    model.rotary.table(canvas.shape[1], canvas.device)  # built once, outside the check

    def refuse(*args, **kwargs):
        raise AssertionError("the forward read a value back from the device")

    for name in ("item", "tolist", "cpu", "numpy", "__int__", "__bool__", "__index__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    block_logits(model, canvas, kv, cache or "none", 5, 13)
