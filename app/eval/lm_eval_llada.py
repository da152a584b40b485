"""LLaDA as an lm-evaluation-harness model (`--model llada` once this module is imported).

`loglikelihood` is LLaDA's Monte Carlo estimate (app/eval/likelihood.py), as the authors score
multiple-choice benchmarks with the Base model; `generate_until` runs this project's sampler
with the settings given as model arguments, as they score generation benchmarks.

Model arguments (lm_eval's `key=value,...`): model, backend (torch|mlx), dtype, device;
mc_num (Monte Carlo samples, default 128), mc_batch (samples per forward pass, default 16),
cfg (CFG scale, for both), check_greedy (also report whether greedy decoding gives the
continuation, one token per step as the reference does; default off, like the reference's
advice), add_bos (put BOS before each context; default off: the reference's tokenizer adds
none), seed; and the sampler's gen_length, steps, block_length, mode, threshold, temperature,
remasking, cache, early_stop.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from app.eval.likelihood import monte_carlo_log_likelihood, token_log_probs
from app.session.answer import run_to_end
from llada_core import tokens
from llada_core.chat import answer_text, bos_id, render_chat
from llada_core.settings import SamplerSettings, check_fits_context

SAMPLER_ARGS = ("gen_length", "steps", "block_length", "mode", "threshold", "temperature",
                "remasking", "cache", "early_stop", "factor", "logits_eos_inf",
                "confidence_eos_eot_inf")


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@register_model("llada")
class LLaDAHarnessModel(LM):
    def __init__(self, model: Optional[str] = None, backend: Optional[str] = None,
                 dtype: Optional[str] = None, device: Optional[str] = None, mc_num: int = 128,
                 mc_batch: int = 16, cfg: float = 0.0, check_greedy: bool = False,
                 add_bos: bool = False, seed: int = 1234, max_length: Optional[int] = None,
                 **kwargs: Any):
        super().__init__()
        from app.models.defaults import default_model, sampler_defaults
        from app.session.model import load_model

        self.mc_num, self.mc_batch, self.cfg = int(mc_num), int(mc_batch), float(cfg)
        if self.mc_batch < 1 or self.mc_num < self.mc_batch or self.mc_num % self.mc_batch:
            raise ValueError(f"mc_num ({self.mc_num}) must be a positive multiple of mc_batch "
                             f"({self.mc_batch})")
        self.check_greedy, self.add_bos = _flag(check_greedy), _flag(add_bos)
        self.rng = np.random.default_rng(int(seed))
        self.model_name = str(model or default_model())
        self.loaded = load_model(self.model_name, backend, dtype=dtype, device=device)
        self.backend_name = self.loaded.backend_name
        self.backend, self.model, self.tokenizer = (
            self.loaded.backend, self.loaded.model, self.loaded.tokenizer)
        self.mask_id = self.loaded.mask_id
        self.max_length = int(max_length or self.loaded.max_length)
        sampler: dict[str, Any] = {"gen_length": 128, "steps": 128, "block_length": 32,
                                   "mode": "exact", "temperature": 0.0, "seed": int(seed)}
        sampler.update(sampler_defaults(self.model_name))
        sampler.update({key: kwargs[key] for key in SAMPLER_ARGS if key in kwargs})
        if isinstance(sampler.get("threshold"), str) and sampler["threshold"].lower() == "none":
            sampler["threshold"] = None
        for key in ("early_stop", "logits_eos_inf", "confidence_eos_eot_inf"):
            if key in sampler:
                sampler[key] = _flag(sampler[key])
        sampler["cfg_scale"] = self.cfg
        self.sampler = SamplerSettings(**sampler)  # a sentence now, not after the first request

    # --- lm_eval's chat template support -----------------------------------------------------

    @property
    def tokenizer_name(self) -> str:
        return self.model_name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.tokenizer, "chat_template", None) or tokens.CHAT_TEMPLATE

    def apply_chat_template(self, chat_history: list[dict[str, str]],
                            add_generation_prompt: bool = True) -> str:
        return render_chat(self.tokenizer, chat_history)

    # --- tokens --------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _context(self, text: str) -> list[int]:
        ids = self._encode(text)
        bos = bos_id(self.tokenizer)
        if self.add_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation ids, the continuation's tokens as they fall in the whole
        text (trailing spaces of the context move to the continuation, as lm_eval does)."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        context_ids = self._context(context)
        whole = self._context(context + continuation)
        return context_ids, whole[len(context_ids):]

    # --- the three requests --------------------------------------------------------------------

    def _log_probs(self, prompt_length: int):
        def log_probs(noisy: np.ndarray, targets: np.ndarray) -> np.ndarray:
            return token_log_probs(self.backend, self.model, noisy, targets,
                                   prompt_length=prompt_length, cfg_scale=self.cfg,
                                   mask_id=self.mask_id)
        return log_probs

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for request in tqdm(requests, desc="log-likelihood", disable=disable_tqdm):
            context, continuation = request.args[:2]
            prompt, answer = self.encode_pair(context, continuation)
            check_fits_context(len(prompt), len(answer), self.max_length)
            value = monte_carlo_log_likelihood(
                self._log_probs(len(prompt)), prompt, answer, mask_id=self.mask_id,
                samples=self.mc_num, batch=self.mc_batch, rng=self.rng)
            out.append((value, self._is_greedy(prompt, answer)))
        return out

    def _is_greedy(self, prompt: list[int], answer: list[int]) -> bool:
        """Whether the reference's greedy check decodes exactly `answer`: exact mode, one token
        per step, the whole continuation as one block."""
        if not self.check_greedy or not answer:
            return False
        length = len(answer)
        greedy = SamplerSettings(gen_length=length, block_length=length, steps=length,
                                 temperature=0.0, cfg_scale=self.cfg, mode="exact")
        return run_to_end(self.loaded, prompt, greedy).tokens == list(answer)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """The whole text's likelihood given BOS (or nothing): one Monte Carlo estimate each."""
        out = []
        bos = bos_id(self.tokenizer)
        for request in tqdm(requests, desc="log-likelihood (rolling)", disable=disable_tqdm):
            answer = self._encode(request.args[0])
            prompt = [bos] if bos is not None else []
            check_fits_context(len(prompt), len(answer), self.max_length)
            out.append(monte_carlo_log_likelihood(
                self._log_probs(len(prompt)), prompt, answer, mask_id=self.mask_id,
                samples=self.mc_num, batch=self.mc_batch, rng=self.rng))
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = []
        for request in tqdm(requests, desc="generating", disable=disable_tqdm):
            context, gen_kwargs = request.args[:2]
            until = gen_kwargs.get("until") or []
            if isinstance(until, str):
                until = [until]
            prompt = self._context(context)
            check_fits_context(len(prompt), self.sampler.gen_length, self.max_length)
            text = answer_text(self.tokenizer, run_to_end(self.loaded, prompt, self.sampler).tokens)
            for stop in until:
                if stop and stop in text:
                    text = text.split(stop, 1)[0]
            out.append(text)
        return out
