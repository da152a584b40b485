"""Will a model fit in this machine's memory?

Needed = the weights in the dtype they will be loaded in (the dtype stored in the safetensors, or
the one asked for; quantized MLX weights as stored) + the working set of the chosen settings
(KV cache, one block's activations and the logits for prompt + answer, at the model's own
d_model, layers, heads and vocabulary from config.json) + a fixed margin for the runtime.

Available = on Apple Silicon MLX's recommended working-set size (what Metal lets a process keep
resident), on a CUDA machine the GPU's total memory, else the physical RAM.

Nothing here imports torch or MLX at module level: MLX only to ask an Apple Silicon Mac for its
working set, torch only on a machine where it is installed, is not a Mac, and the PyTorch backend
is the one that will run.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from app.models.units import format_bytes
from llada_core.checkpoint import (
    DTYPE_BYTES, CheckpointError, read_config, stored_weights, weight_files,
)
from llada_core.config import LLaDAArgs

log = logging.getLogger(__name__)

# An allowance (not a measurement) for what the sum leaves out: the framework's own buffers (a
# CUDA context, Metal command buffers), temporaries of the sampler and allocator slack.
FIXED_MARGIN = 384 * 2 ** 20
# The fit is checked before a conversation exists: a prompt of a few turns and the reference
# chat's 128-token answer.
DEFAULT_PROMPT_TOKENS = 256
DEFAULT_ANSWER_TOKENS = 128
# What the backends compute in; a stored dtype outside these loads as float32 (llada_torch).
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    source: str     # what the number is, in words


@dataclass(frozen=True)
class Workload:
    """The settings the working set depends on."""

    prompt_length: int = DEFAULT_PROMPT_TOKENS
    gen_length: int = DEFAULT_ANSWER_TOKENS
    cfg_scale: float = 0.0

    @property
    def rows(self) -> int:
        return self.prompt_length + self.gen_length

    @property
    def batch(self) -> int:
        """Classifier-free guidance runs a second, unconditional canvas beside the first."""
        return 2 if self.cfg_scale > 0 else 1


@dataclass(frozen=True)
class WorkingSet:
    kv_cache: int
    activations: int
    logits: int
    margin: int = FIXED_MARGIN

    @property
    def total(self) -> int:
        return self.kv_cache + self.activations + self.logits + self.margin


def working_set(config: dict[str, Any], dtype: str, workload: Workload = Workload()) -> WorkingSet:
    """Memory beside the weights for one answer, from config.json's dimensions.

    - KV cache (fast mode keeps every layer's keys and values for the whole canvas);
    - one block's transient tensors (the hidden state, its norm, q, k, v and the attention output;
      gate, up and their product) plus the attention weights in float32 where attention is not
      fused; the blocks run one after another, so only one block's worth is alive;
    - the head's logits over the canvas in the compute dtype, and the float32 rows of the answer
      the sampler keeps (answer rows × vocabulary × 4 bytes).
    """
    dims = Dimensions.of(config)
    size = DTYPE_BYTES[dtype]
    batch, rows = workload.batch, workload.rows
    kv = dims.layers * 2 * batch * rows * dims.kv_heads * dims.head_dim * size
    block = batch * rows * (6 * dims.width + 3 * dims.ffn_width) * size
    attention = batch * dims.heads * rows * rows * 4
    logits = batch * rows * dims.vocab_rows * size + workload.gen_length * dims.vocab_rows * 4
    return WorkingSet(int(kv), int(block + attention), int(logits))


@dataclass(frozen=True)
class Dimensions:
    """What the working set depends on, for either family's config.json."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    width: int
    ffn_width: int    # the MLP's hidden width a token passes through (MoE: top-k experts')
    vocab_rows: int

    @classmethod
    def of(cls, config: dict[str, Any]) -> "Dimensions":
        from llada_core.config import LLaDAMoEArgs, is_moe_config
        from llada_core.llada2_config import LLaDA2Args, is_llada2_config

        try:
            if config.get("model_type") == "llava_llada":  # LLaDA-V: its LLaMA-named LM
                heads = config["num_attention_heads"]
                return cls(config["num_hidden_layers"], heads,
                           config.get("num_key_value_heads") or heads,
                           config["hidden_size"] // heads, config["hidden_size"],
                           config["intermediate_size"], config["vocab_size"])
            if is_llada2_config(config):
                two = LLaDA2Args.from_dict(config)
                experts = (two.num_experts_per_tok + two.num_shared_experts) * two.moe_intermediate_size
                return cls(two.num_hidden_layers, two.num_attention_heads, two.num_key_value_heads,
                           two.dim_per_head, two.hidden_size,
                           max(experts, two.intermediate_size), two.vocab_size)
            if is_moe_config(config):
                moe = LLaDAMoEArgs.from_dict(config)
                experts = moe.num_experts_per_tok * moe.expert_intermediate_size \
                    + moe.shared_expert_size
                dense = 0 if all(moe.moe_layer_freq) else moe.dense_intermediate_size
                return cls(moe.num_hidden_layers, moe.num_attention_heads, moe.kv_heads,
                           moe.head_dim, moe.hidden_size, max(experts, dense), moe.vocab_size)
            args = LLaDAArgs.from_dict(config)
        except TypeError as error:
            raise CheckpointError(f"config.json is missing a required field: {error}") from error
        return cls(args.n_layers, args.n_heads, args.kv_heads, args.head_dim, args.d_model,
                   args.hidden_size, args.rows)


def loaded_dtype(stored: Optional[str], requested: Optional[str] = None) -> str:
    """The dtype the float weights will have once loaded: the one asked for, else the stored one."""
    if requested:
        if requested not in COMPUTE_DTYPES:
            raise ValueError(f"dtype {requested!r} is not one of {', '.join(COMPUTE_DTYPES)}")
        return requested
    return stored if stored in COMPUTE_DTYPES else "float32"


@dataclass(frozen=True)
class FitReport:
    model_bytes: int                # on disk
    weights_bytes: int              # in memory, in `dtype`
    dtype: str
    working: WorkingSet
    limit: Optional[MemoryLimit]
    workload: Workload = field(default_factory=Workload)
    quantized_bits: Optional[int] = None

    @property
    def weights_text(self) -> str:
        if self.quantized_bits:
            return f"{self.quantized_bits}-bit quantized (with {self.dtype} scales)"
        return self.dtype

    @property
    def needed_bytes(self) -> int:
        return self.weights_bytes + self.working.total

    @property
    def fits(self) -> bool:
        return self.limit is None or self.needed_bytes <= self.limit.bytes

    def message(self) -> str:
        w = self.workload
        text = (f"The model's weights take {format_bytes(self.weights_bytes)} in memory as "
                f"{self.weights_text} ({format_bytes(self.model_bytes)} on disk); with the "
                f"working space for a {w.gen_length}-token answer after a {w.prompt_length}-token "
                f"prompt ({format_bytes(self.working.total)}) it needs about "
                f"{format_bytes(self.needed_bytes)}")
        if self.limit is None:
            return text + "."
        verdict = "which fits in" if self.fits else "which is more than"
        return f"{text}, {verdict} the {format_bytes(self.limit.bytes)} of {self.limit.source}."


# --- what the machine offers -------------------------------------------------------------------
def physical_memory() -> Optional[int]:
    """Installed RAM: sysctl hw.memsize on macOS, sysconf pages elsewhere."""
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True,
                                 timeout=5, check=True).stdout
            return int(out.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def mlx_working_set() -> Optional[int]:
    """MLX's recommended working-set size on Apple Silicon (what Metal lets a process keep)."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    for getter in (getattr(mx, "device_info", None),
                   getattr(getattr(mx, "metal", None), "device_info", None)):
        if getter is None:
            continue
        try:
            info = getter()
            value = info.get("max_recommended_working_set_size")
            if value:
                return int(value)
        except Exception:  # noqa: BLE001 - no Metal device: fall back to RAM
            log.debug("no Metal memory size", exc_info=True)
            continue
    return None


def accelerator_memory(backend: str, device: Optional[str] = None) -> Optional[tuple[int, str]]:
    """(total bytes, what) of the accelerator memory `backend` would run in (a CUDA GPU for
    PyTorch), as the backend reports it; None when it is not installed or runs on the CPU.
    Only called off Apple Silicon: a Mac never imports torch here."""
    from app.session.backends import BackendUnavailable, get_backend, is_installed

    if not is_installed(backend):
        return None
    try:
        return get_backend(backend).device_memory(device)
    except BackendUnavailable:
        log.debug("no %s backend to ask for its device memory", backend, exc_info=True)
        return None


def memory_limit(backend: Optional[str] = None, device: Optional[str] = None
                 ) -> Optional[MemoryLimit]:
    """What the backend can use on this machine (see the module docstring)."""
    from app.session.backends import default_backend, is_apple_silicon

    on_cpu = device == "cpu"
    if is_apple_silicon():
        # MLX and PyTorch's MPS share Metal's limit on unified memory
        working_set = None if on_cpu else mlx_working_set()
        if working_set:
            return MemoryLimit(working_set, "memory MLX recommends using on this Mac")
    elif not on_cpu:
        gpu = accelerator_memory(backend or default_backend(), device)
        if gpu:
            return MemoryLimit(gpu[0], f"memory on the GPU ({gpu[1]})")
    ram = physical_memory()
    return MemoryLimit(ram, "memory in this computer") if ram else None


# --- what the model needs ----------------------------------------------------------------------
def model_bytes(folder: str | Path) -> int:
    """The weight files' size on disk."""
    return sum(f.stat().st_size for f in weight_files(Path(folder)))


def model_needs(folder: str | Path, *, dtype: Optional[str] = None,
                workload: Optional[Workload] = None, weights: Optional[int] = None) -> FitReport:
    """What the model in `folder` needs, loaded in `dtype` (None: as stored) and run with
    `workload`; no limit. `weights` overrides the in-memory weight bytes."""
    folder = Path(folder)
    stored = stored_weights(folder)
    config = read_config(folder)
    load_dtype = loaded_dtype(stored.dtype, dtype)
    if weights is None:
        # as stored unless a cast happens (quantized weights keep their packed integers either way)
        weights = stored.nbytes_as(None if load_dtype == stored.dtype else load_dtype)
    workload = workload or Workload()
    quantization = config.get("quantization") or config.get("quantization_config")
    bits = quantization.get("bits") if isinstance(quantization, dict) else None
    return FitReport(model_bytes=model_bytes(folder), weights_bytes=weights, dtype=load_dtype,
                     working=working_set(config, load_dtype, workload), limit=None,
                     workload=workload, quantized_bits=bits)


def check_fit(folder: str | Path, limit: Optional[MemoryLimit] = None, *,
              backend: Optional[str] = None, device: Optional[str] = None,
              dtype: Optional[str] = None, workload: Optional[Workload] = None,
              weights: Optional[int] = None) -> FitReport:
    """model_needs() against `limit` (default: this machine's, for `backend` and `device`)."""
    report = model_needs(folder, dtype=dtype, workload=workload, weights=weights)
    return replace(report, limit=limit if limit is not None else memory_limit(backend, device))
