"""``rrsis calibrate``: fit the ambiguity score and flag threshold of a model on labelled validation data.

Runs the text turn of every record (``ambiguous`` labels required, e.g. the synthetic validation split),
fits :func:`rrsis_engine.ambiguity.fit_calibration` for the requested flag precision and stores the result
(:mod:`rrsis_engine.calibration`) in the checkpoint's JSON (``meta.ambiguity_calibration``), where the predictor picks it up.

    rrsis calibrate --model rsam-lite --data synthetic:val:300:256 --precision 0.8
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="fit the ambiguity score / flag threshold on validation data",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model name or .safetensors checkpoint (default: the shipped model)")
    p.add_argument("--data", required=True, help="labelled data: FILE.jsonl, a data set folder or synthetic:val:N[:SIZE]")
    p.add_argument("--precision", type=float, default=0.8, help="flag precision to reach on these data (0-1)")
    p.add_argument("--limit", type=int, help="use only the first N records")
    p.add_argument("--dry-run", action="store_true", help="print the calibration, do not write it")
    p.add_argument("--device", help="cpu or cuda")
    p.set_defaults(func=run)


def run(args) -> int:
    from rrsis_engine.calibration import calibrate_model, write_calibration

    cal, path = calibrate_model(args.model, args.data, args.precision, args.limit, args.device)
    print(json.dumps(cal.to_dict(), indent=2))
    if not args.dry_run:
        write_calibration(path, cal)
    return 0
