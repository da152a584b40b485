"""Which sampler settings the sliders may offer: pure arithmetic, no Qt.

The rules are those of llada_core.settings.SamplerSettings: the block length divides the answer
length, the steps are a multiple of the number of blocks and at most the answer length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

ANSWER_LENGTHS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def answer_length_choices(current: int | None = None) -> list[int]:
    """The answer lengths the slider offers (the standard list, plus `current` if it is odd)."""
    choices = set(ANSWER_LENGTHS)
    if current is not None and current >= 1:
        choices.add(int(current))
    return sorted(choices)


def block_length_choices(gen_length: int) -> list[int]:
    """Every block length that divides the answer length."""
    if gen_length < 1:
        raise ValueError(f"answer length must be at least 1, not {gen_length}")
    return [b for b in range(1, gen_length + 1) if gen_length % b == 0]


def steps_choices(gen_length: int, block_length: int) -> list[int]:
    """Every step count that is a multiple of the number of blocks and at most the answer length."""
    if block_length < 1 or gen_length % block_length != 0:
        raise ValueError(
            f"block length {block_length} does not divide answer length {gen_length}")
    blocks = gen_length // block_length
    return [blocks * k for k in range(1, block_length + 1)]


def nearest(choices: Sequence[int], value: int) -> int:
    """The choice closest to `value` (the smaller one on a tie)."""
    if not choices:
        raise ValueError("there is nothing to choose from")
    return min(choices, key=lambda c: (abs(c - value), c))


def snap(gen_length: int, block_length: int, steps: int) -> tuple[int, int, int]:
    """A valid (answer length, block length, steps) as close as possible to the wish.

    The answer length is kept; the block length moves to the nearest divisor; the steps to the
    nearest multiple of the number of blocks that is at most the answer length.
    """
    block = nearest(block_length_choices(gen_length), block_length)
    step_count = nearest(steps_choices(gen_length, block), steps)
    return gen_length, block, step_count


def is_valid(gen_length: int, block_length: int, steps: int) -> bool:
    try:
        return steps in steps_choices(gen_length, block_length)
    except ValueError:
        return False


REFERENCE_BLOCK = 32


def for_answer_length(gen_length: int, block_length: int, steps: int,
                      previous_gen_length: int) -> tuple[int, int, int]:
    """A valid, sensible (answer length, block length, steps) when only the answer length
    changed: the tokens unmasked per step stay as they were, and the block length stays when it
    still divides the answer — except that a single block spanning the old answer (the demo's
    8/8/8) becomes the reference's 32-token blocks rather than many tiny ones."""
    if gen_length < 1:
        raise ValueError(f"answer length must be at least 1, not {gen_length}")
    previous = max(1, int(previous_gen_length))
    per_step = max(1.0, previous / max(1, int(steps)))
    wanted_block = block_length
    if block_length >= previous:
        wanted_block = min(gen_length, max(block_length, REFERENCE_BLOCK))
    block = nearest(block_length_choices(gen_length), wanted_block)
    wanted_steps = max(1, round(gen_length / per_step))
    return gen_length, block, nearest(steps_choices(gen_length, block), wanted_steps)


def plan_schedule(answer_length: Optional[int], defaults: Mapping[str, Any],
                  block_length: Optional[int] = None,
                  steps: Optional[int] = None) -> dict[str, int]:
    """The one schedule planner: answer length, block length and steps for an answer of
    `answer_length` tokens (None: the defaults' length) given `defaults` (a model's or a
    server's gen_length, block_length and steps).

    Without a block length or steps named, the rule is the window's and the command line's
    (for_answer_length): the answer keeps its length and the defaults' pace. A named block that
    does not divide the answer grows the canvas to whole blocks (the answer is cut back to the
    length asked for); steps then keep the pace, as a multiple of the blocks. Named steps are
    used as given (SamplerSettings refuses them if they do not fit).
    """
    wanted = int(answer_length) if answer_length is not None else int(defaults["gen_length"])
    if wanted < 1:
        raise ValueError(f"answer length must be at least 1, not {wanted}")
    if block_length is None:
        gen_length, block, planned = for_answer_length(
            wanted, int(defaults["block_length"]), int(defaults["steps"]),
            int(defaults["gen_length"]))
    else:
        if block_length < 1:
            raise ValueError(f"block length must be at least 1, not {block_length}")
        block = block_length
        gen_length = math.ceil(wanted / block) * block
        blocks = gen_length // block
        per_token = int(defaults["steps"]) / int(defaults["gen_length"])
        planned = min(gen_length, max(blocks, round(gen_length * per_token / blocks) * blocks))
    return {"gen_length": gen_length, "block_length": block,
            "steps": steps if steps is not None else planned}


# --- word constraints (stored with the conversation's settings as the text the user wrote) -------

CONSTRAINTS_KEY = "constraints"
# The composer's Fill the blanks toggle, remembered with each conversation's settings.
FILL_BLANKS_KEY = "fill_blanks"
# A question's picture (LLaDA-V), stored with the settings it was asked with.
PICTURE_KEY = "picture"


def constraints_entry(text: str) -> dict[str, str]:
    """The settings entry for the constraints field: none when it is empty (so settings without
    constraints stay what they always were)."""
    text = text.strip().rstrip(",").strip()
    return {CONSTRAINTS_KEY: text} if text else {}


def sampler_part(settings: dict) -> dict:
    """The settings the sampler's SamplerSettings takes (everything but the constraints and the
    fill-the-blanks toggle)."""
    return {key: value for key, value in settings.items()
            if key not in (CONSTRAINTS_KEY, FILL_BLANKS_KEY, PICTURE_KEY)}


def check_constraints_text(text: str, gen_length: int) -> list[tuple[int, str]]:
    """The (position, word) pairs of the field; a malformed pair, a position past the answer or
    one given twice is one sentence (how many tokens a word takes is checked with the tokenizer,
    when the answer starts)."""
    from llada_core.constraints import parse_constraints

    pairs = parse_constraints(text)
    seen: set[int] = set()
    for start, _ in pairs:
        if start >= gen_length:
            raise ValueError(f"the constraint at position {start} is past the answer "
                             f"(answer length {gen_length})")
        if start in seen:
            raise ValueError(f"position {start} has two constraints")
        seen.add(start)
    return pairs
