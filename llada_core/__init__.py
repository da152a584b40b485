"""Framework-free pieces shared by both LLaDA backends and the app.

Nothing here imports torch or mlx: the chat template and tokenizer, the step frames a sampler
yields, the validation and schedule of sampler settings, locating a checkpoint, and the builder
of tiny test checkpoints.
"""

from llada_core.chat import (
    answer_text,
    continue_conversation,
    encode_chat,
    load_tokenizer,
    visible_answer_ids,
)
from llada_core.frames import StepFrame
from llada_core.settings import SamplerSettings, transfer_schedule

__all__ = [
    "StepFrame",
    "SamplerSettings",
    "answer_text",
    "continue_conversation",
    "encode_chat",
    "load_tokenizer",
    "transfer_schedule",
    "visible_answer_ids",
]
