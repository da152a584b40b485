"""One sentence for what went wrong while loading a model or answering; never a traceback.

Qt-free, shared by the window's worker and the command line.
"""

from __future__ import annotations

# What running out of memory looks like: Python's MemoryError, torch's OutOfMemoryError (CUDA,
# MPS), Metal's command-buffer failure under MLX, and allocators that give up.
OUT_OF_MEMORY_SIGNS = (
    "out of memory", "insufficient memory", "kiogpucommandbuffercallbackerroroutofmemory",
    "unable to allocate", "bad_alloc", "cannot allocate memory",
)

GENERATION_OUT_OF_MEMORY = (
    "There was not enough memory for this answer: try a shorter answer, fast mode (it keeps "
    "less in memory), or a smaller model (4-bit).")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return any(sign in text for sign in OUT_OF_MEMORY_SIGNS)


def load_error_message(path: str, error: BaseException) -> str:
    """One sentence for a model that failed to load."""
    text = str(error) or type(error).__name__
    if is_out_of_memory(error):
        return (f"There is not enough memory to load the model from {path}. Close other programs "
                "or choose a smaller (quantized) model.")
    if isinstance(error, FileNotFoundError):
        return f"The model could not be loaded: {text}."
    return f"The model from {path} could not be loaded: {text}"


def generation_error_message(error: BaseException) -> str:
    """One sentence for an answer that failed part-way."""
    if is_out_of_memory(error):
        return GENERATION_OUT_OF_MEMORY
    if isinstance(error, ValueError):
        return str(error)
    return f"Generation failed: {type(error).__name__}: {error}"


def client_error_message(error: BaseException, error_id: str) -> str:
    """One sentence for a client of the server: never the exception's own text, which may hold
    paths or internals; what went wrong is in the log under `error_id`."""
    from llada_core.driver import SamplerError

    if is_out_of_memory(error):
        return GENERATION_OUT_OF_MEMORY
    if isinstance(error, SamplerError):
        return f"{error} (error id {error_id})"
    return f"The answer failed (error id {error_id}; the server's log has the details)."
