"""The fit check: weights in the dtype they will be loaded in + the working set of the settings,
against what the machine offers. Machine facts are injected; nothing here asks real hardware.

Checkpoints "like the real ones" are built from the real metadata in ../shared/real-metadata
(skipped when absent): the real config.json and index (tensor names and shard map), shards that
hold only a safetensors header with each tensor's dtype and shape, sparse-extended on POSIX so
their size on disk is the real one without writing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import app.session.backends
from app.models import fit
from app.models.catalog import GB, catalog_entry, recommended_entry
from llada_core.checkpoint import read_config, stored_weights

ROOT = Path(__file__).resolve().parents[1]
GiB = 2 ** 30
INSTRUCT = "GSAI-ML/LLaDA-8B-Instruct"
MLX_8BIT = "mlx-community/LLaDA-8B-Instruct-mlx-8bit"
MLX_4BIT = "mlx-community/LLaDA-8B-Instruct-mlx-4bit"


def real_metadata() -> Path | None:
    for candidate in (ROOT.parent / "shared" / "real-metadata", ROOT / "shared" / "real-metadata"):
        if (candidate / INSTRUCT / "config.json").is_file():
            return candidate
    return None


REAL = real_metadata()
needs_real = pytest.mark.skipif(REAL is None, reason="../shared/real-metadata is not here")


def tensor_shapes(name: str, config: dict) -> list[tuple[str, str, list[int]]]:
    """(name, safetensors dtype, shape) of what `name` in an index stands for, in either layout;
    quantized layouts list weight, scales and biases under their own names already."""
    d, hidden = config["d_model"], config["mlp_hidden_size"]
    rows = config.get("embedding_size") or config["vocab_size"]
    kv = config["n_kv_heads"] * d // config["n_heads"]
    quant = config.get("quantization")
    module, _, part = name.rpartition(".")
    leaf = module.rsplit(".", 1)[-1]
    if leaf in ("attn_norm", "ff_norm", "ln_f", "norm"):
        return [(name, "F16" if quant else "BF16", [d])]
    out_in = {"wte": (rows, d), "embed_tokens": (rows, d), "ff_out": (d, hidden),
              "lm_head": (rows, d), "q_proj": (d, d), "attn_out": (d, d), "k_proj": (kv, d),
              "v_proj": (kv, d), "ff_proj": (hidden, d), "up_proj": (hidden, d)}[leaf]
    if module == "model.transformer.ff_out":    # the official head, not a block's down projection
        out_in = (rows, d)
    if not quant:
        return [(name, "BF16", list(out_in))]
    out, inp = out_in
    if part == "weight":
        return [(name, "U32", [out, inp * quant["bits"] // 32])]
    return [(name, "F16", [out, inp // quant["group_size"]])]


def header_only_checkpoint(out: Path, repo: str) -> Path:
    """A folder with `repo`'s real config and index and header-only shards (see the docstring)."""
    source = REAL / repo
    def real_or_reconstructed(name: str) -> str:
        if (source / name).is_file():
            return name
        return name.replace(".json", ".RECONSTRUCTED.json")

    config_name = real_or_reconstructed("config.json")
    index_name = real_or_reconstructed("model.safetensors.index.json")
    config = json.loads((source / config_name).read_text())
    index = json.loads((source / index_name).read_text())
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    shards: dict[str, dict] = {}
    for name, shard in index["weight_map"].items():
        for tensor, dtype, shape in tensor_shapes(name, config):
            shards.setdefault(shard, {})[tensor] = (dtype, shape)
    sizes = {"BF16": 2, "F16": 2, "U32": 4}
    for shard, tensors in shards.items():
        header, offset = {}, 0
        for tensor, (dtype, shape) in tensors.items():
            size = sizes[dtype]
            for n in shape:
                size *= n
            header[tensor] = {"dtype": dtype, "shape": shape,
                              "data_offsets": [offset, offset + size]}
            offset += size
        raw = json.dumps(header).encode()
        with open(out / shard, "wb") as handle:
            handle.write(len(raw).to_bytes(8, "little") + raw)
            if hasattr(os.stat_result, "st_blocks"):   # sparse: the real size, nothing written
                handle.truncate(8 + len(raw) + offset)
    return out


def index_total(folder: Path) -> int:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    return index["metadata"]["total_size"]


@pytest.fixture
def machine(monkeypatch):
    """Set this machine's facts: facts(apple=..., ram=..., working_set=..., gpu=...)."""
    calls = {"cuda": 0}

    def facts(*, apple: bool, ram: int, working_set: int | None = None, gpu=None,
              backend: str = "torch"):
        monkeypatch.setattr(app.session.backends, "is_apple_silicon", lambda: apple)
        monkeypatch.setattr(app.session.backends, "default_backend", lambda: backend)
        monkeypatch.setattr(fit, "physical_memory", lambda: ram)
        monkeypatch.setattr(fit, "mlx_working_set", lambda: working_set)

        def accelerator_memory(backend, device=None):
            assert not apple, "a Mac must never ask torch for CUDA"
            if backend != "torch":   # MLX off a Mac runs on the CPU
                return None
            calls["cuda"] += 1
            return gpu

        monkeypatch.setattr(fit, "accelerator_memory", accelerator_memory)
        return calls

    return facts


# --- the real 8B -------------------------------------------------------------------------------
@needs_real
def test_official_8b_needs_its_bf16_weights_plus_the_working_set(tmp_path):
    folder = header_only_checkpoint(tmp_path / "instruct", INSTRUCT)
    total = index_total(folder)
    config = read_config(folder)
    assert "torch_dtype" not in config
    stored = stored_weights(folder)
    assert stored.dtype == "bfloat16" and stored.nbytes == total == 16_031_162_368
    limit = fit.MemoryLimit(10 ** 13, "x")
    report = fit.check_fit(folder, limit)
    assert report.dtype == "bfloat16" and report.weights_bytes == total
    assert 16.0e9 < report.needed_bytes < 17.0e9, report.needed_bytes
    # every part of the working set from config.json: K and V of every layer for every row
    rows = fit.DEFAULT_PROMPT_TOKENS + fit.DEFAULT_ANSWER_TOKENS
    per_token_kv = config["n_layers"] * 2 * config["d_model"] * 2
    assert per_token_kv == 512 * 1024        # the spec's figure for bf16
    assert report.working.kv_cache == rows * per_token_kv
    assert report.working.logits == (rows * config["embedding_size"] * 2
                                     + fit.DEFAULT_ANSWER_TOKENS * config["embedding_size"] * 4)
    assert report.needed_bytes == total + report.working.total
    if hasattr(os.stat_result, "st_blocks"):
        assert "16.0 GB in memory as bfloat16 (16.0 GB on disk)" in report.message()

    as_f32 = fit.check_fit(folder, limit, dtype="float32")
    assert as_f32.dtype == "float32" and as_f32.weights_bytes == 2 * total
    assert 1.95 < as_f32.needed_bytes / report.needed_bytes < 2.05
    assert 32.0e9 < as_f32.needed_bytes < 34.0e9
    # longer answers and guidance cost more, in proportion to the model's own dimensions
    longer = fit.check_fit(folder, limit, workload=fit.Workload(gen_length=512))
    guided = fit.check_fit(folder, limit, workload=fit.Workload(cfg_scale=1.0))
    assert longer.working.kv_cache == (fit.DEFAULT_PROMPT_TOKENS + 512) * per_token_kv
    assert guided.working.kv_cache == 2 * report.working.kv_cache
    assert report.needed_bytes < guided.needed_bytes and report.needed_bytes < longer.needed_bytes


@needs_real
def test_quantized_mlx_weights_count_as_stored(tmp_path):
    folder = header_only_checkpoint(tmp_path / "q8", MLX_8BIT)
    total = index_total(folder)
    stored = stored_weights(folder)
    assert stored.nbytes == total          # our layout guess reproduces the published size
    assert stored.dtype == "float16"       # the scales', biases' and norms' dtype
    report = fit.check_fit(folder, fit.MemoryLimit(10 ** 13, "x"))
    assert report.weights_bytes == total and report.dtype == "float16"
    assert "as 8-bit quantized (with float16 scales)" in report.message()
    assert 9.0e9 < report.needed_bytes < 9.6e9
    # float32 casts only the floating tensors; the packed uint32 weights stay
    packed = sum(t.nbytes for t in stored.tensors.values() if not t.is_float)
    as_f32 = fit.check_fit(folder, fit.MemoryLimit(10 ** 13, "x"), dtype="float32")
    assert as_f32.weights_bytes == packed + 2 * (total - packed)


@needs_real
def test_the_catalog_numbers_are_what_the_fit_check_computes(tmp_path):
    for repo in (INSTRUCT, MLX_8BIT, MLX_4BIT):
        entry = catalog_entry(repo)
        report = fit.check_fit(header_only_checkpoint(tmp_path / repo.replace("/", "_"), repo),
                               fit.MemoryLimit(10 ** 13, "x"))
        assert abs(entry.memory_bytes - report.needed_bytes) < 0.1 * GB, (repo, report.needed_bytes)
        assert abs(entry.size_bytes - report.weights_bytes) < 0.03 * GB, repo


# --- machines ----------------------------------------------------------------------------------
# Metal's recommended working set is about two thirds of RAM on these Macs.
MAC_16GB = dict(apple=True, ram=16 * GiB, working_set=int(16 * GiB * 2 / 3), backend="mlx")
MAC_8GB = dict(apple=True, ram=8 * GiB, working_set=int(8 * GiB * 2 / 3), backend="mlx")


@needs_real
def test_a_16gb_mac_runs_the_8bit_model_not_the_bf16_one(tmp_path, machine):
    calls = machine(**MAC_16GB)
    limit = fit.memory_limit("mlx")
    assert limit.bytes == MAC_16GB["working_set"] and "MLX" in limit.source
    assert recommended_entry().repo_id == MLX_8BIT
    eight = fit.check_fit(header_only_checkpoint(tmp_path / "q8", MLX_8BIT), backend="mlx")
    bf16 = fit.check_fit(header_only_checkpoint(tmp_path / "bf16", INSTRUCT), backend="mlx")
    assert eight.fits and not bf16.fits
    assert "which is more than the 11.5 GB of memory MLX recommends" in bf16.message()
    assert calls["cuda"] == 0


@needs_real
def test_an_8gb_mac_gets_the_4bit_model(tmp_path, machine):
    calls = machine(**MAC_8GB)
    assert recommended_entry().repo_id == MLX_4BIT
    assert recommended_entry(memory=16 * GiB).repo_id == MLX_8BIT
    four = fit.check_fit(header_only_checkpoint(tmp_path / "q4", MLX_4BIT), backend="mlx")
    eight = fit.check_fit(header_only_checkpoint(tmp_path / "q8", MLX_8BIT), backend="mlx")
    assert four.fits and not eight.fits
    assert calls["cuda"] == 0


def test_recommendation_by_ram(machine):
    machine(apple=True, ram=8 * GiB)
    assert recommended_entry().repo_id == MLX_4BIT
    assert recommended_entry(memory=24 * GiB).repo_id == MLX_8BIT
    assert recommended_entry(apple_silicon=False).repo_id == INSTRUCT
    machine(apple=True, ram=16 * GiB)
    assert recommended_entry().repo_id == MLX_8BIT
    machine(apple=False, ram=8 * GiB)
    assert recommended_entry().repo_id == INSTRUCT


def test_available_memory_per_machine(machine):
    calls = machine(apple=False, ram=64 * GiB, gpu=(24 * GB, "NVIDIA L4"))
    gpu = fit.memory_limit("torch")
    assert gpu.bytes == 24 * GB and "NVIDIA L4" in gpu.source
    assert fit.memory_limit(None).bytes == 24 * GB               # torch is the default backend
    assert fit.memory_limit("torch", device="cpu").bytes == 64 * GiB
    asked = calls["cuda"]
    assert fit.memory_limit("mlx").source == "memory in this computer"
    assert calls["cuda"] == asked                                # MLX off a Mac: RAM, no torch
    machine(apple=False, ram=64 * GiB, gpu=None)
    assert fit.memory_limit("torch").bytes == 64 * GiB           # no CUDA: RAM
    machine(apple=True, ram=32 * GiB, working_set=None)
    assert fit.memory_limit("mlx").source == "memory in this computer"
    machine(apple=False, ram=None)
    assert fit.memory_limit("mlx") is None


def test_the_tiny_checkpoint_fits_by_its_own_dimensions(tiny_checkpoint, tiny_bf16_checkpoint):
    config = read_config(tiny_checkpoint)
    f32 = fit.check_fit(tiny_checkpoint, fit.MemoryLimit(10 ** 12, "x"))
    bf16 = fit.check_fit(tiny_bf16_checkpoint, fit.MemoryLimit(10 ** 12, "x"))
    assert (f32.dtype, bf16.dtype) == ("float32", "bfloat16")
    assert f32.weights_bytes == 2 * bf16.weights_bytes == stored_weights(tiny_checkpoint).nbytes
    head_dim = config["d_model"] // config["n_heads"]
    kv_heads = config.get("n_kv_heads") or config["n_heads"]
    rows = fit.DEFAULT_PROMPT_TOKENS + fit.DEFAULT_ANSWER_TOKENS
    assert f32.working.kv_cache == config["n_layers"] * 2 * rows * kv_heads * head_dim * 4
    assert bf16.working.kv_cache * 2 == f32.working.kv_cache
    assert fit.check_fit(tiny_bf16_checkpoint, fit.MemoryLimit(10 ** 12, "x"),
                         dtype="float32").needed_bytes == f32.needed_bytes
    tight = fit.MemoryLimit(f32.needed_bytes - 1, "memory in this computer")
    report = fit.check_fit(tiny_checkpoint, tight)
    assert not report.fits and "which is more than" in report.message()
    assert fit.check_fit(tiny_checkpoint, fit.MemoryLimit(f32.needed_bytes, "x")).fits
    with pytest.raises(ValueError, match="float64"):
        fit.check_fit(tiny_checkpoint, tight, dtype="float64")


def test_a_mac_fit_check_never_imports_torch(tiny_checkpoint):
    code = (
        "import sys, app.session.backends\n"
        "from app.models import fit\n"
        "app.session.backends.is_apple_silicon = lambda: True\n"
        "fit.mlx_working_set = lambda: 12 * 10 ** 9\n"
        f"report = fit.check_fit({str(tiny_checkpoint)!r})\n"
        "assert report.limit.bytes == 12 * 10 ** 9, report.limit\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(report.message())\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "memory MLX recommends" in result.stdout


def test_the_fit_check_reads_a_llada_moe_config(tmp_path):
    from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint

    folder = make_tiny_moe_checkpoint(tmp_path / "moe", TinyMoESpec())
    config = json.loads((folder / "config.json").read_text())
    report = fit.model_needs(folder)
    assert report.needed_bytes > fit.model_bytes(folder)
    dims = fit.Dimensions.of(config)
    assert dims.ffn_width == config["num_experts_per_tok"] * config["expert_intermediate_size"]
    assert dims.vocab_rows == config["vocab_size"] and dims.width == config["hidden_size"]
