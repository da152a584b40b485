"""Packaging, checked without building: the specs, the bundle entry point, the icon sources.
(The real Linux bundle smoke test is packaging/linux/smoke.sh: slow, run by hand.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAC_SPEC = ROOT / "packaging" / "macos" / "LLaDA Desktop.spec"
LINUX_SPEC = ROOT / "packaging" / "linux" / "llada-desktop.spec"


def test_specs_are_python_and_name_what_the_bundles_need():
    for spec in (MAC_SPEC, LINUX_SPEC):
        ast.parse(spec.read_text(encoding="utf-8"))
    mac = MAC_SPEC.read_text(encoding="utf-8")
    for needle in ("BUNDLE(", "bundle_identifier=", '"NSHighResolutionCapable": True',
                   '"NSRequiresAquaSystemAppearance": False', '"LSMinimumSystemVersion"',
                   "version=version()", "LLaDA.icns"):
        assert needle in mac, needle
    assert "COLLECT(" in LINUX_SPEC.read_text(encoding="utf-8")
    for script in ("packaging/macos/build.sh", "packaging/linux/build.sh"):
        assert "packaging/check_bundle.py" in (ROOT / script).read_text(), script
    for script in ("packaging/macos/build.sh", "packaging/linux/build.sh",
                   "packaging/linux/smoke.sh", "resources/make_icns.sh"):
        path = ROOT / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)
    assert "hdiutil create" in (ROOT / "packaging/macos/build.sh").read_text()
    assert "iconutil -c icns" in (ROOT / "resources/make_icns.sh").read_text()
    assert (ROOT / "resources" / "icon-1024.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_mac_bundle_is_built_on_python_3_12_or_later(monkeypatch):
    """None is immortal from 3.12: no PySide6 release can abort the bundled app by dropping
    references to it (PySide6 6.12.0 on 3.11 did, issue 21)."""
    common = _packaging("common")
    BUNDLE_PYTHON, check_bundle_python = common.BUNDLE_PYTHON, common.check_bundle_python

    assert BUNDLE_PYTHON == (3, 12)
    for older in ((3, 10), (3, 11)):
        with pytest.raises(SystemExit, match="Python 3.12 or later, not 3.1"):
            check_bundle_python(older)
    check_bundle_python((3, 12))
    check_bundle_python((3, 13))
    assert "check_bundle_python()" in MAC_SPEC.read_text(encoding="utf-8")
    build = (ROOT / "packaging/macos/build.sh").read_text()
    assert "sys.version_info >= (3, 12)" in build
    old = subprocess.run([sys.executable, "-c", build.split("\n\"$PYTHON\" -c ", 1)[1]
                          .split("\n", 1)[0].strip("'")], capture_output=True, text=True)
    assert (old.returncode == 0) == (sys.version_info >= (3, 12))


def test_version_for_info_plist_comes_from_the_package():
    from app import __version__

    text = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in text
    assert _packaging("common").version() == __version__


def _packaging(name: str):
    """A module of packaging/ (they import each other by bare name, as the specs do)."""
    import importlib

    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_bundle_entry_point_dispatches_subcommands():
    entry = ROOT / "packaging" / "entry.py"
    result = subprocess.run([sys.executable, str(entry), "--version"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "llada-desktop" in result.stdout
    result = subprocess.run([sys.executable, str(entry), "download", "--list"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "GSAI-ML/LLaDA-8B-Instruct" in result.stdout
    for command in ("eval", "make-tiny", "app"):  # every subcommand, whatever its module's name
        result = subprocess.run([sys.executable, str(entry), command, "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0 and f"usage: llada {command}" in result.stdout, command


def test_mlx_keeps_one_libmlx_beside_its_metallib():
    one_libmlx_beside_metallib = _packaging("mlx_bundle").one_libmlx_beside_metallib
    lib = ("mlx/lib/libmlx.dylib", "/site/mlx/lib/libmlx.dylib", "BINARY")
    stray = ("libmlx.dylib", "/site/mlx/lib/libmlx.dylib", "BINARY")
    core = ("mlx/core.cpython-311-darwin.so", "/site/mlx/core.so", "EXTENSION")
    metallib = ("mlx/lib/mlx.metallib", "/site/mlx/lib/mlx.metallib", "DATA")
    assert one_libmlx_beside_metallib([stray, core, lib], [metallib]) == [core, lib]
    assert one_libmlx_beside_metallib([lib, core], [metallib]) == [lib, core]
    with pytest.raises(SystemExit, match="beside mlx.metallib"):
        one_libmlx_beside_metallib([stray, core], [metallib])


def test_cpu_mlx_keeps_the_libmlx_in_its_package():
    one_libmlx = _packaging("mlx_bundle").one_libmlx
    lib = ("mlx/lib/libmlx.so", "/site/mlx/lib/libmlx.so", "BINARY")
    stray = ("libmlx.so", "/site/mlx/lib/libmlx.so", "BINARY")
    blas = ("mlx_cpu.libs/libblas.so.3", "/site/mlx_cpu.libs/libblas.so.3", "BINARY")
    assert one_libmlx([stray, blas, lib], [], metal=False) == [blas, lib]
    with pytest.raises(SystemExit, match="mlx/lib"):
        one_libmlx([stray, blas], [], metal=False)
    # on Metal the metallib rule applies: no metallib, no build
    with pytest.raises(SystemExit, match="beside mlx.metallib"):
        one_libmlx([lib], [], metal=True)


class FakeHooks:
    """PyInstaller.utils.hooks' four functions, answering for an installed MLX."""

    def __init__(self, metal: bool):
        self.metal = metal
        self.calls: list[tuple] = []

    def collect_submodules(self, package):
        self.calls.append(("collect_submodules", package))
        return [package, f"{package}.core", f"{package}.nn", f"{package}._reprlib_fix"]

    def collect_data_files(self, package, excludes=None):
        self.calls.append(("collect_data_files", package, tuple(excludes or ())))
        return [("/site/mlx/lib/mlx.metallib", "mlx/lib")] if self.metal else []

    def collect_dynamic_libs(self, package):
        self.calls.append(("collect_dynamic_libs", package))
        return [(f"/site/mlx/lib/libmlx.{'dylib' if self.metal else 'so'}", "mlx/lib")]

    def copy_metadata(self, dist):
        if dist == "torch":
            raise AssertionError("torch's metadata asked for")
        return [(f"/site/{dist}.dist-info", f"{dist}.dist-info")]


class FakeAnalysis:
    """Analysis() as far as the specs use it: records its arguments and turns (src, dest_dir)
    pairs into TOC entries, adding the stray top-level libmlx PyInstaller can add."""

    def __init__(self, scripts, **kwargs):
        self.kwargs = kwargs
        self.scripts = scripts
        self.pure = [(name, f"/src/{name}.py", "PYMODULE") for name in kwargs["hiddenimports"]]
        self.binaries = [(f"{dest}/{Path(src).name}", src, "BINARY")
                         for src, dest in kwargs["binaries"]]
        self.binaries.insert(0, (Path(kwargs["binaries"][0][0]).name, kwargs["binaries"][0][0],
                                 "BINARY"))
        self.datas = [(f"{dest}/{Path(src).name}", src, "DATA") for src, dest in kwargs["datas"]]


def _run_spec(spec: Path, monkeypatch, *, metal: bool) -> FakeAnalysis:
    """Execute a spec file as PyInstaller would, with PyInstaller's globals faked."""
    common = _packaging("common")
    monkeypatch.setattr(common, "_pyinstaller_hooks", lambda: FakeHooks(metal))
    # the Mac spec stops below Python 3.12 (test_the_mac_bundle_is_built_on_python_3_12_or_later)
    monkeypatch.setattr(common, "check_bundle_python", lambda: None)
    monkeypatch.setattr(sys, "platform", "darwin" if metal else "linux")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec inserts packaging/
    made: dict[str, FakeAnalysis] = {}

    def analysis(scripts, **kwargs):
        made["a"] = FakeAnalysis(scripts, **kwargs)
        return made["a"]

    def anything(*args, **kwargs):
        return (args, kwargs)

    spec_globals = {"__file__": str(spec), "__name__": "__main__", "SPECPATH": str(spec.parent),
                    "Analysis": analysis, "PYZ": anything, "EXE": anything,
                    "COLLECT": anything, "BUNDLE": anything}
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), spec_globals)
    return made["a"]


@pytest.mark.parametrize("spec, metal", [(MAC_SPEC, True), (LINUX_SPEC, False)],
                         ids=["macos", "linux"])
def test_both_specs_bundle_mlx_and_exclude_torch(spec, metal, monkeypatch):
    a = _run_spec(spec, monkeypatch, metal=metal)
    kwargs = a.kwargs
    for name in ("torch", "llada_torch", "llada_train.trainer", "llada_train.objective"):
        assert name in kwargs["excludes"], name
    hidden = kwargs["hiddenimports"]
    for name in ("llada_mlx", "llada_mlx.sampler", "llada_mlx.loader", "mlx", "mlx.core",
                 "mlx._reprlib_fix", "app.cli.generate", "app.ui.main_window",
                 "llada_train.tiny", "llada_train.demo_tasks"):
        assert name in hidden, name
    assert not [n for n in hidden if n.split(".")[0] in ("torch", "llada_torch", "mlx_lm")]
    assert "llada_train.trainer" not in hidden and "llada_train.objective" not in hidden
    dests = {dest for _, dest in kwargs["datas"]}
    assert {"app/resources", "llada_train/data"} <= dests  # the demo model, the tiny corpus
    assert (ROOT / "app" / "resources" / "llada-demo" / "model.safetensors").is_file()
    # finish_analysis ran: one libmlx, in mlx/lib (beside the metallib on a Mac)
    assert [b[0] for b in a.binaries if Path(b[0]).name.startswith("libmlx")] == [
        f"mlx/lib/libmlx.{'dylib' if metal else 'so'}"]


def test_both_specs_get_their_parts_from_the_same_function():
    for spec in (MAC_SPEC, LINUX_SPEC):
        tree = ast.parse(spec.read_text(encoding="utf-8"))
        calls = {node.func.id: node for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert "mlx_bundle_parts" in calls and "finish_analysis" in calls, spec.name
        keywords = {k.arg: ast.unparse(k.value) for k in calls["Analysis"].keywords}
        for field in ("binaries", "datas", "hiddenimports", "excludes"):
            assert keywords[field] == f"parts.{field}", (spec.name, field)


def test_the_analysis_fails_when_torch_gets_in():
    common = _packaging("common")

    class Analysis:
        pure = [("app.cli", "/src/app/cli/__init__.py", "PYMODULE"),
                ("torch.nn", "/site/torch/nn/__init__.py", "PYMODULE")]
        binaries = [("mlx/lib/libmlx.so", "/site/mlx/lib/libmlx.so", "BINARY"),
                    ("torch/lib/libtorch_cpu.so", "/site/torch/lib/libtorch_cpu.so", "BINARY")]
        datas: list = []

    with pytest.raises(SystemExit, match="libtorch_cpu.so"):
        common.finish_analysis(Analysis(), platform="linux")
    Analysis.pure = Analysis.pure[:1]
    Analysis.binaries = Analysis.binaries[:1]
    common.finish_analysis(Analysis(), platform="linux")


def test_bundled_modules_do_not_import_what_the_bundle_leaves_out():
    """A module-level `import torch` (or of the trainer) in a bundled module would break the
    bundle at start-up: PyInstaller leaves torch out."""
    common = _packaging("common")
    offenders = []
    for name in common.app_modules():
        path = ROOT / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: imports inside functions run on demand
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{name}: {n}" for n in names if common.is_excluded(n)]
    assert offenders == []
    assert "llada_train.trainer" not in common.app_modules()
    assert not [n for n in common.app_modules() if n.startswith("llada_torch")]


def test_bundle_check_names_torch_and_missing_mlx():
    check = _packaging("check_bundle")
    good_files = ["llada-desktop", "_internal/mlx/core.cpython-311-x86_64-linux-gnu.so",
                  "_internal/mlx/lib/libmlx.so",
                  "_internal/app/resources/llada-demo/model.safetensors",
                  "_internal/app/resources/llada-demo/tokenizer.json",
                  "_internal/llada_train/data/tiny_corpus.txt",
                  # Qt's, not torch's libshm
                  "_internal/PySide6/Qt/plugins/wayland-graphics-integration-client/"
                  "libshm-emulation-server.so"]
    good_modules = list(check.REQUIRED_MODULES) + ["mlx", "mlx.nn", "safetensors.torch"]
    assert check.bundle_problems(good_files, good_modules, metal=False) == []
    top_libmlx = good_files + ["_internal/libmlx.so"]
    assert check.bundle_problems(top_libmlx, good_modules, metal=False,
                                 links={"_internal/libmlx.so"}) == []  # PyInstaller's link
    assert "2 copies of libmlx" in check.bundle_problems(top_libmlx, good_modules, metal=False)[0]
    torch_lib = good_files + ["_internal/torch/lib/libtorch_cpu.so"]
    assert "torch files" in check.bundle_problems(torch_lib, good_modules, metal=False)[0]
    torch_module = good_modules + ["torch", "llada_torch.sampler"]
    assert "llada_torch.sampler" in check.bundle_problems(good_files, torch_module,
                                                          metal=False)[0]
    no_mlx = [m for m in good_modules if not m.startswith("llada_mlx")]
    assert "llada_mlx" in check.bundle_problems(good_files, no_mlx, metal=False)[0]
    problems = check.bundle_problems(good_files, good_modules, metal=True)
    assert problems and "mlx.metallib" in problems[0]
    assert check.bundle_problems(good_files + ["_internal/mlx/lib/mlx.metallib"],
                                 good_modules, metal=True) == []


def test_mlx_parts_with_pyinstallers_own_hooks():
    pytest.importorskip("PyInstaller.utils.hooks")
    pytest.importorskip("mlx.core")
    parts = _packaging("common").mlx_bundle_parts()
    assert {"mlx.core", "mlx.nn", "mlx._reprlib_fix", "llada_mlx.sampler"} <= set(parts.hiddenimports)
    assert [dest for src, dest in parts.binaries if Path(src).name.startswith("libmlx")] == ["mlx/lib"]
    assert not [src for src, _ in parts.datas if "/include/" in src or src.endswith(".pyi")]
    assert {"torch", "llada_torch"} <= set(parts.excludes)
