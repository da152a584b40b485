"""`llada serve`: an OpenAI-compatible HTTP server for one model (see app/server/api.py)."""

from __future__ import annotations

import argparse
import os
import sys

from app.cli.options import (
    add_model_options, add_sampler_options, check_sampler_settings, load_model,
    sampler_kwargs,
)

API_KEY_ENV = "LLADA_API_KEY"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve a model over an OpenAI-compatible HTTP API",
        description="Serve one model over an OpenAI-compatible HTTP API (/v1/models, "
                    "/v1/chat/completions, /v1/completions) for Open WebUI, editors and scripts. "
                    "The sampler flags are the defaults a request's own fields override.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key", default=None,
                        help=f"require 'Authorization: Bearer KEY' on every request (or set "
                             f"${API_KEY_ENV}, which keeps the key out of the process list)")
    add_model_options(parser)
    add_sampler_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.session.backends import BackendUnavailable, default_backend

    if not 0 <= args.port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {args.port}")
    check_sampler_settings(args)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise BackendUnavailable(
            f"llada serve needs {error.name or 'starlette and uvicorn'}, which is not installed "
            '(pip install "llada-desktop[serve]")') from error
    from app.server import make_server
    from app.server.api import bind_socket, is_loopback, served_model_id, uvicorn_server

    if not is_loopback(args.host):
        print(f"llada serve: warning: listening on {args.host}, so other machines can reach this "
              "server" + ("" if (args.api_key or os.environ.get(API_KEY_ENV))
                          else " and there is no --api-key"), file=sys.stderr)
    listening = bind_socket(args.host, args.port)
    backend_name = args.backend or default_backend()
    args.backend = backend_name

    print(f"llada serve: loading {args.model} ({backend_name})", file=sys.stderr)
    try:
        server = make_server(lambda: load_model(args), model_id=served_model_id(str(args.model)),
                             defaults=sampler_kwargs(args),
                             api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
                             aliases=[str(args.model)], backend_name=backend_name)
    except BaseException:
        listening.close()
        raise
    shown = f"[{args.host}]" if ":" in args.host else args.host
    port = listening.getsockname()[1]  # the one chosen when --port is 0
    print(f"llada serve: {server.model_id} at http://{shown}:{port}/v1", file=sys.stderr)
    print(f"llada serve: the browser page is at http://{shown}:{port}/", file=sys.stderr)
    try:
        uvicorn_server(server, args.host, args.port, args.log_level).run(sockets=[listening])
    finally:
        server.worker.stop()
    return 0
