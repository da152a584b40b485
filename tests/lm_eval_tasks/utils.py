"""Loads the local JSONL beside these task files, so the tasks run offline from any folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def demo_arithmetic(**kwargs: Any):
    from datasets import Dataset, DatasetDict

    path = Path(__file__).with_name("demo_arithmetic.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return DatasetDict({"test": Dataset.from_list(rows)})
