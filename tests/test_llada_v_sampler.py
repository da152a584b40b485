"""LLaDA-V's reference sampler rules (`../shared/llada-v-spec.md` §6.2) on both backends: the logits
cut to the tokenizer's length, EOS/BOS/header tokens never predicted at a mask, and the answer
ending at its first <|eot_id|> (nothing committed after it, later blocks skipped). The logits come
from a scripted model (numpy, depending on the canvas) in which the barred tokens and the rows
past the tokenizer would otherwise win, and <|eot_id|> appears mid-answer; the frames' answer
must equal a NumPy transcription of the reference `generate_with_embeds`, and the rules come
from a LLaDA-V checkpoint's tokenizer."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from llada_core import driver
from llada_core.llada_v_config import SamplingRules
from llada_core.settings import SamplerSettings

V, VOCAB_ROWS, MASK, EOS, BOS, HEADERS, EOT = 40, 36, 30, 1, 2, (3, 4), 5
RULES = SamplingRules(vocab_rows=VOCAB_ROWS, banned=(EOS, BOS) + HEADERS, stop_id=EOT)
PROMPT = [BOS, 7, 8, 9, 10, 11]


def scripted_logits(x: np.ndarray, seed: int) -> np.ndarray:
    """[len(x), V]: a fixed table per position plus a term from the token before (so commits
    change later predictions); barred tokens and rows past the tokenizer favoured here and
    there, <|eot_id|> strong at answer position 6."""
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 2, (len(x), V))
    follow = rng.normal(0, 1, (V, V))
    table[:, EOS] += 3.0
    table[::3, BOS] += 6.0
    table[1::4, HEADERS[0]] += 6.0
    table[2::5, 38] += 6.0  # a row the tokenizer does not have
    table[len(PROMPT) + 6, EOT] += 9.0
    previous = np.concatenate([[0], x[:-1]])
    return (table + 0.5 * follow[previous]).astype(np.float32)


def reference_generate_with_embeds(gen: int, block: int, steps: int, seed: int) -> list[int]:
    """Spec §6.2, transcribed: the answer before its first <|eot_id|>."""
    x = np.array(PROMPT + [MASK] * gen)
    P, blocks = len(PROMPT), gen // block
    per_block, stop = steps // blocks, None
    for b in range(blocks):
        if stop is not None:
            break
        start, end = P + b * block, P + (b + 1) * block
        n = int((x[start:end] == MASK).sum())
        counts = [n // per_block + (1 if i < n % per_block else 0) for i in range(per_block)]
        for i in range(per_block):
            masked = x == MASK
            if not masked[start:end].any() or (stop is not None and not masked[:stop].any()):
                break
            logits = scripted_logits(x, seed)[:, :VOCAB_ROWS].astype(np.float64)
            logits[np.ix_(masked, list(RULES.banned))] = -np.inf
            x0 = logits.argmax(-1)
            p = np.exp(logits - logits.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            confidence = np.where(masked, p[np.arange(len(x)), x0], -np.inf)
            confidence[end:] = -np.inf
            if stop is not None:
                confidence[stop:] = -np.inf
            pick = np.argsort(-confidence, kind="stable")[:counts[i]]
            pick = pick[np.isfinite(confidence[pick])]
            x[pick] = x0[pick]
            hits = np.flatnonzero(x[P:] == EOT)
            stop = P + int(hits[0]) if len(hits) else None
    answer = x[P:]
    return [int(t) for t in (answer[:stop - P] if stop is not None else answer)]


def torch_model(seed: int):
    torch = pytest.importorskip("torch")

    class Scripted:
        args = SimpleNamespace(mask_token_id=MASK, eos_token_id=EOS, eot_token_id=EOT)
        device = torch.device("cpu")
        rules = RULES

        def __call__(self, batch, cache=None, offset=0, logits_for=None):
            rows = [scripted_logits(row, seed) for row in batch.numpy()]
            return torch.from_numpy(np.stack(rows))[:, logits_for]

    from llada_torch.sampler import TorchBackend

    return lambda settings: TorchBackend(Scripted(), settings)


def mlx_model(seed: int):
    mx = pytest.importorskip("mlx.core")

    class Inner:
        def __call__(self, window, cache=None, offset=0, rows=None, embeds=None):
            logits = [scripted_logits(row, seed) for row in np.array(window)]
            return mx.array(np.stack(logits))[:, rows]

    class Scripted:
        args = SimpleNamespace(mask_token_id=MASK, eos_token_id=EOS, eot_token_id=EOT)
        rules = RULES
        model = Inner()

        def embed(self, window, offset=0):
            return None

    from llada_mlx.sampler import MlxBackend

    return lambda settings: MlxBackend(Scripted(), settings)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_the_answer_follows_the_reference_rules(backend, seed):
    make = (torch_model if backend == "torch" else mlx_model)(seed)
    settings = SamplerSettings(gen_length=16, block_length=8, steps=8, mode="exact",
                               temperature=0.0)
    frames = list(driver.run(make(settings), PROMPT, settings))
    last = frames[-1]
    assert last.done and sum(f.done for f in frames) == 1
    tokens = [int(t) for t in last.tokens]
    expected = reference_generate_with_embeds(16, 8, 8, seed)
    assert EOT in tokens, "the script puts <|eot_id|> in every answer"
    stop = tokens.index(EOT)
    assert tokens[:stop] == expected
    assert not set(tokens[:stop]) & set(RULES.banned) and max(tokens[:stop]) < VOCAB_ROWS
    assert MASK not in tokens  # what was still masked after the stop shows as EOS
    if stop < 8:  # the stop came in the first block: the second was never run
        assert len(frames) <= 4 and all(f.block == 0 for f in frames)


def test_the_rules_come_from_a_llada_v_tokenizer(tmp_path):
    """Ids from the checkpoint's tokenizer; both loaders attach them; LLaDA 8B has none."""
    from llada_core import tokens
    from llada_core.chat import load_tokenizer
    from llada_core.config import tokenizer_token_id
    from llada_core.llada_v_config import sampling_rules
    from llada_train.tiny_llada_v import make_tiny_llada_v_checkpoint

    folder = make_tiny_llada_v_checkpoint(tmp_path / "v")
    tokenizer = load_tokenizer(folder)
    rules = sampling_rules(tokenizer)
    ids = {name: tokenizer_token_id(tokenizer, name) for name in
           (tokens.EOS, tokens.BOS, tokens.START_HEADER, tokens.END_HEADER, tokens.EOT)}
    assert rules.banned == tuple(sorted(ids[n] for n in (tokens.EOS, tokens.BOS,
                                                         tokens.START_HEADER, tokens.END_HEADER)))
    assert rules.stop_id == ids[tokens.EOT] and rules.vocab_rows == len(tokenizer)
    for name in ("llada_torch", "llada_mlx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        model, _ = module.load(folder, **({"device": "cpu"} if name == "llada_torch" else {}))
        assert model.rules == rules
