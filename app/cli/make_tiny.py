"""`llada make-tiny OUT`: write a tiny random LLaDA checkpoint in the official layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from llada_train.tiny import TinySpec, make_tiny_checkpoint
from llada_train.tiny_moe import TinyMoESpec

ARCHITECTURES = ("llada", "llada-moe", "llada2.0", "llada2.1", "llada-v")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-tiny", help="write a tiny random checkpoint (for tests and benchmarks)",
        description="Write a tiny random checkpoint in the official Hugging Face layout of a LLaDA "
                    "family (LLaDA-8B-Instruct by default), with a tokenizer trained here.")
    parser.add_argument("out", help="folder to write")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="llada",
                        help="llada (LLaDA-8B), llada-moe (LLaDA-MoE-7B-A1B), llada2.0 / llada2.1 "
                             "(LLaDA2.0-mini / LLaDA2.1-mini, block diffusion), llada-v (LLaDA-V, "
                             "pictures); the size options below apply to llada (--layers to "
                             "llada-moe too)")
    parser.add_argument("--layout", choices=("hf", "mlx"), default="hf",
                        help="llada2.0 / llada2.1: hf (the official safetensors, default) or mlx "
                             "(mlx-community's: experts stacked, quantized; needs MLX)")
    parser.add_argument("--bits", type=int, choices=(4, 8), default=4,
                        help="--layout mlx: bits per weight (default 4)")
    parser.add_argument("--dense-layers", type=layer_list, default=(), metavar="I,J,...",
                        help="llada-moe only: these layers (from 0) get a dense feed-forward "
                             "instead of experts (config.json's moe_layer_freq 0)")
    parser.add_argument("--d-model", type=int, default=TinySpec.d_model)
    parser.add_argument("--layers", type=int, default=None,
                        help=f"layers (default {TinySpec.n_layers}; llada-moe "
                             f"{TinyMoESpec.num_hidden_layers})")
    parser.add_argument("--heads", type=int, default=TinySpec.n_heads)
    parser.add_argument("--kv-heads", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=TinySpec.mlp_hidden_size, help="MLP hidden size")
    parser.add_argument("--bpe-vocab", type=int, default=TinySpec.bpe_vocab)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=TinySpec.shards)
    parser.set_defaults(run=run)


def layer_list(text: str) -> tuple[int, ...]:
    """"0" or "0,2": layer indices for --dense-layers."""
    try:
        layers = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer numbers") from None
    if any(layer < 0 for layer in layers):
        raise argparse.ArgumentTypeError(f"{text!r} names a negative layer")
    return layers


def run(args: argparse.Namespace) -> int:
    if args.dense_layers and args.arch != "llada-moe":
        raise ValueError("--dense-layers applies to --arch llada-moe only")
    if args.layout != "hf" and args.arch not in ("llada2.0", "llada2.1"):
        raise ValueError("--layout mlx applies to --arch llada2.0 and llada2.1 only")
    if args.arch != "llada":
        return run_family(args)
    layers = TinySpec.n_layers if args.layers is None else args.layers
    spec = TinySpec(
        d_model=args.d_model, n_layers=layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
        mlp_hidden_size=args.hidden, bpe_vocab=args.bpe_vocab, seed=args.seed, dtype=args.dtype,
        shards=args.shards,
    )
    folder = make_tiny_checkpoint(args.out, spec)
    print(f"wrote a tiny LLaDA checkpoint to {folder}")
    return 0


def run_family(args: argparse.Namespace) -> int:
    """The other families at their tiny test sizes (seed and dtype as asked)."""
    if args.arch == "llada-moe":
        from llada_train.tiny_moe import make_tiny_moe_checkpoint

        layers = TinyMoESpec.num_hidden_layers if args.layers is None else args.layers
        spec = TinyMoESpec(seed=args.seed, dtype=args.dtype, dense_layers=args.dense_layers,
                           num_hidden_layers=layers)
        folder = make_tiny_moe_checkpoint(args.out, spec)
        name = "LLaDA-MoE"
        if spec.dense_layers:
            name += f" (dense layer(s) {', '.join(map(str, sorted(set(spec.dense_layers))))})"
    elif args.arch == "llada-v":
        from llada_train.tiny_llada_v import TinyLLaDAVSpec, make_tiny_llada_v_checkpoint

        folder = make_tiny_llada_v_checkpoint(args.out, TinyLLaDAVSpec(seed=args.seed,
                                                                       dtype=args.dtype))
        name = "LLaDA-V"
    else:
        folder, name = make_llada2(args)
    print(f"wrote a tiny {name} checkpoint to {folder}")
    return 0


def make_llada2(args: argparse.Namespace):
    """A tiny LLaDA 2.x in the official layout, or (--layout mlx) quantized in mlx-community's
    (sizes every Linear's input divides the group size of)."""
    import tempfile

    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

    version = args.arch.removeprefix("llada")
    if args.layout == "hf":
        folder = make_tiny_llada2_checkpoint(args.out, TinyLLaDA2Spec(
            version=version, seed=args.seed, dtype=args.dtype))
        return folder, f"LLaDA{version}"
    from llada_train.tiny_mlx_layout import write_mlx_layout

    with tempfile.TemporaryDirectory() as scratch:
        source = make_tiny_llada2_checkpoint(Path(scratch) / "hf", TinyLLaDA2Spec(
            version=version, seed=args.seed, dtype=args.dtype, moe_intermediate_size=32,
            intermediate_size=128))
        folder = write_mlx_layout(source, args.out, bits=args.bits)
    return folder, f"LLaDA{version} ({args.bits}-bit, mlx-community's layout)"

