"""Sampler benchmark: the same prompts through exact mode and each fast-mode part, in one process.

Prints, per variant: seconds, NFE, answer tokens per NFE, ms per NFE, peak resident memory
growth, the speed-up over exact as a ratio, and how many answer positions equal exact mode's.
With --repeats N the variants run round-robin N times and the median is reported, so a busy
machine slows every variant alike; the process's CPU seconds are reported beside wall seconds.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

VARIANTS: dict[str, dict[str, Any]] = {
    "exact": {"mode": "exact"},
    "fast (all parts)": {"mode": "fast", "cache": "dual", "threshold": 0.9, "early_stop": True},
    "dual cache": {"mode": "fast", "cache": "dual", "threshold": None, "early_stop": False},
    "prefix cache": {"mode": "fast", "cache": "prefix", "threshold": None, "early_stop": False},
    "threshold 0.9": {"mode": "fast", "cache": "none", "threshold": 0.9, "early_stop": False},
    "early stop": {"mode": "fast", "cache": "none", "threshold": None, "early_stop": True},
}

# About 40M parameters, the LM head a tenth of them (the acceptance benchmark of issue 6).
RANDOM_MODEL = {"d_model": 512, "n_layers": 10, "n_heads": 8, "mlp_hidden_size": 1536,
                "min_rows": 8192, "shards": 1}


@dataclass
class Result:
    variant: str
    seconds: float
    cpu_seconds: float
    nfe: int
    tokens_per_nfe: float
    ms_per_nfe: float
    peak_mb: float
    speedup: float
    agreement: float
    accuracy: Optional[float] = None


class PeakMemory:
    """Peak resident memory growth while the block runs (polls /proc; ru_maxrss elsewhere)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        try:
            import resource  # Unix only
        except ImportError:
            return 0
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> "PeakMemory":
        self.start = self.current()
        self.peak = self.start
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def random_prompts(tokenizer: Any, count: int, length: int, seed: int = 0) -> list[list[int]]:
    """Prompts of ordinary (non-special) token ids, so every variant sees the same work."""
    special = set(tokenizer.all_special_ids) | {
        tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_added_vocab()}
    ordinary = [i for i in range(min(special, default=len(tokenizer))) if i not in special]
    rng = random.Random(seed)
    return [[rng.choice(ordinary) for _ in range(length)] for _ in range(count)]


def demo_task_prompts(backend: Any, tokenizer: Any, per_task: int):
    """Held-out demo-task prompts, and a judge of answers to them."""
    from app.evaluate import held_out_items
    from llada_core.chat import answer_text
    from llada_train.demo_tasks import TASKS, is_correct

    items = held_out_items(list(TASKS), per_task)
    prompts = [backend.encode_chat(tokenizer, [{"role": "user", "content": i.question}]) for i in items]

    def judge(answers: list[list[int]]) -> float:
        right = sum(is_correct(answer_text(tokenizer, a), item) for a, item in zip(answers, items))
        return right / len(items)

    return prompts, judge


def run_variant(backend: Any, model: Any, prompts: list[list[int]], settings: dict[str, Any]):
    answers, nfe = [], 0
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        for prompt in prompts:
            frame = None
            for frame in backend.generate_steps(model, prompt, **settings):
                pass
            answers.append([int(t) for t in frame.tokens])
            nfe += frame.nfe
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return answers, nfe, seconds, cpu, memory.growth_mb


def benchmark(backend: Any, model: Any, prompts: list[list[int]], sampler: dict[str, Any],
              variants: list[str], repeats: int = 1,
              judge: Optional[Callable[[list[list[int]]], float]] = None) -> list[Result]:
    """judge, when given, scores a variant's answers (one per prompt) as a fraction correct."""
    if "exact" not in variants:
        variants = ["exact", *variants]
    # One short warm-up so the first variant does not pay for lazy initialisation.
    warm = dict(sampler, gen_length=sampler["block_length"], steps=1, block_length=sampler["block_length"])
    for _ in backend.generate_steps(model, prompts[0], **warm):
        pass
    runs: dict[str, list] = {name: [] for name in variants}
    for _ in range(max(1, repeats)):
        for name in variants:
            runs[name].append(run_variant(backend, model, prompts, dict(sampler, **VARIANTS[name])))
    reference = runs["exact"][0][0]
    exact_seconds = statistics.median(run[2] for run in runs["exact"])
    results = []
    for name in variants:
        answers, nfe = runs[name][0][0], runs[name][0][1]
        seconds = statistics.median(run[2] for run in runs[name])
        cpu = statistics.median(run[3] for run in runs[name])
        peak = max(run[4] for run in runs[name])
        same = sum(a == b for x, y in zip(answers, reference) for a, b in zip(x, y))
        total = sum(len(x) for x in reference)
        tokens = sampler["gen_length"] * len(prompts)
        results.append(Result(
            variant=name, seconds=round(seconds, 3), cpu_seconds=round(cpu, 3), nfe=nfe,
            tokens_per_nfe=round(tokens / nfe, 2), ms_per_nfe=round(1000 * seconds / nfe, 2),
            peak_mb=round(peak, 1), speedup=round(exact_seconds / seconds, 2),
            agreement=round(same / total, 3),
            accuracy=None if judge is None else round(judge(answers), 4),
        ))
    return results


def format_table(results: list[Result]) -> str:
    judged = any(r.accuracy is not None for r in results)
    header = (f"{'variant':<18}{'seconds':>9}{'CPU s':>8}{'NFE':>7}{'tok/NFE':>9}{'ms/NFE':>9}"
              f"{'peak MB':>9}{'speed-up':>10}{'= exact':>9}" + (f"{'accuracy':>10}" if judged else ""))
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.variant:<18}{r.seconds:>9.2f}{r.cpu_seconds:>8.1f}{r.nfe:>7}{r.tokens_per_nfe:>9.2f}{r.ms_per_nfe:>9.1f}"
                    f"{r.peak_mb:>9.1f}{r.speedup:>9.2f}x{r.agreement:>9.1%}"
                    + (f"{r.accuracy:>10.1%}" if judged else ""))
    return "\n".join(rows)


def build_random_model(folder: Path, overrides: Optional[dict[str, Any]] = None) -> Path:
    from llada_train.tiny import TinySpec, make_tiny_checkpoint

    return make_tiny_checkpoint(folder, TinySpec(**dict(RANDOM_MODEL, **(overrides or {}))))


def parameter_count(folder: Path) -> tuple[int, int]:
    """(all parameters, LM head parameters) from config.json."""
    config = json.loads((folder / "config.json").read_text())
    d, hidden, rows = config["d_model"], config["mlp_hidden_size"], config["embedding_size"]
    kv = config["n_kv_heads"] * d // config["n_heads"]
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * hidden + 2 * d
    head = rows * d
    return config["n_layers"] * per_layer + 2 * rows * d + d, head


def run(model_path: Optional[str], backend_name: Optional[str], dtype: Optional[str],
        prompts: int, prompt_length: int, sampler: dict[str, Any], variants: list[str],
        random_overrides: Optional[dict[str, Any]] = None, as_json: bool = False,
        repeats: int = 1, task_items: int = 0) -> dict[str, Any]:
    """task_items > 0: the prompts are that many held-out demo-task items per task, and each
    variant's answers are scored (the model must be one that can answer them)."""
    from app.backends import default_backend, get_backend

    backend_name = backend_name or default_backend()
    backend = get_backend(backend_name)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(model_path) if model_path else build_random_model(Path(scratch), random_overrides)
        model, tokenizer = backend.load(str(folder), dtype=dtype)
        total, head = parameter_count(folder) if (folder / "config.json").is_file() else (0, 0)
        judge = None
        if task_items:
            prompt_ids, judge = demo_task_prompts(backend, tokenizer, task_items)
        else:
            prompt_ids = random_prompts(tokenizer, prompts, prompt_length)
        results = benchmark(backend, model, prompt_ids, sampler, variants, repeats, judge)
    report = {
        "backend": backend_name, "model": model_path or "random", "parameters": total,
        "head_parameters": head, "prompts": prompts, "prompt_length": prompt_length,
        "sampler": sampler, "repeats": repeats, "results": [asdict(r) for r in results],
        "prompt_count": len(prompt_ids),
    }
    prompts_text = (f"{len(prompt_ids)} held-out demo-task items" if task_items
                    else f"{prompts} prompt(s) of {prompt_length} tokens")
    if as_json:
        print(json.dumps(report))
    else:
        print(f"backend {backend_name} | model {report['model']} | {total / 1e6:.1f}M parameters, "
              f"head {head / max(total, 1):.0%} | {prompts_text} | "
              f"answer {sampler['gen_length']}, block {sampler['block_length']}, steps {sampler['steps']}"
              f"{f' | median of {repeats} round-robin runs' if repeats > 1 else ''}")
        print(format_table(results))
    return report
