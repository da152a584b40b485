"""Which model opens when none is named, a folder's own sampler defaults, and the demo label."""

from __future__ import annotations

import json
import shutil

import pytest

import app.models.catalog as catalog
import app.models.defaults as defaults
from backend_choice import BACKEND
from app.cli import main


@pytest.fixture
def fake_demo(tiny_checkpoint, tmp_path, monkeypatch):
    """A tiny checkpoint standing in for the bundled demo model, with its own sampler defaults."""
    folder = tmp_path / "llada-demo"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / defaults.SAMPLER_DEFAULTS_FILE).write_text(
        json.dumps({"gen_length": 16, "block_length": 16, "steps": 8, "mode": "exact"}))
    monkeypatch.setattr(catalog, "bundled_demo_model", lambda: folder)
    monkeypatch.setattr(defaults, "bundled_demo_model", lambda: folder)
    return folder


def test_the_demo_is_the_default_when_nothing_is_installed(fake_demo, monkeypatch):
    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: None)
    assert defaults.default_model() == str(fake_demo)
    assert defaults.is_bundled_demo(str(fake_demo))
    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: "GSAI-ML/LLaDA-8B-Instruct")
    assert defaults.default_model() == "GSAI-ML/LLaDA-8B-Instruct"


def test_with_no_demo_and_nothing_installed_the_recommended_model_is_named(monkeypatch):
    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: None)
    monkeypatch.setattr(defaults, "bundled_demo_model", lambda: None)
    assert defaults.default_model() == catalog.recommended_entry().repo_id


def test_generate_without_model_uses_the_demo_and_its_lengths(fake_demo, monkeypatch, capsys):
    monkeypatch.setattr(defaults, "installed_catalog_model", lambda: None)
    assert main(["generate", "--prompt", "Hello", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["model"] == str(fake_demo)
    assert len(data["answer_ids"]) == 16 and data["nfe"] == 8
    assert "demo model" in captured.err
    # Lengths the user gives win over the folder's.
    assert main(["generate", "--prompt", "Hello", "--json", "--gen-length", "32", "--steps", "32"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["answer_ids"]) == 32 and data["settings"]["block_length"] == 16


def test_sampler_defaults_ignore_bad_files(tmp_path):
    assert defaults.sampler_defaults(str(tmp_path)) == {}
    (tmp_path / defaults.SAMPLER_DEFAULTS_FILE).write_text("{ broken")
    assert defaults.sampler_defaults(str(tmp_path)) == {}
    (tmp_path / defaults.SAMPLER_DEFAULTS_FILE).write_text(json.dumps({"gen_length": "long", "steps": 8}))
    assert defaults.sampler_defaults(str(tmp_path)) == {"steps": 8}
    assert defaults.sampler_defaults("GSAI-ML/LLaDA-8B-Instruct") == {}


def test_the_window_labels_the_demo_and_offers_the_real_model(qtbot, fake_demo, tmp_path, monkeypatch):
    from app.history.store import Store
    from app.ui.main_window import MainWindow

    store = Store.in_folder(tmp_path / "data")
    window = MainWindow(store, model=str(fake_demo), backend=BACKEND, load_options={"device": "cpu"})
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.model_loaded, timeout=120_000):
            pass
        assert "demo model" in window.banner.text()
        assert window.banner.action.isVisibleTo(window) and window.banner.action.text().startswith("Get ")
        opened = []
        monkeypatch.setattr(window, "download_model", lambda repo_id: opened.append(repo_id))
        window.banner.action.click()
        assert opened == [catalog.recommended_entry().repo_id]
    finally:
        window.shutdown()
        store.close()
