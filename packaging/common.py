"""What both PyInstaller specs share: the app's packages, data files and exclusions.

Imported by packaging/macos/LLaDA Desktop.spec and packaging/linux/llada-desktop.spec.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

ROOT = Path(__file__).resolve().parents[1]
ENTRY = str(ROOT / "packaging" / "entry.py")
APP_NAME = "LLaDA Desktop"


def version() -> str:
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def hidden_imports(backends: list[str]) -> list[str]:
    """The app imports its subcommands, UI and backend lazily (importlib): name them all."""
    names = collect_submodules("app") + collect_submodules("llada_core")
    for backend in backends:
        names += collect_submodules(backend)
    return names + ["platformdirs", "safetensors", "safetensors.numpy", "ml_dtypes",
                    "tokenizers", "huggingface_hub"]


def datas() -> list[tuple[str, str]]:
    files = [(str(ROOT / "app" / "resources"), "app/resources"),
             (str(ROOT / "llada_train" / "data"), "llada_train/data")]
    # packages that read their own metadata at run time
    for dist in ("transformers", "tokenizers", "huggingface_hub", "safetensors", "numpy",
                 "tqdm", "regex", "requests", "filelock", "packaging", "pyyaml",
                 "llada-desktop"):
        try:
            files += copy_metadata(dist)
        except Exception:  # noqa: BLE001 - not installed here: nothing to copy
            pass
    return files


# Big things the app never uses.
EXCLUDES = ["tkinter", "matplotlib", "IPython", "jupyter", "notebook", "pytest", "scipy",
            "pandas", "sklearn", "tensorflow", "jax", "flax", "torchvision", "torchaudio",
            "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.Qt3DCore",
            "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtMultimedia", "PySide6.QtCharts",
            "PySide6.QtDataVisualization", "PySide6.QtBluetooth", "PySide6.QtNetworkAuth",
            "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtDesigner"]
