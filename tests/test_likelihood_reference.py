"""The lm-eval model's log-likelihood equals LLaDA's reference Monte Carlo estimator
(GSAI-ML/LLaDA get_log_likelihood.py, as llada-spec describes it) on a tiny checkpoint: the same
torch seed, the same mask draws, the same number to float32 rounding, with and without CFG.

The reference is written out below from its description: a batch's masked counts start at a
random k in 1..T and are spaced evenly (wrapping past T), each row's mask is a random
permutation of "the first k positions", the prompt stays clean; the cross entropy of the masked
tokens divided by k/T, summed over the batch and divided by its size, averaged over batches and
negated. Our estimator draws from numpy; here its draws are replayed from torch's generator in
the reference's order, so both see identical masks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lm_eval")
F = torch.nn.functional


def reference_log_likelihood(model, prompt, answer, mask_id, mc_num, batch, cfg):
    sequence = torch.tensor(list(prompt) + list(answer))[None].repeat(batch, 1)
    prompt_index = torch.arange(sequence.shape[1]) < len(prompt)
    target_len = len(answer)
    losses = []
    for _ in range(mc_num // batch):
        k = torch.randint(1, target_len + 1, ())
        counts = torch.round(torch.linspace(float(k), k + (batch - 1) * (target_len / batch),
                                            steps=batch)).long()
        counts = (counts - 1) % target_len + 1
        first_k = torch.arange(target_len).repeat(batch, 1) < counts[:, None]
        for row in range(batch):
            first_k[row] = first_k[row][torch.randperm(target_len)]
        masked = torch.cat([torch.zeros(batch, len(prompt), dtype=torch.bool), first_k], dim=1)
        noisy = torch.where(masked, mask_id, sequence)
        p_mask = (counts / target_len)[:, None].repeat(1, sequence.shape[1])
        inputs = noisy
        if cfg > 0:
            unconditional = noisy.clone()
            unconditional[:, prompt_index] = mask_id
            inputs = torch.cat([noisy, unconditional])
        with torch.inference_mode():
            logits = model(inputs).float()
        if cfg > 0:
            conditional, unconditional_logits = logits.chunk(2)
            logits = unconditional_logits + (cfg + 1) * (conditional - unconditional_logits)
        loss = F.cross_entropy(logits[masked], sequence[masked], reduction="none") / p_mask[masked]
        losses.append((loss.sum() / batch).item())
    return -sum(losses) / len(losses)


class TorchDraws:
    """numpy's Generator interface as app.eval.likelihood uses it, drawing torch's numbers in the
    reference's order; a permutation is the inverse of torch's randperm (the reference permutes
    a mask, ours picks positions: the same set)."""

    def integers(self, low: int, high: int) -> int:
        return int(torch.randint(low, high, ()))

    def permutation(self, n: int) -> np.ndarray:
        return torch.argsort(torch.randperm(n)).numpy()


@pytest.mark.parametrize("cfg", [0.0, 0.5])
def test_lm_eval_loglikelihood_equals_the_reference_estimator(tiny_checkpoint, cfg):
    from app.eval.lm_eval_llada import LLaDAHarnessModel

    harness = LLaDAHarnessModel(model=str(tiny_checkpoint), backend="torch", device="cpu",
                                mc_num=32, mc_batch=8, cfg=cfg)
    pairs = [("In the beginning God created", " the heaven and the earth."),
             ("Genesis", " 1")]
    for context, continuation in pairs:
        prompt, answer = harness.encode_pair(context, continuation)
        assert answer
        torch.manual_seed(7)
        harness.rng = TorchDraws()
        (ours, _), = harness.loglikelihood([SimpleNamespace(args=(context, continuation))],
                                           disable_tqdm=True)
        torch.manual_seed(7)
        reference = reference_log_likelihood(harness.model, prompt, answer, harness.mask_id,
                                             32, 8, cfg)
        assert ours == pytest.approx(reference, rel=1e-5), (context, ours, reference)
        # Another seed draws other masks and another estimate: the match is not a constant.
        torch.manual_seed(8)
        assert reference_log_likelihood(harness.model, prompt, answer, harness.mask_id,
                                        32, 8, cfg) != pytest.approx(reference, rel=1e-9) \
            or len(answer) == 1
