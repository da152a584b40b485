"""Catalog, local folder validation (both weight layouts), persistence and the fit check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.models import catalog, fit, local
from app.models.catalog import CATALOG, catalog_entry, recommended_entry
from app.models.units import format_bytes, format_duration
from app.history.store import Store
from llada_core.checkpoint import CheckpointError


def test_catalog_has_the_known_checkpoints():
    ids = [e.repo_id for e in CATALOG]
    assert ids == ["mlx-community/LLaDA-8B-Instruct-mlx-8bit", "mlx-community/LLaDA-8B-Instruct-mlx-4bit",
                   "GSAI-ML/LLaDA-8B-Instruct", "GSAI-ML/LLaDA-8B-Base", "GSAI-ML/LLaDA-1.5",
                   "inclusionAI/LLaDA-MoE-7B-A1B-Instruct", "GSAI-ML/LLaDA-V", "inclusionAI/LLaDA2.1-mini",
                   "inclusionAI/LLaDA2.0-mini"]
    assert catalog_entry("gsai-ml/llada-8b-instruct").size_text == "16.0 GB"
    assert catalog_entry("mlx-community/LLaDA-8B-Instruct-mlx-8bit").size_text == "8.5 GB"
    assert all(e.memory_bytes > e.size_bytes for e in CATALOG)
    assert recommended_entry(apple_silicon=True, memory=16 * 2 ** 30).repo_id == \
        "mlx-community/LLaDA-8B-Instruct-mlx-8bit"
    assert recommended_entry(apple_silicon=True, memory=8 * 2 ** 30).repo_id == \
        "mlx-community/LLaDA-8B-Instruct-mlx-4bit"
    assert recommended_entry(apple_silicon=False).repo_id == "GSAI-ML/LLaDA-8B-Instruct"
    assert format_bytes(999) == "999 B" and format_bytes(8.53e9) == "8.5 GB"
    assert [format_duration(s) for s in (None, 0.4, 42, 3725)] == \
        ["–", "under 1 s", "42 s", "1 h 02 min"]


def test_bundled_demo_model_appears_only_when_its_folder_exists(tmp_path, monkeypatch):
    shipped = Path(catalog.__file__).resolve().parents[1] / "resources" / "llada-demo"
    assert catalog.bundled_demo_model() == shipped
    fake_module = tmp_path / "app" / "models" / "catalog.py"
    fake_module.parent.mkdir(parents=True)
    monkeypatch.setattr(catalog, "__file__", str(fake_module))
    assert catalog.bundled_demo_model() is None
    demo = tmp_path / "app" / "resources" / "llada-demo"
    demo.mkdir(parents=True)
    (demo / "config.json").write_text("{}")
    assert catalog.bundled_demo_model() == demo


def mlx_layout_copy(source: Path, out: Path, quantized: bool) -> Path:
    """The tiny checkpoint renamed to mlx-community's names (optionally with a quantization key)."""
    from safetensors.numpy import load_file, save_file

    out.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    tensors = {}
    for shard in sorted(source.glob("*.safetensors")):
        for key, value in load_file(shard).items():
            key = (key.replace("model.transformer.wte", "model.embed_tokens")
                   .replace("model.transformer.blocks", "model.layers")
                   .replace("model.transformer.ln_f", "model.norm")
                   .replace("model.transformer.ff_out", "model.lm_head"))
            tensors[key] = value
    save_file(tensors, str(out / "model.safetensors"))
    if quantized:
        config = json.loads((out / "config.json").read_text())
        config["quantization"] = {"group_size": 64, "bits": 8}
        (out / "config.json").write_text(json.dumps(config))
    return out


def test_validate_both_layouts(tiny_checkpoint, tmp_path):
    hf = local.validate_model_folder(tiny_checkpoint)
    assert hf.layout == "hf" and hf.quantization is None
    assert hf.weight_bytes == sum(f.stat().st_size for f in tiny_checkpoint.glob("*.safetensors"))
    mlx = local.validate_model_folder(mlx_layout_copy(tiny_checkpoint, tmp_path / "mlx", True))
    assert mlx.layout == "mlx" and mlx.quantization["bits"] == 8
    assert mlx.description == "MLX layout, 8-bit"


@pytest.mark.parametrize("damage, message", [
    ("no-config", "has no config.json"),
    ("other-type", "holds a llama model"),
    ("no-tokenizer", "has no tokenizer.json"),
    ("no-weights", "has no .safetensors weights"),
    ("pickle", "only pickle weights"),
    ("bad-names", "neither LLaDA layout"),
])
def test_validate_refuses_bad_folders(tiny_checkpoint, tmp_path, damage, message):
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    if damage == "no-config":
        (folder / "config.json").unlink()
    elif damage == "other-type":
        config = json.loads((folder / "config.json").read_text())
        config["model_type"] = "llama"
        (folder / "config.json").write_text(json.dumps(config))
    elif damage == "no-tokenizer":
        (folder / "tokenizer.json").unlink()
    elif damage in ("no-weights", "pickle", "bad-names"):
        for f in folder.glob("*.safetensors"):
            f.unlink()
        (folder / "model.safetensors.index.json").unlink()
        if damage == "pickle":
            (folder / "pytorch_model.bin").write_bytes(b"x")
        if damage == "bad-names":
            from safetensors.numpy import save_file

            save_file({"encoder.weight": np.zeros(2, np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=message):
        local.validate_model_folder(folder)
    with pytest.raises(CheckpointError, match="is not a folder"):
        local.validate_model_folder(tmp_path / "missing")


def test_added_folders_persist(tiny_checkpoint, tmp_path):
    store = Store.in_folder(tmp_path / "data")
    model = local.add_folder(store, tiny_checkpoint)
    local.add_folder(store, tiny_checkpoint)           # once only
    store.close()
    store = Store.in_folder(tmp_path / "data")
    assert local.added_folders(store) == [str(model.path)]
    with pytest.raises(CheckpointError):
        local.add_folder(store, tmp_path)
    local.remove_folder(store, tiny_checkpoint)
    assert local.added_folders(store) == []
    store.close()


def test_fit_check_numbers(tiny_checkpoint, monkeypatch):
    size = fit.model_bytes(tiny_checkpoint)
    small = fit.MemoryLimit(size, "memory in this computer")
    report = fit.check_fit(tiny_checkpoint, small)
    assert not report.fits and report.needed_bytes > size
    assert "which is more than" in report.message() and format_bytes(size) in report.message()
    assert "memory in this computer" in report.message()
    assert fit.check_fit(tiny_checkpoint, fit.MemoryLimit(10 ** 12, "x")).fits
    eight_bit = fit.check_fit(tiny_checkpoint, fit.MemoryLimit(16 * 10 ** 9, "x"),
                              weights=int(8.53e9))
    assert eight_bit.fits and not fit.check_fit(
        tiny_checkpoint, fit.MemoryLimit(int(8.6e9), "x"), weights=int(8.53e9)).fits


def test_physical_memory_reads_sysconf(monkeypatch):
    import platform

    monkeypatch.setattr(platform, "system", lambda: "Linux")
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2 ** 20}
    monkeypatch.setattr(fit.os, "sysconf", lambda name: pages[name])
    assert fit.physical_memory() == 4 * 2 ** 30


def test_memory_limit_falls_back_to_ram(monkeypatch):
    import app.session.backends

    monkeypatch.setattr(app.session.backends, "is_apple_silicon", lambda: False)
    monkeypatch.setattr(fit, "accelerator_memory", lambda backend, device=None: None)
    monkeypatch.setattr(fit, "physical_memory", lambda: 32 * 10 ** 9)
    limit = fit.memory_limit()
    assert limit.bytes == 32 * 10 ** 9 and limit.source == "memory in this computer"


def test_apple_silicon_prefers_mlx_working_set(monkeypatch):
    import app.session.backends

    monkeypatch.setattr(app.session.backends, "is_apple_silicon", lambda: True)
    monkeypatch.setattr(fit, "physical_memory", lambda: 16 * 2 ** 30)
    monkeypatch.setattr(fit, "mlx_working_set", lambda: 12 * 10 ** 9)
    limit = fit.memory_limit()
    assert limit.bytes == 12 * 10 ** 9 and "MLX" in limit.source
    monkeypatch.setattr(fit, "mlx_working_set", lambda: None)
    assert fit.memory_limit().source == "memory in this computer"


def test_model_manager_shows_what_a_local_folder_needs(qtbot, tiny_checkpoint, tiny_bf16_checkpoint,
                                                       tmp_path):
    from app.ui.models_ui import ModelManager

    store = Store.in_folder(tmp_path / "data")
    for folder in (tiny_checkpoint, tiny_bf16_checkpoint):
        local.add_folder(store, folder)
    manager = ModelManager(store, cache_dir=tmp_path / "hub")
    qtbot.addWidget(manager)
    memory = {manager.table.item(r, 0).text(): manager.table.item(r, 3).text()
              for r in range(manager.table.rowCount())}
    for folder in (tiny_checkpoint, tiny_bf16_checkpoint):
        row = next(text for name, text in memory.items() if str(folder.resolve()) in name)
        assert row == format_bytes(fit.model_needs(folder).needed_bytes)
    assert memory["LLaDA 8B Instruct (MLX 8-bit)"] == "9.3 GB"
    store.close()
