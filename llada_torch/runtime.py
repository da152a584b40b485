"""What the app asks of a backend besides loading and sampling, answered for PyTorch: the load
options it takes, a description of the device and dtype, peak memory, one forward pass and
per-token log-probabilities (the pieces of the Monte Carlo log-likelihood)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

# The keyword options `load` takes beyond the path.
LOAD_OPTIONS = frozenset({"dtype", "device"})


def _device(model: Any) -> Optional[torch.device]:
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else None


def describe(model: Any = None) -> dict[str, str]:
    """{"device", "dtype"} of a loaded model (and "device_name" on a CUDA GPU); {} without one."""
    if model is None:
        return {}
    device = _device(model)
    info = {"device": str(device if device is not None else ""),
            "dtype": str(getattr(model, "dtype", "")).rsplit(".", 1)[-1]}
    if device is not None and device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def device_memory(device: Optional[str] = None) -> Optional[tuple[int, str]]:
    """(total bytes, name) of the CUDA GPU this backend would use; None on the CPU or MPS."""
    try:
        if not torch.cuda.is_available():
            return None
        index = torch.device(device).index if device and device.startswith("cuda") else None
        properties = torch.cuda.get_device_properties(
            torch.cuda.current_device() if index is None else index)
    except (RuntimeError, AssertionError, ValueError):
        return None
    return int(properties.total_memory), str(properties.name)


def peak_memory_method(model: Any) -> Optional[str]:
    """How `peak_memory` measures on the model's device; None where it cannot (the CPU)."""
    device = _device(model)
    if device is not None and device.type == "cuda":
        return "torch.cuda.max_memory_allocated"
    return None


def reset_peak_memory(model: Any) -> int:
    """Start a peak measurement; returns the bytes allocated now (0 where it cannot measure)."""
    if peak_memory_method(model) is None:
        return 0
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return int(torch.cuda.memory_allocated())


def peak_memory(model: Any) -> Optional[int]:
    """Peak bytes allocated since `reset_peak_memory`; None where it cannot measure."""
    if peak_memory_method(model) is None:
        return None
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())


def forward(model: Any, ids: np.ndarray) -> None:
    """One pass of the model over token ids (B, L), waited for (an NFE, for timing)."""
    with torch.inference_mode():
        model(torch.as_tensor(np.ascontiguousarray(ids), dtype=torch.long,
                              device=_device(model) or "cpu"))
    if peak_memory_method(model) is not None:
        torch.cuda.synchronize()


def token_log_probs(model: Any, noisy: np.ndarray, targets: np.ndarray, *, prompt_length: int = 0,
                    cfg_scale: float = 0.0, mask_id: int) -> np.ndarray:
    """log softmax(logits)[target] at each position of a batch (B, L), in float32; under CFG the
    logits are un + (c + 1)(cond − un), the unconditional pass having the prompt masked."""
    with torch.inference_mode():
        x = torch.as_tensor(np.ascontiguousarray(noisy), dtype=torch.long, device=model.device)
        if cfg_scale > 0:
            unconditional = x.clone()
            unconditional[:, :prompt_length] = mask_id
            x = torch.cat([x, unconditional])
        logits = model(x).float()
        if cfg_scale > 0:
            cond, uncond = logits.chunk(2)
            logits = uncond + (cfg_scale + 1) * (cond - uncond)
        wanted = torch.as_tensor(np.ascontiguousarray(targets), dtype=torch.long, device=logits.device)
        chosen = torch.log_softmax(logits, dim=-1).gather(-1, wanted[..., None])[..., 0]
        return chosen.cpu().numpy().astype(np.float32)
