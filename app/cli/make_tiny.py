"""`llada make-tiny OUT`: write a tiny random LLaDA checkpoint in the official layout."""

from __future__ import annotations

import argparse

from llada_train.tiny import TinySpec, make_tiny_checkpoint
from llada_train.tiny_moe import TinyMoESpec

ARCHITECTURES = ("llada", "llada-moe", "llada2.0", "llada2.1")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-tiny", help="write a tiny random checkpoint (for tests and benchmarks)",
        description="Write a tiny random checkpoint in the official Hugging Face layout of a LLaDA "
                    "family (LLaDA-8B-Instruct by default), with a tokenizer trained here.")
    parser.add_argument("out", help="folder to write")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="llada",
                        help="llada (LLaDA-8B), llada-moe (LLaDA-MoE-7B-A1B), llada2.0 / llada2.1 "
                             "(LLaDA2.0-mini / LLaDA2.1-mini, block diffusion); the size options "
                             "below apply to llada (--layers to llada-moe too)")
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
    else:
        from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

        version = args.arch.removeprefix("llada")
        folder = make_tiny_llada2_checkpoint(args.out, TinyLLaDA2Spec(
            version=version, seed=args.seed, dtype=args.dtype))
        name = f"LLaDA{version}"
    print(f"wrote a tiny {name} checkpoint to {folder}")
    return 0
