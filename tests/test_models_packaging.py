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
    for needle in ('collect_all("mlx")', '"mlx._reprlib_fix"', "BUNDLE(", "bundle_identifier=", '"NSHighResolutionCapable": True',
                   '"NSRequiresAquaSystemAppearance": False', '"LSMinimumSystemVersion"',
                   "version=version()", "one_libmlx_beside_metallib(a.binaries, a.datas)", "LLaDA.icns"):
        assert needle in mac, needle
    assert "COLLECT(" in LINUX_SPEC.read_text(encoding="utf-8")
    for script in ("packaging/macos/build.sh", "packaging/linux/build.sh",
                   "packaging/linux/smoke.sh", "resources/make_icns.sh"):
        path = ROOT / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)
    assert "hdiutil create" in (ROOT / "packaging/macos/build.sh").read_text()
    assert "iconutil -c icns" in (ROOT / "resources/make_icns.sh").read_text()
    assert (ROOT / "resources" / "icon-1024.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_version_for_info_plist_comes_from_the_package():
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import importlib

        common = importlib.import_module("common") if _has_pyinstaller() else None
    finally:
        sys.path.pop(0)
    from app import __version__

    text = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in text
    if common is not None:
        assert common.version() == __version__


def _has_pyinstaller() -> bool:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        return False
    return True


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


def test_mlx_keeps_one_libmlx_beside_its_metallib():
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        from mlx_bundle import one_libmlx_beside_metallib
    finally:
        sys.path.pop(0)
    lib = ("mlx/lib/libmlx.dylib", "/site/mlx/lib/libmlx.dylib", "BINARY")
    stray = ("libmlx.dylib", "/site/mlx/lib/libmlx.dylib", "BINARY")
    core = ("mlx/core.cpython-311-darwin.so", "/site/mlx/core.so", "EXTENSION")
    metallib = ("mlx/lib/mlx.metallib", "/site/mlx/lib/mlx.metallib", "DATA")
    assert one_libmlx_beside_metallib([stray, core, lib], [metallib]) == [core, lib]
    assert one_libmlx_beside_metallib([lib, core], [metallib]) == [lib, core]
    with pytest.raises(SystemExit, match="beside mlx.metallib"):
        one_libmlx_beside_metallib([stray, core], [metallib])
