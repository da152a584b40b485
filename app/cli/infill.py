"""`llada infill "The capital of France is [____]."`: the model fills the holes of a text."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from app.cli.options import (
    add_model_options, add_sampler_options, load_model, resolve_model, sampler_kwargs,
)
from app.session.answer import run_to_end
from app.session.stats_text import json_stats
from llada_core.chat import bos_id
from llada_core.constraints import infill_canvas, infill_lengths, infill_text, parse_infill
from llada_core.settings import SamplerSettings

SYNTAX = ("A hole is [____] (one token per underscore) or [_:N] (N tokens); the text around the "
          "holes stays as written.")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "infill", help="fill the holes of a text",
        description="The model fills the holes of TEXT using the text on both sides. " + SYNTAX
                    + " The canvas is the whole text after BOS, as one block; --steps defaults "
                      "to one per hole token.")
    parser.add_argument("text", help='e.g. "The capital of France is [____]."')
    parser.add_argument("--json", action="store_true",
                        help="print text, holes (each hole's text and ids), canvas_ids, nfe")
    add_model_options(parser)
    add_sampler_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    parse_infill(args.text)  # a text without holes is refused before the model loads
    if args.gen_length is not None or args.block_length is not None:
        raise ValueError("infill takes its answer length and block from the text; "
                         "leave out --gen-length and --block-length")
    steps_given = args.steps
    resolve_model(args)
    loaded = load_model(args)
    tokenizer = loaded.tokenizer
    canvas = infill_canvas(tokenizer, args.text)
    kwargs = sampler_kwargs(args)
    kwargs.update(infill_lengths(canvas, steps_given))
    settings = SamplerSettings(**kwargs)
    bos = bos_id(tokenizer)
    prompt = [bos] if bos is not None else []
    finished = run_to_end(loaded, prompt, settings, constraints=canvas.constraints())
    tokens = finished.tokens
    text = infill_text(tokenizer, tokens)
    if args.json:
        json.dump({
            "text": text, "canvas_ids": tokens, "prompt_ids": prompt,
            "holes": [{"start": start, "length": length, "ids": ids,
                       "text": infill_text(tokenizer, ids)}
                      for (start, length), ids in zip(canvas.holes, canvas.filled(tokens))],
            **json_stats(nfe=finished.nfe, steps=finished.steps, step_budget=settings.steps,
                         seconds=finished.seconds, tokens=canvas.hole_tokens),
            "settings": dataclasses.asdict(settings),
        }, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0
