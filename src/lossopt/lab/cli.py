"""`lossopt lab`: the command line of the lab."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossopt")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lab", help="run the lab")
    parser.parse_args(argv)
    print("The lab is not built yet.")
    return 0
