"""Load an official LLaDA checkpoint into our own PyTorch model, strictly, from safetensors only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from llada_core import tokens
from llada_core.chat import load_tokenizer
from llada_core.checkpoint import (
    CheckpointError, check_architecture, check_family, check_tensors, read_config,
    resolve_checkpoint, stored_dtype, weight_files,
)
from llada_core.config import is_moe_config
from llada_core.llada2_config import is_llada2_config
from llada_core.llada_v_config import is_llada_v_config
from llada_torch import llada2, llada_v, moe
from llada_torch.model import Model, ModelArgs
from llada_torch.threads import use_cpu_threads

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: Optional[str] = None) -> torch.device:
    """The given device, else CUDA, then Apple's MPS, then the CPU."""
    if device not in (None, "auto"):
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"device {device!r} is not a device PyTorch knows") from error
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_dtype(dtype: str | torch.dtype | None, stored: Optional[str] = None) -> torch.dtype:
    """The dtype asked for (float32, bfloat16 or float16), else the one the weights are stored in.

    `stored` comes from the safetensors headers (llada_core.checkpoint.stored_dtype), never from
    config.json: the official LLaDA 8B config has no torch_dtype, yet its weights are bfloat16.
    A stored dtype we cannot compute in (float64, float8) loads as float32.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return DTYPES.get(stored or "float32", torch.float32)
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model_args(config: dict[str, Any]) -> ModelArgs:
    if config.get("model_type") != "llada":
        raise CheckpointError(
            f"config.json has model_type {config.get('model_type')!r}; expected 'llada'"
        )
    if "quantization" in config or "quantization_config" in config:
        raise CheckpointError(
            "this checkpoint holds quantized MLX weights; load it with the MLX backend"
        )
    try:
        args = ModelArgs.from_dict(config)
    except TypeError as error:
        raise CheckpointError(f"config.json is missing a required field: {error}") from error
    if args.unsupported:
        listed = ", ".join(f"{k}={v!r}" for k, v in args.unsupported.items())
        raise CheckpointError(f"config.json asks for a LLaDA variant we do not implement: {listed}")
    if args.d_model % args.n_heads != 0:
        raise CheckpointError(f"d_model {args.d_model} is not a multiple of n_heads {args.n_heads}")
    return args


def load_moe_args(config: dict[str, Any]) -> moe.ModelArgs:
    """LLaDA-MoE's arguments from its config.json (a missing or unsupported field is one
    CheckpointError naming it)."""
    if config.get("model_type") != "llada":
        raise CheckpointError(
            f"config.json has model_type {config.get('model_type')!r}; expected 'llada'")
    if "quantization" in config or "quantization_config" in config:
        raise CheckpointError(
            "this checkpoint holds quantized MLX weights; load it with the MLX backend")
    return moe.ModelArgs.from_dict(config)


def read_weights(folder: Path, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    weights: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        try:
            with safe_open(str(path), framework="pt", device=str(device)) as shard:
                for name in shard.keys():
                    weights[name] = shard.get_tensor(name).to(dtype)
        except (OSError, RuntimeError, ValueError, SafetensorError) as error:
            raise CheckpointError(f"{path.name} is not a readable safetensors file: {error}") from error
    return weights


def check_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    check_tensors({name: tuple(p.shape) for name, p in model.state_dict().items()},
                  {name: tuple(w.shape) for name, w in weights.items()})


def load(path_or_repo_id: str | Path, *, dtype: str | torch.dtype | None = None,
         device: Optional[str] = None) -> tuple[Model, Any]:
    """Model and tokenizer from a local folder or a Hub repo id (official HF layout).

    dtype (float32, bfloat16, float16) casts the weights; None keeps the dtype they are stored in.
    """
    folder = resolve_checkpoint(path_or_repo_id)
    config = read_config(folder)
    if is_llada2_config(config):
        return load_llada2(folder, config, dtype=dtype, device=device)
    if is_llada_v_config(config):
        return load_llada_v(folder, config, dtype=dtype, device=device)
    check_architecture(config)
    if is_moe_config(config):
        return load_moe(folder, config, dtype=dtype, device=device)
    args = load_model_args(config)
    torch_dtype = parse_dtype(dtype, None if dtype else stored_dtype(folder))
    target = pick_device(device)
    tokenizer = load_tokenizer(folder)
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    args.eot_token_id = eot if eot is not None and eot != tokenizer.unk_token_id else None

    with torch.device("meta"):
        model = Model(args)
    weights = read_weights(folder, target, torch_dtype)
    check_family(config, weights)
    weights = Model.sanitize(weights)
    check_weights(model, weights)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    use_cpu_threads(model)
    return model, tokenizer


def load_moe(folder: Path, config: dict[str, Any], *, dtype: str | torch.dtype | None = None,
             device: Optional[str] = None) -> tuple[moe.Model, Any]:
    """LLaDA-MoE (architectures[0] LLaDAMoEModelLM) from its folder, experts stacked, strictly.

    The mask id is config.json's mask_token_id when present, else the tokenizer's <|mask|>; EOS
    (<|endoftext|>) and end of turn (<|role_end|>) come from the tokenizer."""
    args = load_moe_args(config)
    torch_dtype = parse_dtype(dtype, None if dtype else stored_dtype(folder))
    target = pick_device(device)
    tokenizer = load_tokenizer(folder)
    args.fill_token_ids(tokenizer)

    with torch.device("meta"):
        model = moe.Model(args)
    weights = read_weights(folder, target, torch_dtype)
    check_family(config, weights)
    weights = moe.Model.sanitize(weights, args.num_experts)
    check_weights(model, weights)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    use_cpu_threads(model)
    return model, tokenizer


def load_llada2(folder: Path, config: dict[str, Any], *, dtype: str | torch.dtype | None = None,
                device: Optional[str] = None) -> tuple[llada2.Model, Any]:
    """LLaDA 2.x (architectures[0] LLaDA2MoeModelLM) from its folder, experts stacked, strictly;
    ids from the tokenizer, the 2.1 editing decoder's defaults from generation_config.json."""
    if "quantization" in config or "quantization_config" in config:
        raise CheckpointError(
            "this checkpoint holds quantized MLX weights; load it with the MLX backend")
    args = llada2.ModelArgs.from_dict(config)
    torch_dtype = parse_dtype(dtype, None if dtype else stored_dtype(folder))
    target = pick_device(device)
    tokenizer = load_tokenizer(folder)
    args.fill_token_ids(tokenizer)
    args.read_generation_config(folder)
    with torch.device("meta"):
        model = llada2.Model(args)
    weights = llada2.Model.sanitize(read_weights(folder, target, torch_dtype), args.num_experts)
    check_weights(model, weights)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    use_cpu_threads(model)
    return model, tokenizer


def load_llada_v(folder: Path, config: dict[str, Any], *, dtype: str | torch.dtype | None = None,
                 device: Optional[str] = None) -> tuple[llada_v.Model, Any]:
    """LLaDA-V (model_type llava_llada): the vision tower, projector and image newline, and the
    LLaMA-named language model as our LLaDA; strictly, from safetensors only."""
    from llada_core.llada_v_config import lm_config, sampling_rules, split_weights
    from llada_core.vision import VisionConfig

    if "quantization" in config or "quantization_config" in config:
        raise CheckpointError("this checkpoint holds quantized MLX weights; load it with the MLX backend")
    tokenizer = load_tokenizer(folder)
    args = load_model_args(lm_config(config, tokenizer))
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    args.eot_token_id = eot if eot is not None and eot != tokenizer.unk_token_id else None
    try:
        vision = VisionConfig.from_config(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"config.json's vision settings: {error}") from error
    torch_dtype = parse_dtype(dtype, None if dtype else stored_dtype(folder))
    target = pick_device(device)
    with torch.device("meta"):
        model = llada_v.Model(args, vision, placeholder=args.eos_token_id)
    language, seeing = split_weights(read_weights(folder, target, torch_dtype), vision)
    weights = {**language, **seeing}
    check_weights(model, weights)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    model.rules = sampling_rules(tokenizer)
    use_cpu_threads(model)
    return model, tokenizer
