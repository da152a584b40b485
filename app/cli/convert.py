"""`llada convert SRC OUT`: official LLaDA weights -> an MLX checkpoint quantized to 8 or 4 bits."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert original weights to MLX 8-bit or 4-bit",
        description="Convert an original LLaDA checkpoint (folder or Hugging Face repo id) into the "
                    "mlx-community layout: renamed tensors, every Linear, the embedding and the "
                    "head quantized (affine), tokenizer and json files copied.")
    parser.add_argument("source", help="model folder or Hugging Face repo id (original weights)")
    parser.add_argument("out", help="folder to write (must not exist, or be empty)")
    parser.add_argument("--bits", type=int, choices=[8, 4], default=8, help="bits per weight (default 8)")
    parser.add_argument("--group-size", type=int, choices=[32, 64, 128], default=64,
                        help="weights per scale and bias (default 64)")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                        help="dtype of the scales, biases and norms (default float16)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.backends import get_backend

    backend = get_backend("mlx")
    from llada_mlx.convert import describe

    out = backend.convert(args.source, args.out, bits=args.bits, group_size=args.group_size,
                          dtype=args.dtype)
    info = describe(out)
    print(f"wrote {args.bits}-bit MLX weights (group size {args.group_size}, "
          f"{info['bytes'] / 2**20:.1f} MiB) to {out}")
    return 0
