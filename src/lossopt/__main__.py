"""`python -m lossopt` and the `lossopt` console script share this entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from lossopt.lab.cli import main as lab_main

    return lab_main(argv)


if __name__ == "__main__":
    sys.exit(main())
