"""Finding a checkpoint on disk (or in the Hugging Face cache) and reading its config and tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What a LLaDA checkpoint needs; modelling code shipped with a model is never fetched or run.
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.txt"]

# A model folder may recommend its answer length, block length and steps here (not part of
# the official layout; the demo model has one).
SAMPLER_DEFAULTS_FILE = "sampler_defaults.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or not in a layout we can load."""


def resolve_checkpoint(path_or_repo_id: str | Path) -> Path:
    """A local folder as it is; otherwise a Hub repo id through huggingface_hub's standard cache."""
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_repo_id)
    if path.exists():
        raise CheckpointError(f"{text} is a file; give the folder that holds config.json")
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise CheckpointError(f"no model folder at {text}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, allow_patterns=CHECKPOINT_PATTERNS))
    except LocalEntryNotFoundError as error:
        raise CheckpointError(
            f"{text} is not in the local cache and the Hugging Face Hub cannot be reached"
        ) from error
    except HfHubHTTPError as error:
        raise CheckpointError(f"could not download {text}: {error}") from error


def read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not readable JSON: {error}") from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} does not hold a JSON object")
    return config


def weight_files(folder: Path) -> list[Path]:
    """The safetensors shards: those the index names, else every *.safetensors in the folder."""
    index_path = folder / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            names = sorted(set(index["weight_map"].values()))
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as error:
            raise CheckpointError(f"{index_path} is not a valid weight index: {error}") from error
        files = [folder / name for name in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{folder} is missing weight file(s): {', '.join(missing)}")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        bins = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
        if bins:
            raise CheckpointError(
                f"{folder} has only pickle weights ({bins[0]}); only safetensors are loaded"
            )
        raise CheckpointError(f"{folder} has no .safetensors weights")
    return files


def check_tensors(expected: dict[str, tuple], found: dict[str, tuple]) -> None:
    """Every expected tensor present, none extra, every shape right; otherwise one error naming
    the first problems. Both arguments map tensor names to shapes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{name} has shape {list(found[name])}, expected {list(shape)}"
        for name, shape in expected.items()
        if name in found and tuple(found[name]) != tuple(shape)
    ]
    problems = []
    if missing:
        problems.append("missing tensor(s): " + ", ".join(missing[:5]) + _more(missing))
    if unexpected:
        problems.append("unexpected tensor(s): " + ", ".join(unexpected[:5]) + _more(unexpected))
    if wrong:
        problems.append("; ".join(wrong[:5]) + _more(wrong))
    if problems:
        raise CheckpointError("the checkpoint does not match its config.json: " + "; ".join(problems))


def _more(items: list) -> str:
    return f" (and {len(items) - 5} more)" if len(items) > 5 else ""
