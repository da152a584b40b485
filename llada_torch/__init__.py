"""LLaDA in PyTorch (CUDA, MPS or CPU): the model, its loader and the diffusion sampler."""

from llada_core.chat import encode_chat
from llada_torch.loader import load
from llada_torch.memory import release_memory
from llada_torch.model import Model, ModelArgs
from llada_torch.runtime import (LOAD_OPTIONS, describe, device_memory, forward, peak_memory,
                                 peak_memory_method, reset_peak_memory, token_log_probs)
from llada_torch.sampler import generate_steps

__all__ = ["LOAD_OPTIONS", "Model", "ModelArgs", "describe", "device_memory", "encode_chat",
           "forward", "generate_steps", "load", "peak_memory", "peak_memory_method",
           "release_memory", "reset_peak_memory", "token_log_probs"]
