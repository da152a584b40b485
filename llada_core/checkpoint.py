"""Finding a checkpoint on disk (or in the Hugging Face cache) and reading its config, its tensor
names and shapes, and the dtype its weights are stored in (from safetensors headers alone)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from math import prod
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Optional

from llada_core.config import MOE_ARCHITECTURES, is_moe_config
from llada_core.errors import CheckpointError

# What a LLaDA checkpoint needs; modelling code shipped with a model is never fetched or run.
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.txt"]

# A model folder may recommend its answer length, block length and steps here (not part of
# the official layout; the demo model has one).
SAMPLER_DEFAULTS_FILE = "sampler_defaults.json"


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


def file_inside(folder: Path, name: object, named_in: str) -> Path:
    """folder / name for a file a model folder names, refused unless it stays inside the folder
    (no absolute path, no '..', no drive): a downloaded index must not open files elsewhere.
    Judged on the name, not on resolved links (a Hub cache's files are links to its blobs)."""
    text = name if isinstance(name, str) else ""
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or "\0" in text or PurePosixPath(text.replace("\\", "/")).is_absolute() \
            or PureWindowsPath(text).drive or ".." in parts:
        raise CheckpointError(f"{named_in} in {folder} names the file {name!r}, which is not "
                              "inside the model folder; the model is refused")
    return folder / text


def weight_files(folder: Path) -> list[Path]:
    """The safetensors shards: those the index names, else every *.safetensors in the folder."""
    index_path = folder / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            names = sorted(set(index["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as error:
            raise CheckpointError(f"{index_path} is not a valid weight index: {error}") from error
        files = [file_inside(folder, name, index_path.name) for name in names]
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


# safetensors dtype codes: (our name, bytes per element). Names follow torch/MLX spelling.
SAFETENSORS_DTYPES: dict[str, tuple[str, float]] = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8), "U64": ("uint64", 8), "I32": ("int32", 4), "U32": ("uint32", 4),
    "I16": ("int16", 2), "U16": ("uint16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")
DTYPE_BYTES: dict[str, float] = {name: size for name, size in SAFETENSORS_DTYPES.values()}
# The safetensors format caps its JSON header at 100 MB; a bigger length means a broken file.
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    dtype: str                  # e.g. "bfloat16", "uint32"
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.elements * DTYPE_BYTES[self.dtype])

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class StoredWeights:
    """What a checkpoint's safetensors hold, from their headers alone (no tensor is read)."""

    tensors: dict[str, TensorInfo]

    @property
    def dtype(self) -> Optional[str]:
        """The floating dtype most floating elements are stored in (None: no floating tensor).
        Quantized checkpoints answer with their scales' dtype; the packed weights are integers."""
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            if info.is_float:
                counts[info.dtype] = counts.get(info.dtype, 0) + info.elements
        if not counts:
            return None
        return max(counts, key=lambda name: (counts[name], -FLOAT_DTYPES.index(name)))

    @property
    def nbytes(self) -> int:
        return sum(info.nbytes for info in self.tensors.values())

    def nbytes_as(self, dtype: Optional[str] = None) -> int:
        """Bytes once loaded with every floating tensor cast to dtype (None: as stored); integer
        tensors (quantized weights) stay as they are, as both loaders leave them."""
        if dtype is None:
            return self.nbytes
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(FLOAT_DTYPES)}")
        return sum(int(info.elements * DTYPE_BYTES[dtype]) if info.is_float else info.nbytes
                   for info in self.tensors.values())


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """Tensor names, dtypes and shapes from a safetensors file's JSON header."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise ValueError("the file is shorter than a safetensors header")
            length = int.from_bytes(prefix, "little")
            if not 0 < length <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {length} is impossible")
            raw = handle.read(length)
            if len(raw) != length:
                raise ValueError("the header is cut short")
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        tensors = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            code = entry["dtype"]
            if code not in SAFETENSORS_DTYPES:
                raise ValueError(f"tensor {name} has an unknown dtype {code!r}")
            tensors[name] = TensorInfo(SAFETENSORS_DTYPES[code][0],
                                       tuple(int(n) for n in entry["shape"]))
        return tensors
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error.strerror or error}") from error
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file: {error}") from error


def stored_weights(folder: str | Path) -> StoredWeights:
    """Every tensor's dtype and shape across the checkpoint's shards, read from headers only."""
    tensors: dict[str, TensorInfo] = {}
    for path in weight_files(Path(folder)):
        tensors.update(read_safetensors_header(path))
    return StoredWeights(tensors)


def stored_dtype(folder: str | Path) -> Optional[str]:
    """The dtype the checkpoint's floating weights are stored in ("bfloat16" for the official
    LLaDA 8B, whose config.json has no torch_dtype); None when it has no floating tensor."""
    return stored_weights(folder).dtype


# The prefix mlx-vlm's layout puts before a language model's names (`language_model.model.…`).
LANGUAGE_MODEL_PREFIX = "language_model."


def without_language_model_prefix(weights: dict) -> dict:
    """The weights under their language model's own names (mlx-vlm's `language_model.` gone)."""
    return {name.removeprefix(LANGUAGE_MODEL_PREFIX): value for name, value in weights.items()}


# ---------------------------------------------------------------------------------------------
# LLaDA-MoE: its experts are stored one tensor per expert and stacked at load time.

_EXPERT = re.compile(r"^(model\.layers\.\d+\.mlp\.)experts\.(\d+)\.(\w+)\.(weight|scales|biases)$")


def stacked_expert_name(name: str) -> Optional[tuple[str, int]]:
    """(`…mlp.switch_mlp.PROJ.SUFFIX`, expert) for a per-expert tensor name, else None."""
    match = _EXPERT.match(name)
    if match is None:
        return None
    prefix, expert, proj, suffix = match.groups()
    return f"{prefix}switch_mlp.{proj}.{suffix}", int(expert)


def expert_stacks(names: list[str] | set[str], num_experts: int) -> dict[str, list[str]]:
    """Per stacked name, the per-expert tensor names in expert order (0 .. num_experts - 1).

    An expert index past num_experts or a missing expert is a CheckpointError naming the tensor.
    """
    stacks: dict[str, dict[int, str]] = {}
    for name in names:
        found = stacked_expert_name(name)
        if found is None:
            continue
        stacked, expert = found
        if expert >= num_experts:
            raise CheckpointError(f"unexpected tensor {name}: config.json has {num_experts} experts")
        stacks.setdefault(stacked, {})[expert] = name
    plan = {}
    for stacked, experts in sorted(stacks.items()):
        for expert in range(num_experts):
            if expert not in experts:
                example = next(iter(experts.values()))
                missing = _EXPERT.sub(
                    lambda m: f"{m.group(1)}experts.{expert}.{m.group(3)}.{m.group(4)}", example)
                raise CheckpointError(f"missing tensor: {missing}")
        plan[stacked] = [experts[e] for e in range(num_experts)]
    return plan


def check_architecture(config: dict[str, Any]) -> None:
    """A config.json with MoE fields must name the MoE architecture (model_type is "llada" for
    both families, so architectures[0] is what tells them apart)."""

    if not is_moe_config(config) and "num_experts" in config:
        architecture = (config.get("architectures") or [None])[0]
        raise CheckpointError(
            f"config.json describes experts (num_experts) but its architectures[0] is "
            f"{architecture!r}; LLaDA-MoE checkpoints say {MOE_ARCHITECTURES[0]}")


def check_family(config: dict[str, Any], names: list[str] | set[str]) -> None:
    """config.json's architectures[0] and the tensor names must tell the same family; a MoE
    feature we do not implement (an expert bias) is named."""

    moe_names = any(".mlp.experts." in name for name in names)
    if is_moe_config(config):
        if not moe_names:
            raise CheckpointError(
                f"config.json says {config['architectures'][0]} but the weights hold no experts "
                f"(no model.layers.N.mlp.experts.E.* tensor)")
        for name in sorted(names):
            if "expert_bias" in name:
                raise CheckpointError(f"{name}: an expert bias is not supported")
    elif moe_names:
        architecture = (config.get("architectures") or [None])[0]
        raise CheckpointError(
            f"the weights hold MoE experts but config.json's architectures[0] is {architecture!r}; "
            "LLaDA-MoE checkpoints say LLaDAMoEModelLM")
