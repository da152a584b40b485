"""Which model to use when the user names none, and a model folder's own sampler defaults.

A model the user downloaded wins (the recommended one for this machine first); with none, the
small demo model bundled with the app; with neither, the recommended repo id (downloaded on use).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from app.models.catalog import CATALOG, bundled_demo_model, recommended_entry
from llada_core.checkpoint import SAMPLER_DEFAULTS_FILE

SAMPLER_KEYS = ("gen_length", "block_length", "steps")

DEMO_NOTE = (
    "This is the small demo model bundled with LLaDA Desktop: 4.6 million parameters trained on "
    "this project's machine on the King James Bible and generated exercises. It adds two-digit "
    "numbers (\"What is 47 + 58?\"); three-digit sums and subtraction only sometimes, and it "
    "cannot hold a conversation. Download LLaDA 8B for real answers."
)


def installed_catalog_model() -> Optional[str]:
    """A catalog model that is fully in the Hugging Face cache, the recommended one first."""
    from app.models.download import downloaded_snapshot

    recommended = recommended_entry().repo_id
    for repo_id in [recommended] + [e.repo_id for e in CATALOG if e.repo_id != recommended]:
        if downloaded_snapshot(repo_id) is not None:
            return repo_id
    return None


def default_model() -> str:
    """The model to open when none is named (see the module docstring)."""
    installed = installed_catalog_model()
    if installed:
        return installed
    demo = bundled_demo_model()
    if demo is not None:
        return str(demo)
    return recommended_entry().repo_id


def is_bundled_demo(model: Optional[str]) -> bool:
    demo = bundled_demo_model()
    return demo is not None and model is not None and Path(model).resolve() == demo.resolve()


def sampler_defaults(model: Optional[str]) -> dict:
    """Answer length, block length and steps a model folder recommends (sampler_defaults.json)."""
    if not model or not Path(model).is_dir():
        return {}
    path = Path(model) / SAMPLER_DEFAULTS_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: int(values[k]) for k in SAMPLER_KEYS if isinstance(values.get(k), int)}
