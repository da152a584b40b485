"""Instruction tasks with checkable answers, for training and scoring the small demo model.

Each task makes (question, answer) pairs from a seeded random generator and checks a model's
answer. Items are split into train and held-out by a stable hash of the question, so evaluation
only ever sees questions the model was not trained on (next-book has only 65 questions, so it
is a recall test and is scored on all of them).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James",
    "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation",
]

WORDS = [
    "apple", "bread", "cloud", "dove", "earth", "field", "grape", "house", "iron", "king",
    "lamb", "moon", "night", "olive", "river", "stone", "tree", "water", "wind", "gold",
    "sea", "star", "fire", "light", "seed", "salt", "wine", "horse", "sheep", "city",
]

HELD_OUT_PERCENT = 10


@dataclass(frozen=True)
class Item:
    task: str
    question: str
    answer: str


def _add2(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"What is {a} + {b}?", str(a + b)


def _add3(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(100, 999), rng.randint(100, 999)
    return f"What is {a} + {b}?", str(a + b)


def _sub2(rng: random.Random) -> tuple[str, str]:
    a, b = sorted((rng.randint(10, 99), rng.randint(10, 99)), reverse=True)
    return f"What is {a} - {b}?", str(a - b)


def _word_list(rng: random.Random) -> list[str]:
    return rng.sample(WORDS, rng.randint(3, 5))


def _reverse(rng: random.Random) -> tuple[str, str]:
    words = _word_list(rng)
    return f"Reverse the words: {' '.join(words)}", " ".join(reversed(words))


def _sort(rng: random.Random) -> tuple[str, str]:
    words = _word_list(rng)
    return f"Sort the words: {' '.join(words)}", " ".join(sorted(words))


def _next_book(rng: random.Random) -> tuple[str, str]:
    index = rng.randrange(len(BOOKS) - 1)
    return f"Which book comes after {BOOKS[index]}?", BOOKS[index + 1]


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add2": _add2, "add3": _add3, "sub2": _sub2, "reverse": _reverse, "sort": _sort,
    "next_book": _next_book,
}
RECALL_TASKS = {"next_book"}


def is_held_out(question: str) -> bool:
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def make_items(task: str, count: int, split: str, seed: int = 0,
               max_tries: int = 1000) -> list[Item]:
    """`count` distinct items of `task` from the "train" or "held_out" split."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is unknown; choose from {', '.join(TASKS)}")
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', not {split!r}")
    rng = random.Random(f"{task}:{split}:{seed}")
    items, seen, tries = [], set(), 0
    recall = task in RECALL_TASKS
    while len(items) < count and tries < count * max_tries:
        tries += 1
        question, answer = TASKS[task](rng)
        if not recall and is_held_out(question) != (split == "held_out"):
            continue
        if split == "held_out" and question in seen:
            continue
        seen.add(question)
        items.append(Item(task, question, answer))
    return items


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text)).strip().lower()


def is_correct(answer_text: str, item: Item) -> bool:
    """The answer is right when its first line says exactly the expected words or number."""
    first_line = answer_text.strip().split("\n", 1)[0]
    return normalise(first_line) == normalise(item.answer)
