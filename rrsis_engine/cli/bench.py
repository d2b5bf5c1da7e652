"""``rrsis bench TARGET``: benchmarks writing benchmarks/TARGET.json and .md.

Targets come from the ``rrsis.benchmarks`` entry-point group (engine, store, app, train), each a
``run(argv) -> int`` that measures against a baseline timed in the same process.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

from rrsis_engine.errors import RRSISError


def register(subparsers) -> None:
    targets = sorted(ep.name for ep in entry_points(group="rrsis.benchmarks"))
    p = subparsers.add_parser("bench", help="run a benchmark (" + ", ".join(targets) + ")")
    p.add_argument("target", choices=targets)
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the benchmark (TARGET --help)")
    p.set_defaults(func=run)


def run(args) -> int:
    (ep,) = [e for e in entry_points(group="rrsis.benchmarks") if e.name == args.target]
    try:
        fn = ep.load()
    except ImportError as exc:
        raise RRSISError(f"The {args.target} benchmark is not available in this install ({exc}).") from None
    return int(fn(args.args) or 0)
