"""LLaDA's training objective and the resumable trainer, on tiny models."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from llada_train.objective import (
    EPS, end_of_answer_weights, forward_process, mask_random_suffixes, pretrain_loss, sft_loss,
)

MASK = 99


class Uniform(torch.nn.Module):
    """Predicts every token with the same logits, so each masked token's CE is log(vocab)."""

    def __init__(self, vocab=100):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(vocab))

    def forward(self, ids):
        return self.bias.expand(ids.shape[0], ids.shape[1], -1)


def test_masking_ratio_follows_t():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (4000, 64))
    noisy, masked, p_mask = forward_process(ids, MASK, generator=generator)
    assert (p_mask >= EPS).all() and (p_mask <= 1).all()
    assert (p_mask == p_mask[:, :1]).all()  # one t per sequence
    assert torch.equal(noisy[masked], torch.full_like(noisy[masked], MASK))
    assert torch.equal(noisy[~masked], ids[~masked])
    rate = masked.float().mean(dim=1)
    # Per sequence the masked share tracks p; over sequences t is uniform, mean about 1/2.
    assert (rate - p_mask[:, 0]).abs().mean() < 0.06
    assert abs(p_mask[:, 0].mean().item() - 0.5) < 0.03
    assert abs(masked.float().mean().item() - 0.5) < 0.03
    histogram = torch.histc(p_mask[:, 0], bins=4, min=0, max=1)
    assert (histogram / 4000 - 0.25).abs().max() < 0.04


def test_pretrain_loss_weights_each_token_by_one_over_p():
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (8, 32))
    generator_state = torch.Generator().manual_seed(3)
    model = Uniform()
    loss = pretrain_loss(model, ids, MASK, generator=generator_state)
    _, masked, p_mask = forward_process(ids, MASK, generator=torch.Generator().manual_seed(3))
    expected = (torch.log(torch.tensor(100.0)) / p_mask[masked]).sum() / ids.numel()
    assert torch.allclose(loss, expected)
    # In expectation over t the 1/p weighting makes the loss ~ the per-token CE (the ELBO bound).
    losses = [pretrain_loss(model, torch.randint(0, 50, (64, 64)), MASK).item() for _ in range(30)]
    assert abs(sum(losses) / len(losses) - torch.log(torch.tensor(100.0)).item()) < 0.25


def test_sft_never_masks_the_prompt_and_normalises_by_answer_length():
    ids = torch.randint(0, 50, (6, 20))
    prompt_lengths = torch.tensor([3, 5, 8, 10, 12, 19])
    seen = []

    class Recorder(Uniform):
        def forward(self, noisy):
            seen.append(noisy.clone())
            return super().forward(noisy)

    loss = sft_loss(Recorder(), ids, prompt_lengths, MASK, generator=torch.Generator().manual_seed(5))
    noisy = seen[0]
    for row, length in enumerate(prompt_lengths.tolist()):
        assert torch.equal(noisy[row, :length], ids[row, :length])
    masked = noisy == MASK
    _, _, p_mask = forward_process(ids, MASK, generator=torch.Generator().manual_seed(5))
    answer_lengths = (20 - prompt_lengths)[:, None].expand_as(ids)
    ce = torch.log(torch.tensor(100.0))
    expected = (ce / p_mask[masked] / answer_lengths[masked]).sum() / 6
    assert torch.allclose(loss, expected)


def test_the_end_of_each_answer_can_weigh_more():
    ids = torch.tensor([[1, 7, 5, 7, 3, 3], [1, 2, 3, 4, 5, 6], [7, 1, 2, 7, 7, 7]])
    starts = torch.tensor([2, 2, 1])
    weights = end_of_answer_weights(ids, starts, end_id=7, weight=8.0)
    # the first end after the prompt only: not the prompt's 7, not the padding's 7s
    assert weights.tolist() == [[1, 1, 1, 8, 1, 1], [1] * 6, [1, 1, 1, 8, 1, 1]]

    positions = torch.arange(6).expand_as(ids)
    for seed in range(20):  # a draw that masks at least one answer's end
        noisy, _, p_mask = forward_process(ids, MASK, generator=torch.Generator().manual_seed(seed))
        stop_masked = (noisy == MASK) & (positions >= starts[:, None]) & (weights == 8)
        if stop_masked.any():
            break

    def loss(token_weights):
        return sft_loss(Uniform(), ids, starts, MASK, token_weights=token_weights,
                        generator=torch.Generator().manual_seed(seed))

    assert torch.allclose(loss(torch.ones(ids.shape)), loss(None))
    extra = (7 * torch.log(torch.tensor(100.0)) / p_mask / (6 - starts[:, None]))[stop_masked]
    assert stop_masked.any()
    assert torch.allclose(loss(weights), loss(None) + extra.sum() / 3)


def test_some_rows_get_a_masked_suffix_that_never_reaches_the_prompt():
    rows, length = 400, 30
    ids = torch.arange(length).repeat(rows, 1)
    starts = torch.randint(2, 20, (rows,))
    noisy = mask_random_suffixes(ids.clone(), starts, MASK, share=0.5,
                                 generator=torch.Generator().manual_seed(0))
    masked = noisy == MASK
    for row in range(rows):
        where = torch.nonzero(masked[row]).flatten().tolist()
        assert not where or (where[0] >= starts[row] and where == list(range(where[0], length)))
    share = masked.any(dim=1).float().mean().item()
    assert 0.4 < share < 0.6
    # where the suffixes start does not depend on the answer: spread over the whole region
    first = [(torch.nonzero(masked[r]).flatten()[0] - starts[r]).item() / (length - starts[r])
             for r in range(rows) if masked[r].any()]
    assert min(first) < 0.15 and max(first) > 0.85
    assert torch.equal(mask_random_suffixes(ids.clone(), starts, MASK, share=0.0), ids)

    def loss(share):
        return sft_loss(Uniform(), ids[:8], starts[:8], MASK, suffix_share=share,
                        generator=torch.Generator().manual_seed(1))

    assert loss(1.0) > loss(0.0)   # more masked tokens, more loss for a uniform model


def test_a_few_steps_lower_the_loss(tiny_checkpoint):
    from llada_torch import load

    model, _ = load(tiny_checkpoint, device="cpu")
    model.train().requires_grad_(True)
    mask = model.args.mask_token_id
    ids = torch.randint(0, 300, (8, 24), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def fixed_loss():
        return pretrain_loss(model, ids, mask, generator=torch.Generator().manual_seed(11))

    before = fixed_loss().item()
    for step in range(15):
        optimizer.zero_grad()
        pretrain_loss(model, ids, mask, generator=torch.Generator().manual_seed(step)).backward()
        optimizer.step()
    assert fixed_loss().item() < 0.8 * before


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    from safetensors.torch import load_file

    from llada_torch import load
    from llada_train.config import TrainConfig
    from llada_train.trainer import train

    text = " ".join(["In the beginning God created the heaven and the earth."] * 200)
    model = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_hidden_size": 64, "bpe_vocab": 300}
    config = TrainConfig(steps=4, batch_size=4, seq_len=40, save_every=2, warmup=2,
                         pretrain_fraction=0.5, model=model)
    straight = train(tmp_path / "straight", config, text=text)

    def stop_at_three(step, loss, seconds):
        if step == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after step 3

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", config, progress=stop_at_three, text=text)
    train(tmp_path / "resumed", config, text=text, stop_after=3)  # resumes from step 2
    assert json.loads((tmp_path / "resumed" / ".training" / "state.json").read_text())["step"] == 3
    resumed = train(tmp_path / "resumed", config, text=text)

    logs = [json.loads(line) for line in (resumed / "train_log.jsonl").read_text().splitlines()]
    straight_logs = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logs] == [1, 2, 3, 4]
    assert [e["loss"] for e in logs] == [e["loss"] for e in straight_logs]
    a = load_file(str(straight / ".training" / "master.safetensors"))
    b = load_file(str(resumed / ".training" / "master.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)
    model_, _ = load(resumed, device="cpu")
    assert model_.dtype == torch.bfloat16  # shipped in the official dtype
    assert json.loads((resumed / "sampler_defaults.json").read_text()) == {
        "gen_length": 8, "block_length": 8, "steps": 8}  # the SFT answer region
    with pytest.raises(ValueError, match=r"another recipe.*lr \(started with 0.001, now 0.002\)"):
        train(tmp_path / "resumed", replace(config, lr=2e-3, save_every=1), text=text)
    train(tmp_path / "resumed", replace(config, steps=4, threads=1), text=text)  # nothing left


def test_a_second_stage_starts_from_the_first_stages_weights(tmp_path):
    from safetensors.torch import load_file

    from llada_train.config import TrainConfig
    from llada_train.trainer import train

    text = " ".join(["In the beginning God created the heaven and the earth."] * 200)
    model = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_hidden_size": 64, "bpe_vocab": 300}
    first = train(tmp_path / "first", TrainConfig(steps=2, batch_size=4, seq_len=40, warmup=1,
                                                  model=model), text=text)
    # With a zero learning rate AdamW changes nothing, so the second stage must hold the first's.
    still = TrainConfig(steps=1, batch_size=4, seq_len=40, lr=0.0, init_from=str(first))
    second = train(tmp_path / "second", still, text=text)
    a = load_file(str(first / ".training" / "master.safetensors"))
    b = load_file(str(second / ".training" / "master.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert (second / "tokenizer.json").read_text() == (first / "tokenizer.json").read_text()
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        train(tmp_path / "third", TrainConfig(steps=1, init_from=str(tmp_path / "nothing")), text=text)


def test_the_block_length_is_part_of_the_recipe_and_written_to_the_defaults(tmp_path):
    from llada_train.config import TrainConfig
    from llada_train.trainer import STATE_DIR, train

    text = " ".join(["In the beginning God created the heaven and the earth."] * 200)
    model = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_hidden_size": 64, "bpe_vocab": 300}
    config = TrainConfig(steps=2, batch_size=4, seq_len=40, warmup=1, pretrain_fraction=1.0,
                         answer_length=16, block_length=8, model=model)
    out = train(tmp_path / "run", config, text=text, stop_after=1)
    assert json.loads((out / "sampler_defaults.json").read_text()) == {
        "gen_length": 16, "block_length": 8, "steps": 16}
    with pytest.raises(ValueError, match=r"block_length \(started with 8, now 16\)"):
        train(out, replace(config, block_length=16), text=text)
    # A run saved before block_length existed resumes as if it had the default (one block).
    state = out / STATE_DIR / "state.json"
    saved = json.loads(state.read_text())
    del saved["config"]["block_length"]
    state.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"block_length \(started with 0, now 8\)"):
        train(out, config, text=text)
    train(out, replace(config, block_length=0), text=text)
    assert json.loads(state.read_text())["step"] == 2
    with pytest.raises(ValueError, match=r"stop_weight \(started with 1.0, now 10.0\)"):
        train(out, replace(config, block_length=0, stop_weight=10.0), text=text)
    with pytest.raises(ValueError, match=r"suffix_share \(started with 0.0, now 0.5\)"):
        train(out, replace(config, block_length=0, suffix_share=0.5), text=text)
    with pytest.raises(ValueError, match="block length 6 must divide the answer length 16"):
        train(tmp_path / "bad", replace(config, block_length=6), text=text)
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_a_multi_turn_stage_needs_no_bible_and_its_share_is_part_of_the_recipe(tmp_path,
                                                                               monkeypatch):
    from llada_train import trainer
    from llada_train.config import TrainConfig

    text = " ".join(["In the beginning God created the heaven and the earth."] * 200)
    model = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_hidden_size": 64, "bpe_vocab": 300}
    first = trainer.train(tmp_path / "first", TrainConfig(steps=1, batch_size=4, seq_len=40,
                                                          warmup=1, model=model), text=text)

    def no_bible():
        raise AssertionError("an SFT stage from a trained folder read the Bible")

    monkeypatch.setattr(trainer, "bible_text", no_bible)
    config = TrainConfig(steps=2, batch_size=4, seq_len=200, warmup=1, pretrain_fraction=0,
                         init_from=str(first), multi_turn_share=1.0, max_turns=3,
                         task_weights={"add2": 1})
    out = trainer.train(tmp_path / "second", config, stop_after=1)
    with pytest.raises(ValueError, match=r"multi_turn_share \(started with 1.0, now 0.5\)"):
        trainer.train(out, replace(config, multi_turn_share=0.5))
    trainer.train(out, config)
    assert json.loads((out / ".training" / "state.json").read_text())["step"] == 2
