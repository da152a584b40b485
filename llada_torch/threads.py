"""Applying llada_core.threads' rule to PyTorch's CPU thread pool."""

from __future__ import annotations

import torch

from llada_core.threads import cpu_threads, user_threads

# torch's own default (one thread per physical core), read once before anything changes it.
_DEFAULT_THREADS = torch.get_num_threads()


def use_cpu_threads(model: torch.nn.Module) -> int:
    """Set torch's intra-op threads for `model` when it runs on the CPU; returns the count.

    A count the user fixed ($LLADA_THREADS or $OMP_NUM_THREADS) wins.
    """
    threads = user_threads()
    if threads is None:
        device = next(model.parameters()).device
        if device.type != "cpu":
            return torch.get_num_threads()
        parameters = sum(p.numel() for p in model.parameters())
        threads = cpu_threads(parameters, _DEFAULT_THREADS)
    torch.set_num_threads(threads)
    return threads
