"""`llada eval --conversations N`: held-out conversations of the demo tasks interleaved, asked
turn by turn with the model's own answers in each next prompt, scored first turns apart from
later ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.eval.evaluate import evaluate_conversations, held_out_conversations, turn_label
from app.models.catalog import bundled_demo_model
from app.models.defaults import sampler_defaults
from backend_choice import BACKEND

ROOT = Path(__file__).resolve().parents[1]


def test_conversations_interleave_held_out_items_of_the_tasks():
    conversations = held_out_conversations(["count", "add2"], 3, 6)
    assert [item.task for item in conversations[0]] == ["count", "add2"] * 3
    assert [item.task for item in conversations[1]] == ["add2", "count"] * 3
    questions = [item.question for conversation in conversations for item in conversation]
    assert len(set(questions)) == len(questions)
    from llada_train.demo_tasks import is_held_out
    assert all(is_held_out(q) for q in questions)
    assert turn_label("count", 1, 6) == "count turn 1"
    assert turn_label("count", 4, 6) == "count turns 2-6"


def test_a_conversation_is_scored_turn_by_turn_with_the_models_own_answers():
    from app.session.backends import get_backend

    demo = bundled_demo_model()
    backend = get_backend(BACKEND)
    model, tokenizer = backend.load(demo, dtype="float32")
    conversation = held_out_conversations(["add2", "count"], 1, 3)[0]
    seen = []

    class Recording:
        def __getattr__(self, name):
            return getattr(backend, name)

        def generate_steps(self, model, prompt, **kwargs):
            seen.append(list(prompt))
            yield from backend.generate_steps(model, prompt, **kwargs)

    from app.session.model import LoadedModel

    loaded = LoadedModel(backend=Recording(), model=model, tokenizer=tokenizer,
                         backend_name=BACKEND, path=str(demo))
    scores = evaluate_conversations(loaded, [conversation], sampler_defaults(str(demo)))
    assert set(scores) == {"add2 turn 1", "count turns 2-3", "add2 turns 2-3"}
    assert sum(s.total for s in scores.values()) == 3
    # Each prompt starts with the whole previous prompt (and then the answer given to it).
    assert seen[1][:len(seen[0])] == seen[0] and seen[2][:len(seen[1])] == seen[1]
    assert conversation[1].question in tokenizer.decode(seen[2])


def test_llada_eval_scores_later_turns_apart(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LLADA_LOG_DIR=str(tmp_path / "logs"))
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "--model", str(bundled_demo_model()),
         "--tasks", "count,add2", "--items", "1", "--conversations", "2", "--turns", "2",
         "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert {name: s["total"] for name, s in scores.items()} == {
        "count": 1, "add2": 1, "count turn 1": 1, "add2 turn 1": 1,
        "count turns 2-2": 1, "add2 turns 2-2": 1}
    bad = subprocess.run([sys.executable, "-m", "app.cli", "eval", "--conversations", "-1"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert bad.returncode != 0 and "--conversations" in bad.stderr
