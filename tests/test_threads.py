"""Thread counts that do not oversubscribe a laptop's cores (llada_core.threads)."""

from __future__ import annotations

import pytest

from llada_core.threads import SMALL_MODEL_PARAMETERS, cpu_threads, user_threads


def test_small_models_get_one_thread():
    assert cpu_threads(4_600_000, cores=2) == 1
    assert cpu_threads(SMALL_MODEL_PARAMETERS - 1, cores=16) == 1


def test_large_models_leave_one_core_free():
    assert cpu_threads(8_000_000_000, cores=2) == 1
    assert cpu_threads(8_000_000_000, cores=10) == 9
    assert cpu_threads(SMALL_MODEL_PARAMETERS, cores=1) == 1


def test_the_users_count_wins(monkeypatch):
    monkeypatch.delenv("LLADA_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert user_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert user_threads() == 3
    monkeypatch.setenv("LLADA_THREADS", "5")
    assert user_threads() == 5
    monkeypatch.setenv("LLADA_THREADS", "many")
    assert user_threads() == 3


def test_torch_loader_applies_the_rule(tiny_checkpoint, monkeypatch):
    torch = pytest.importorskip("torch")
    from llada_torch import load

    monkeypatch.delenv("LLADA_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        load(tiny_checkpoint, device="cpu")
        assert torch.get_num_threads() == 1  # the tiny model is small
        monkeypatch.setenv("LLADA_THREADS", "2")
        load(tiny_checkpoint, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
