"""The exact sampler: schedule, tie rules, never re-masking, CFG, EOS options, seeds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llada_core.settings import transfer_schedule
from llada_torch import generate_steps

VOCAB, MASK, EOS, EOT = 16, 15, 14, 13


class ScriptedModel(torch.nn.Module):
    """A stand-in mask predictor whose logits a test chooses; it records every input."""

    def __init__(self, logits_fn):
        super().__init__()
        self.args = SimpleNamespace(rows=VOCAB, mask_token_id=MASK, eos_token_id=EOS,
                                    eot_token_id=EOT)
        self.logits_fn = logits_fn
        self.inputs: list[torch.Tensor] = []

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, x, cache=None, offset=0, logits_for=None):
        self.inputs.append(x.clone())
        if cache is not None and not cache.filled:
            cache.layers.append((x, x))  # the fast sampler only asks whether it is filled
        logits = self.logits_fn(x)
        return logits if logits_for is None else logits[:, logits_for]


def constant_logits(row):
    row = torch.tensor(row, dtype=torch.float32)
    return lambda x: row.expand(x.shape[0], x.shape[1], VOCAB).clone()


def run(model, prompt=(1, 2, 3), **kwargs):
    return list(generate_steps(model, list(prompt), **kwargs))


def test_argmax_ties_take_the_lowest_token_id():
    row = [0.0] * VOCAB
    row[7] = row[5] = 3.0  # tie between 5 and 7
    frames = run(ScriptedModel(constant_logits(row)), gen_length=4, block_length=4, steps=4)
    assert frames[-1].tokens.tolist() == [5, 5, 5, 5]


def test_confidence_ties_commit_the_lowest_position_first():
    frames = run(ScriptedModel(constant_logits([0.0] * VOCAB)), gen_length=8, block_length=8, steps=4)
    # Every confidence is equal, so each step commits the two leftmost masks.
    assert frames[-1].committed_at.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_most_confident_positions_are_committed_first():
    def logits(x):
        out = torch.zeros(x.shape[0], x.shape[1], VOCAB)
        for position in range(x.shape[1]):
            out[:, position, position % 10] = float(position)  # later positions more confident
        return out

    frames = run(ScriptedModel(logits), prompt=[1], gen_length=6, block_length=6, steps=6)
    assert frames[-1].committed_at.tolist() == [5, 4, 3, 2, 1, 0]


def test_schedule_blocks_and_nfe_follow_the_reference(tiny_torch):
    model, tokenizer = tiny_torch
    prompt = [5, 6, 7, 8]
    frames = run(model, prompt, gen_length=32, block_length=8, steps=16)
    assert len(frames) == 16
    assert [f.index for f in frames] == list(range(16))
    assert [f.nfe for f in frames] == list(range(1, 17))
    assert [f.block for f in frames] == [b for b in range(4) for _ in range(4)]
    assert [f.committed for f in frames] == transfer_schedule(8, 4) * 4
    assert frames[-1].done and not any(f.done for f in frames[:-1])
    final = frames[-1]
    # Block b is committed during block b's steps only: semi-autoregressive order.
    for position, step in enumerate(final.committed_at):
        assert position // 8 == step // 4


def test_committed_tokens_never_change_and_no_mask_is_left(tiny_torch):
    model, _ = tiny_torch
    mask = model.args.mask_token_id
    frames = run(model, [5, 6, 7], gen_length=24, block_length=12, steps=12, temperature=0.8,
                 seed=1, remasking="random")
    previous = np.full(24, mask)
    for frame in frames:
        was_committed = previous != mask
        assert (frame.tokens[was_committed] == previous[was_committed]).all()
        newly = (frame.tokens != mask) & ~was_committed
        assert newly.sum() == frame.committed
        assert (frame.committed_at[newly] == frame.index).all()
        assert ((frame.committed_at >= 0) == (frame.tokens != mask)).all()
        previous = frame.tokens
    assert (frames[-1].tokens != mask).all()
    assert ((frames[-1].confidence > 0) & (frames[-1].confidence <= 1)).all()


def test_cfg_masks_the_prompt_in_the_unconditional_pass_and_counts_two_passes():
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    frames = run(model, prompt=[1, 2, 3], gen_length=4, block_length=4, steps=2, cfg_scale=1.5)
    assert [f.nfe for f in frames] == [2, 4]
    batch = model.inputs[0]
    assert batch.shape == (2, 7)
    assert batch[0, :3].tolist() == [1, 2, 3]
    assert batch[1, :3].tolist() == [MASK] * 3
    assert (batch[:, 3:] == MASK).all()


def test_cfg_combines_conditional_and_unconditional_logits():
    def logits(x):
        out = torch.zeros(x.shape[0], x.shape[1], VOCAB)
        prompt_visible = (x[:, :1] != MASK).float()[:, :, None]
        out[..., 4] = 1.0 + prompt_visible[..., 0]  # cond 2, uncond 1 -> 1 + 2.5 * 1 = 3.5
        out[..., 6] = 3.0  # 3 in both -> 3
        return out

    frames = run(ScriptedModel(logits), prompt=[1], gen_length=2, block_length=2, steps=1, cfg_scale=1.5)
    assert frames[-1].tokens.tolist() == [4, 4]
    frames = run(ScriptedModel(logits), prompt=[1], gen_length=2, block_length=2, steps=1)
    assert frames[-1].tokens.tolist() == [6, 6]


def test_logits_eos_inf_never_predicts_eos():
    row = [0.0] * VOCAB
    row[EOS], row[3] = 9.0, 1.0
    assert (run(ScriptedModel(constant_logits(row)), gen_length=4, block_length=4, steps=4)[-1].tokens == EOS).all()
    frames = run(ScriptedModel(constant_logits(row)), gen_length=4, block_length=4, steps=4, logits_eos_inf=True)
    assert frames[-1].tokens.tolist() == [3, 3, 3, 3]


def test_confidence_eos_eot_inf_commits_eos_and_eot_last():
    def logits(x):
        out = torch.zeros(x.shape[0], x.shape[1], VOCAB)
        out[:, :, 2] = 1.0
        out[:, 1::3, EOS] = 5.0  # some positions predict EOS, some EoT, confidently
        out[:, 2::3, EOT] = 5.0
        return out

    plain = run(ScriptedModel(logits), prompt=[1], gen_length=6, block_length=6, steps=6)
    barred = run(ScriptedModel(logits), prompt=[1], gen_length=6, block_length=6, steps=6,
                 confidence_eos_eot_inf=True)
    answer = [EOS, EOT, 2, EOS, EOT, 2]  # canvas positions 1..6 after a one-token prompt
    assert plain[-1].tokens.tolist() == answer == barred[-1].tokens.tolist()
    stops, words = [0, 1, 3, 4], [2, 5]
    assert barred[-1].committed_at[stops].min() > barred[-1].committed_at[words].max()
    assert plain[-1].committed_at[stops].max() < plain[-1].committed_at[words].min()


def test_seed_makes_sampling_repeatable(tiny_torch):
    model, _ = tiny_torch
    settings = dict(gen_length=16, block_length=8, steps=8, temperature=1.0, remasking="random")
    first = run(model, [4, 5], seed=7, **settings)[-1].tokens
    again = run(model, [4, 5], seed=7, **settings)[-1].tokens
    other = [run(model, [4, 5], seed=s, **settings)[-1].tokens for s in (8, 9, 10)]
    assert (first == again).all()
    assert any((first != o).any() for o in other)


def test_temperature_zero_ignores_the_seed(tiny_torch):
    model, _ = tiny_torch
    a = run(model, [4, 5], gen_length=16, block_length=16, steps=8, seed=1)[-1].tokens
    b = run(model, [4, 5], gen_length=16, block_length=16, steps=8, seed=2)[-1].tokens
    assert (a == b).all()


def test_errors_are_raised_before_any_work():
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    with pytest.raises(ValueError, match="block length 3 does not divide answer length 8"):
        generate_steps(model, [1], gen_length=8, block_length=3, steps=8)
    with pytest.raises(ValueError, match="prompt token 16 at position 1"):
        generate_steps(model, [1, 16], gen_length=8, block_length=8, steps=8)
    assert model.inputs == []


def test_stopping_iteration_stops_the_work():
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    for frame in generate_steps(model, [1], gen_length=8, block_length=8, steps=8):
        if frame.index == 2:
            break
    assert len(model.inputs) == 3


def test_bfloat16_checkpoint_generates(tiny_bf16_checkpoint):
    from llada_torch import load

    model, _ = load(tiny_bf16_checkpoint, device="cpu")
    assert model.dtype == torch.bfloat16
    frames = run(model, [4, 5, 6], gen_length=16, block_length=8, steps=8, cfg_scale=1.0)
    assert (frames[-1].tokens != model.args.mask_token_id).all()


# --- temperature > 0: float64 Gumbel (reference) where the device has it, float32 on MPS -------

def random_logits(seed):
    table = torch.randn(1, 7, VOCAB, generator=torch.Generator().manual_seed(seed)) * 2
    return lambda x: table.expand(x.shape[0], -1, -1)[:, :x.shape[1]].clone()


def one_step_tokens(temperature, seed, **kwargs):
    """Answer of a one-step run (every mask committed at once) on a scripted model."""
    model = ScriptedModel(random_logits(0))
    frames = run(model, prompt=(1, 2, 3), gen_length=4, block_length=4, steps=1,
                 temperature=temperature, seed=seed, **kwargs)
    return frames[-1].tokens.tolist()


def test_mps_has_no_float64_and_the_cpu_does():
    from llada_torch.sampler import has_float64

    assert not has_float64(torch.device("mps"))
    assert has_float64(torch.device("cpu")) and has_float64(torch.device("cuda"))


def test_cpu_sampling_is_the_reference_float64_formula():
    from llada_torch.sampler import gumbel_argmax_input

    logits = random_logits(0)(torch.zeros(1, 7))
    noisy = gumbel_argmax_input(logits.clone(), 0.7, torch.Generator().manual_seed(3))
    assert noisy.dtype == torch.float64
    u = torch.rand(logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    reference = logits.to(torch.float64).exp() / (-torch.log(u)) ** 0.7
    assert torch.equal(noisy, reference)
    # and the whole exact sampler on the CPU picks the reference's tokens
    expected = torch.argmax(reference, dim=-1)[0, 3:].tolist()
    assert one_step_tokens(0.7, seed=3) == expected


def test_without_float64_sampling_uses_float32_gumbel_noise(monkeypatch):
    from llada_torch import sampler

    logits = random_logits(0)(torch.zeros(1, 7))
    monkeypatch.setattr(sampler, "has_float64", lambda device: False)
    noisy = sampler.gumbel_argmax_input(logits.clone(), 0.7, torch.Generator().manual_seed(3))
    assert noisy.dtype == torch.float32
    u = torch.rand(logits.shape, dtype=torch.float32, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(noisy, logits / 0.7 - torch.log(-torch.log(u)))
    expected = torch.argmax(noisy, dim=-1)[0, 3:].tolist()
    assert one_step_tokens(0.7, seed=3) == expected
    # deterministic for a seed, different across seeds, still nothing at temperature 0
    assert one_step_tokens(0.7, seed=3) == expected
    assert len({tuple(one_step_tokens(0.7, seed=s)) for s in range(8)}) > 1
    monkeypatch.setattr(torch, "rand", None)  # temperature 0 draws nothing, on either path
    assert one_step_tokens(0.0, seed=1) == torch.argmax(logits, -1)[0, 3:].tolist()


@pytest.mark.parametrize("float64", [True, False])
def test_both_sampling_forms_draw_from_softmax_over_temperature(monkeypatch, float64):
    from llada_torch import sampler

    monkeypatch.setattr(sampler, "has_float64", lambda device: float64)
    row = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 1.5])
    draws = 40_000
    for temperature in (0.5, 1.0, 2.0):
        noisy = sampler.gumbel_argmax_input(row.expand(1, draws, -1).clone(), temperature,
                                            torch.Generator().manual_seed(11))
        freq = torch.bincount(torch.argmax(noisy, -1)[0], minlength=6).double() / draws
        target = torch.softmax(row.double() / temperature, -1)
        # binomial standard error is at most 0.0025 here; 0.012 is about five of them
        assert (freq - target).abs().max() < 0.012, (temperature, freq, target)


def test_tiny_model_samples_on_both_paths(tiny_torch, monkeypatch):
    from llada_torch import sampler

    model, _ = tiny_torch
    settings = dict(gen_length=16, block_length=8, steps=8, temperature=1.0, seed=5)
    float64 = run(model, [4, 5], **settings)[-1].tokens
    monkeypatch.setattr(sampler, "has_float64", lambda device: False)
    first = run(model, [4, 5], **settings)[-1].tokens
    again = run(model, [4, 5], **settings)[-1].tokens
    assert (first == again).all() and (first != model.args.mask_token_id).all()
    # other random numbers: the float32 path is not the float64 one in disguise
    assert (first != float64).any()


# --- the reference generate() (spec §3), written out, against the sampler -----------------------

def reference_generate(model, prompt, *, steps, gen_length, block_length, temperature=0.0,
                       cfg_scale=0.0, remasking="low_confidence", seed=0):
    """ML-GSAI/LLaDA's generate() as the spec states it: whole-canvas logits every step, noise
    over the whole canvas from the global generator, the stable top-k tie rule."""
    torch.manual_seed(seed)
    mask_id = model.args.mask_token_id
    x = torch.full((1, len(prompt) + gen_length), mask_id, dtype=torch.long)
    x[0, :len(prompt)] = torch.tensor(prompt)
    prompt_index = x != mask_id
    P, blocks = len(prompt), gen_length // block_length
    per_block = steps // blocks
    for block in range(blocks):
        block_masks = int((x[0, P + block * block_length:P + (block + 1) * block_length] == mask_id).sum())
        schedule = transfer_schedule(block_masks, per_block)
        for i in range(per_block):
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                logits = model(torch.cat([x, un_x]))
                cond, un = torch.chunk(logits, 2, dim=0)
                logits = un + (cfg_scale + 1) * (cond - un)
            else:
                logits = model(x)
            if temperature > 0:
                wide = logits.to(torch.float64)
                noise = torch.rand_like(wide, dtype=torch.float64)
                noisy = wide.exp() / (-torch.log(noise)) ** temperature
            else:
                noisy = logits
            x0 = torch.argmax(noisy, dim=-1)
            if remasking == "low_confidence":
                p = torch.softmax(logits, dim=-1)
                x0_p = torch.gather(p, -1, x0[..., None])[..., 0]
            else:
                x0_p = torch.rand(x0.shape)
            x0_p[:, P + (block + 1) * block_length:] = -np.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -np.inf)
            chosen = torch.sort(confidence[0], descending=True, stable=True).indices[:schedule[i]]
            x[0, chosen] = x0[0, chosen]
    return x[0, P:].tolist()


@pytest.mark.parametrize("settings", [
    dict(gen_length=32, block_length=8, steps=32),
    dict(gen_length=32, block_length=16, steps=16, cfg_scale=1.5),
    dict(gen_length=24, block_length=8, steps=12, temperature=0.8, seed=3),
    dict(gen_length=16, block_length=16, steps=16, temperature=1.0, cfg_scale=1.0, seed=5),
    dict(gen_length=16, block_length=8, steps=8, remasking="random", temperature=0.5, seed=9),
], ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_exact_equals_the_reference_generate(tiny_torch, settings):
    """Only the block's rows go through the head, yet the tokens (and, above temperature 0, the
    random stream for a seed) are the reference's."""
    model, _ = tiny_torch
    for prompt in ([5, 6, 7, 8], [40, 41, 42, 43, 44, 45, 46]):
        with torch.no_grad():
            expected = reference_generate(model, prompt, **settings)
        ours = run(model, prompt, **settings)[-1].tokens.tolist()
        assert ours == expected


def test_a_prompt_holding_masks_is_filled_as_the_reference_fills_it(tiny_torch):
    model, _ = tiny_torch
    prompt = [5, model.args.mask_token_id, 7, model.args.mask_token_id]
    settings = dict(gen_length=16, block_length=8, steps=8)
    with torch.no_grad():
        expected = reference_generate(model, prompt, **settings)
    assert run(model, prompt, **settings)[-1].tokens.tolist() == expected


def test_exact_mode_asks_the_head_for_the_block_only():
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    seen = []
    forward = model.forward

    def recording(x, cache=None, offset=0, logits_for=None):
        seen.append(logits_for)
        return forward(x, cache, offset, logits_for)

    model.forward = recording
    run(model, prompt=(1, 2, 3), gen_length=8, block_length=4, steps=4)
    assert seen == [slice(3, 7), slice(5, 7), slice(7, 11), slice(9, 11)]


def test_temperature_draws_one_full_canvas_of_float64_noise_per_step(monkeypatch):
    """The reference's random stream: one (1, canvas, V) float64 draw per step, nothing more."""
    shapes = []
    real_rand = torch.rand

    def recording_rand(*args, **kwargs):
        shapes.append((tuple(args[0]), kwargs.get("dtype")))
        return real_rand(*args, **kwargs)

    monkeypatch.setattr(torch, "rand", recording_rand)
    one_step_tokens(0.7, seed=3)
    assert shapes == [((1, 7, VOCAB), torch.float64)]


# --- word constraints as the reference app.py applies them (issue 15) ---------------------------

def reference_app_generate(model, prompt, constraints, *, steps, gen_length, block_length,
                           cfg_scale=0.0):
    """ML-GSAI/LLaDA app.py's constrained sampler at temperature 0, written out: constraint tokens
    written into the canvas before the prompt index is taken, a block without masks skipped, the
    loop left when no mask is left, constraints written again after every step (the stable
    top-k tie rule in place of torch.topk, as everywhere in our sampler)."""
    mask_id = model.args.mask_token_id
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt)
    for position, token in constraints.items():
        x[0, P + position] = token
    prompt_index = x != mask_id
    per_block = steps // (gen_length // block_length)
    for block in range(gen_length // block_length):
        start, end = P + block * block_length, P + (block + 1) * block_length
        block_masks = int((x[0, start:end] == mask_id).sum())
        if block_masks == 0:
            continue
        schedule = transfer_schedule(block_masks, per_block)
        for i in range(per_block):
            mask_index = x == mask_id
            if not mask_index.any():
                break
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                cond, un = torch.chunk(model(torch.cat([x, un_x])), 2, dim=0)
                logits = un + (cfg_scale + 1) * (cond - un)
            else:
                logits = model(x)
            x0 = torch.argmax(logits, dim=-1)
            x0_p = torch.gather(torch.softmax(logits, dim=-1), -1, x0[..., None])[..., 0]
            x0_p[:, end:] = -np.inf
            confidence = torch.where(mask_index, x0_p, -np.inf)
            chosen = torch.sort(confidence[0], descending=True, stable=True).indices[:schedule[i]]
            x[0, chosen] = x0[0, chosen]
            for position, token in constraints.items():
                x[0, P + position] = token
    return x[0, P:].tolist()


@pytest.mark.parametrize("settings, constraints", [
    (dict(gen_length=32, block_length=8, steps=32), {0: [50], 12: [60, 61]}),
    (dict(gen_length=32, block_length=16, steps=16, cfg_scale=1.5), {3: [70], 30: [71, 72]}),
    (dict(gen_length=16, block_length=8, steps=16), {8: [5, 6, 7, 8, 9, 10, 11, 12], 1: [9]}),
], ids=["blocks", "cfg", "a-block-filled"])
def test_constrained_exact_equals_the_reference_app(tiny_torch, settings, constraints):
    model, _ = tiny_torch
    fixed = {start + i: t for start, ids in constraints.items() for i, t in enumerate(ids)}
    prompt = [5, 6, 7, 8]
    with torch.no_grad():
        expected = reference_app_generate(model, prompt, fixed, **settings)
    frames = run(model, prompt, constraints=constraints, **settings)
    assert frames[-1].tokens.tolist() == expected and frames[-1].done
    for frame in frames:
        assert all(int(frame.tokens[p]) == t for p, t in fixed.items())


def test_no_constraints_is_the_reference_generate(tiny_torch):
    model, _ = tiny_torch
    settings = dict(gen_length=16, block_length=8, steps=16)
    assert run(model, [5, 6], constraints={}, **settings)[-1].tokens.tolist() == \
        run(model, [5, 6], **settings)[-1].tokens.tolist()
    with torch.no_grad():
        assert run(model, [5, 6], constraints=None, **settings)[-1].tokens.tolist() == \
            reference_generate(model, [5, 6], **settings)


def test_bad_constraints_are_refused_before_any_work():
    model = ScriptedModel(constant_logits([0.0] * VOCAB))
    with pytest.raises(ValueError, match="runs past the answer length 8"):
        generate_steps(model, [1], gen_length=8, block_length=8, steps=8, constraints={7: [1, 2]})
    with pytest.raises(ValueError, match="overlap at position 3"):
        generate_steps(model, [1], gen_length=8, block_length=8, steps=8,
                       constraints={2: [1, 2], 3: [4]})
    assert model.inputs == []
