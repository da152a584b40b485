"""Convert an official LLaDA checkpoint into the mlx-community layout, quantized, streaming.

The output folder holds the renamed tensors (`model.embed_tokens`, `model.layers.N.*`,
`model.norm`, `model.lm_head`), every Linear, the embedding and the head quantized (affine, the
given bits and group size, scales and biases in `dtype`, bfloat16 by default as LLaDA was trained
in it), norms in `dtype`; safetensors shards of at most `shard_bytes` with the
model.safetensors.index.json mlx-lm writes; config.json with the original keys plus
`"quantization"` and a duplicate `"quantization_config"`; and the tokenizer and other json files
copied. llada_mlx.load reads it back.

Memory: the source is read one tensor at a time (mx.load is lazy) and one source file at a time;
each tensor is quantized and evaluated at once so its source bytes are freed, and an output shard
is written and dropped before the next starts. The peak is about one output shard plus the tensor
being quantized, never the whole model. (mlx-lm's save_model / make_shards need every tensor up
front, and importing mlx_lm.utils pulls in transformers and torch, so the planning is done here
the same way: a tensor larger than the limit gets a shard of its own.)
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any, Callable, Optional

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from llada_core.checkpoint import (
    CHECKPOINT_PATTERNS, CheckpointError, check_architecture, check_family, check_tensors,
    read_config, resolve_checkpoint, weight_files,
)
from llada_core.config import is_moe_config
from llada_core.llada2_config import is_llada2_config
from llada_core.llada_v_config import is_llada_v_config
from llada_mlx import llada2, llada_v, moe
from llada_mlx.loader import BITS, DTYPES, GROUP_SIZES, load_model_args, load_moe_args, read_shard
from llada_mlx.model import Model

SHARD_BYTES = 5 * 2**30  # mlx-lm's MAX_FILE_SIZE_GB
SKIPPED = {"config.json", "model.safetensors.index.json"}
# Mantissa bits: quantizing in the source dtype loses nothing when the output keeps no more.
_MANTISSA = {mx.bfloat16: 8, mx.float16: 11, mx.float32: 24}


@dataclass(frozen=True)
class SourceTensor:
    """Where one tensor of the source checkpoint lives, and what it is."""

    path: Path            # its safetensors file
    stored_name: str      # its name in that file (official layout)
    shape: tuple[int, ...]
    dtype: mx.Dtype


def convert(source: str | Path, out: str | Path, *, bits: Optional[int] = 8, group_size: int = 64,
            dtype: str = "bfloat16", shard_bytes: int = SHARD_BYTES,
            on_tensor: Optional[Callable[[int, int], None]] = None) -> Path:
    """Write `source` (folder or Hub repo id, float weights) to `out` in the MLX layout.

    bits 8 or 4 (2, 3, 5, 6 work too) quantizes; bits None only renames and casts to `dtype`.
    dtype (bfloat16, float16, float32) is that of the scales, biases and norms. Output shards
    hold at most `shard_bytes` (a bigger tensor gets a shard of its own). `out` must not exist
    or be an empty folder. Returns the output folder.
    on_tensor(done, total), when given, is called after each source tensor is converted; an
    exception it raises (a cancel) stops the conversion, and the output is removed as on any error.
    """
    _check_options(bits, group_size, dtype, shard_bytes)
    folder = resolve_checkpoint(source)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not an empty folder")
    if out.resolve() == folder.resolve():
        raise ValueError("the output folder must differ from the source folder")

    config = read_config(folder)
    if is_llada2_config(config) or is_llada_v_config(config):
        family = "llada2" if is_llada2_config(config) else "llada_v"
        if "quantization" in config or "quantization_config" in config:
            raise CheckpointError(f"{folder} is already quantized; convert the original float weights")
        args = (llada2.ModelArgs.from_dict(config) if family == "llada2"
                else llada_v_parts(folder, config))
    else:
        check_architecture(config)
        family = "moe" if is_moe_config(config) else "dense"
        args = load_moe_args(config) if family == "moe" else load_model_args(config)
        if args.quantization is not None:
            raise CheckpointError(f"{folder} is already quantized; convert the original float weights")
    # Parameters stay lazy: never evaluated, only their shapes are read.
    if family == "llada_v":
        model = llada_v.Model(*args)
    else:
        model = {"moe": moe.Model, "llada2": llada2.Model}.get(family, Model)(args)
    sources = source_tensors(folder, family, getattr(model, "vision_config", None))
    if family == "moe":
        check_family(config, {info.stored_name for info in sources.values()})
    check_sources(model, sources)
    quantized = quantized_names(model, sources, bits, group_size)

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        write_weights(out, sources, quantized, bits, group_size, DTYPES[dtype], shard_bytes,
                      on_tensor)
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
    finally:
        mx.clear_cache()
    return out


def _check_options(bits: Optional[int], group_size: int, dtype: str, shard_bytes: int) -> None:
    if bits is not None and (isinstance(bits, bool) or bits not in BITS):
        raise ValueError(f"bits {bits!r} is not one of {', '.join(map(str, BITS))}")
    if isinstance(group_size, bool) or group_size not in GROUP_SIZES:
        raise ValueError(f"group size {group_size!r} is not one of {', '.join(map(str, GROUP_SIZES))}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if isinstance(shard_bytes, bool) or not isinstance(shard_bytes, int) or shard_bytes <= 0:
        raise ValueError(f"shard size {shard_bytes!r} must be a positive number of bytes")


def llada_v_parts(folder: Path, config: dict[str, Any]) -> tuple:
    """llada_v.Model's arguments for a LLaDA-V folder (its language model's, the vision config,
    the placeholder id)."""
    from llada_core.chat import load_tokenizer
    from llada_core.llada_v_config import lm_config
    from llada_core.vision import VisionConfig

    args = load_model_args(lm_config(config, load_tokenizer(folder)))
    try:
        vision = VisionConfig.from_config(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"config.json's vision settings: {error}") from error
    return args, vision, args.eos_token_id


def source_tensors(folder: Path, family: str = "dense",
                   vision: Any = None) -> dict[str, SourceTensor]:
    """Every source tensor under its MLX name, in file order; nothing is read but the
    safetensors headers. LLaDA-MoE keeps its names (the head moves under `model.`) and its
    experts one tensor per expert: the loader stacks them. LLaDA-V's language model takes the
    MLX LLaDA names, its vision tower and projector their short names (the unused pooling head
    and post-layernorm are left out; the patch convolution stays in torch's layout, which the
    loader turns)."""
    from llada_core.llada_v_config import split_weights

    found: dict[str, SourceTensor] = {}
    for path in weight_files(folder):
        shard = read_shard(path)
        stored = {id(value): name for name, value in shard.items()}
        if family == "dense":
            renamed = Model.sanitize(shard)
        elif family == "llada_v":
            language, seeing = split_weights(shard, vision)
            renamed = {**Model.sanitize(language), **seeing}
        elif family == "llada2":  # the official names are ours (lm_head at the top)
            renamed = dict(shard)
        else:
            renamed = {("model." + name if name.startswith("lm_head.") else name): value
                       for name, value in shard.items()}
        for name, value in renamed.items():  # the same arrays, renamed
            found[name] = SourceTensor(path, stored[id(value)], tuple(value.shape), value.dtype)
    return found


def expected_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The tensors a source must hold for `model`: its parameters, with each stacked expert
    tensor `…switch_mlp.P.weight` [experts, out, in] as one `…experts.E.P.weight` per expert."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, value in tree_flatten(model.parameters()):
        if name == llada_v.PATCH_WEIGHT:  # stored as torch lays it out [out, in, kh, kw]
            out_channels, kh, kw, in_channels = value.shape
            shapes[name] = (out_channels, in_channels, kh, kw)
        elif ".switch_mlp." in name:
            for expert in range(value.shape[0]):
                shapes[name.replace(".switch_mlp.", f".experts.{expert}.")] = tuple(value.shape[1:])
        else:
            shapes[name] = tuple(value.shape)
    return shapes


def check_sources(model: nn.Module, sources: dict[str, SourceTensor]) -> None:
    """Every tensor the model needs, none extra, the right shapes, all floating point."""
    check_tensors(expected_shapes(model), {name: info.shape for name, info in sources.items()})
    for name, info in sources.items():
        if not mx.issubdtype(info.dtype, mx.floating):
            raise CheckpointError(f"{name} is stored as {info.dtype}; convert float weights only")


def quantized_names(model: nn.Module, sources: dict[str, SourceTensor], bits: Optional[int],
                    group_size: int) -> set[str]:
    """The weights to quantize (every Linear, the embedding, the head; LLaDA-MoE's experts one
    by one, its router kept in float; LLaDA-V's vision tower and projector kept in float, as
    mlx-vlm keeps vision towers: small next to the language model, and sensitive);
    checks the group size."""
    if bits is None:
        return set()
    names = set()
    for path, module in model.named_modules():
        if not path or not hasattr(module, "to_quantized") or path.endswith(".mlp.gate"):
            continue
        if path.startswith(("vision.", "projector.")):
            continue
        if isinstance(module, moe.SwitchLinear):
            names.update(f"{path.replace('.switch_mlp.', f'.experts.{e}.')}.weight"
                         for e in range(module.weight.shape[0]))
        else:
            names.add(f"{path}.weight")
    for name in sorted(names):
        width = sources[name].shape[-1]
        if width % group_size:
            raise ValueError(
                f"{name} has input width {width}, which group size {group_size} does not divide")
    return names


def converted_bytes(shape: tuple[int, ...], quantize: bool, bits: Optional[int], group_size: int,
                    dtype_size: int) -> int:
    """Bytes a tensor takes once converted (packed weight plus scales and biases)."""
    count = prod(shape)
    if not quantize:
        return count * dtype_size
    rows = count // shape[-1]
    return count * bits // 8 + 2 * rows * (shape[-1] // group_size) * dtype_size


def plan_shards(sizes: dict[str, int], shard_bytes: int) -> list[list[str]]:
    """Names grouped into shards of at most shard_bytes, in order (as mlx-lm's make_shards)."""
    shards: list[list[str]] = []
    used = 0
    for name, size in sizes.items():
        if not shards or (shards[-1] and used + size > shard_bytes):
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


class SourceReader:
    """Hands out source tensors (lazy) one source file at a time; each tensor only once, so
    nothing keeps a tensor alive after it has been converted."""

    def __init__(self) -> None:
        self.path: Optional[Path] = None
        self.tensors: dict[str, mx.array] = {}

    def take(self, source: SourceTensor) -> mx.array:
        if source.path != self.path:
            self.tensors = read_shard(source.path)  # the previous file's are all taken
            self.path = source.path
        return self.tensors.pop(source.stored_name)


def convert_tensor(name: str, value: mx.array, quantize: bool, bits: Optional[int],
                   group_size: int, dtype: mx.Dtype) -> dict[str, mx.array]:
    """One source tensor converted (quantized, or cast) and evaluated."""
    if not quantize:
        converted = {name: value if value.dtype == dtype else value.astype(dtype)}
    else:
        # Quantizing in the source dtype (bf16 for LLaDA) makes no float32 copy of the weight and
        # gives the same packed values and scales; only a more precise output dtype needs one.
        keeps = _MANTISSA.get(value.dtype, 0) >= _MANTISSA[dtype]
        packed, scales, biases = mx.quantize(value if keeps else value.astype(mx.float32),
                                             group_size, bits)
        stem = name[: -len(".weight")]
        converted = {name: packed, f"{stem}.scales": scales.astype(dtype),
                     f"{stem}.biases": biases.astype(dtype)}
    mx.eval(converted)
    return converted


def write_weights(out: Path, sources: dict[str, SourceTensor], quantized: set[str],
                  bits: Optional[int], group_size: int, dtype: mx.Dtype, shard_bytes: int,
                  on_tensor: Optional[Callable[[int, int], None]] = None) -> None:
    """Convert tensor by tensor into shards of at most shard_bytes, plus the index mlx-lm writes;
    on_tensor(done, total) after each tensor."""
    sizes = {name: converted_bytes(info.shape, name in quantized, bits, group_size, dtype.size)
             for name, info in sources.items()}
    shards = plan_shards(sizes, shard_bytes)
    reader = SourceReader()
    weight_map: dict[str, str] = {}
    done = 0
    for number, group in enumerate(shards, start=1):
        filename = ("model.safetensors" if len(shards) == 1
                    else f"model-{number:05d}-of-{len(shards):05d}.safetensors")
        part: dict[str, mx.array] = {}
        for name in group:
            value = reader.take(sources[name])
            part.update(convert_tensor(name, value, name in quantized, bits, group_size, dtype))
            del value
            mx.clear_cache()  # the source tensor's bytes go back now, not at the end
            done += 1
            if on_tensor is not None:
                on_tensor(done, len(sources))
        mx.save_safetensors(str(out / filename), part, metadata={"format": "mlx"})
        weight_map.update({name: filename for name in part})
        del part
        mx.clear_cache()
    parameters = sum(prod(info.shape) for info in sources.values())
    index = {"metadata": {"total_size": sum(sizes.values()), "total_parameters": parameters},
             "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=4) + "\n")


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
    files = sorted(out.glob("*.safetensors"))
    return {"folder": str(out), "bytes": sum(p.stat().st_size for p in files),
            "shards": len(files), "quantization": config.get("quantization")}
