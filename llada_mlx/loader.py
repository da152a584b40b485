"""Load a LLaDA checkpoint (official or mlx-community layout, float or quantized) into MLX, strictly.

Quantized checkpoints carry config.json's `"quantization": {"group_size": G, "bits": B}` (or the
same under `quantization_config`); every module whose `scales` tensor is present is quantized
with the group size and bits its tensor shapes imply, so mixed-precision files load too.
Anything missing, unexpected or mis-shaped is a CheckpointError naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from llada_core import tokens
from llada_core.chat import load_tokenizer
from llada_core.checkpoint import (
    CheckpointError, check_architecture, check_family, check_tensors, read_config,
    resolve_checkpoint, weight_files,
)
from llada_core.config import is_moe_config
from llada_core.llada2_config import is_llada2_config
from llada_core.llada_v_config import is_llada_v_config
from llada_mlx import llada2, llada_v, memory, moe
from llada_mlx.model import Model, ModelArgs

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}
GROUP_SIZES = (32, 64, 128)
BITS = (2, 3, 4, 5, 6, 8)


def parse_dtype(dtype: Any) -> Optional[mx.Dtype]:
    """None keeps the weights' stored dtype; else float32, bfloat16 or float16."""
    if dtype is None or isinstance(dtype, mx.Dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def quantization_entry(config: dict[str, Any]) -> Optional[dict[str, Any]]:
    """config.json's quantization (group_size, bits), checked; None for float weights."""
    entry = config.get("quantization", config.get("quantization_config"))
    if entry is None:
        return None
    key = "quantization" if "quantization" in config else "quantization_config"
    if not isinstance(entry, dict):
        raise CheckpointError(f"config.json's {key!r} must be an object, not {entry!r}")
    mode = entry.get("mode", "affine")
    if mode != "affine":
        raise CheckpointError(
            f"config.json's {key!r} asks for mode {mode!r}; only affine quantization is supported")
    group_size, bits = entry.get("group_size"), entry.get("bits")
    if isinstance(group_size, bool) or group_size not in GROUP_SIZES:
        raise CheckpointError(
            f"config.json's {key!r} has group_size {group_size!r}; expected one of "
            f"{', '.join(map(str, GROUP_SIZES))}")
    if isinstance(bits, bool) or bits not in BITS:
        raise CheckpointError(
            f"config.json's {key!r} has bits {bits!r}; expected one of {', '.join(map(str, BITS))}")
    return {"group_size": group_size, "bits": bits}


def load_model_args(config: dict[str, Any]) -> ModelArgs:
    if config.get("model_type") != "llada":
        raise CheckpointError(
            f"config.json has model_type {config.get('model_type')!r}; expected 'llada'")
    try:
        args = ModelArgs.from_dict(config)
    except TypeError as error:
        raise CheckpointError(f"config.json is missing a required field: {error}") from error
    args.quantization = quantization_entry(config)
    if args.unsupported:
        listed = ", ".join(f"{k}={v!r}" for k, v in args.unsupported.items())
        raise CheckpointError(f"config.json asks for a LLaDA variant we do not implement: {listed}")
    if args.d_model % args.n_heads != 0:
        raise CheckpointError(f"d_model {args.d_model} is not a multiple of n_heads {args.n_heads}")
    if args.head_dim % 2 != 0:
        raise CheckpointError(f"head dimension {args.head_dim} must be even for rotary embeddings")
    if args.n_heads % args.kv_heads != 0:
        raise CheckpointError(f"n_heads {args.n_heads} is not a multiple of n_kv_heads {args.kv_heads}")
    for name in ("mask_token_id", "eos_token_id"):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < args.rows:
            raise CheckpointError(f"config.json's {name} {value!r} is not an id below {args.rows}")
    return args


def load_moe_args(config: dict[str, Any]) -> moe.ModelArgs:
    """LLaDA-MoE's arguments from its config.json (architectures[0] LLaDAMoEModelLM); a missing
    or unsupported field is one CheckpointError naming it."""
    if config.get("model_type") != "llada":
        raise CheckpointError(
            f"config.json has model_type {config.get('model_type')!r}; expected 'llada'")
    args = moe.ModelArgs.from_dict(config)
    args.quantization = quantization_entry(config)
    return args


def read_shard(path: Path) -> dict[str, mx.array]:
    """The tensors of one safetensors file, lazily: mx.load reads a tensor's bytes only when it
    is evaluated, so this costs the header alone."""
    try:
        shard = mx.load(str(path))
    except (OSError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file: {error}") from error
    if not isinstance(shard, dict):
        raise CheckpointError(f"{path.name} is not a safetensors file")
    return shard


def read_weights(folder: Path) -> dict[str, mx.array]:
    """Every tensor of the checkpoint, lazily (nothing is read until evaluated)."""
    weights: dict[str, mx.array] = {}
    for path in weight_files(folder):
        weights.update(read_shard(path))
    return weights


def quantize_like_weights(model: nn.Module, weights: dict[str, mx.array],
                          quantization: Optional[dict[str, Any]]) -> None:
    """Quantize every module whose `scales` are in the weights, as their shapes say."""
    scaled = sorted(name[: -len(".scales")] for name in weights if name.endswith(".scales"))
    if not scaled:
        return
    if quantization is None:
        raise CheckpointError(
            f"{scaled[0]}.scales is quantized but config.json has no 'quantization' entry")

    def predicate(path: str, module: nn.Module):
        if f"{path}.scales" not in weights or not hasattr(module, "to_quantized"):
            return False
        return inferred_quantization(path, module, weights)

    nn.quantize(model, group_size=quantization["group_size"], bits=quantization["bits"],
                class_predicate=predicate)


def inferred_quantization(path: str, module: nn.Module,
                          weights: dict[str, mx.array]) -> dict[str, int]:
    """Group size and bits implied by the packed weight and scales of one module."""
    packed, scales = weights.get(f"{path}.weight"), weights[f"{path}.scales"]
    if packed is None:
        raise CheckpointError(f"missing tensor: {path}.weight (its scales are present)")
    features = module.weight.shape[-1]  # the float module's input width
    # 2-D for a Linear or the embedding, 3-D for stacked experts [experts, out, in].
    if (packed.dtype != mx.uint32 or packed.ndim not in (2, 3) or scales.ndim != packed.ndim
            or scales.shape[-1] == 0):
        raise CheckpointError(
            f"{path}.weight ({packed.dtype}, shape {list(packed.shape)}) with scales of shape "
            f"{list(scales.shape)} is not an MLX affine-quantized tensor")
    group_size, rest = divmod(features, scales.shape[-1])
    bits, rest_bits = divmod(packed.shape[-1] * 32, features)
    if rest or rest_bits or group_size not in GROUP_SIZES or bits not in BITS:
        raise CheckpointError(
            f"{path}: weight shape {list(packed.shape)} and scales shape {list(scales.shape)} do not "
            f"fit an input width of {features} with a supported group size and bit width")
    return {"group_size": group_size, "bits": bits}


def check_weights(model: nn.Module, weights: dict[str, mx.array]) -> None:
    check_tensors({name: tuple(v.shape) for name, v in tree_flatten(model.parameters())},
                  {name: tuple(w.shape) for name, w in weights.items()})


def cast_weights(weights: dict[str, mx.array], dtype: Optional[mx.Dtype]) -> dict[str, mx.array]:
    """Floating tensors (scales and biases included) to dtype; packed integers stay as they are."""
    if dtype is None:
        return weights
    return {name: value.astype(dtype) if _needs_cast(value, dtype) else value
            for name, value in weights.items()}


def _needs_cast(value: mx.array, dtype: mx.Dtype) -> bool:
    return mx.issubdtype(value.dtype, mx.floating) and value.dtype != dtype


def load(path_or_repo_id: str | Path, dtype: Any = None) -> tuple[Model, Any]:
    """Model and tokenizer from a local folder or a Hub repo id, in either weight layout.

    dtype (float32, bfloat16, float16) casts the float tensors; None keeps the stored dtype.
    Run it on the thread that will generate: MLX streams belong to one thread.
    """
    folder = resolve_checkpoint(path_or_repo_id)
    config = read_config(folder)
    if is_llada2_config(config):
        return load_llada2(folder, config, dtype)
    if is_llada_v_config(config):
        return load_llada_v(folder, config, dtype)
    check_architecture(config)
    if is_moe_config(config):
        return load_moe(folder, config, dtype)
    args = load_model_args(config)
    mx_dtype = parse_dtype(dtype)
    tokenizer = load_tokenizer(folder)
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    args.eot_token_id = eot if eot is not None and eot != tokenizer.unk_token_id else None

    model = Model(args)
    weights = read_weights(folder)
    check_family(config, weights)
    weights = Model.sanitize(weights)  # the only reference: fill_model empties it
    fill_model(model, weights, args.quantization, mx_dtype)
    return model, tokenizer


def fill_model(model: nn.Module, weights: dict[str, mx.array], quantization: Any,
               dtype: Optional[mx.Dtype]) -> None:
    """Quantize `model` as the weights are, load them strictly (cast to dtype), evaluate them
    one module at a time, and set MLX's memory limits for it."""
    quantize_like_weights(model, weights, quantization)
    check_weights(model, weights)
    model.load_weights(list(cast_weights(weights, dtype).items()), strict=True)
    # From here the model holds the only references to the (still lazy) tensors, so evaluating
    # them keeps one copy: a cast's source is freed as soon as its tensor is done.
    weights.clear()
    model.eval()
    materialize(model)
    memory.wired_limit_for(model)


def load_moe(folder: Path, config: dict[str, Any], dtype: Any = None) -> tuple[moe.Model, Any]:
    """LLaDA-MoE from its folder (official layout, or our conversion: float or quantized per
    expert), experts stacked for gather_mm / gather_qmm, strictly. The mask id is config.json's
    mask_token_id when present, else the tokenizer's <|mask|>; EOS and end of turn come from
    the tokenizer."""
    args = load_moe_args(config)
    mx_dtype = parse_dtype(dtype)
    tokenizer = load_tokenizer(folder)
    args.fill_token_ids(tokenizer)

    model = moe.Model(args)
    weights = read_weights(folder)
    check_family(config, weights)
    weights = moe.Model.sanitize(weights, args.num_experts)
    fill_model(model, weights, args.quantization, mx_dtype)
    return model, tokenizer


def load_llada2(folder: Path, config: dict[str, Any], dtype: Any = None) -> tuple[llada2.Model, Any]:
    """LLaDA 2.x (architectures[0] LLaDA2MoeModelLM) from its folder, experts stacked, strictly;
    ids from the tokenizer, the 2.1 editing decoder's defaults from generation_config.json."""
    args = llada2.ModelArgs.from_dict(config)
    quantization = quantization_entry(config)  # our conversion's (llada convert)
    tokenizer = load_tokenizer(folder)
    args.fill_token_ids(tokenizer)
    args.read_generation_config(folder)
    model = llada2.Model(args)
    weights = llada2.Model.sanitize(read_weights(folder), args.num_experts)
    fill_model(model, weights, quantization, parse_dtype(dtype))
    return model, tokenizer


def load_llada_v(folder: Path, config: dict[str, Any], dtype: Any = None) -> tuple[llada_v.Model, Any]:
    """LLaDA-V (model_type llava_llada): the vision tower, projector and image newline, and the
    LLaMA-named language model as our LLaDA; strictly, from safetensors only."""
    from llada_core.llada_v_config import lm_config, sampling_rules, split_weights
    from llada_core.vision import VisionConfig

    tokenizer = load_tokenizer(folder)
    args = load_model_args(lm_config(config, tokenizer))
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    args.eot_token_id = eot if eot is not None and eot != tokenizer.unk_token_id else None
    try:
        vision = VisionConfig.from_config(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"config.json's vision settings: {error}") from error
    model = llada_v.Model(args, vision, placeholder=args.eos_token_id)
    weights = read_weights(folder)
    if llada_v.PATCH_WEIGHT in weights:  # llada convert's layout: the parts named already
        seeing = {name: weights.pop(name) for name in list(weights)
                  if name.startswith(("vision.", "projector.")) or name == "image_newline"}
        language = weights
    else:
        language, seeing = split_weights(weights, vision)
    weights = {**Model.sanitize(language), **llada_v.Model.sanitize_vision(seeing)}
    fill_model(model, weights, quantization_entry(config), parse_dtype(dtype))
    model.rules = sampling_rules(tokenizer)
    return model, tokenizer


def materialize(model: nn.Module) -> None:
    """Read (and cast) the weights one layer at a time, then drop the buffers the casts freed."""
    for _, module in model.named_modules():
        # Only a module's own arrays: its children are visited on their own.
        mx.eval([value for value in module.values() if isinstance(value, mx.array)])
    mx.eval(model.parameters())
    mx.clear_cache()
