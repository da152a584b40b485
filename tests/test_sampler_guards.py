"""Both backends' samplers stop with one sentence when the model's scores overflow (as a CFG scale
near float32's limit once made them), in exact and fast mode, instead of looping forever."""

from __future__ import annotations

import pytest

from llada_core.driver import SamplerError


def overflowing(guided):
    """The backend's guidance, scaled past float32's range: infinities and NaN."""
    return lambda logits, cfg_scale: guided(logits, cfg_scale) * 1e38 * 1e38


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_overflowing_scores_stop_the_answer(backend, mode, tiny_checkpoint, monkeypatch):
    if backend == "torch":
        pytest.importorskip("torch")
        from llada_torch import load, sampler

        model, _ = load(tiny_checkpoint, device="cpu")
    else:
        pytest.importorskip("mlx.core")
        from llada_mlx import load, sampler

        model, _ = load(tiny_checkpoint)
    monkeypatch.setattr(sampler, "guided_logits", overflowing(sampler.guided_logits))
    frames = sampler.generate_steps(model, [1, 2, 3], gen_length=8, block_length=8, steps=8,
                                    cfg_scale=1.0, mode=mode)
    with pytest.raises(SamplerError, match="infinite or NaN"):
        for number, _ in enumerate(frames):
            assert number < 8, "the sampler ran past its step budget"
