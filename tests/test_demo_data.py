"""The demo model's tasks and training data: held-out split, answer checking, SFT rows, mixes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from llada_core import tokens
from llada_core.chat import encode_chat, load_tokenizer
from llada_train.demo_data import LENGTH_BUCKET, DemoData, conversation_row, sft_row
from llada_train.demo_tasks import SHORT_TASKS, Item, is_correct, is_held_out, make_items


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return load_tokenizer(tiny_checkpoint)


# The long tasks' split: tests/test_demo_tasks_long.py.
@pytest.mark.parametrize("task", sorted(set(SHORT_TASKS) - {"next_book"}))
def test_held_out_questions_never_appear_in_training(task):
    train = {item.question for item in make_items(task, 400, "train")}
    held_out = make_items(task, 40, "held_out")
    assert len(held_out) == 40
    assert all(is_held_out(item.question) for item in held_out)
    assert not train & {item.question for item in held_out}


def test_items_are_right_by_construction():
    for item in make_items("add2", 50, "held_out") + make_items("sub2", 50, "train"):
        a, op, b = re.match(r"What is (\d+) ([+-]) (\d+)\?", item.question).groups()
        assert int(item.answer) == (int(a) + int(b) if op == "+" else int(a) - int(b))
    for item in make_items("sort", 20, "train"):
        assert item.answer.split() == sorted(item.question.split(": ")[1].split())


def test_an_answer_is_judged_on_its_first_line_only():
    item = Item("add2", "What is 12 + 30?", "42")
    assert is_correct("42", item)
    assert is_correct(" 42.\nand then some", item)
    assert not is_correct("4 2", item)
    assert not is_correct("The answer\n42", item)
    assert not is_correct("", item)


def test_an_sft_row_is_the_chat_prompt_then_the_answer_and_eot(tokenizer):
    row, prompt_length = sft_row(tokenizer, Item("add2", "What is 12 + 30?", "42"))
    answer = tokenizer("42", add_special_tokens=False)["input_ids"]
    assert row[prompt_length:] == answer + [tokenizer.convert_tokens_to_ids(tokens.EOT)]
    assert tokenizer.decode(row[:prompt_length]).rstrip().endswith("assistant<|end_header_id|>")


def test_a_batch_mixes_tasks_in_length_groups_with_a_fixed_answer_region(tokenizer):
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    # The shipped demo's tasks; the long ones need an answer of 64 (test_demo_tasks_long.py).
    data = DemoData(tokenizer, 64, seed=1, answer_length=16,
                    task_weights={task: 1 for task in SHORT_TASKS})
    tasks_seen = set()
    for step in range(6):
        groups = data.sft_batch(step, 12)
        assert sum(len(rows) for rows, _ in groups) == 12
        for rows, prompt_lengths in groups:
            assert len({len(row) for row in rows}) == 1
            # Rows share a tensor only with rows at most LENGTH_BUCKET - 1 tokens shorter.
            assert len(rows[0]) == max(prompt_lengths) + 16
            assert len(rows[0]) - min(prompt_lengths) - 16 < LENGTH_BUCKET
            for row, n in zip(rows, prompt_lengths):
                end = row.index(eot, n)
                assert end < n + 16 and set(row[end + 1:]) <= {eos}
                tasks_seen.add(task_of(tokenizer.decode(row[:n])))
    assert tasks_seen == set(SHORT_TASKS)


def task_of(prompt: str) -> str:
    for words, task in (("Sort", "sort"), ("Reverse", "reverse"), ("comes after", "next_book"),
                        (" - ", "sub2")):
        if words in prompt:
            return task
    return "add3" if re.search(r"\d{3} \+", prompt) else "add2"


def test_items_that_do_not_fit_are_left_out(tokenizer):
    padded = sorted(sft_row(tokenizer, item)[1] + 8 for item in make_items("sort", 40, "train"))
    limit = padded[len(padded) // 2]
    assert padded[-1] > limit
    for step in range(4):
        for rows, _ in DemoData(tokenizer, limit, seed=2, task_weights={"sort": 1}).sft_batch(step, 8):
            assert len(rows[0]) <= limit
    with pytest.raises(ValueError, match="do not fit in 20 tokens"):
        DemoData(tokenizer, 20, task_weights={"sort": 1}).sft_batch(0, 8)
    with pytest.raises(ValueError, match="answer of 1"):
        DemoData(tokenizer, 48, task_weights={"sort": 1}, answer_length=1).sft_batch(0, 8)


def test_batches_depend_only_on_seed_and_step(tokenizer):
    data = DemoData(tokenizer, 48, seed=3)
    assert data.sft_batch(7, 8) == DemoData(tokenizer, 48, seed=3).sft_batch(7, 8)
    assert data.sft_batch(7, 8) != data.sft_batch(8, 8)
    assert data.sft_batch(7, 8) != DemoData(tokenizer, 48, seed=4).sft_batch(7, 8)


def test_the_task_mix_decides_what_is_trained(tokenizer):
    groups = DemoData(tokenizer, 48, task_weights={"add2": 1}).sft_batch(0, 16)
    prompts = [tokenizer.decode(row[:n]) for rows, lengths in groups for row, n in zip(rows, lengths)]
    assert all(re.search(r"What is \d\d \+ \d\d\?", p) for p in prompts)
    assert all(not is_held_out(re.search(r"What is .*\?", p).group()) for p in prompts)
    with pytest.raises(ValueError, match="task weights"):
        DemoData(tokenizer, 48, task_weights={"poetry": 1})
    with pytest.raises(ValueError, match="task weights"):
        DemoData(tokenizer, 48, task_weights={"add2": 0})


def test_the_command_line_reads_a_task_mix():
    from app.cli.train import task_weights

    assert task_weights("add2=8, sort=1.5") == {"add2": 8.0, "sort": 1.5}
    with pytest.raises(argparse.ArgumentTypeError):
        task_weights("add2")
    with pytest.raises(argparse.ArgumentTypeError):
        task_weights("")


# --- conversations: later turns with every earlier turn in the prompt --------------------------
DEMO_FOLDER = Path(__file__).resolve().parents[1] / "app" / "resources" / "llada-demo"


@pytest.fixture(scope="module")
def demo_tokenizer():
    return load_tokenizer(DEMO_FOLDER)


def test_a_conversation_row_is_turn_n_as_the_window_and_llada_chat_prompt_it(demo_tokenizer):
    from app.session.conversation import build_prompt

    tokenizer = demo_tokenizer
    eot = tokenizer.convert_tokens_to_ids(tokens.EOT)
    eos = tokenizer.convert_tokens_to_ids(tokens.EOS)
    items = [make_items("count", 1, "train")[0], make_items("add2", 1, "train")[0],
             make_items("verse", 1, "train")[0]]
    row, prompt_length = conversation_row(tokenizer, items)
    # llada chat / the window: each prompt continues the previous prompt and its whole generated
    # region (the answer, end of turn, EOS padding to the answer length).
    history, turns = None, []
    for item in items:
        turns.append({"role": "user", "content": item.question})
        plan = {"turns": list(turns)}
        if history is not None:
            plan.update(history_ids=history, user_text=item.question)
        prompt = build_prompt(tokenizer, plan, 64, 4096).ids
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"]
        history = prompt + answer + [eot] + [eos] * (64 - len(answer) - 1)
        turns.append({"role": "assistant", "content": item.answer})
    assert row[:prompt_length] == prompt
    assert row[prompt_length:] == tokenizer(items[-1].answer, add_special_tokens=False)[
        "input_ids"] + [eot]
    # ... which is the whole conversation in the chat template.
    assert prompt == encode_chat(tokenizer, turns[:-1])


def test_a_multi_turn_share_makes_that_share_of_later_turns(demo_tokenizer):
    tokenizer = demo_tokenizer
    weights = {"count": 1, "add2": 1}
    single = DemoData(tokenizer, 640, seed=1, task_weights=weights, answer_length=64)
    assert single.sft_batch(3, 16) == DemoData(tokenizer, 640, seed=1, task_weights=weights,
                                               answer_length=64, multi_turn_share=0).sft_batch(3, 16)
    header = tokenizer("<|start_header_id|>user", add_special_tokens=False)["input_ids"]

    def user_turns(row: list[int], n: int) -> int:
        return sum(row[i:i + len(header)] == header for i in range(n))

    counts = []
    for share in (0.0, 0.5, 1.0):
        data = DemoData(tokenizer, 640, seed=1, task_weights=weights, answer_length=64,
                        multi_turn_share=share, max_turns=4)
        counts.append([user_turns(row, n) for step in range(4)
                       for rows, lengths in data.sft_batch(step, 16)
                       for row, n in zip(rows, lengths)])
    assert set(counts[0]) == {1}
    assert set(counts[2]) == {2, 3, 4}
    assert 0.25 < sum(c > 1 for c in counts[1]) / len(counts[1]) < 0.75
    for rows, lengths in DemoData(tokenizer, 640, seed=1, task_weights=weights, answer_length=64,
                                  multi_turn_share=1).sft_batch(0, 16):
        for row, n in zip(rows, lengths):   # every question of a conversation is a training one
            questions = re.findall(r"(Count from \d+ to \d+\.|What is \d+ \+ \d+\?)",
                                   tokenizer.decode(row[:n]))
            assert questions and not any(is_held_out(q) for q in questions)
    with pytest.raises(ValueError, match="multi-turn share"):
        DemoData(tokenizer, 640, task_weights=weights, multi_turn_share=1.5)
    with pytest.raises(ValueError, match="2 turns"):
        DemoData(tokenizer, 640, task_weights=weights, multi_turn_share=0.5, max_turns=1)


def test_the_command_line_takes_a_multi_turn_share(tmp_path):
    from app.cli import build_parser

    args = build_parser().parse_args(["train", str(tmp_path), "--multi-turn-share", "0.6",
                                      "--max-turns", "5"])
    assert (args.multi_turn_share, args.max_turns) == (0.6, 5)
