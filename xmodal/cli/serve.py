"""`xmodal serve SOURCE`: a frozen source behind HTTP as a black box (xmodal.serve)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xmodal.errors import XmodalError
from xmodal.serve import ServeLimits

DEFAULTS = ServeLimits()


def add_parser(commands) -> None:
    serve = commands.add_parser("serve", help="serve a source's class probabilities over HTTP (a black box to "
                                              "reprogram with `fit --blackbox-url`)",
                                description="Serve a frozen audio or image source's class probabilities over HTTP "
                                            "(GET /info, POST /predict); never logits, features or gradients.")
    serve.add_argument("source", help="a name from `xmodal sources`")
    serve.add_argument("--weights", help="explicit weights file for the source model")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                           "only; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--api-key-file", metavar="FILE", help="a file holding the API key clients must send "
                                                              "(header X-API-Key); without it anyone may query")
    serve.add_argument("--max-batch", type=int, default=DEFAULTS.max_batch,
                       help=f"inputs per request (default {DEFAULTS.max_batch})")
    serve.add_argument("--max-body-mb", type=float, default=DEFAULTS.max_body_bytes / 2**20,
                       help=f"request body limit in MB (default {DEFAULTS.max_body_bytes / 2**20:g})")
    serve.add_argument("--rate-limit", type=float, default=DEFAULTS.rate,
                       help=f"requests per second per client, in bursts of up to twice that "
                            f"(default {DEFAULTS.rate:g})")
    serve.set_defaults(run=run_serve)


def read_api_key(path: str | None) -> str | None:
    """The key in `path` (surrounding whitespace removed), or None without a path."""
    if path is None:
        return None
    try:
        key = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise XmodalError(f"--api-key-file {path}: cannot read it ({exc})") from None
    if not key:
        raise XmodalError(f"--api-key-file {path} is empty; put the API key in it")
    return key


def run_serve(args: argparse.Namespace) -> None:
    from adapters_modal import load_source
    from xmodal.serve import input_shape, serve

    limits = ServeLimits.for_rate(args.max_batch, int(args.max_body_mb * 2**20), args.rate_limit)
    key = read_api_key(args.api_key_file)
    source = load_source(args.source, args.weights)
    input_shape(source)  # an unservable (text) source is refused before the server starts
    print(f"serving {source.name} on http://{args.host}:{args.port} ({len(source.class_names)} classes; "
          f"{'API key required' if key else 'no API key: anyone who can reach the port may query'}); Ctrl-C stops")
    serve(source, args.host, args.port, key, limits)
