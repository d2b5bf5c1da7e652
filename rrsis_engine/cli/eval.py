"""``rrsis eval``: run a model over a referring data set and write REPORT.json + REPORT.md."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from rrsis_engine.cli.engine_rules import add_engine_rule_switches, engine_rule_options
from rrsis_engine.errors import DataError

log = logging.getLogger("rrsis")


def _clicks(value: str) -> list[int]:
    try:
        out = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clicks takes click counts like 0,1,2,3, got {value!r}") from None
    if not out or out[0] < 0 or out[-1] > 20:
        raise argparse.ArgumentTypeError(f"--clicks values must be between 0 and 20, got {value!r}")
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model on a referring data set (mIoU, oIoU, P@t, NoC, ambiguity AUROC)",
        description="Evaluate a model on a data set in the rrsis JSONL format (paths relative to the file), a "
                    "RefSegRS/RRSIS-D folder, a RISBench-style JSONL, or synthetic:SPLIT:N[:SIZE]. Writes the "
                    "report JSON, a markdown table and the per-record IoUs (REPORT.records.jsonl, for `rrsis compare`) "
                    "next to it (see docs/data.md).",
    )
    p.add_argument("--data", required=True, help="FILE.jsonl, a data set folder, or synthetic:test:200:512")
    p.add_argument("--model", help="model name (rrsis models) or a .safetensors checkpoint; default: shipped model")
    p.add_argument("--clicks", type=_clicks, default=[0, 1, 2, 3], metavar="0,1,2,3",
                   help="click counts to report (simulated correction clicks on top of the text turn)")
    p.add_argument("--noc", action="store_true", help="also simulate up to 20 clicks for NoC@85 / NoC@90")
    p.add_argument("--limit", type=int, help="evaluate only the first N records")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", required=True, help="REPORT.json to write (REPORT.md is written next to it)")
    p.add_argument("--overlays", help="folder for PNG overlays of the worst text-only cases")
    p.add_argument("--click-policy", choices=("standard", "suggested"), default="standard",
                   help="standard: centre of the largest error region (needs ground truth); suggested: click where "
                        "the model suggests, labelled from the ground truth")
    p.add_argument("--no-zoom", action="store_true",
                   help="predict click turns on the full frame only (no zoom-in pass on a crop around the object; "
                        "without this flag every click turn from the second click on gets the zoom-in, whatever "
                        "the machine's speed, so that scores do not depend on its load)")
    p.add_argument("--encoder-precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="image encoder arithmetic (auto: bf16 where the hardware has it natively)")
    add_engine_rule_switches(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rrsis_engine.data.readers import load_records
    from rrsis_engine.evaluate import run_evaluation, write_report
    from rrsis_engine.predictor import load_predictor

    if args.limit is not None and args.limit <= 0:
        raise DataError("--limit must be a positive number of records.")
    records = load_records(args.data)
    # the zoom-in is pinned: left on auto it follows the encoder's speed, so a loaded machine would score differently
    predictor = load_predictor(args.model, device=args.device, disk_cache=False, zoom_in=not args.no_zoom,
                               encoder_precision=args.encoder_precision, **engine_rule_options(args))

    def progress(i, s):
        if (i + 1) % 25 == 0:
            log.info("eval: %d records done (last IoU %.3f)", i + 1, s["iou"])

    result = run_evaluation(predictor, records, clicks=args.clicks, noc=args.noc, overlays_dir=args.overlays,
                            limit=args.limit, progress=progress, click_policy=args.click_policy)
    js, md, per_record = write_report(result, args.out, data_name=Path(str(args.data)).name)
    print(json.dumps(result.report, indent=2))
    log.info("wrote %s, %s and %s (%.1f s); compare two runs with `rrsis compare BASE.json CANDIDATE.json`", js, md,
             per_record, result.seconds)
    return 0
