"""`llada make-tiny OUT`: write a tiny random LLaDA checkpoint in the official layout."""

from __future__ import annotations

import argparse

from llada_train.tiny import TinySpec, make_tiny_checkpoint


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-tiny", help="write a tiny random checkpoint (for tests and benchmarks)",
        description="Write a tiny random LLaDA-Instruct checkpoint in the official Hugging Face "
                    "layout, with a tokenizer trained here.")
    parser.add_argument("out", help="folder to write")
    parser.add_argument("--d-model", type=int, default=TinySpec.d_model)
    parser.add_argument("--layers", type=int, default=TinySpec.n_layers)
    parser.add_argument("--heads", type=int, default=TinySpec.n_heads)
    parser.add_argument("--kv-heads", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=TinySpec.mlp_hidden_size, help="MLP hidden size")
    parser.add_argument("--bpe-vocab", type=int, default=TinySpec.bpe_vocab)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=TinySpec.shards)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = TinySpec(
        d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
        mlp_hidden_size=args.hidden, bpe_vocab=args.bpe_vocab, seed=args.seed, dtype=args.dtype,
        shards=args.shards,
    )
    folder = make_tiny_checkpoint(args.out, spec)
    print(f"wrote a tiny LLaDA checkpoint to {folder}")
    return 0
