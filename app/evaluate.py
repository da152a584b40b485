"""Scoring a model on held-out demo tasks with any sampler settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llada_core.chat import answer_text, visible_answer_ids
from llada_train.demo_tasks import TASKS, Item, is_correct, make_items


@dataclass
class TaskScore:
    task: str
    correct: int
    total: int
    nfe: int
    seconds: float
    tokens: int = 0  # visible answer tokens (up to EOS / end of turn), for tokens per pass

    @property
    def tokens_per_nfe(self) -> float:
        return self.tokens / self.nfe if self.nfe else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def held_out_items(tasks: list[str], per_task: int, seed: int = 0) -> list[Item]:
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    return [item for task in tasks for item in make_items(task, per_task, "held_out", seed)]


def answer(backend: Any, model: Any, tokenizer: Any, item: Item, sampler: dict[str, Any]):
    """(answer text, forward passes, visible answer tokens)."""
    prompt = backend.encode_chat(tokenizer, [{"role": "user", "content": item.question}])
    frame = None
    for frame in backend.generate_steps(model, prompt, **sampler):
        pass
    tokens = [int(t) for t in frame.tokens]
    return answer_text(tokenizer, tokens), frame.nfe, len(visible_answer_ids(tokenizer, tokens))


def evaluate(backend: Any, model: Any, tokenizer: Any, items: list[Item],
             sampler: dict[str, Any]) -> dict[str, TaskScore]:
    scores: dict[str, TaskScore] = {}
    for item in items:
        started = time.perf_counter()
        text, nfe, tokens = answer(backend, model, tokenizer, item, sampler)
        score = scores.setdefault(item.task, TaskScore(item.task, 0, 0, 0, 0.0))
        score.correct += is_correct(text, item)
        score.total += 1
        score.nfe += nfe
        score.tokens += tokens
        score.seconds += time.perf_counter() - started
    return scores


def format_scores(scores: dict[str, TaskScore]) -> str:
    rows = [f"{'task':<12}{'accuracy':>10}{'items':>7}{'NFE/item':>10}{'tokens/NFE':>12}"
            f"{'s/item':>8}"]
    for s in scores.values():
        rows.append(f"{s.task:<12}{s.accuracy:>10.1%}{s.total:>7}{s.nfe / s.total:>10.1f}"
                    f"{s.tokens_per_nfe:>12.2f}{s.seconds / s.total:>8.2f}")
    return "\n".join(rows)
