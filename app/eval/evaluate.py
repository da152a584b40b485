"""Scoring a model on held-out demo tasks with any sampler settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.session.answer import run_to_end
from app.session.model import LoadedModel
from llada_core.chat import answer_text, encode_chat, visible_answer_ids
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


def held_out_conversations(tasks: list[str], count: int, turns: int,
                           seed: int = 0) -> list[list[Item]]:
    """`count` conversations of `turns` held-out items, the tasks interleaved (with count and add2:
    count, sum, count, sum, ... and sum, count, ...: conversation k starts at task k)."""
    if turns < 1 or count < 1:
        raise ValueError("conversations need at least one turn each")
    pools = {task: items for task, items in zip(
        tasks, (make_items(task, count * turns, "held_out", seed) for task in tasks))}
    if not all(pools.values()):
        raise ValueError(f"no held-out items for {', '.join(t for t in tasks if not pools[t])}")
    used = dict.fromkeys(tasks, 0)
    conversations = []
    for k in range(count):
        conversation = []
        for t in range(turns):
            task = tasks[(k + t) % len(tasks)]
            pool = pools[task]
            conversation.append(pool[used[task] % len(pool)])  # recall tasks have few items
            used[task] += 1
        conversations.append(conversation)
    return conversations


def turn_label(task: str, turn: int, turns: int) -> str:
    """The score a turn counts toward: its task's first turns, or its later ones."""
    return f"{task} turn 1" if turn == 1 else f"{task} turns 2-{turns}"


def evaluate_conversations(loaded: LoadedModel, conversations: list[list[Item]],
                           sampler: dict[str, Any]) -> dict[str, TaskScore]:
    """Each conversation asked turn by turn as the window asks it: each prompt is the previous
    prompt and the whole region the model generated for it (its own answers, right or wrong),
    continued with the next question (app.session.conversation.build_prompt, the one context
    policy). Scored per task, first turns apart from later ones (turn_label)."""
    from app.session.conversation import build_prompt

    tokenizer = loaded.tokenizer
    scores: dict[str, TaskScore] = {}
    for conversation in conversations:
        history: list[int] | None = None
        turns: list[dict] = []
        for number, item in enumerate(conversation, start=1):
            started = time.perf_counter()
            turns.append({"role": "user", "content": item.question})
            plan: dict = {"turns": list(turns)}
            if history is not None:
                plan.update(history_ids=history, user_text=item.question)
            prompt = build_prompt(tokenizer, plan, int(sampler["gen_length"]),
                                  loaded.max_length).ids
            finished = run_to_end(loaded, prompt, sampler)
            generated = finished.tokens
            text = answer_text(tokenizer, generated)
            turns.append({"role": "assistant", "content": text})
            history = prompt + generated
            label = turn_label(item.task, number, len(conversation))
            score = scores.setdefault(label, TaskScore(label, 0, 0, 0, 0.0))
            score.correct += is_correct(text, item)
            score.total += 1
            score.nfe += finished.nfe
            score.tokens += len(visible_answer_ids(tokenizer, generated))
            score.seconds += time.perf_counter() - started
    return dict(sorted(scores.items()))


def answer(loaded: LoadedModel, item: Item, sampler: dict[str, Any]):
    """(answer text, forward passes, visible answer tokens)."""
    tokenizer = loaded.tokenizer
    prompt = encode_chat(tokenizer, [{"role": "user", "content": item.question}])
    finished = run_to_end(loaded, prompt, sampler)
    tokens = finished.tokens
    return answer_text(tokenizer, tokens), finished.nfe, len(visible_answer_ids(tokenizer, tokens))


def evaluate(loaded: LoadedModel, items: list[Item],
             sampler: dict[str, Any]) -> dict[str, TaskScore]:
    scores: dict[str, TaskScore] = {}
    for item in items:
        started = time.perf_counter()
        text, nfe, tokens = answer(loaded, item, sampler)
        score = scores.setdefault(item.task, TaskScore(item.task, 0, 0, 0, 0.0))
        score.correct += is_correct(text, item)
        score.total += 1
        score.nfe += nfe
        score.tokens += tokens
        score.seconds += time.perf_counter() - started
    return scores


def format_scores(scores: dict[str, TaskScore]) -> str:
    width = max([12] + [len(name) + 2 for name in scores])
    rows = [f"{'task':<{width}}{'accuracy':>10}{'items':>7}{'NFE/item':>10}{'tokens/NFE':>12}"
            f"{'s/item':>8}"]
    for s in scores.values():
        rows.append(f"{s.task:<{width}}{s.accuracy:>10.1%}{s.total:>7}{s.nfe / s.total:>10.1f}"
                    f"{s.tokens_per_nfe:>12.2f}{s.seconds / s.total:>8.2f}")
    return "\n".join(rows)
