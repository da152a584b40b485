"""LLaDA-MoE in the app. The MLX path for PyTorch checkpoints (LLaDA-MoE and dense): the model
manager's "Convert to MLX 8-bit…" runs off the GUI thread with progress, writes into the app's
data folder, lists the result and it loads and answers; a cancel or a full disk keeps nothing.
`llada bench --random-moe`: a random MoE against dense models of equal total and active size."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QThread, Qt

from app.eval.bench import format_moe_table
from app.models import convert as conversion
from app.models import local
from app.history.store import Store
from app.ui.models_ui import ModelManager
from backend_choice import BACKEND, HAS_MLX
from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint
from test_cli import llada
from window_support import collect_earlier_windows  # noqa: F401

requires_mlx = pytest.mark.skipif(not HAS_MLX, reason="the conversion runs on MLX")

# Experts 64 wide: the app converts with mlx-community's group size of 64, as for the real model.
SPEC = TinyMoESpec(expert_intermediate_size=64, dtype="bfloat16", seed=3)
CONVERT_TIMEOUT = 120_000


@pytest.fixture(scope="module")
def moe_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_moe_checkpoint(tmp_path_factory.mktemp("moe_app"), SPEC)


@pytest.fixture
def manager(qtbot, tmp_path):
    def make(folder: Path) -> ModelManager:
        store = Store.in_folder(tmp_path / "data")
        window = ModelManager(store, cache_dir=str(tmp_path / "hub"))
        qtbot.addWidget(window)
        assert window.add_folder(str(folder))
        return window

    return make


@requires_mlx
def test_a_pytorch_checkpoint_converts_in_a_thread_and_is_listed_and_usable(
        qtbot, manager, moe_checkpoint, tmp_path):
    window = manager(moe_checkpoint)
    window.select(str(moe_checkpoint.resolve()))
    assert not window.convert_button.isHidden() and window.convert_button.isEnabled()
    gui = QThread.currentThread()
    seen: list[tuple[int, int, bool]] = []
    dialog = window.convert_selected()
    assert dialog is not None and dialog.running
    dialog.thread_.progress.connect(
        lambda p: seen.append((p.done, p.total, QThread.currentThread() is gui)),
        Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(dialog.converted, timeout=CONVERT_TIMEOUT) as blocker:
        pass
    folder = Path(blocker.args[0])
    # Progress came from the worker thread, tensor by tensor, up to the total.
    assert seen and not any(on_gui for *_, on_gui in seen)
    assert seen[-1][0] == seen[-1][1] and [d for d, *_ in seen] == sorted(d for d, *_ in seen)
    assert folder == tmp_path / "data" / "models" / f"{moe_checkpoint.name}-mlx-8bit"
    model_info = local.validate_model_folder(folder)
    assert model_info.layout == "mlx" and model_info.quantization["bits"] == 8
    assert not conversion.is_convertible(folder)
    assert str(folder.resolve()) in local.added_folders(window.store)
    window.select(str(folder.resolve()))
    assert window.use_button.isEnabled() and not window.convert_button.isEnabled()
    with qtbot.waitSignal(window.use_requested) as used:
        window.use_button.click()
    assert Path(used.args[0]) == folder.resolve()

    import llada_mlx
    from llada_core.chat import encode_chat

    model, tokenizer = llada_mlx.load(folder)
    prompt = encode_chat(tokenizer, [{"role": "user", "content": "Hi"}])
    frames = list(llada_mlx.generate_steps(model, prompt, gen_length=8, block_length=8,
                                           steps=4, mode="exact"))
    assert len(frames) == 4 and (frames[-1].tokens != model.args.mask_token_id).all()


@requires_mlx
def test_a_cancel_keeps_nothing_and_says_so(qtbot, manager, moe_checkpoint):
    window = manager(moe_checkpoint)
    window.select(str(moe_checkpoint.resolve()))
    dialog = window.convert_selected()
    # Cancel from the worker at its first reported tensor: the conversion has really started.
    dialog.thread_.progress.connect(lambda _p: dialog.thread_.cancel(),
                                    Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(dialog.thread_.cancelled, timeout=CONVERT_TIMEOUT):
        pass
    qtbot.waitUntil(lambda: dialog.message.isVisible())
    text = dialog.message.text()
    assert text.count(".") == 1 and "cancelled" in text
    models = window.data_dir() / conversion.MODELS_FOLDER
    assert not models.exists() or not any(models.iterdir())
    assert len(local.added_folders(window.store)) == 1
    assert dialog.retry_button.isVisible()


@requires_mlx
def test_a_full_disk_is_one_sentence_and_keeps_nothing(moe_checkpoint, tmp_path, monkeypatch):
    import importlib

    # The module, not llada_mlx's re-exported convert function of the same name.
    mlx_convert = importlib.import_module("llada_mlx.convert")

    written = []

    def disk_full(path, *args, **kwargs):
        written.append(path)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(mlx_convert.mx, "save_safetensors", disk_full)
    target = conversion.target_folder(tmp_path / "data", "LLaDA-MoE")
    job = conversion.ModelConversion(moe_checkpoint, target)
    with pytest.raises(conversion.ConversionError) as error:
        job.run()
    assert written and str(error.value) == ("The disk is full; the conversion stopped and "
                                            "nothing was kept.")
    assert not target.exists() and not job.partial.exists()


@requires_mlx
def test_too_little_free_space_is_refused_before_writing(moe_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(conversion, "free_space", lambda folder: 1000)
    target = conversion.target_folder(tmp_path / "data", "m")
    needed = conversion.estimated_bytes(conversion.parameter_count(moe_checkpoint))
    assert needed > 1000
    with pytest.raises(conversion.ConversionError, match="Not enough disk space"):
        conversion.ModelConversion(moe_checkpoint, target).run()
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))


@requires_mlx
def test_the_estimate_is_close_to_what_is_written(moe_checkpoint, tmp_path):
    target = conversion.ModelConversion(moe_checkpoint, tmp_path / "out-mlx-8bit").run()
    written = sum(p.stat().st_size for p in target.glob("*.safetensors"))
    estimate = conversion.estimated_bytes(conversion.parameter_count(moe_checkpoint))
    assert 0.8 < written / estimate < 1.25


@requires_mlx
def test_the_dense_family_converts_too(tiny_checkpoint, tmp_path):
    assert conversion.is_convertible(tiny_checkpoint)
    target = conversion.ModelConversion(tiny_checkpoint, tmp_path / "dense-mlx-8bit").run()
    assert local.validate_model_folder(target).quantization["bits"] == 8


def test_only_float_hugging_face_folders_are_convertible(moe_checkpoint, tmp_path):
    assert conversion.is_convertible(moe_checkpoint)
    assert local.validate_model_folder(moe_checkpoint).layout == "hf"
    assert not conversion.is_convertible(tmp_path)
    assert not conversion.is_convertible(None)
    assert conversion.target_folder(tmp_path, "inclusionAI/LLaDA MoE").name == \
        "inclusionAI-LLaDA-MoE-mlx-8bit"


# --- llada bench --random-moe ------------------------------------------------------------------
TINY_BENCH = ["--random-d-model", "64", "--random-layers", "2", "--random-heads", "4",
              "--moe-experts", "4", "--moe-top-k", "2", "--moe-expert-width", "32",
              "--prompt-length", "8", "--gen-length", "8"]


def test_bench_random_moe_against_dense_of_equal_total_and_active_size():
    result = llada("bench", "--random-moe", "--backend", BACKEND, "--json", *TINY_BENCH,
                   timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {r["model"].split(",")[-1].split("(")[0].strip(): r for r in report["results"]}
    assert report["canvas"] == 16 and set(rows) == {"MoE 4 experts top-2", "equal total",
                                                     "equal active"}
    sizes = report["sizes"]
    d, layers, experts = sizes["hidden"], sizes["layers"], sizes["experts"]
    head_dim = d // sizes["heads"]
    # Counted from the checkpoints' tensors: the MoE has the dense model's weights plus a router
    # and the per-head q/k norms in each layer, and k of E experts are active.
    extra = layers * (experts * d + 2 * head_dim)
    moe = rows["MoE 4 experts top-2"]
    assert moe["layer_parameters"] == rows["equal total"]["layer_parameters"] + extra
    assert moe["active_parameters"] == rows["equal active"]["layer_parameters"] + extra
    for row in report["results"]:
        assert row["backend"] == BACKEND and row["ms_per_nfe"] > 0 and row["peak_rss"] > 0
        assert (row["peak_backend"] or 0) > 0 if BACKEND == "mlx" else row["peak_backend"] is None
    table = format_moe_table(report["results"], report["canvas"], report["repeats"], sizes)
    assert table.count("1.00x") == 1 and "equal active" in table


def test_bench_random_moe_refuses_a_model_and_bad_sizes(tiny_checkpoint):
    result = llada("bench", "--random-moe", "--model", str(tiny_checkpoint))
    assert result.returncode != 0 and "--random-moe builds its own models" in result.stderr
    result = llada("bench", "--random-moe", "--backend", BACKEND, *TINY_BENCH, "--moe-top-k", "5")
    assert result.returncode != 0 and "top-k 5" in result.stderr
