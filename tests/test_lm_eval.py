"""LLaDA's Monte Carlo log-likelihood (app/eval/likelihood.py) and lm-evaluation-harness
(`llada eval --lm-eval`) offline on the bundled demo model with the local tasks in
tests/lm_eval_tasks: the demo's sums as a generation task and as multiple choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend_choice import BACKEND, HAS_MLX, HAS_TORCH

from app.eval.likelihood import mask_answers, monte_carlo_log_likelihood, token_log_probs
from app.models.catalog import bundled_demo_model

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tests" / "lm_eval_tasks"
DEMO = bundled_demo_model()
needs_demo = pytest.mark.skipif(DEMO is None, reason="the bundled demo model is not here")


def test_masks_are_stratified_and_spare_the_prompt():
    rng = np.random.default_rng(0)
    for answer in (1, 2, 7, 30):
        masked, counts = mask_answers(5 + answer, 5, 16, rng)
        assert not masked[:, :5].any()
        assert (masked.sum(axis=1) == counts).all()
        assert counts.min() >= 1 and counts.max() <= answer
        if answer >= 16:  # evenly spread ratios: one batch covers the range
            assert counts.max() - counts.min() >= answer * 0.8


def test_estimate_weights_each_masked_token_by_the_ratio():
    # With log p = -1 at every position a sample scores k · T / k = T: the estimate is exactly -T.
    def constant(noisy: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.full(noisy.shape, -1.0, dtype=np.float32)

    for answer in ([3], [3, 4, 5, 6, 7]):
        value = monte_carlo_log_likelihood(constant, [1, 2], answer, mask_id=9, samples=32, batch=8,
                                           rng=np.random.default_rng(1))
        assert value == pytest.approx(-len(answer))
    with pytest.raises(ValueError, match="multiple of the batch"):
        monte_carlo_log_likelihood(constant, [1], [2], mask_id=9, samples=10, batch=4)


@needs_demo
def test_token_log_probs_are_the_model_log_softmax():
    from app.session.backends import get_backend

    backend = get_backend(BACKEND)
    model, _ = backend.load(str(DEMO), **({"device": "cpu"} if BACKEND == "torch" else {}))
    mask = model.args.mask_token_id
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2000, size=(2, 12))
    noisy = np.where(rng.random((2, 12)) < 0.5, mask, targets)
    noisy[:, :4] = targets[:, :4]
    got = token_log_probs(BACKEND, model, noisy, targets, prompt_length=4)
    if BACKEND == "torch":
        import torch

        logits = model(torch.as_tensor(noisy)).double().numpy()
    else:
        import mlx.core as mx

        logits = np.array(model(mx.array(noisy.astype(np.int32))).astype(mx.float32), dtype=np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = np.take_along_axis(expected, targets[..., None], -1)[..., 0]
    np.testing.assert_allclose(got, expected, atol=2e-4)
    # CFG: un + (c + 1)(cond - un), the unconditional pass with the prompt masked.
    guided = token_log_probs(BACKEND, model, noisy, targets, prompt_length=4, cfg_scale=1.5)
    assert guided.shape == got.shape and not np.allclose(guided, got)


@needs_demo
@pytest.mark.skipif(not (HAS_TORCH and HAS_MLX), reason="needs both backends")
def test_log_probs_agree_across_backends():
    import llada_mlx
    import llada_torch

    torch_model, _ = llada_torch.load(str(DEMO), device="cpu", dtype="float32")
    mlx_model, _ = llada_mlx.load(str(DEMO), dtype="float32")
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 2000, size=(4, 16))
    noisy = np.where(rng.random((4, 16)) < 0.6, torch_model.args.mask_token_id, targets)
    for cfg in (0.0, 0.5):
        a = token_log_probs("torch", torch_model, noisy, targets, prompt_length=5, cfg_scale=cfg)
        b = token_log_probs("mlx", mlx_model, noisy, targets, prompt_length=5, cfg_scale=cfg)
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_registered_with_lm_eval():
    pytest.importorskip("lm_eval")
    from lm_eval.api.registry import get_model

    from app.eval.lm_eval_llada import LLaDAHarnessModel

    assert get_model("llada") is LLaDAHarnessModel


@needs_demo
def test_llada_eval_runs_local_harness_tasks(tmp_path):
    pytest.importorskip("lm_eval")
    output = tmp_path / "results.json"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "--lm-eval", "demo_arithmetic_gen,demo_arithmetic_mc",
         "--include-path", str(TASKS), "--apply-chat-template", "--backend", BACKEND,
         "--model", str(DEMO), "--mc-num", "32", "--mc-batch", "32", "--output", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "log-likelihood: 100%" in result.stderr and "generating: 100%" in result.stderr
    results = json.loads(output.read_text())["results"]
    items = len((TASKS / "demo_arithmetic.jsonl").read_text().splitlines())
    # The demo adds two-digit numbers: its own sampler gets them right...
    assert results["demo_arithmetic_gen"]["exact_match,none"] >= 0.9
    # ...and the likelihood ranks the right sum above sums 20-60 off, far above chance (1 in 4).
    assert results["demo_arithmetic_mc"]["acc,none"] >= 0.75
    assert results["demo_arithmetic_mc"]["sample_len"] == items
    assert "demo_arithmetic_mc" in result.stdout  # the harness's table
