"""The one ``rrsis`` command line.

Subcommands come from the ``rrsis.commands`` entry-point group (see pyproject.toml): each entry is a
``register(subparsers)`` function that adds its parser and sets ``func=run`` with ``run(args) -> int``.
Front ends register their own commands, so this module never imports a UI package. Tests call
``main([...])`` directly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from rrsis_engine.errors import RRSISError

log = logging.getLogger("rrsis")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrsis",
        description="Interactive referring remote-sensing image segmentation (RSAM).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="rrsis.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a part of the project that is not installed / not built yet
            log.debug("rrsis %s unavailable: %s", ep.name, exc)
            continue
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RRSISError as exc:
        print(f"rrsis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
