"""What both PyInstaller specs share: the MLX bundle's modules, data files, libraries and
exclusions.

Imported by packaging/macos/LLaDA Desktop.spec and packaging/linux/llada-desktop.spec, which
build the same bundle: MLX (llada_mlx + mlx) and no torch. The Linux bundle is the stand-in for
the Mac one, so everything that decides what goes in is here, not in the specs. Nothing here
imports PyInstaller at module level: the unit tests check this logic without it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from mlx_bundle import one_libmlx

ROOT = Path(__file__).resolve().parents[1]
ENTRY = str(ROOT / "packaging" / "entry.py")
APP_NAME = "LLaDA Desktop"

BACKEND_PACKAGE = "llada_mlx"
FRAMEWORK = "mlx"
# Our own packages in the bundle. llada_train is in it for `llada make-tiny` and `llada eval`
# (numpy only), and because app.cli imports its config, demo_tasks and tiny modules when it
# builds the parser: without them no subcommand, not even --help, would start.
APP_PACKAGES = ("app", "llada_core", "llada_train", BACKEND_PACKAGE)
# `llada train` (PyTorch): out of the bundle, where the command says torch is not installed.
TRAIN_ONLY = ("llada_train.trainer", "llada_train.objective")
# What the MLX bundle must never carry: the other backend and its framework (torch alone is
# ~630 MB), the training code that imports it, and mlx_lm, which llada_mlx does not use.
NOT_IN_BUNDLE = ("torch", "llada_torch", *TRAIN_ONLY, "mlx_lm")
# Big things the app never uses.
UNUSED = ("tkinter", "matplotlib", "IPython", "jupyter", "notebook", "pytest", "scipy",
          "pandas", "sklearn", "tensorflow", "jax", "flax", "torchvision", "torchaudio",
          "triton", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.Qt3DCore",
          "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtMultimedia", "PySide6.QtCharts",
          "PySide6.QtDataVisualization", "PySide6.QtBluetooth", "PySide6.QtNetworkAuth",
          "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtDesigner")
# Packages that read their own metadata at run time (importlib.metadata.version).
METADATA = ("transformers", "tokenizers", "huggingface_hub", "safetensors", "numpy", "tqdm",
            "regex", "requests", "filelock", "packaging", "pyyaml", "mlx", "llada-desktop")
# Third-party modules the app imports lazily (inside functions), or that are imported from C:
# mlx._reprlib_fix is imported by mlx's C++ extension, invisible to PyInstaller's analysis.
LAZY_IMPORTS = ("platformdirs", "safetensors", "safetensors.numpy", "ml_dtypes", "tokenizers",
                "huggingface_hub", "tqdm", "mlx._reprlib_fix")
# MLX's C++ headers, CMake files and type stubs: for building extensions, not for running.
MLX_DEV_FILES = ["include/**", "share/**", "**/*.pyi"]


@dataclass
class BundleParts:
    """What Analysis() is given: hiddenimports=, datas=, binaries=, excludes=."""

    hiddenimports: list[str]
    datas: list[tuple[str, str]]
    binaries: list[tuple[str, str]]
    excludes: list[str]


# The Mac bundle is built on Python 3.12 or later: there None is immortal, so no PySide6 release
# can abort the app by dropping references to it, as PySide6 6.12.0 did on 3.11 (issue 21).
BUNDLE_PYTHON = (3, 12)


def check_bundle_python(running: Optional[tuple[int, ...]] = None) -> None:
    """Stop a Mac build on a Python older than BUNDLE_PYTHON (this one's by default), in one
    sentence."""
    running = tuple(sys.version_info[:2]) if running is None else running
    if tuple(running[:2]) < BUNDLE_PYTHON:
        need = ".".join(map(str, BUNDLE_PYTHON))
        raise SystemExit(f"the macOS bundle is built on Python {need} or later, not "
                         f"{'.'.join(map(str, running[:2]))}: on older Pythons a PySide6 release "
                         f"that drops references to None aborts the app")


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def is_excluded(module: str, names: tuple[str, ...] = NOT_IN_BUNDLE) -> bool:
    """Whether `module` is one of `names` or inside one of them."""
    return any(module == name or module.startswith(name + ".") for name in names)


def package_modules(package: str, root: Path = ROOT) -> list[str]:
    """Every module of one of our packages, found from its files (nothing is imported)."""
    base = root / package
    names = []
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def app_modules(root: Path = ROOT) -> list[str]:
    """Our modules in the bundle. The app imports its subcommands, UI and backend lazily
    (importlib), so PyInstaller's analysis does not find them: they are all named."""
    return [name for package in APP_PACKAGES for name in package_modules(package, root)
            if not is_excluded(name)]


def app_datas(root: Path = ROOT) -> list[tuple[str, str]]:
    """Our data files: the icon and the bundled demo model (app/resources/llada-demo, found at
    run time by app.models.catalog), and the corpus `llada make-tiny` trains its tokenizer on."""
    return [(str(root / "app" / "resources"), "app/resources"),
            (str(root / "llada_train" / "data"), "llada_train/data")]


def _pyinstaller_hooks() -> ModuleType:
    from PyInstaller.utils import hooks

    return hooks


def mlx_bundle_parts(hooks: Optional[Any] = None) -> BundleParts:
    """Everything both specs give Analysis() for the MLX bundle. `hooks` is
    PyInstaller.utils.hooks (the default) or a stand-in with the same four functions."""
    hooks = hooks or _pyinstaller_hooks()
    hidden = app_modules() + list(LAZY_IMPORTS)
    # MLX whole: its Python modules, libmlx and, on a Mac, mlx.metallib (the Metal kernels),
    # which libmlx looks for in its own folder (see finish_analysis).
    hidden += [name for name in hooks.collect_submodules(FRAMEWORK) if not is_excluded(name)]
    datas = app_datas() + list(hooks.collect_data_files(FRAMEWORK, excludes=MLX_DEV_FILES))
    for dist in METADATA:
        try:
            datas += hooks.copy_metadata(dist)
        except Exception:  # noqa: BLE001 - not installed here: nothing to copy
            pass
    binaries = list(hooks.collect_dynamic_libs(FRAMEWORK))
    excludes = list(UNUSED) + list(NOT_IN_BUNDLE)
    return BundleParts(hiddenimports=sorted(set(hidden)), datas=datas, binaries=binaries,
                       excludes=excludes)


def forbidden_entries(pure: list, binaries: list) -> list[str]:
    """Modules and libraries of the analysis that the MLX bundle must not carry."""
    found = [entry[0] for entry in pure if is_excluded(entry[0])]
    for entry in binaries:
        top = entry[0].replace("\\", "/").split("/")[0]
        name = entry[0].replace("\\", "/").rsplit("/", 1)[-1]
        if top in ("torch", "llada_torch") or name.startswith(("libtorch", "libc10")):
            found.append(entry[0])
    return found


def finish_analysis(analysis: Any, platform: str = sys.platform) -> None:
    """After Analysis(): stop the build if torch (or anything else in NOT_IN_BUNDLE) got in,
    and keep exactly one libmlx (packaging/mlx_bundle.py)."""
    found = forbidden_entries(analysis.pure, analysis.binaries)
    if found:
        raise SystemExit("the MLX bundle must not carry these (something imports them; "
                         f"see the build's xref/warn files): {found[:20]}")
    analysis.binaries = one_libmlx(analysis.binaries, analysis.datas,
                                   metal=platform == "darwin")
