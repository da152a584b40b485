"""LLaDA in PyTorch (CUDA, MPS or CPU): the model, its loader and the diffusion sampler."""

from llada_core.chat import encode_chat
from llada_torch.loader import load
from llada_torch.memory import release_memory
from llada_torch.model import Model, ModelArgs
from llada_torch.sampler import generate_steps

__all__ = ["Model", "ModelArgs", "encode_chat", "generate_steps", "load",
           "release_memory"]
