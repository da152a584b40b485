"""Convert an official LLaDA checkpoint into the mlx-community layout, quantized.

The output folder holds the renamed tensors (`model.embed_tokens`, `model.layers.N.*`,
`model.norm`, `model.lm_head`), every Linear, the embedding and the head quantized (affine, the
given bits and group size, scales and biases in `dtype`), norms in `dtype`; config.json with the
original keys plus `"quantization"` and a duplicate `"quantization_config"`; and the tokenizer and
other json files copied. llada_mlx.load reads it back.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path
from typing import Any, Optional

import mlx.core as mx

from llada_core.checkpoint import (
    CHECKPOINT_PATTERNS, CheckpointError, read_config, resolve_checkpoint,
)
from llada_mlx.loader import (
    BITS, DTYPES, GROUP_SIZES, check_weights, load_model_args, read_weights,
)
from llada_mlx.model import Model

SHARD_BYTES = 5 * 2**30
SKIPPED = {"config.json", "model.safetensors.index.json"}


def convert(source: str | Path, out: str | Path, *, bits: Optional[int] = 8, group_size: int = 64,
            dtype: str = "float16", shard_bytes: int = SHARD_BYTES) -> Path:
    """Write `source` (folder or Hub repo id, float weights) to `out` in the MLX layout.

    bits 8 or 4 (2, 3, 5, 6 work too) quantizes; bits None only renames and casts to `dtype`.
    `out` must not exist or be an empty folder. Returns the output folder.
    """
    if bits is not None and (isinstance(bits, bool) or bits not in BITS):
        raise ValueError(f"bits {bits!r} is not one of {', '.join(map(str, BITS))}")
    if isinstance(group_size, bool) or group_size not in GROUP_SIZES:
        raise ValueError(f"group size {group_size!r} is not one of {', '.join(map(str, GROUP_SIZES))}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    folder = resolve_checkpoint(source)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not an empty folder")
    if out.resolve() == folder.resolve():
        raise ValueError("the output folder must differ from the source folder")

    config = read_config(folder)
    args = load_model_args(config)
    if args.quantization is not None:
        raise CheckpointError(f"{folder} is already quantized; convert the original float weights")
    model = Model(args)  # parameters stay lazy: never evaluated, only their shapes are read
    weights = Model.sanitize(read_weights(folder))
    check_weights(model, weights)

    quantized = set()
    if bits is not None:
        quantized = {f"{path}.weight" for path, module in model.named_modules()
                     if path and hasattr(module, "to_quantized")}
        for name in sorted(quantized):
            width = weights[name].shape[-1]
            if width % group_size:
                raise ValueError(
                    f"{name} has input width {width}, which group size {group_size} does not divide")

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _write_weights(out, weights, quantized, bits, group_size, DTYPES[dtype], shard_bytes)
        new_config = dict(config)
        if bits is not None:
            new_config["quantization"] = {"group_size": group_size, "bits": bits}
            new_config["quantization_config"] = {"group_size": group_size, "bits": bits}
        (out / "config.json").write_text(json.dumps(new_config, indent=2) + "\n", encoding="utf-8")
        _copy_side_files(folder, out)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return out


def _converted_bytes(shape: tuple, quantize: bool, bits: Optional[int], group_size: int,
                     dtype_size: int) -> int:
    count = 1
    for size in shape:
        count *= size
    if not quantize:
        return count * dtype_size
    rows = count // shape[-1]
    return count * bits // 8 + 2 * rows * (shape[-1] // group_size) * dtype_size


def _write_weights(out: Path, weights: dict[str, mx.array], quantized: set[str],
                   bits: Optional[int], group_size: int, dtype: mx.Dtype, shard_bytes: int) -> None:
    names = sorted(weights)
    sizes = {n: _converted_bytes(weights[n].shape, n in quantized, bits, group_size, dtype.size)
             for n in names}
    shards: list[list[str]] = [[]]
    used = 0
    for name in names:
        if shards[-1] and used + sizes[name] > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += sizes[name]

    weight_map: dict[str, str] = {}
    for number, group in enumerate(shards, start=1):
        filename = ("model.safetensors" if len(shards) == 1
                    else f"model-{number:05d}-of-{len(shards):05d}.safetensors")
        part: dict[str, mx.array] = {}
        for name in group:
            value = weights[name]
            if name in quantized:
                packed, scales, biases = mx.quantize(value.astype(mx.float32), group_size, bits)
                stem = name[: -len(".weight")]
                part[name] = packed
                part[f"{stem}.scales"] = scales.astype(dtype)
                part[f"{stem}.biases"] = biases.astype(dtype)
            else:
                part[name] = value.astype(dtype)
        mx.eval(part)
        mx.save_safetensors(str(out / filename), part, metadata={"format": "mlx"})
        weight_map.update({name: filename for name in part})
        del part
    if len(shards) > 1:
        total = sum(sizes.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _copy_side_files(folder: Path, out: Path) -> None:
    """Tokenizer, chat template and the other json files; never code or weights."""
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name in SKIPPED or path.suffix in (".safetensors", ".py"):
            continue
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in CHECKPOINT_PATTERNS):
            shutil.copy(path, out / path.name)


def describe(out: Path) -> dict[str, Any]:
    """Size on disk and the quantization of a converted folder (for the command line)."""
    config = read_config(out)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    return {"folder": str(out), "bytes": size, "quantization": config.get("quantization")}
