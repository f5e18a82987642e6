"""`lossopt lab serve [EXPLORABLE --knob value ...]`: its flags, made from the
explorables' knobs, and the call that starts the server. The server stack
(Starlette, uvicorn) is imported only when serving, not for --help."""

from __future__ import annotations

import argparse

from lossopt.lab.knobs import LIVE_HOST, LIVE_PORT, to_query

SERVE_EXAMPLES = f"""examples:
  lossopt lab serve                          the live lab on http://{LIVE_HOST}:{LIVE_PORT}/
  lossopt lab serve --port 9000 --no-browser
  lossopt lab serve paths --optimizers sgd,momentum --momentum 0.5
                                             open on one explorable with these settings

The server listens on {LIVE_HOST} unless --host says otherwise, writes no
file, and stops on Ctrl-C. Each explorable's flags are its API's parameters:
GET /api/<explorable>?<flag name>=<value>."""


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"--port must be a whole number from 1 to 65535, got {text!r}"
        )
    return int(text)


def add_serve(runs, parser_class) -> None:
    """Add `serve` beside the lab's experiments (runs: their sub-parsers)."""
    from lossopt.lab.live.catalog import EXPLORABLES

    serve = runs.add_parser(
        "serve",
        allow_abbrev=False,  # a knob named h must not read as an abbreviation of --host
        help="the live lab: every idea of the lecture as an explorable, in the browser",
        description="Start the live lab on a local server and open it in the browser. "
        "Every number drawn is computed by lossopt on each change of a control.",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default=LIVE_HOST, help=f"address to listen on (default: {LIVE_HOST})"
    )
    serve.add_argument("--port", type=_port, default=LIVE_PORT, help=f"port (default: {LIVE_PORT})")
    serve.add_argument("--no-browser", action="store_true", help="do not open the browser")
    serve.set_defaults(explorable=None)
    opened = serve.add_subparsers(
        dest="explorable", metavar="EXPLORABLE", parser_class=parser_class, title="explorables"
    )
    for name, explorable in EXPLORABLES.items():
        one = opened.add_parser(
            name, help=explorable.title, description=explorable.intro, allow_abbrev=False
        )
        for knob in explorable.knobs:
            # knob_<attr>: `lossopt lab` has --steps, --seed... of its own, with defaults
            knob.add_to_argparse(one, default=argparse.SUPPRESS, dest=f"knob_{knob.attr}")


def path(args: argparse.Namespace) -> str:
    """The page's address after host:port/: '#<explorable>?<knob>=<value>' for the flags given."""
    if args.explorable is None:
        return ""
    from lossopt.lab.live.catalog import EXPLORABLES

    knobs = EXPLORABLES[args.explorable].knobs
    given = {
        k.name: getattr(args, f"knob_{k.attr}") for k in knobs if hasattr(args, f"knob_{k.attr}")
    }
    query = to_query(knobs, given)
    return f"#{args.explorable}" + (f"?{query}" if query else "")


def run(args: argparse.Namespace) -> int:
    from lossopt.lab.live.server import serve

    serve(args.host, args.port, not args.no_browser, path(args))
    return 0
