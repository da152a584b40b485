"""Flags shared by the commands that run a model; they mirror the backend contract."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from llada_core.settings import CACHE_CHOICES, MODE_CHOICES, REMASKING_CHOICES, SamplerSettings

if TYPE_CHECKING:
    from app.session.model import LoadedModel

_DEFAULTS = SamplerSettings()
# The command line's sampler when neither the user nor the model folder chose one (issue 13):
# Fast-dLLM's dual cache, threshold 0.9 and early stop. Exact stays one flag away.
DEFAULT_MODE = "fast"
_NOT_GIVEN = object()  # --threshold left to the model folder (None means "no threshold")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--backend", choices=["torch", "mlx"], default=None,
                       help="default: MLX on Apple Silicon, PyTorch elsewhere")
    group.add_argument("--model", default=None,
                       help="model folder or Hugging Face repo id (default: a downloaded LLaDA, "
                            "else the bundled demo model, else the recommended download)")
    group.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                       help="weights dtype (default: the checkpoint's own)")
    group.add_argument("--device", default=None, help="torch device (default: cuda, mps, then cpu)")


def demo_lengths() -> dict[str, str]:
    """' (the bundled demo: 8)'-style help fragments: with no model downloaded, the demo is the
    default model and its lengths are the ones in force."""
    from app.models.catalog import bundled_demo_model
    from app.models.defaults import sampler_defaults

    demo = bundled_demo_model()
    own = sampler_defaults(str(demo)) if demo is not None else {}
    return {key: f" (the bundled demo: {value})" for key, value in own.items()
            if key in ("gen_length", "steps", "block_length")}


def add_sampler_options(parser: argparse.ArgumentParser, *, gen_length: int = 128,
                        steps: int = 128, block_length: int = 32) -> None:
    group = parser.add_argument_group("sampler")
    # None until the model is known: a model folder may recommend its own (sampler_defaults.json).
    parser.set_defaults(length_fallback={"gen_length": gen_length, "steps": steps,
                                         "block_length": block_length})
    demo = demo_lengths()
    group.add_argument("--gen-length", type=int, default=None,
                       help="answer length in tokens (default: the model's own"
                            f"{demo.get('gen_length', '')}, else {gen_length}); given alone, the "
                            "block length and steps follow at the model's pace")
    group.add_argument("--steps", type=int, default=None,
                       help="denoising steps (forward passes) (default: the model's own"
                            f"{demo.get('steps', '')}, else {steps})")
    group.add_argument("--block-length", type=int, default=None,
                       help="semi-autoregressive block length; must divide --gen-length "
                            f"(default: the model's own{demo.get('block_length', '')}, "
                            f"else {block_length})")
    group.add_argument("--temperature", type=float, default=_DEFAULTS.temperature)
    group.add_argument("--cfg-scale", type=float, default=_DEFAULTS.cfg_scale,
                       help="classifier-free guidance scale (0 = off; each step then costs 2 passes)")
    group.add_argument("--remasking", choices=REMASKING_CHOICES, default=_DEFAULTS.remasking)
    group.add_argument("--mode", choices=MODE_CHOICES, default=None,
                       help=f"fast = KV cache, parallel commits, early stop; exact = the reference "
                            f"sampler (default {DEFAULT_MODE}, or the model folder's choice)")
    group.add_argument("--cache", choices=CACHE_CHOICES, default=_DEFAULTS.cache,
                       help="fast mode: KV cache refreshed at each block (default dual)")
    group.add_argument("--threshold", type=parse_threshold, default=_NOT_GIVEN,
                       help=f"fast mode: commit every token at least this confident "
                            f"(default {_DEFAULTS.threshold}, or the model folder's; 'none' keeps "
                            "the fixed schedule)")
    group.add_argument("--factor", type=parse_factor, default=None,
                       help="fast mode: Fast-dLLM's factor rule instead of the threshold (commit "
                            "the largest n with (n + 1)(1 - c_n) < FACTOR); off by default")
    group.add_argument("--editing-threshold", type=parse_threshold, default=None,
                       help="LLaDA 2.x: replace a written token the model now predicts otherwise "
                            "above this probability (LLaDA2.1's editing decoder; default: the "
                            "model's own)")
    group.add_argument("--no-early-stop", dest="early_stop", action="store_false",
                       help="fast mode: keep denoising after a finished block holds EOS")
    group.add_argument("--logits-eos-inf", action="store_true", help="never predict EOS")
    group.add_argument("--confidence-eos-eot-inf", action="store_true",
                       help="commit EOS and <|eot_id|> last")
    group.add_argument("--seed", type=int, default=None, help="seed for temperature and random remasking")


def add_constraint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--constraint", action="append", default=[], type=parse_constraint,
                        metavar="POS:TEXT",
                        help="pin TEXT at answer position POS (0-based tokens; the text is "
                             "encoded with a leading space, as the reference app does); repeatable")


def parse_constraint(text: str) -> tuple[int, str]:
    position, colon, word = text.partition(":")
    try:
        start = int(position.strip())
    except ValueError:
        start = -1
    if not colon or not word.strip() or start < 0:
        raise argparse.ArgumentTypeError(
            f"constraint {text!r} is not POS:TEXT with POS a whole number 0 or more (e.g. 0:Once)")
    return start, word.strip()


def check_constraint_positions(args: argparse.Namespace) -> None:
    """Positions past the answer or given twice are refused before a model loads (how many
    tokens a text takes needs the tokenizer; the sampler checks that)."""
    seen: set[int] = set()
    for start, _ in getattr(args, "constraint", []):
        if start >= args.gen_length:
            raise ValueError(f"the constraint at position {start} is past the answer "
                             f"(answer length {args.gen_length})")
        if start in seen:
            raise ValueError(f"position {start} has two constraints")
        seen.add(start)


def constraints_of(args: argparse.Namespace, tokenizer: Any) -> dict[int, list[int]]:
    from llada_core.constraints import encode_constraints

    return encode_constraints(tokenizer, getattr(args, "constraint", []))


def parse_threshold(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold must be a number or 'none', not {text!r}")


def parse_factor(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"factor must be a number or 'none', not {text!r}")


def sampler_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "gen_length": args.gen_length, "block_length": args.block_length, "steps": args.steps,
        "temperature": args.temperature, "cfg_scale": args.cfg_scale,
        "remasking": args.remasking, "mode": args.mode, "seed": args.seed,
        "logits_eos_inf": args.logits_eos_inf,
        "confidence_eos_eot_inf": args.confidence_eos_eot_inf,
        "cache": args.cache, "threshold": args.threshold, "early_stop": args.early_stop,
        "factor": getattr(args, "factor", None),
        "editing_threshold": getattr(args, "editing_threshold", None),
    }


def resolve_model(args: argparse.Namespace) -> None:
    """Fill in the model when none was named, and the lengths, mode and threshold the user left
    to the model (its sampler_defaults.json), else the command line's defaults (fast mode)."""
    import sys

    from app.models.defaults import (
        DEMO_NOTE, block_diffusion_defaults, default_model, is_bundled_demo, sampler_defaults,
    )

    if getattr(args, "model", None) is None and getattr(args, "pick_model", True):
        args.model = default_model()
        if is_bundled_demo(args.model):
            print(f"llada: {DEMO_NOTE} (llada download --list shows the models.)", file=sys.stderr)
    lengths = dict(getattr(args, "length_fallback", {}))
    recommended = {**block_diffusion_defaults(getattr(args, "model", None)),
                   **sampler_defaults(getattr(args, "model", None))}
    lengths.update({key: value for key, value in recommended.items() if key in lengths})
    # Which of the settings a model folder may recommend the user gave (the window's defaults
    # take the folder's for the others).
    args.lengths_given = {key for key in lengths if getattr(args, key, None) is not None}
    for key, value in lengths.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.lengths_given == {"gen_length"}:
        # An answer length alone keeps the model's pace (tokens per step) in a schedule that
        # fits, rather than failing on a block length the user never set.
        from app.session.settings_logic import plan_schedule

        planned = plan_schedule(args.gen_length, lengths)
        args.block_length, args.steps = planned["block_length"], planned["steps"]
    choices = {key: value for key, value in recommended.items() if key in ("mode", "threshold")}
    if hasattr(args, "mode"):
        if args.mode is None:
            args.mode = choices.get("mode", DEFAULT_MODE)
        else:
            args.lengths_given.add("mode")
    if hasattr(args, "threshold"):
        if args.threshold is _NOT_GIVEN:
            args.threshold = choices.get("threshold", _DEFAULTS.threshold)
        else:
            args.lengths_given.add("threshold")


def check_sampler_settings(args: argparse.Namespace) -> None:
    """Settle the model and lengths, and reject bad settings before a model is loaded (which can
    take a minute)."""
    resolve_model(args)
    SamplerSettings(**sampler_kwargs(args))
    check_constraint_positions(args)


def load_model(args: argparse.Namespace) -> LoadedModel:
    """The model the command line's flags name, loaded through the session layer."""
    from app.session.model import load_model as load_session_model

    return load_session_model(args.model, args.backend, dtype=args.dtype,
                              device=getattr(args, "device", None))


def sampler_settings(args: argparse.Namespace) -> SamplerSettings:
    """The command line's sampler settings as the one settings type."""
    return SamplerSettings(**sampler_kwargs(args))
