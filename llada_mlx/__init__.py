"""LLaDA in MLX (Apple Silicon, or the CPU on Linux): the model, its loader, the diffusion sampler
and the conversion of official weights to quantized MLX checkpoints.

Never imports torch or the app; load and generate on one long-lived thread (MLX streams are per
thread).
"""

from llada_core.chat import encode_chat
from llada_mlx.convert import convert
from llada_mlx.loader import load
from llada_mlx.model import Model, ModelArgs
from llada_mlx.sampler import generate_steps

__all__ = ["Model", "ModelArgs", "convert", "encode_chat", "generate_steps", "load"]
