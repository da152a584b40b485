"""The pure 'valid combinations' logic behind the settings sliders."""

import pytest

from app.session import settings_logic as logic
from llada_core.settings import SamplerSettings


def test_reference_defaults_are_offered():
    assert 128 in logic.answer_length_choices()
    assert 32 in logic.block_length_choices(128)
    assert 128 in logic.steps_choices(128, 32)
    assert logic.is_valid(128, 32, 128)


def test_block_lengths_divide_the_answer_length():
    assert logic.block_length_choices(12) == [1, 2, 3, 4, 6, 12]
    for gen in logic.answer_length_choices():
        for block in logic.block_length_choices(gen):
            assert gen % block == 0


def test_steps_are_multiples_of_blocks_and_at_most_the_answer_length():
    assert logic.steps_choices(64, 16) == [4 * k for k in range(1, 17)]
    for gen in logic.answer_length_choices():
        for block in logic.block_length_choices(gen):
            for steps in logic.steps_choices(gen, block):
                SamplerSettings(gen_length=gen, block_length=block, steps=steps)


def test_every_valid_combination_is_offered():
    gen = 48
    offered = {(block, steps) for block in logic.block_length_choices(gen)
               for steps in logic.steps_choices(gen, block)}
    for block in range(1, gen + 1):
        for steps in range(1, gen + 1):
            try:
                SamplerSettings(gen_length=gen, block_length=block, steps=steps)
            except ValueError:
                assert (block, steps) not in offered
            else:
                assert (block, steps) in offered


def test_snap_moves_to_the_nearest_valid_combination():
    assert logic.snap(128, 32, 128) == (128, 32, 128)
    assert logic.snap(64, 24, 64) == (64, 16, 64)   # 24 does not divide 64; 16 is nearest
    assert logic.snap(64, 32, 7) == (64, 32, 6)     # a multiple of 2 blocks; ties go down
    assert logic.snap(64, 32, 9.5) == (64, 32, 10)
    assert logic.snap(16, 4, 100) == (16, 4, 16)    # at most the answer length
    assert logic.is_valid(*logic.snap(96, 50, 33))


def test_odd_current_answer_length_is_kept_in_the_choices():
    assert 40 in logic.answer_length_choices(40)
    assert 40 not in logic.answer_length_choices()


def test_invalid_input_raises():
    with pytest.raises(ValueError):
        logic.steps_choices(64, 24)
    with pytest.raises(ValueError):
        logic.block_length_choices(0)
    assert not logic.is_valid(64, 24, 64)
