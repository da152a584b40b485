"""`llada convert SRC OUT`: official LLaDA weights -> an MLX checkpoint quantized to 8 or 4 bits."""

from __future__ import annotations

import argparse

DEFAULT_SHARD_GB = 5.0  # as mlx-lm writes its shards


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert original weights to MLX 8-bit or 4-bit",
        description="Convert an original LLaDA checkpoint (folder or Hugging Face repo id) into the "
                    "mlx-community layout: renamed tensors, every Linear, the embedding and the "
                    "head quantized (affine), tokenizer and json files copied. It streams: one "
                    "tensor is read and quantized at a time, and memory stays near one output "
                    "shard, never the whole model.")
    parser.add_argument("source", help="model folder or Hugging Face repo id (original weights)")
    parser.add_argument("out", help="folder to write (must not exist, or be empty)")
    parser.add_argument("--bits", type=int, choices=[8, 4], default=8, help="bits per weight (default 8)")
    parser.add_argument("--group-size", type=int, choices=[32, 64, 128], default=64,
                        help="weights per scale and bias (default 64)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16",
                        help="dtype of the scales, biases and norms (default bfloat16, the dtype "
                             "LLaDA was trained in)")
    parser.add_argument("--shard-size", type=_positive_gb, default=DEFAULT_SHARD_GB, metavar="GB",
                        help="largest output file in GiB (default 5); the peak memory of the "
                             "conversion is about one shard")
    parser.set_defaults(run=run)


def _positive_gb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB") from None
    if not value > 0 or int(value * 2**30) < 1:
        raise argparse.ArgumentTypeError(f"the shard size must be positive, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from app.session.backends import get_backend

    backend = get_backend("mlx")
    from llada_mlx.convert import describe

    out = backend.convert(args.source, args.out, bits=args.bits, group_size=args.group_size,
                          dtype=args.dtype, shard_bytes=int(args.shard_size * 2**30))
    info = describe(out)
    print(f"wrote {args.bits}-bit MLX weights (group size {args.group_size}, {args.dtype} scales, "
          f"{info['shards']} file(s), {info['bytes'] / 2**20:.1f} MiB) to {out}")
    return 0
