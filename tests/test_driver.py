"""llada_core.driver on its own: a numpy backend whose predictions a test chooses.

No torch, no MLX: this file runs in the MLX-only and torch-free passes alike.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from llada_core import driver
from llada_core.driver import Prediction, block_pass, factor_count, top_k_stable
from llada_core.kv_cache import KVCache
from llada_core.settings import SamplerSettings

VOCAB, MASK, EOS, EOT = 16, 15, 14, 13


class NumpyBackend:
    """Logits from a function of the canvas; records every pass the driver asks for."""

    mask_id, eos_id, eot_id = MASK, EOS, EOT

    def __init__(self, logits_fn):
        self.logits_fn = logits_fn
        self.passes: list[tuple[tuple[int, ...], bool, int, slice]] = []
        self.draws: list[tuple[int, int, bool]] = []

    def logits(self, ids, cache, offset, rows):
        self.passes.append((ids.shape, cache is not None, offset, rows))
        if cache is not None and not cache.filled:
            cache.layers.append((ids, ids))
        full = self.logits_fn(ids, offset)
        return full[:, rows]

    def predict(self, logits, row0, draw_rows, float32):
        self.draws.append((row0, draw_rows, float32))
        rows = logits[0]
        x0 = rows.argmax(-1)
        p = np.exp(rows - rows.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        score = p[np.arange(len(x0)), x0].astype(np.float32)
        return Prediction(x0.astype(np.int64), score, score)


def constant(row):
    row = np.asarray(row, dtype=np.float64)
    return lambda ids, offset: np.broadcast_to(row, (*ids.shape, VOCAB)).copy()


def frames_of(backend, prompt=(1, 2, 3), **kwargs):
    settings = SamplerSettings(**kwargs)
    return list(driver.run(backend, list(prompt), settings))


def test_exact_asks_only_for_the_rows_it_can_commit():
    backend = NumpyBackend(constant([0.0] * VOCAB))
    frames = frames_of(backend, gen_length=8, block_length=4, steps=4)
    assert len(frames) == 4 and frames[-1].done
    # the whole canvas is fed; only the masked rows before the block's end are asked for
    assert [p[0] for p in backend.passes] == [(1, 11)] * 4
    assert [p[3] for p in backend.passes] == [slice(3, 7), slice(5, 7), slice(7, 11), slice(9, 11)]
    # noise is drawn as the reference draws it: over the whole canvas, these rows kept
    assert backend.draws == [(3, 11, False), (5, 11, False), (7, 11, False), (9, 11, False)]


def test_a_mask_token_in_the_prompt_is_filled_as_the_reference_fills_it():
    backend = NumpyBackend(constant([0.0] * VOCAB))
    frames = frames_of(backend, prompt=(1, MASK, 3), gen_length=4, block_length=4, steps=4)
    # the prompt's mask competes with the block (lowest position first among equal confidences)
    assert backend.passes[0][3] == slice(1, 7)
    assert frames[0].committed_at.tolist() == [-1, -1, -1, -1]  # step 0 filled the prompt's mask
    assert (frames[-1].tokens[:3] != MASK).all() and frames[-1].tokens[3] == MASK


def test_fast_dual_cache_feeds_the_block_after_the_first_step():
    backend = NumpyBackend(constant([0.0] * VOCAB))
    frames_of(backend, gen_length=8, block_length=4, steps=8, mode="fast", threshold=None,
              early_stop=False)
    shapes = [(p[0], p[2], p[3]) for p in backend.passes]
    assert shapes == [((1, 11), 0, slice(3, 7)), ((1, 4), 3, slice(0, 4)),
                      ((1, 4), 3, slice(0, 4)), ((1, 4), 3, slice(0, 4)),
                      ((1, 11), 0, slice(7, 11)), ((1, 4), 7, slice(0, 4)),
                      ((1, 4), 7, slice(0, 4)), ((1, 4), 7, slice(0, 4))]
    assert all(float32 for _, _, float32 in backend.draws)


def test_block_pass_plans():
    filled = KVCache()
    filled.layers.append((None, None))
    assert block_pass(None, "dual", 5, 9) == driver.Pass(slice(0, None), 0, slice(5, 9))
    assert block_pass(KVCache(), "dual", 5, 9) == driver.Pass(slice(0, None), 0, slice(5, 9))
    assert block_pass(filled, "dual", 5, 9) == driver.Pass(slice(5, 9), 5, slice(0, 4))
    assert block_pass(filled, "prefix", 5, 9) == driver.Pass(slice(5, None), 5, slice(0, 4))


@pytest.mark.parametrize("stop_token", [EOS, EOT])
def test_early_stop_at_eos_or_end_of_turn(stop_token):
    row = [0.0] * VOCAB
    row[stop_token] = 20.0
    frames = frames_of(NumpyBackend(constant(row)), prompt=(1, 2), gen_length=16, block_length=4,
                       steps=16, mode="fast")
    assert len(frames) == 1 and frames[0].done and frames[0].committed == 16
    assert frames[0].tokens.tolist() == [stop_token] * 4 + [EOS] * 12


def test_no_early_stop_without_a_stop_token():
    row = [0.0] * VOCAB
    row[3] = 20.0
    frames = frames_of(NumpyBackend(constant(row)), prompt=(1, 2), gen_length=16, block_length=4,
                       steps=16, mode="fast")
    assert len(frames) == 4 and [f.committed for f in frames] == [4] * 4


@pytest.mark.parametrize("confidences, factor, expected", [
    ([0.99, 0.9, 0.5], 1.0, 2),     # 3·0.1 = 0.3 < 1 takes the second; 4·0.5 = 2 stops
    ([0.99, 0.9, 0.5], 2.5, 3),
    ([0.2, 0.1], 1.0, 1),           # at least one
    ([1.0, 1.0, 1.0, 1.0], 0.5, 4),
    ([0.9, 0.8], 0.5, 1),           # 3·0.2 = 0.6 is not below 0.5
])
def test_factor_rule(confidences, factor, expected):
    assert factor_count(np.array(confidences, dtype=np.float32), factor) == expected


def test_factor_rule_commits_in_confidence_order():
    def logits(ids, offset):
        out = np.zeros((*ids.shape, VOCAB))
        for position in range(ids.shape[1]):
            out[:, position, 4] = [0.0, 9.0, 1.0, 8.0][(offset + position) % 4]
        return out

    frames = frames_of(NumpyBackend(logits), prompt=(1, 2, 3, 4), gen_length=4, block_length=4,
                       steps=4, mode="fast", factor=1.0, cache="none")
    first = frames[0].committed_at
    assert frames[0].committed == 2 and first.tolist()[1] == 0 and first.tolist()[3] == 0


def test_threshold_compares_float32():
    # 0.9 as float32 is 0.899999976; a float32 confidence equal to it is at the threshold
    score = np.array([np.float32(0.9), 0.5], dtype=np.float32)
    s = SamplerSettings(mode="fast", threshold=0.9)
    chosen = driver.choose(score, np.array([True, True]), s, 1)
    assert chosen.tolist() == [0]


def test_top_k_stable_ties():
    assert top_k_stable(np.array([0.5, 1.0, 1.0, -np.inf], np.float32), 3).tolist() == [1, 2, 0]


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "x"])
def test_factor_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="factor must be a number above 0"):
        SamplerSettings(mode="fast", factor=bad)


def test_the_backends_share_the_driver():
    """No sampler logic is left in a backend: each adapter is a thin Backend over the driver."""
    from pathlib import Path

    root = Path(driver.__file__).resolve().parents[1]
    for name in ("llada_torch", "llada_mlx"):
        for module in ("sampler.py", "fast.py"):
            text = (root / name / module).read_text()
            assert "transfer_schedule" not in text and "early_stop and" not in text
        fast = (root / name / "fast.py").read_text()
        assert f"from {name}.sampler" not in fast  # the circular import is gone


# --- fixed tokens: word constraints and infilling (issue 15) --------------------------------

def position_logits(ids, offset):
    """Token (canvas position mod 7) predicted with a confidence that falls along the canvas,
    so the schedule's choices are easy to follow and constraints differ from predictions."""
    batch, length = ids.shape
    logits = np.zeros((batch, length, VOCAB))
    for i in range(length):
        logits[:, i, (offset + i) % 7] = 10.0 - 0.1 * (offset + i)
    return logits


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_constraints_are_written_before_the_first_step_and_never_change(mode):
    backend = NumpyBackend(position_logits)
    fixed = {0: 12, 5: 11, 6: 10}
    frames = list(driver.run(backend, [1, 2, 3], SamplerSettings(
        gen_length=8, block_length=4, steps=8, mode=mode), fixed))
    for frame in frames:
        assert [int(frame.tokens[p]) for p in fixed] == list(fixed.values())
        assert all(frame.committed_at[p] == 0 for p in fixed)
    # the first frame reports them (with what step 0 committed), as a stored trace replays them
    assert frames[0].committed == int((frames[0].committed_at == 0).sum())
    assert frames[-1].done and (frames[-1].tokens != MASK).all()
    # the first pass already sees them (they are in place before sampling)
    assert backend.passes and (frames[0].tokens[[0, 5, 6]] == [12, 11, 10]).all()
    # every other position holds the model's prediction
    free = [p for p in range(8) if p not in fixed]
    assert [int(frames[-1].tokens[p]) for p in free] == [(3 + p) % 7 for p in free]


def test_exact_schedule_does_not_count_constraints():
    backend = NumpyBackend(position_logits)
    frames = list(driver.run(backend, [1, 2, 3], SamplerSettings(
        gen_length=8, block_length=4, steps=4), {1: 12}))
    # block 0 has 3 masks over 2 steps (2 + 1), block 1 has 4 (2 + 2); step 0 also shows the
    # constraint, which the schedule never commits
    assert [f.committed for f in frames] == [3, 1, 2, 2]
    assert len(backend.passes) == 4


def test_exact_skips_a_block_the_constraints_fill_and_stops_when_no_mask_is_left():
    backend = NumpyBackend(position_logits)
    fixed = {0: 12, 1: 12, 2: 12, 3: 12, 4: 11}
    frames = list(driver.run(backend, [1, 2, 3], SamplerSettings(
        gen_length=8, block_length=4, steps=8), fixed))
    # block 0 is skipped (no pass); block 1 has 3 masks for 4 steps: the reference app breaks
    # when no mask is left anywhere, so 3 passes, the last frame done
    assert len(backend.passes) == 3 and [f.block for f in frames] == [1, 1, 1]
    assert frames[-1].done and not any(f.done for f in frames[:-1])
    assert (frames[-1].tokens != MASK).all()


def test_exact_with_a_filled_last_block_ends_done():
    backend = NumpyBackend(position_logits)
    frames = list(driver.run(backend, [1, 2, 3], SamplerSettings(
        gen_length=8, block_length=4, steps=4), {4: 1, 5: 1, 6: 1, 7: 1}))
    assert [f.block for f in frames] == [0, 0] and frames[-1].done


def test_fast_early_stop_never_fills_over_a_later_constraint():
    backend = NumpyBackend(constant([0.0] * (VOCAB - 2) + [5.0, 0.0]))  # always EOS
    settings = SamplerSettings(gen_length=8, block_length=4, steps=8, mode="fast", threshold=None)
    unconstrained = list(driver.run(NumpyBackend(backend.logits_fn), [1], settings))
    assert unconstrained[-1].block == 0 and unconstrained[-1].done  # stops after block 0
    frames = list(driver.run(backend, [1], settings, {6: 3}))
    assert frames[-1].done and int(frames[-1].tokens[6]) == 3
    assert frames[-1].block == 1 and (frames[-1].tokens != MASK).all()


def test_guidance_masks_constraints_with_the_prompt():
    seen = []

    def logits(ids, offset):
        seen.append(ids.copy())
        return position_logits(ids, offset)

    list(driver.run(NumpyBackend(logits), [1, 2], SamplerSettings(
        gen_length=4, block_length=4, steps=4, cfg_scale=1.0), {2: 9}))
    conditional, unconditional = seen[0]
    assert conditional.tolist()[:2] == [1, 2] and conditional[4] == 9
    assert unconditional[0] == MASK and unconditional[4] == MASK


def test_no_constraints_is_the_unconstrained_sampler():
    for mode in ("exact", "fast"):
        settings = SamplerSettings(gen_length=8, block_length=4, steps=8, mode=mode)
        a = [f.tokens.tolist() for f in driver.run(NumpyBackend(position_logits), [1], settings)]
        b = [f.tokens.tolist() for f in driver.run(NumpyBackend(position_logits), [1], settings, {})]
        assert a == b


@pytest.mark.parametrize("constraints, message", [
    ({7: [1, 2]}, "the constraint at position 7 (2 tokens) runs past the answer length 8"),
    ({9: [1]}, "runs past the answer length 8"),
    ({0: [1, 2, 3], 2: [4]}, "the constraints at positions 0 and 2 overlap at position 2"),
    ({0: []}, "has no tokens"),
    ({-1: [1]}, "must be a whole number 0 or more"),
    ({0: [MASK]}, "is not a valid id"),
    ({0: [1] * 8}, "nothing is left to generate"),
])
def test_bad_constraints_are_one_sentence(constraints, message):
    from llada_core.settings import checked_constraints

    with pytest.raises(ValueError, match=re.escape(message)):
        checked_constraints(constraints, 8, VOCAB, MASK)


def test_checked_constraints_spreads_tokens_over_positions():
    from llada_core.settings import checked_constraints

    assert checked_constraints({0: [5, 6], 4: [7]}, 8, VOCAB, MASK) == {0: 5, 1: 6, 4: 7}


# --- bad numbers stop the sampler, never loop --------------------------------------------------

@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_logits_stop_with_one_sentence(mode, bad):
    """Overflowing logits (a huge CFG scale) give NaN probabilities: an error, not a loop."""
    row = [0.0] * VOCAB
    row[3] = bad
    with pytest.raises(driver.SamplerError, match="infinite or NaN"):
        frames_of(NumpyBackend(constant(row)), gen_length=8, block_length=4, steps=8, mode=mode)


def test_fast_mode_never_runs_past_its_step_budget():
    """A model that keeps predicting the mask token commits nothing; the block's budget ends it."""
    row = [0.0] * VOCAB
    row[MASK] = 10.0
    backend = NumpyBackend(constant(row))
    with pytest.raises(driver.SamplerError, match="not filled within its 4 steps"):
        frames_of(backend, gen_length=8, block_length=4, steps=8, mode="fast")
    assert len(backend.passes) == 4
