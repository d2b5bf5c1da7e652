"""``rrsis calibrate``: fit a model's ambiguity flag and its mask-quality estimate on labelled validation data.

Ambiguity: the text turn of every record with an ``ambiguous`` label (e.g. the synthetic validation split) →
:func:`rrsis_engine.ambiguity.fit_calibration` for the requested flag precision (``meta.ambiguity_calibration``).
Quality: the text turn and three simulated correction clicks of every record → :func:`rrsis_engine.quality.fit_quality`,
the estimated IoU the front ends show (``meta.quality_calibration``). Both are stored in the checkpoint's JSON
(:mod:`rrsis_engine.calibration`), where the predictor picks them up; ``--only`` refits one and keeps the other.

    rrsis calibrate --model rsam-lite --data synthetic:val:300:256 --precision 0.8
    rrsis calibrate --model rsam-lite --only quality --data synthetic:val:300:256 --data data/dubai-refer/sel007.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    from rrsis_engine.calibration import PARTS

    p = subparsers.add_parser("calibrate", help="fit the ambiguity flag and the mask-quality estimate on validation data",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model name or .safetensors checkpoint (default: the shipped model)")
    p.add_argument("--data", required=True, action="append",
                   help="labelled data: FILE.jsonl, a data set folder or synthetic:val:N[:SIZE]; repeat to pool several")
    p.add_argument("--only", choices=list(PARTS), help="fit only this calibration (the other stored one stays)")
    p.add_argument("--precision", type=float, default=0.8, help="ambiguity flag precision to reach on these data (0-1)")
    p.add_argument("--limit", type=int, help="use only the first N records of each --data")
    p.add_argument("--dry-run", action="store_true", help="print the calibrations, do not write them")
    p.add_argument("--device", help="cpu or cuda")
    p.set_defaults(func=run)


def run(args) -> int:
    from rrsis_engine.calibration import PARTS, calibrate_model, write_calibration

    parts = (args.only,) if args.only else tuple(PARTS)
    fitted, failed, path = calibrate_model(args.model, args.data, args.precision, args.limit, args.device, parts)
    print(json.dumps({part: cal.to_dict() for part, cal in fitted.items()}, indent=2))
    for part, why in failed.items():
        print(f"error: the {part} calibration was not fitted: {why}", file=sys.stderr)
    if fitted and not args.dry_run:
        write_calibration(path, fitted)
    return 1 if failed else 0
