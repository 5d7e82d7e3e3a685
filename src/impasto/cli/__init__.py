"""The ``impasto`` command line: thin layers that build a Recipe and call the engine.

One module per family of commands (``still``: stylize and demo, ``video``, ``rerun``: paint again
what an output records), each adding its parsers and the function that runs them; :mod:`.options`
holds what they share.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import ImpastoError, UsageError
from ..recipe import DEVICES, PRESETS, Recipe
from . import batch, models, rerun, still, train, video
from .options import (
    DEFAULT_PRESET,
    RECIPE_FIELDS,
    STILL_FIELDS,
    UNFLAGGED_FIELDS,
    VIDEO_FIELDS,
    Parser,
    flag,
    named_by_flag,
    recipe_from_args,
)

__all__ = ["DEFAULT_PRESET", "RECIPE_FIELDS", "STILL_FIELDS", "UNFLAGGED_FIELDS", "VIDEO_FIELDS", "build_parser",
           "flag", "main", "recipe_from_args"]


def build_parser() -> Parser:
    parser = Parser(prog="impasto", description="Paint a photo in the style of an artwork (neural style transfer).")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    still.add_parsers(sub)
    video.add_parsers(sub)
    batch.add_parsers(sub)
    rerun.add_parsers(sub)
    models.add_parsers(sub)
    train.add_parsers(sub)
    sub.add_parser("presets", help="list the presets and what they set").set_defaults(run=_presets)
    _add_serve(sub)
    return parser


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="open the web studio: upload, paint with live preview, download",
                           description="A local web page to paint photos: drop a photo and paintings, watch the "
                                       "picture paint itself, download the result.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; on any other address the token travels "
                            "over plain HTTP: put a TLS proxy in front)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")
    serve.add_argument("--token", help="the access token to require (default: a new random one, printed in the "
                                       "address to open)")
    serve.add_argument("--no-token", action="store_true",
                       help="answer loopback requests without a token (any page in your browser can then use it)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests addressed to this host name (repeatable)")
    serve.add_argument("--max-queue", type=int, default=8, metavar="N", help="jobs that may wait (default 8)")
    serve.add_argument("--max-upload-mb", type=float, default=25, metavar="MB", help="largest upload (default 25)")
    serve.add_argument("--device", choices=DEVICES, help="where jobs run (default auto)")
    serve.add_argument("--models", metavar="DIR",
                       help="also offer the trained models (*.impasto) in this folder: the page paints with them "
                            "in one pass (new files show up when the page reloads)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks")
    serve.set_defaults(run=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args))
    except KeyboardInterrupt as exc:  # a video's or a batch's says how the same command continues
        print(f"impasto: interrupted{f'; {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130
    except ImpastoError as exc:
        if debug:
            traceback.print_exc()
        if isinstance(exc, UsageError):
            exc = named_by_flag(exc, args)
        print(f"impasto: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"impasto: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def _presets(args: Any = None) -> int:
    """Each preset's description and the values it sets (``preset = NAME`` first, as a recipe records it)."""
    defaults = Recipe().to_dict()
    for name, preset in PRESETS.items():
        print(f"{name}{' (default)' if name == DEFAULT_PRESET else ''}: {preset.description}")
        for key, value in Recipe.from_preset(name).to_dict().items():
            if key == "preset" or key in preset.values or value != defaults[key]:
                print(f"    {key} = {value}")
    return 0




def _serve(args: Any) -> int:
    from ..web import serve

    serve(args.host, args.port, open_browser=args.open, token=args.token, no_token=args.no_token,
          allowed_hosts=args.allow_host, max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
          device=args.device, log_level="info" if args.debug else "warning", models=args.models)
    return 0
