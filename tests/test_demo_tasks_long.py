"""The long-answer demo tasks (count, spell, reverse_long, sort_long, verse): held-out split,
checkers, answer lengths with the shipped demo's tokenizer, the batches and settings of the
recipe that trains them (README: "Next demo model"), and that the shipped demo's tasks and
tokenizer corpus did not change."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llada_core import tokens
from llada_core.chat import load_tokenizer
from llada_train.demo_data import DemoData, sft_row, task_corpus
from llada_train.demo_tasks import (LIST_WORDS, LONG_TASKS, RECALL_TASKS, SHORT_TASKS,
                                    SPELL_WORDS, TASKS, VERSES, Item, is_correct, is_held_out,
                                    make_items)

DEMO = Path(__file__).resolve().parent.parent / "app" / "resources" / "llada-demo"
# The recipe's settings: an answer region of 64 tokens (answer + <|eot_id|> must fit) in two
# blocks of 32, rows of at most 128 tokens.
ANSWER_LENGTH, BLOCK_LENGTH, SEQ_LEN = 64, 32, 128
SPLIT_TASKS = [task for task in LONG_TASKS if task not in RECALL_TASKS]


@pytest.fixture(scope="module")
def demo_tokenizer():
    return load_tokenizer(DEMO)


def fingerprint(values) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


# Measured before the long tasks were added (git show 58b7d01:llada_train/demo_tasks.py): the
# shipped demo's README numbers were scored on exactly these items.
SHORT_TASK_ITEMS = {
    "add2": "0aa334a98e4d8d93", "add3": "6faa43a942c10c23", "sub2": "072a1c5eed54185e",
    "reverse": "77ee239f92d43218", "sort": "523c0781448d1299", "next_book": "f11a92fe252f483e",
}


@pytest.mark.parametrize("task", SHORT_TASKS)
def test_the_shipped_demos_tasks_make_the_same_items_as_before(task):
    items = make_items(task, 100, "held_out") + make_items(task, 100, "train")
    assert fingerprint([(i.question, i.answer) for i in items]) == SHORT_TASK_ITEMS[task]


def test_the_tokenizer_corpus_is_still_the_shipped_demos():
    # Stage 1 of the shipped demo trains its tokenizer on this text; the long tasks stay out.
    assert hashlib.sha256(task_corpus(200).encode()).hexdigest()[:16] == "5b10fab99fb1321c"
    assert "Count from" not in task_corpus(50)


@pytest.mark.parametrize("task", SPLIT_TASKS)
def test_held_out_questions_of_long_tasks_never_appear_in_training(task):
    train = make_items(task, 400, "train")
    held_out = make_items(task, 40, "held_out")
    assert held_out and all(is_held_out(item.question) for item in held_out)
    assert not any(is_held_out(item.question) for item in train)
    assert not {i.question for i in train} & {i.question for i in held_out}
    assert len({i.question for i in held_out}) == len(held_out)


def test_held_out_words_are_never_spelt_in_training():
    held_out = {item.question for item in make_items("spell", 200, "held_out")}
    # Spelling has one question per word, so the split holds out whole words: all of them here.
    assert held_out == {f"Spell {w}." for w in SPELL_WORDS if is_held_out(f"Spell {w}.")}
    assert 5 <= len(held_out) <= 20
    assert len(make_items("count", 200, "held_out")) >= 80


def test_verses_are_a_recall_task_scored_on_every_verse():
    assert "verse" in RECALL_TASKS
    items = make_items("verse", len(VERSES), "held_out")
    assert {item.question for item in items} == {f"Recite {ref}." for ref in VERSES}


def test_long_answers_are_right_by_construction():
    for item in make_items("count", 60, "train") + make_items("count", 20, "held_out"):
        start, end = map(int, re.fullmatch(r"Count from (\d+) to (\d+)\.", item.question).groups())
        assert [int(n) for n in item.answer.split()] == list(range(start, end + 1))
        assert 10 <= start < end <= 99
    for item in make_items("spell", 40, "train"):
        word = re.fullmatch(r"Spell (\w+)\.", item.question).group(1)
        assert item.answer.split("-") == list(word)
    for task, order in (("reverse_long", lambda w: w[::-1]), ("sort_long", sorted)):
        for item in make_items(task, 40, "train"):
            words = item.question.split(": ")[1].split()
            assert 9 <= len(words) <= 14 and len(set(words)) == len(words)
            assert item.answer.split() == order(words)
    for item in make_items("verse", len(VERSES), "train"):
        assert item.answer == VERSES[item.question.removeprefix("Recite ").removesuffix(".")]


@pytest.mark.skipif(shutil.which("bible") is None, reason="needs Debian's bible-kjv")
def test_verses_and_words_are_the_text_the_trainer_reads():
    for reference, text in VERSES.items():
        book, chapter_verse = reference.rsplit(" ", 1)
        line = subprocess.run(["bible", "-f", book.replace(" ", "") + chapter_verse],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert re.sub(r"^\S+:\d+ ", "", line) == text, reference
    from llada_train.demo_data import bible_text

    bible_words = set(re.findall(r"[a-z]+", bible_text()))
    assert set(SPELL_WORDS) <= bible_words and set(LIST_WORDS) <= bible_words


@pytest.mark.parametrize("task", LONG_TASKS)
def test_the_checker_takes_the_answer_and_refuses_near_misses(task):
    item = make_items(task, 1, "held_out")[0]
    assert is_correct(item.answer, item)
    assert is_correct(item.answer + "\nmore text", item)
    words = item.answer.replace("-", " ").split()
    assert not is_correct(" ".join(words[:-1]), item)  # stopped one short
    assert not is_correct(" ".join(words + [words[-1]]), item)  # one too many
    swapped = [words[1], words[0]] + words[2:]
    assert swapped == words or not is_correct(" ".join(swapped), item)  # out of order
    assert not is_correct("", item)


def test_counting_is_judged_number_by_number():
    item = Item("count", "Count from 12 to 24.", " ".join(str(n) for n in range(12, 25)))
    assert is_correct("12 13 14 15 16 17 18 19 20 21 22 23 24", item)
    assert not is_correct("12 13 14 15 16 17 18 19 20 21 22 23 25", item)
    assert not is_correct("12 13 14 15 16 17 18 19 20 22 21 23 24", item)
    assert not is_correct("1213 14 15 16 17 18 19 20 21 22 23 24", item)


@pytest.mark.parametrize("task", LONG_TASKS)
def test_answers_fill_24_to_64_tokens_of_the_shipped_tokenizer(task, demo_tokenizer):
    eot = demo_tokenizer.convert_tokens_to_ids(tokens.EOT)
    items = make_items(task, 300, "train") + make_items(task, 50, "held_out")
    for item in items:
        row, prompt_length = sft_row(demo_tokenizer, item)
        answer = row[prompt_length:]
        assert answer[-1] == eot
        assert 24 <= len(answer) - 1 and len(answer) <= ANSWER_LENGTH, item
        assert prompt_length + ANSWER_LENGTH <= SEQ_LEN, item
        # Sensible tokens: the answer's text comes back from its ids.
        assert demo_tokenizer.decode(answer[:-1]) == item.answer


def test_digits_and_letters_are_single_tokens_of_the_shipped_tokenizer(demo_tokenizer):
    def pieces(text: str) -> list[str]:
        return [demo_tokenizer.decode([i])
                for i in demo_tokenizer(text, add_special_tokens=False)["input_ids"]]

    assert pieces("12 13 14") == ["1", "2", " ", "1", "3", " ", "1", "4"]
    assert pieces("r-i-g-h-t") == ["r", "-", "i", "-", "g", "-", "h", "-", "t"]


def test_a_recipe_batch_has_every_task_in_a_64_token_answer_region(demo_tokenizer):
    eot = demo_tokenizer.convert_tokens_to_ids(tokens.EOT)
    data = DemoData(demo_tokenizer, SEQ_LEN, seed=5, answer_length=ANSWER_LENGTH,
                    task_weights={task: 1 for task in TASKS})
    seen = set()
    for step in range(8):
        groups = data.sft_batch(step, 16)
        assert sum(len(rows) for rows, _ in groups) == 16
        for rows, prompt_lengths in groups:
            for row, n in zip(rows, prompt_lengths):
                assert len(row) - n >= ANSWER_LENGTH and len(row) <= SEQ_LEN
                assert row.index(eot, n) < n + ANSWER_LENGTH
                seen.add(task_of(demo_tokenizer.decode(row[:n])))
    assert {"count", "spell", "long list", "verse"} <= seen


def task_of(prompt: str) -> str:
    for words, task in (("Count from", "count"), ("Spell ", "spell"), ("Recite ", "verse")):
        if words in prompt:
            return task
    if re.search(r"(Reverse|Sort) the words: (\S+ ){8}", prompt):
        return "long list"
    return "short"


def test_the_recipes_default_settings_span_two_blocks(tmp_path):
    pytest.importorskip("torch")  # the trainer's module; the MLX-only install has no torch
    from app.models.defaults import sampler_defaults
    from llada_train.config import TrainConfig
    from llada_train.trainer import write_sampler_defaults

    write_sampler_defaults(tmp_path, TrainConfig(answer_length=ANSWER_LENGTH,
                                                 block_length=BLOCK_LENGTH))
    settings = sampler_defaults(str(tmp_path))
    assert settings == {"gen_length": 64, "block_length": 32, "steps": 64}
    assert settings["gen_length"] // settings["block_length"] >= 2
    write_sampler_defaults(tmp_path, TrainConfig(answer_length=8))  # the old demo: one block
    assert json.loads((tmp_path / "sampler_defaults.json").read_text())["block_length"] == 8
    with pytest.raises(ValueError, match="must divide the answer length 64"):
        write_sampler_defaults(tmp_path, TrainConfig(answer_length=64, block_length=24))


def test_the_command_lines_take_the_new_task_names():
    from app.cli import evaluate as eval_cli
    from app.cli import train as train_cli
    from app.eval.evaluate import held_out_items

    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    train_cli.add_parser(subparsers)
    eval_cli.add_parser(subparsers)
    args = parser.parse_args(["train", "out", "--task-weights", "count=4,spell=2,verse=1.5",
                              "--answer-length", "64", "--block-length", "32"])
    assert args.task_weights == {"count": 4.0, "spell": 2.0, "verse": 1.5}
    assert (args.answer_length, args.block_length) == (64, 32)
    assert parser.parse_args(["train", "out"]).block_length == 0
    args = parser.parse_args(["eval", "--tasks", "count,reverse_long"])
    items = held_out_items([t for t in args.tasks.split(",")], 3)
    assert [i.task for i in items] == ["count"] * 3 + ["reverse_long"] * 3
    assert set(LONG_TASKS) <= set(parser.parse_args(["eval"]).tasks.split(","))
    with pytest.raises(ValueError, match="unknown task"):
        held_out_items(["counting"], 3)


def test_the_readmes_demo_recipe_parses_with_known_tasks():
    """Every `llada train` stage of README's recipe for the shipped demo parses, names known
    tasks, and starts from the stage before it; the last writes the shipped defaults."""
    from app.cli import train as train_cli

    readme = (DEMO.parent.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("**How it was trained.**", 1)[1].split("```bash", 1)[1].split("```")[0]
    shared = re.search(r'^R="(.*?)"$', section, re.M).group(1)
    commands = [c.replace("\\\n", " ").replace("$R", shared).replace("$V1", "first-demo")
                for c in re.findall(r"^llada train (.*?)(?=\n(?!    ))", section, re.S | re.M)]
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    previous = "first-demo"
    assert len(commands) == 7
    for number, command in enumerate(commands, start=1):
        args = parser.parse_args(["train", *command.split()])
        assert set(args.task_weights) <= set(TASKS) and args.init_from == previous
        assert (args.answer_length, args.block_length) == (64, 32)
        # Six first-turn stages in rows of 128 tokens, then conversations of up to six turns.
        assert args.seq_len == (128 if number < 7 else 640)
        assert (args.multi_turn_share > 0) == (number == 7)
        previous = args.out
    defaults = json.loads((DEMO / "sampler_defaults.json").read_text())
    assert (defaults["gen_length"], defaults["block_length"]) == (64, 32)
    assert args.stop_weight > 1 and args.suffix_share > 0 and args.task_weights["count"] > 0
    assert args.max_turns == 6 and {"count", "add2"} <= set(args.task_weights)
