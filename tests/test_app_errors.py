"""What the user reads when a model fails to load or an answer fails (app/session/errors.py)."""

from __future__ import annotations

import pytest

from app.session.errors import generation_error_message, is_out_of_memory, load_error_message
from app.ui.worker import answer_stats


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda.OutOfMemoryError is."""


@pytest.mark.parametrize("error", [
    MemoryError(),
    OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
    RuntimeError("[METAL] Command buffer execution failed: Insufficient Memory "
                 "(00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)"),
    RuntimeError("[malloc] Unable to allocate 34359738368 bytes."),
    RuntimeError("std::bad_alloc"),
])
def test_out_of_memory_is_recognised(error):
    assert is_out_of_memory(error)
    message = generation_error_message(error)
    assert message.count(".") == 1 and message.endswith(".")  # one sentence
    assert "shorter answer" in message and "fast mode" in message and "smaller model" in message
    assert "not enough memory to load" in load_error_message("/m", error)


def test_other_errors_are_not_called_memory():
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert generation_error_message(ValueError("block length 24 does not divide answer length 64")) \
        == "block length 24 does not divide answer length 64"
    assert generation_error_message(RuntimeError("boom")) == "Generation failed: RuntimeError: boom"


def test_stats_count_the_visible_answer_and_the_padding_apart(tiny_tokenizer):
    tokenizer = tiny_tokenizer
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    mask = tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    tokens = [40, 41, 42, 43, eot, eos, eos, eos]
    stats = answer_stats(tokenizer, tokens, mask, steps=8, nfe=4, seconds=2.0)
    assert stats["tokens"] == 4 and stats["padding"] == 4
    assert stats["tokens_per_second"] == 2.0 and stats["tokens_per_pass"] == 1.0
    stopped = answer_stats(tokenizer, [40, mask, 42, mask], mask, steps=2, nfe=2, seconds=1.0)
    assert stopped["tokens"] == 2 and stopped["padding"] == 0
