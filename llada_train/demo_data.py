"""Training data for the demo model: Bible text for pre-training, task items for SFT.

Text and token ids only (no tensors): the trainer turns them into batches.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from typing import Any

from llada_core import tokens
from llada_core.chat import continue_conversation, encode_chat
from llada_train.demo_tasks import RECALL_TASKS, SHORT_TASKS, TASKS, Item, is_held_out, make_items


def bible_text() -> str:
    """The King James Bible from Debian's bible-kjv package (public domain), one verse a line."""
    if shutil.which("bible") is None:
        raise FileNotFoundError(
            "the `bible` command is missing; install it with: apt-get install bible-kjv")
    output = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                            check=True).stdout
    return "\n".join(re.sub(r"^\S+:\d+ ", "", line) for line in output.splitlines() if line.strip())


def task_corpus(items_per_task: int = 2000, seed: int = 0) -> str:
    """Question and answer text of training items, for training the tokenizer: the shipped demo's
    tasks only, so that its recipe still makes its tokenizer (the long tasks reuse it)."""
    lines = []
    for task in SHORT_TASKS:
        for item in make_items(task, items_per_task, "train", seed):
            lines += [item.question, item.answer]
    return "\n".join(lines)


LENGTH_BUCKET = 2  # SFT rows within this many tokens of each other share one padded tensor

# Arithmetic needs the most examples: the units digit of a sum is the last thing learned.
TASK_WEIGHTS = {"add2": 6, "add3": 3, "sub2": 3, "reverse": 1, "sort": 1, "next_book": 1}


def sft_row(tokenizer: Any, item: Item) -> tuple[list[int], int]:
    """Prompt + answer + <|eot_id|>, unpadded, and the prompt's length."""
    prompt = encode_chat(tokenizer, [{"role": "user", "content": item.question}])
    answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"]
    return prompt + answer + [tokenizer.convert_tokens_to_ids(tokens.EOT)], len(prompt)


def conversation_row(tokenizer: Any, items: list[Item]) -> tuple[list[int], int]:
    """The last item's row in a conversation of all of them: its prompt holds every earlier turn,
    built as the window and `llada chat` build it (continue_conversation on the previous prompt
    and its generated region, the right answer + end of turn), and the prompt's length."""
    end_of_turn = tokenizer.convert_tokens_to_ids(tokens.EOT)
    history: list[int] | None = None
    for item in items:
        prompt = continue_conversation(tokenizer, history, item.question)
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"] + [end_of_turn]
        history = prompt + answer
    return history, len(prompt)


def pad_with_eos(tokenizer: Any, rows: list[list[int]]) -> list[list[int]]:
    """Every row padded with EOS to the longest of them, as LLaDA's SFT pads a mini-batch."""
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    longest = max(len(row) for row in rows)
    return [row + [eos] * (longest - len(row)) for row in rows]


class DemoData:
    """Seeded batches of SFT rows and pre-training chunks; batch k depends only on (seed, k),
    so a resumed run sees exactly the batches an uninterrupted one would."""

    def __init__(self, tokenizer: Any, seq_len: int, seed: int = 0, text: str | None = None,
                 task_weights: dict[str, float] | None = None, answer_length: int = 8,
                 multi_turn_share: float = 0.0, max_turns: int = 6):
        self.tokenizer, self.seq_len, self.seed = tokenizer, seq_len, seed
        self.answer_length = answer_length
        if not 0 <= multi_turn_share <= 1 or max_turns < 2:
            raise ValueError(f"the multi-turn share must lie in 0..1 and conversations need at "
                             f"least 2 turns, not {multi_turn_share} and {max_turns}")
        self.multi_turn_share, self.max_turns = multi_turn_share, max_turns
        weights = TASK_WEIGHTS if task_weights is None else task_weights
        unknown = [task for task in weights if task not in TASKS]
        if unknown or not any(w > 0 for w in weights.values()):
            raise ValueError(f"task weights need known tasks ({', '.join(TASKS)}) and one "
                             f"positive weight, not {weights}")
        self.tasks, self.weights = list(weights), list(weights.values())
        self.text_ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _rng(self, step: int, kind: str) -> random.Random:
        return random.Random(f"{self.seed}:{kind}:{step}")

    def sft_batch(self, step: int, size: int) -> list[tuple[list[list[int]], list[int]]]:
        """`size` items drawn by the task weights, each answer padded with EOS to answer_length
        tokens (the answer region the model is then asked to fill: its sampler_defaults.json),
        grouped by row length (buckets of LENGTH_BUCKET) and padded to each group's longest.
        Returns [(rows, prompt lengths)] per group; the loss of a step sums over its groups.

        Why not one tensor padded to the longest row: long padding buried short sums (two-digit
        addition reached 15 % after 1250 add2-only steps with rows padded to 48 tokens, 85 % with
        ~32). Why not one task per batch: all tasks then learned far slower (nothing right after
        2000 steps). Items whose answer or row does not fit are skipped.

        With a multi-turn share S, a share S of the rows are the last turn of a conversation of
        2..max_turns items drawn by the same weights (conversation_row): only that turn's
        answer is trained, with every earlier turn in its prompt."""
        rng = self._rng(step, "sft")
        eos = self.tokenizer.convert_tokens_to_ids(tokens.EOS)
        groups: dict[int, tuple[list[list[int]], list[int]]] = {}
        made = 0
        for _ in range(100 * size):
            if self.multi_turn_share and rng.random() < self.multi_turn_share:
                turns = rng.randint(2, self.max_turns)
                items = [train_item(task, rng)
                         for task in rng.choices(self.tasks, weights=self.weights, k=turns)]
                row, prompt_length = conversation_row(self.tokenizer, items)
            else:
                task = rng.choices(self.tasks, weights=self.weights)[0]
                row, prompt_length = sft_row(self.tokenizer, train_item(task, rng))
            padded = row + [eos] * (prompt_length + self.answer_length - len(row))
            if len(row) - prompt_length > self.answer_length or len(padded) > self.seq_len:
                continue
            rows, prompt_lengths = groups.setdefault(-(-len(padded) // LENGTH_BUCKET), ([], []))
            rows.append(padded)
            prompt_lengths.append(prompt_length)
            made += 1
            if made == size:
                return [(pad_with_eos(self.tokenizer, groups[key][0]), groups[key][1])
                        for key in sorted(groups)]
        raise ValueError(f"the tasks' items do not fit in {self.seq_len} tokens with an answer of "
                         f"{self.answer_length}; raise the sequence or answer length")

    def text_batch(self, step: int, size: int) -> list[list[int]]:
        if len(self.text_ids) <= self.seq_len:
            raise ValueError("the pre-training text is shorter than one sequence")
        rng = self._rng(step, "text")
        starts = [rng.randrange(len(self.text_ids) - self.seq_len) for _ in range(size)]
        return [self.text_ids[s:s + self.seq_len] for s in starts]


def train_item(task: str, rng: random.Random) -> Item:
    """A random item of `task` outside the held-out split (recall tasks have no split)."""
    while True:
        question, answer = TASKS[task](rng)
        if task in RECALL_TASKS or not is_held_out(question):
            return Item(task, question, answer)


