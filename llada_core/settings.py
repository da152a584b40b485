"""Sampler settings: validation with messages a person understands, and the step schedule."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Optional

REMASKING_CHOICES = ("low_confidence", "random")
MODE_CHOICES = ("exact", "fast")
CACHE_CHOICES = ("dual", "prefix", "none")
# Upper bounds every front end shares. Temperature follows OpenAI's range (0-2); guidance above
# 10 only amplifies noise, and scales near float32's limit overflow the logits to inf/NaN. Seeds
# are what torch's and MLX's generators take (a signed 64-bit integer, 0 or more).
MAX_TEMPERATURE = 2.0
MAX_CFG_SCALE = 10.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SamplerSettings:
    gen_length: int = 128
    block_length: int = 32
    steps: int = 128
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"
    mode: str = "exact"
    seed: Optional[int] = None
    logits_eos_inf: bool = False
    confidence_eos_eot_inf: bool = False
    # Fast mode only (spec §4): which KV cache, the confidence threshold for parallel commits
    # (None keeps the fixed schedule), ending the answer at a finished block holding EOS or end
    # of turn, and Fast-dLLM's factor rule (commit the largest n with (n + 1)(1 - c_n) < factor
    # over confidences sorted descending), which replaces the threshold when given.
    cache: str = "dual"
    threshold: Optional[float] = 0.9
    early_stop: bool = True
    factor: Optional[float] = None
    # Block-diffusion models (LLaDA 2.x) only: LLaDA2.1's editing decoder replaces a written token
    # the model now predicts otherwise above this probability; None keeps the model's own choice
    # (2.1: its generation config's; 2.0: no editing).
    editing_threshold: Optional[float] = None

    def __post_init__(self) -> None:
        _check_positive_int("answer length", self.gen_length)
        _check_positive_int("block length", self.block_length)
        _check_positive_int("steps", self.steps)
        if self.gen_length % self.block_length != 0:
            raise ValueError(
                f"block length {self.block_length} does not divide answer length {self.gen_length}"
            )
        blocks = self.num_blocks
        if self.steps % blocks != 0:
            raise ValueError(
                f"steps {self.steps} is not a multiple of the number of blocks "
                f"({blocks} = answer length {self.gen_length} / block length {self.block_length})"
            )
        if self.steps > self.gen_length:
            raise ValueError(
                f"steps {self.steps} is more than the answer length {self.gen_length}; "
                "each step must unmask at least one token"
            )
        _check_bounded_float("temperature", self.temperature, MAX_TEMPERATURE)
        _check_bounded_float("CFG scale", self.cfg_scale, MAX_CFG_SCALE)
        if self.remasking not in REMASKING_CHOICES:
            raise ValueError(
                f"remasking {self.remasking!r} is unknown; choose one of {', '.join(REMASKING_CHOICES)}"
            )
        if self.mode not in MODE_CHOICES:
            raise ValueError(
                f"mode {self.mode!r} is unknown; choose one of {', '.join(MODE_CHOICES)}"
            )
        if self.cache not in CACHE_CHOICES:
            raise ValueError(f"cache {self.cache!r} is unknown; choose one of {', '.join(CACHE_CHOICES)}")
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                    or not 0 < self.threshold <= 1:
                raise ValueError(
                    f"threshold must be a number above 0 and at most 1 (or none), not {self.threshold!r}"
                )
            if self.mode == "fast" and self.remasking != "low_confidence":
                raise ValueError("threshold decoding needs low_confidence remasking "
                                 "(or use threshold none for the fixed schedule)")
        if self.factor is not None:
            if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) \
                    or not math.isfinite(self.factor) or self.factor <= 0:
                raise ValueError(f"factor must be a number above 0 (or none), not {self.factor!r}")
            if self.mode == "fast" and self.remasking != "low_confidence":
                raise ValueError("the factor rule needs low_confidence remasking")
        if self.editing_threshold is not None and (
                isinstance(self.editing_threshold, bool)
                or not isinstance(self.editing_threshold, (int, float))
                or not 0 <= self.editing_threshold <= 1):
            raise ValueError(f"editing threshold must be a number from 0 to 1 (or none), not "
                             f"{self.editing_threshold!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, not {self.seed!r}")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    def to_dict(self) -> dict:
        return asdict(self)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


def _check_bounded_float(name: str, value: object, most: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= most:
        raise ValueError(f"{name} must be a number from 0 to {most:g}, not {value:g}")


def transfer_schedule(masked: int, steps: int) -> list[int]:
    """How many tokens each of `steps` steps commits so that `masked` masks are all filled.

    The linear noise schedule spreads them evenly; the first `masked % steps` steps take one more.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    base, extra = divmod(masked, steps)
    return [base + (1 if i < extra else 0) for i in range(steps)]


def checked_constraints(constraints: Mapping[int, Sequence[int]], gen_length: int,
                        vocab_size: Optional[int] = None,
                        mask_id: Optional[int] = None) -> dict[int, int]:
    """Answer position -> token id for constraints given as start position -> token ids.

    A constraint's tokens take its position and the ones after it (as in the reference app.py),
    so each must end inside the answer, no two may share a position and at least one position
    must be left to generate; every failure is one sentence.
    """
    fixed: dict[int, int] = {}
    owner: dict[int, int] = {}
    for start in sorted(constraints):
        tokens = list(constraints[start])
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"constraint position {start!r} must be a whole number 0 or more")
        if not tokens:
            raise ValueError(f"the constraint at position {start} has no tokens")
        end = start + len(tokens)
        if end > gen_length:
            raise ValueError(
                f"the constraint at position {start} ({len(tokens)} token"
                f"{'s' if len(tokens) != 1 else ''}) runs past the answer length {gen_length}"
            )
        for position, token in zip(range(start, end), tokens):
            if position in owner:
                raise ValueError(
                    f"the constraints at positions {owner[position]} and {start} overlap "
                    f"at position {position}"
                )
            value = operator.index(token)
            if (vocab_size is not None and not 0 <= value < vocab_size) or value == mask_id:
                raise ValueError(f"constraint token {token!r} at position {position} is not a valid id")
            owner[position] = start
            fixed[position] = value
    if fixed and len(fixed) >= gen_length:
        raise ValueError("the constraints fill the whole answer; nothing is left to generate")
    return fixed


class ContextTooLong(ValueError):
    """The prompt and the answer do not fit in the model's context."""


def check_fits_context(prompt_length: int, gen_length: int, context: Optional[int]) -> None:
    """The prompt and the answer must fit the model's context (max_sequence_length; None: a
    model that declares none): ContextTooLong, in the one wording every front end shows."""
    total = prompt_length + gen_length
    if context is not None and total > context:
        raise ContextTooLong(
            f"the prompt ({prompt_length} tokens) and the answer ({gen_length} tokens) need "
            f"{total} tokens; this model's context is {context}"
        )


def checked_prompt_ids(prompt_ids: Iterable[int], vocab_size: int) -> list[int]:
    """The prompt as plain ints; an id the model has no embedding row for is named in the error."""
    checked = []
    for position, token in enumerate(prompt_ids):
        try:
            value = operator.index(token)
        except TypeError:
            value = None
        if value is None or isinstance(token, bool) or not 0 <= value < vocab_size:
            raise ValueError(
                f"prompt token {token!r} at position {position} is not a valid id "
                f"(the model has ids 0 to {vocab_size - 1})"
            )
        checked.append(value)
    return checked
