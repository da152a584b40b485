"""Both backends satisfy app.session.backends.Backend, and no app module branches on a backend's name."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from app.session.backends import Backend, load_options

ROOT = Path(__file__).resolve().parents[1]
# A backend name compared to a literal: == / != / in against "torch" or "mlx", either side.
NAME_COMPARISON = re.compile(
    r"""(==|!=)\s*['"](torch|mlx)['"]|['"](torch|mlx)['"]\s*(==|!=)"""
    r"""|\.startswith\(\s*['"]llada_(torch|mlx)""")


def protocol_members() -> list[str]:
    return [name for name in dir(Backend) if not name.startswith("_")] + ["LOAD_OPTIONS"]


def test_no_app_module_compares_a_backend_name():
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if NAME_COMPARISON.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "ask the backend (app.session.backends.Backend) instead:\n" + "\n".join(found)


def test_the_scan_catches_a_comparison():
    assert NAME_COMPARISON.search('if name == "torch" and device:')
    assert NAME_COMPARISON.search("if 'mlx' != backend_name:")
    assert NAME_COMPARISON.search('if module.__name__.startswith("llada_mlx"):')
    assert not NAME_COMPARISON.search('choices=["torch", "mlx"]')


def check_backend(backend, model) -> None:
    assert isinstance(backend, Backend)
    for name in protocol_members():
        assert hasattr(backend, name), name
        if name != "LOAD_OPTIONS":
            mine = inspect.signature(getattr(Backend, name))
            theirs = inspect.signature(getattr(backend, name))
            wanted = [p for p in list(mine.parameters)[1:]
                      if mine.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD,)]
            assert set(wanted) <= set(theirs.parameters) or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in theirs.parameters.values()), name
    assert backend.LOAD_OPTIONS <= {"dtype", "device"} and "dtype" in backend.LOAD_OPTIONS
    description = backend.describe(model)
    assert description["dtype"] == "float32" and isinstance(description["device"], str)
    memory = backend.device_memory(None)
    assert memory is None or (memory[0] > 0 and memory[1])
    base = backend.reset_peak_memory(model)
    ids = np.arange(8, dtype=np.int64)[None] % model.args.vocab_size
    backend.forward(model, ids)
    peak = backend.peak_memory(model)
    if backend.peak_memory_method(model) is None:
        assert peak is None
    else:
        assert peak >= base
    noisy = np.array([[1, 2, model.args.mask_token_id, 4]])
    targets = np.array([[1, 2, 3, 4]])
    log_probs = backend.token_log_probs(model, noisy, targets, prompt_length=2,
                                        mask_id=model.args.mask_token_id)
    assert log_probs.shape == (1, 4) and log_probs.dtype == np.float32 and (log_probs <= 0).all()
    backend.release_memory()


def test_torch_satisfies_the_protocol(tiny_checkpoint):
    pytest.importorskip("torch")
    import llada_torch

    model, _ = llada_torch.load(tiny_checkpoint, **load_options(
        llada_torch, dtype="float32", device="cpu"))
    assert str(model.device) == "cpu"
    check_backend(llada_torch, model)


def test_mlx_satisfies_the_protocol(tiny_checkpoint):
    pytest.importorskip("mlx.core")
    import llada_mlx

    model, _ = llada_mlx.load(tiny_checkpoint, **load_options(
        llada_mlx, dtype="float32", device="cuda:0"))  # MLX takes no device: dropped
    check_backend(llada_mlx, model)


def test_load_options_keep_what_the_backend_takes():
    class OnlyDtype:
        LOAD_OPTIONS = frozenset({"dtype"})

    assert load_options(OnlyDtype, dtype="bfloat16", device="cpu") == {"dtype": "bfloat16"}
    assert load_options(OnlyDtype, dtype=None, device=None) == {}
