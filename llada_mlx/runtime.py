"""What the app asks of a backend besides loading and sampling, answered for MLX: the load
options it takes, a description of the device and dtype, peak memory, one forward pass and
per-token log-probabilities (the pieces of the Monte Carlo log-likelihood)."""

from __future__ import annotations

from typing import Any, Optional

import mlx.core as mx
import numpy as np

from llada_mlx.memory import recommended_working_set

# The keyword options `load` takes beyond the path (MLX runs on its default device).
LOAD_OPTIONS = frozenset({"dtype"})


def describe(model: Any = None) -> dict[str, Any]:
    """{"device"} (MLX's default device, and "device_info" where Metal reports one), and the
    model's "dtype" when one is given."""
    info: dict[str, Any] = {"device": str(mx.default_device())}
    if mx.metal.is_available():
        details = mx.device_info()
        info["device_info"] = {k: v for k, v in details.items() if isinstance(v, (int, float, str))}
    if model is not None:
        info["dtype"] = str(getattr(model, "dtype", "")).rsplit(".", 1)[-1]
    return info


def device_memory(device: Optional[str] = None) -> Optional[tuple[int, str]]:
    """(bytes, what) MLX may keep resident on this machine's GPU; None where the device does not
    say (the CPU)."""
    size = recommended_working_set()
    return (size, "memory MLX recommends using on this Mac") if size else None


def peak_memory_method(model: Any) -> Optional[str]:
    return "mx.get_peak_memory"


def reset_peak_memory(model: Any) -> int:
    """Empty the buffer cache and start a peak measurement; returns the bytes active now."""
    mx.clear_cache()
    mx.reset_peak_memory()
    return int(mx.get_active_memory())


def peak_memory(model: Any) -> Optional[int]:
    return int(mx.get_peak_memory())


def forward(model: Any, ids: np.ndarray) -> None:
    """One pass of the model over token ids (B, L), evaluated (an NFE, for timing)."""
    mx.eval(model(mx.array(np.asarray(ids, dtype=np.int32))))


def token_log_probs(model: Any, noisy: np.ndarray, targets: np.ndarray, *, prompt_length: int = 0,
                    cfg_scale: float = 0.0, mask_id: int) -> np.ndarray:
    """log softmax(logits)[target] at each position of a batch (B, L), in float32; under CFG the
    logits are un + (c + 1)(cond − un), the unconditional pass having the prompt masked."""
    x = mx.array(np.asarray(noisy, dtype=np.int32))
    if cfg_scale > 0:
        unconditional = np.array(noisy, dtype=np.int32)
        unconditional[:, :prompt_length] = mask_id
        x = mx.concatenate([x, mx.array(unconditional)])
    logits = model(x).astype(mx.float32)
    if cfg_scale > 0:
        half = logits.shape[0] // 2
        cond, uncond = logits[:half], logits[half:]
        logits = uncond + (cfg_scale + 1) * (cond - uncond)
    log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    wanted = mx.array(np.asarray(targets, dtype=np.int32))[..., None]
    chosen = mx.take_along_axis(log_probs, wanted, axis=-1)[..., 0]
    return np.array(chosen, dtype=np.float32)
