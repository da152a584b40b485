"""`llada generate`: one prompt, one answer (text, or JSON with ids, NFE and time)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from app.cli.options import (
    add_constraint_option, add_model_options, add_sampler_options, check_sampler_settings,
    constraints_of, load_model, sampler_settings,
)
from app.session.answer import run_to_end
from app.session.stats_text import json_stats
from llada_core.chat import answer_text, encode_prompt, encode_text, visible_answer_ids

if TYPE_CHECKING:
    from app.history.trace import TraceRecorder


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="answer one prompt",
                                   description="Answer one prompt with the diffusion sampler.")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="the user message (chat template applied unless --raw; "
                                         "a base model gets BOS + the text)")
    prompt.add_argument("--prompt-ids", help="comma-separated token ids, used as they are")
    parser.add_argument("--raw", action="store_true", help="tokenize --prompt without the chat template")
    parser.add_argument("--image", metavar="FILE",
                        help="a picture the question is about (LLaDA-V): PNG, JPEG, WebP, GIF, ...")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    parser.add_argument("--animation", metavar="PATH",
                        help="also write the denoising as an animation: out.gif, out.png "
                             "(animated PNG) or DIR/ (one PNG per step and a contact sheet)")
    add_constraint_option(parser)
    add_model_options(parser)
    add_sampler_options(parser)
    parser.set_defaults(run=run)


def parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError as error:
        raise ValueError(f"--prompt-ids must be comma-separated whole numbers: {error}") from error
    if not ids:
        raise ValueError("--prompt-ids is empty")
    return ids


def write_animation(recorder: "TraceRecorder", tokenizer: Any, mask_id: int, path: str) -> None:
    """The answer's trace drawn by the window's canvas painter, offscreen."""
    from app.session.frame_text import TokenPieces
    from app.ui.animation_render import export_trace

    pieces = TokenPieces(tokenizer, mask_id, glyph="")
    trace = recorder.trace(pieces([int(t) for t in recorder.last.tokens]), unit_of=pieces.unit)
    written = export_trace(trace, path)
    print(f"llada generate: animation written to {written[0] if len(written) == 1 else path}",
          file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    check_sampler_settings(args)
    if args.animation:
        from app.history.animation import kind_of

        kind_of(args.animation)  # a file type we cannot write is refused before loading
    prompt_ids_given = parse_ids(args.prompt_ids) if args.prompt_ids is not None else None
    settings = sampler_settings(args)
    picture = None
    if args.image is not None:
        from llada_core.vision import load_image

        if args.prompt is None or args.raw:
            raise ValueError("--image goes with a --prompt question in the chat template")
        picture = load_image(args.image)  # a bad picture is one sentence before the model loads
    loaded = load_model(args)
    tokenizer = loaded.tokenizer
    images = []
    if picture is not None:
        from llada_core.chat import encode_image_chat
        from llada_core.vision import ImageSpan, prepare_image

        if loaded.vision is None:
            raise ValueError(f"{args.model} has no vision, so it cannot look at {args.image}; "
                             "choose LLaDA-V")
        image = prepare_image(picture, loaded.vision)
        prompt_ids, start = encode_image_chat(
            tokenizer, [{"role": "user", "content": args.prompt}], image.tokens,
            loaded.model.placeholder)
        images = [ImageSpan(start, image)]
    elif prompt_ids_given is not None:
        prompt_ids = prompt_ids_given
    elif args.raw:
        prompt_ids = encode_text(tokenizer, args.prompt)  # text; --prompt-ids gives control tokens
    else:
        # The chat template for an Instruct model; BOS + the raw text for a base model, whose
        # tokenizer has no chat tokens.
        prompt_ids = encode_prompt(tokenizer, args.prompt)

    constraints = constraints_of(args, tokenizer)
    recorder = None
    if args.animation:
        from app.history.trace import TraceRecorder, fixed_positions

        recorder = TraceRecorder(loaded.mask_id, settings.block_length,
                                 fixed_positions(constraints))
    finished = run_to_end(loaded, prompt_ids, settings, constraints=constraints,
                          on_frame=recorder.add if recorder is not None else None, images=images)
    if recorder is not None:
        write_animation(recorder, tokenizer, loaded.mask_id, args.animation)
    answer_ids = finished.tokens
    text = answer_text(tokenizer, answer_ids)
    if args.json:
        json.dump({
            "backend": loaded.backend_name, "dtype": loaded.dtype_name(), "model": str(args.model),
            "prompt_ids": prompt_ids, "answer_ids": answer_ids, "text": text,
            **json_stats(nfe=finished.nfe, steps=finished.steps, step_budget=settings.steps,
                         seconds=finished.seconds,
                         tokens=len(visible_answer_ids(tokenizer, answer_ids))),
            "settings": dataclasses.asdict(settings),
            "constraints": {str(start): ids for start, ids in constraints.items()},
        }, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0
