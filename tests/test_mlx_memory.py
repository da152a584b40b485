"""MLX memory: the wired limit and buffer-cache cap while a model is loaded (llada_mlx.memory),
release_memory on unload, a loader that keeps one copy of the weights, and samplers that empty
the buffer cache after every answer, however it ends."""

from __future__ import annotations

import warnings

import pytest

from mlx_support import chat_prompt, tiny_mlx  # noqa: F401  (fixtures)

import mlx.core as mx  # noqa: E402

from llada_mlx import memory  # noqa: E402

SETTINGS = {"gen_length": 8, "block_length": 8, "steps": 4}
GIB = 2**30


@pytest.fixture
def limits(monkeypatch):
    """Records the limits set instead of setting them; the device reports what `device` holds."""
    device: dict = {"architecture": "test", "device_name": "test"}
    calls: dict[str, list] = {"wired": [], "cache": [], "clear": 0}
    state = {"wired": 0, "cache": 8 * GIB}

    def set_limit(kind):
        def setter(value):
            calls[kind].append(value)
            previous, state[kind] = state[kind], value
            return previous
        return setter

    def clear_cache():
        calls["clear"] += 1

    monkeypatch.setattr(mx, "device_info", lambda: dict(device))
    monkeypatch.setattr(mx, "set_wired_limit", set_limit("wired"))
    monkeypatch.setattr(mx, "set_cache_limit", set_limit("cache"))
    monkeypatch.setattr(mx, "clear_cache", clear_cache)
    monkeypatch.setattr(memory, "_saved", {})
    return device, calls


def test_without_a_recommended_working_set_only_the_cache_is_capped(limits, tiny_mlx):
    device, calls = limits
    model, _ = tiny_mlx
    assert memory.wired_limit_for(model) is None
    assert calls["wired"] == [] and calls["cache"] == [memory.CACHE_CAP]
    memory.release()
    assert calls["wired"] == [] and calls["cache"] == [memory.CACHE_CAP, 8 * GIB]
    assert calls["clear"] == 1


def test_wired_limit_is_the_recommended_working_set_and_release_restores_it(limits, tiny_mlx):
    device, calls = limits
    model, _ = tiny_mlx
    device["max_recommended_working_set_size"] = 12 * GIB
    with warnings.catch_warnings():
        warnings.simplefilter("error", memory.MemoryWarning)  # a small model: no warning
        assert memory.wired_limit_for(model) == 12 * GIB
    assert calls["wired"] == [12 * GIB]
    assert calls["cache"] == [min(memory.CACHE_CAP, int(12 * GIB * memory.CACHE_SHARE))]
    # A second model before release: the limits to restore are still the original ones.
    memory.wired_limit_for(model)
    memory.release()
    assert calls["wired"][-1] == 0 and calls["cache"][-1] == 8 * GIB
    memory.release()  # nothing left to restore: only the cache is emptied again
    assert len(calls["wired"]) == 3 and calls["clear"] == 2


def test_a_model_near_the_working_set_warns(limits, tiny_mlx):
    device, calls = limits
    model, _ = tiny_mlx
    size = memory.model_bytes(model)
    device["max_recommended_working_set_size"] = size  # the model fills it
    with pytest.warns(memory.MemoryWarning, match=f"{size // 2**20} MB"):
        memory.wired_limit_for(model)
    assert calls["wired"] == [size]


def test_model_bytes_counts_every_weight(tiny_mlx):
    from mlx.utils import tree_flatten

    model, _ = tiny_mlx
    assert memory.model_bytes(model) == sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def test_release_memory_is_exported():
    import llada_mlx

    assert llada_mlx.release_memory is memory.release
    assert "release_memory" in llada_mlx.__all__


def test_load_sets_the_limits(tiny_checkpoint, monkeypatch):
    from llada_mlx import load

    seen = []
    monkeypatch.setattr(memory, "wired_limit_for", lambda model: seen.append(model))
    model, _ = load(tiny_checkpoint)
    assert seen == [model]


def test_a_cast_while_loading_keeps_one_copy(tiny_checkpoint):
    """float32 -> float16: the peak is the model plus one float32 tensor, not both copies."""
    from mlx.utils import tree_flatten

    from llada_mlx import load
    from mlx_support import read_tensors

    largest = max(t.nbytes for t in read_tensors(tiny_checkpoint).values())
    mx.clear_cache()
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    model, _ = load(tiny_checkpoint, dtype="float16")
    size = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    assert mx.get_active_memory() - before == size
    assert mx.get_peak_memory() - before <= size + largest


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_generate_steps_clears_the_cache_when_closed_early(tiny_mlx, monkeypatch, mode):
    from llada_mlx import generate_steps

    model, tokenizer = tiny_mlx
    cleared = []
    monkeypatch.setattr(mx, "clear_cache", lambda: cleared.append(True))
    frames = generate_steps(model, chat_prompt(tokenizer), mode=mode, threshold=None, **SETTINGS)
    next(frames)
    assert cleared == []
    frames.close()
    assert cleared == [True]


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_generate_steps_clears_the_cache_at_the_end(tiny_mlx, monkeypatch, mode):
    from llada_mlx import generate_steps

    model, tokenizer = tiny_mlx
    cleared = []
    monkeypatch.setattr(mx, "clear_cache", lambda: cleared.append(True))
    frames = list(generate_steps(model, chat_prompt(tokenizer), mode=mode, threshold=None,
                                 **SETTINGS))
    assert frames[-1].done and cleared == [True]


def test_generate_steps_clears_the_cache_when_the_model_fails(tiny_mlx, monkeypatch):
    from llada_mlx import generate_steps

    model, tokenizer = tiny_mlx
    cleared = []
    monkeypatch.setattr(mx, "clear_cache", lambda: cleared.append(True))

    model_args = model.args

    class Broken:
        """A model whose forward runs out of memory, however the sampler calls it."""

        args = model_args

        def __call__(self, *args, **kwargs):
            raise RuntimeError("out of memory")

        @property
        def model(self):
            return self

    with pytest.raises(RuntimeError, match="out of memory"):
        list(generate_steps(Broken(), chat_prompt(tokenizer), **SETTINGS))
    assert cleared == [True]

