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
from llada_mlx.sampler import generate_steps

__all__ = ["Model", "ModelArgs", "convert", "encode_chat", "generate_steps", "load",
           "release_memory"]
