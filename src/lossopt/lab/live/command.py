"""`lossopt lab serve [EXPLORABLE --knob value ...]`: its flags, made from the
explorables' knobs, and the call that starts the server. The server stack
(Starlette, uvicorn) is imported only when serving, not for --help."""

from __future__ import annotations

import argparse

from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import LIVE_HOST, LIVE_PORT, to_query

# Translated where the parser is built, once the language is known
SERVE_EXAMPLES = N_("""examples:
  lossopt lab serve                          the live lab on http://{host}:{port}/
  lossopt lab serve --port 9000 --no-browser
  lossopt lab serve paths --optimizers sgd,momentum --momentum 0.5
                                             open on one explorable with these settings

The server listens on {host} unless --host says otherwise, writes no
file, and stops on Ctrl-C. Each explorable's flags are its API's parameters:
GET /api/<explorable>?<flag name>=<value>; ?lang=en|ko gives the page, or an
answer, in that language.""")


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            _("--port must be a whole number from 1 to 65535, got {text!r}").format(text=text)
        )
    return int(text)


def add_serve(runs, parser_class) -> None:
    """Add `serve` beside the lab's experiments (runs: their sub-parsers)."""
    from lossopt.lab.live.catalog import EXPLORABLES

    serve = runs.add_parser(
        "serve",
        allow_abbrev=False,  # a knob named h must not read as an abbreviation of --host
        help=_("the live lab: every idea of the lecture as an explorable, in the browser"),
        description=_(
            "Start the live lab on a local server and open it in the browser. Every number "
            "drawn is computed by lossopt on each change of a control."
        ),
        epilog=_(SERVE_EXAMPLES).format(host=LIVE_HOST, port=LIVE_PORT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default=LIVE_HOST,
        help=_("address to listen on (default: {host})").format(host=LIVE_HOST),
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=LIVE_PORT,
        help=_("port (default: {port})").format(port=LIVE_PORT),
    )
    serve.add_argument("--no-browser", action="store_true", help=_("do not open the browser"))
    serve.set_defaults(explorable=None)
    opened = serve.add_subparsers(
        dest="explorable", metavar="EXPLORABLE", parser_class=parser_class, title=_("explorables")
    )
    for name, explorable in EXPLORABLES.items():
        one = opened.add_parser(
            name, help=_(explorable.title), description=_(explorable.intro), allow_abbrev=False
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

    # the page speaks --lang when given; else each browser its own (Accept-Language)
    serve(args.host, args.port, not args.no_browser, path(args), getattr(args, "lang", None))
    return 0
