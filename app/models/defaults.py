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
# The settings the window's panel holds (and stores per conversation and per answer).
PANEL_KEYS = ("gen_length", "block_length", "steps", "temperature", "cfg_scale", "remasking",
              "seed", "mode", "threshold")
# Fast by default for real models (issue 13): dual cache, threshold 0.9, early stop.
FAST_DEFAULTS = {"mode": "fast", "threshold": 0.9}

DEMO_NOTE = ("The bundled demo model (4.6M parameters) counts and adds two-digit numbers; "
             "for real answers, get LLaDA 8B.")
# Prompts the demo answers right (tests/test_demo_model.py checks each one); held-out items,
# never seen in training.
DEMO_EXAMPLES = ("Count from 36 to 51.", "What is 23 + 55?", "Count from 73 to 87.")


def example_prompts(model: Optional[str]) -> list[str]:
    """The example prompts the window offers for `model`: the demo's; none for other models."""
    return list(DEMO_EXAMPLES) if is_bundled_demo(model) else []


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
    """What a model folder recommends (sampler_defaults.json): answer length, block length and
    steps, and optionally the sampler mode ("exact"/"fast") and threshold (a number or null)."""
    if not model or not Path(model).is_dir():
        return {}
    path = Path(model) / SAMPLER_DEFAULTS_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(values, dict):
        return {}
    found = {k: int(values[k]) for k in SAMPLER_KEYS
             if isinstance(values.get(k), int) and not isinstance(values.get(k), bool)}
    if values.get("mode") in ("exact", "fast"):
        found["mode"] = values["mode"]
    threshold = values.get("threshold", "absent")
    if threshold is None or (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
                             and 0 < threshold <= 1):
        found["threshold"] = threshold
    return found


def reference_settings() -> dict:
    """The reference chat's settings (answer 128, steps 128, block 32, exact), panel keys only."""
    from llada_core.settings import SamplerSettings

    values = SamplerSettings().to_dict()
    return {k: values[k] for k in PANEL_KEYS}


# LLaDA 2.x's own decoders (../shared/llada2-spec.md B5, B6): the reference generate() with the
# threshold its authors evaluate with; 2.1 in Q mode (the diffusers LLaDA2Pipeline example),
# its editing threshold from generation_config.json. A generation_config "threshold" wins.
BLOCK_DIFFUSION_THRESHOLD = {"2.0": 0.95, "2.1": 0.7}


def block_diffusion_defaults(model: Optional[str]) -> dict:
    """A LLaDA 2.x folder's decoder defaults (mode exact: the official generate(), blocks of 32,
    its threshold); {} for any other model or a repo id not downloaded."""
    if not model or not Path(model).is_dir():
        return {}
    from llada_core.llada2_config import is_llada2_config

    def read(name: str) -> dict:
        try:
            values = json.loads((Path(model) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return values if isinstance(values, dict) else {}

    if not is_llada2_config(read("config.json")):
        return {}
    generation = read("generation_config.json")
    editing = generation.get("editing_threshold") is not None
    threshold = generation.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0 < threshold <= 1:
        threshold = BLOCK_DIFFUSION_THRESHOLD["2.1" if editing else "2.0"]
    return {"mode": "exact", "block_length": 32, "threshold": float(threshold)}


def model_settings(model: Optional[str]) -> dict:
    """The window's sampler defaults for `model`: the reference's, in fast mode for a real model
    (the bundled demo keeps its own file's choice; LLaDA 2.x its own decoder's), then the model
    folder's own file."""
    settings = reference_settings()
    if not is_bundled_demo(model):
        settings.update(block_diffusion_defaults(model) or FAST_DEFAULTS)
    settings.update(sampler_defaults(model))
    return settings


def same_settings(a: dict, b: dict) -> bool:
    """Whether two settings dicts mean the same sampler (the threshold only counts in fast
    mode; a key missing on one side takes the reference value)."""
    reference = reference_settings()
    left, right = {**reference, **(a or {})}, {**reference, **(b or {})}
    keys = [k for k in PANEL_KEYS if k != "threshold"]
    if any(left[k] != right[k] for k in keys):
        return False
    return left["mode"] != "fast" or left["threshold"] == right["threshold"]


def given_settings(asked: Optional[dict], model: Optional[str]) -> dict:
    """The settings a caller (the command line) asked for that differ from `model`'s own
    defaults (model_settings): these follow every model loaded later; the rest comes from each
    model's defaults. (The command line passes every setting, most of them its defaults, which
    for the model it names are the model's own; a value equal to them cannot be told from one
    not given.)"""
    own = model_settings(model)
    return {k: v for k, v in (asked or {}).items() if k in PANEL_KEYS and v != own.get(k)}


def window_defaults(model: Optional[str], given: Optional[dict] = None) -> dict:
    """The settings a new (or untouched) conversation gets with `model` loaded: the model's
    defaults, then what the caller asked for. An answer length asked for alone brings a valid
    schedule with it (settings_logic.for_answer_length) instead of an invalid block length."""
    from app.session.settings_logic import for_answer_length, is_valid, snap

    own = model_settings(model)
    settings = {**own, **(given or {})}
    gen, block, steps = settings["gen_length"], settings["block_length"], settings["steps"]
    if not is_valid(gen, block, steps):
        if "block_length" not in (given or {}) and "steps" not in (given or {}):
            gen, block, steps = for_answer_length(gen, own["block_length"], own["steps"],
                                                  own["gen_length"])
        else:
            gen, block, steps = snap(gen, block, steps)
    settings.update(gen_length=gen, block_length=block, steps=steps)
    return settings
