"""``rrsis compare``: paired comparison of two ``rrsis eval`` runs on the same records."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare two evaluations record by record (difference and 95 %% bootstrap interval)",
        description="Compare two `rrsis eval` reports of the same data set record by record: for the IoU at each "
                    "click count, NoC@85/90, the follow-up turn and the ambiguity AUROC, the difference (candidate - "
                    "base), its 95 %% interval from a paired bootstrap over records, and how many records got better "
                    "or worse. Needs the REPORT.records.jsonl that `rrsis eval` writes beside REPORT.json.",
    )
    p.add_argument("base", help="REPORT.json of the base run (e.g. the current model, or the standard click policy)")
    p.add_argument("candidate", help="REPORT.json of the candidate run on the same --data")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--out", help="also write COMPARE.json and COMPARE.md (same stem)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rrsis_engine.compare import compare_evaluations, compare_markdown
    from rrsis_engine.errors import DataError

    if args.resamples < 100:
        raise DataError("--resamples must be at least 100 for a usable interval.")
    result = compare_evaluations(args.base, args.candidate, resamples=args.resamples, seed=args.seed)
    text = compare_markdown(result)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
    print(text, end="")
    return 0
