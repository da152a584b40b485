"""LLaDA in MLX (Apple Silicon, or the CPU on Linux): the model, its loader, the diffusion sampler
and the conversion of official weights to quantized MLX checkpoints.

Never imports torch or the app; load and generate on one long-lived thread (MLX streams are per
thread). After dropping a model, call `release_memory()` to restore MLX's memory limits and free
its buffer cache.
"""

from llada_core.chat import encode_chat
from llada_mlx.convert import convert
from llada_mlx.loader import load
from llada_mlx.memory import release as release_memory
from llada_mlx.model import Model, ModelArgs
from llada_mlx.runtime import (LOAD_OPTIONS, describe, device_memory, forward, peak_memory,
                               peak_memory_method, reset_peak_memory, token_log_probs)
from llada_mlx.sampler import generate_steps

__all__ = ["LOAD_OPTIONS", "Model", "ModelArgs", "convert", "describe", "device_memory",
           "encode_chat", "forward", "generate_steps", "load", "peak_memory", "peak_memory_method",
           "release_memory", "reset_peak_memory", "token_log_probs"]
