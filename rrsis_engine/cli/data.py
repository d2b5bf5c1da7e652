"""``rrsis data``: write referring data sets in the rrsis JSONL format.

``synth`` draws synthetic scenes, ``from-masks`` generates expressions from class-index masks,
``export`` converts any readable source (RefSegRS, RRSIS-D, RISBench JSONL, ...) to our JSONL, and
``sheet`` renders a contact sheet of a data set.
"""

from __future__ import annotations

import logging
import time
from itertools import islice
from pathlib import Path

from rrsis_engine.errors import DataError

log = logging.getLogger("rrsis")

#: Dubai images held out for evaluation only (parts 008 and 009 of every tile), see docs/data.md
DEFAULT_HOLDOUT = ("*_part_008.*", "*_part_009.*")


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="generate, convert and inspect referring data sets",
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    s = sub.add_parser("synth", help="synthetic aerial scenes with referring expressions")
    s.add_argument("--n", type=int, required=True, help="number of samples")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--size", type=int, default=512, help="scene side in pixels (default 512)")
    s.add_argument("--start", type=int, default=0, help="first index inside the split's seed range")
    s.add_argument("--out", required=True, help="output folder (data.jsonl, images/, masks/)")
    s.set_defaults(func=run_synth)

    f = sub.add_parser("from-masks", help="expressions from class-index masks (e.g. the Dubai tiles)")
    f.add_argument("--images", required=True, help="folder of images")
    f.add_argument("--masks", required=True, help="folder of single-channel class-index PNGs (same stems)")
    f.add_argument("--out", required=True,
                   help="output folder: train.jsonl, eval.jsonl (held-out images) and val.jsonl (with --val)")
    f.add_argument("--holdout", default=",".join(DEFAULT_HOLDOUT),
                   help="comma-separated file-name patterns of images kept for evaluation only "
                        f"(default {','.join(DEFAULT_HOLDOUT)}); empty for none")
    f.add_argument("--val", default="",
                   help="comma-separated file-name patterns of images kept out of training for validation (model "
                        "selection, `rrsis train --val jsonl:OUT/val.jsonl`), e.g. *_part_007.*; default none")
    f.add_argument("--per-image", type=int, default=12, help="expressions per image (default 12)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--images-mode", choices=["link", "copy", "png"], default="link",
                   help="relative symlinks (default), copies, or re-encoded PNGs of the images")
    f.set_defaults(func=run_from_masks)

    e = sub.add_parser("export", help="convert any readable source to the rrsis JSONL format")
    e.add_argument("source", help="JSONL, RefSegRS/RRSIS-D folder, refsegrs:ROOT:SPLIT, risbench:FILE, synthetic:...")
    e.add_argument("--out", required=True)
    e.add_argument("--limit", type=int)
    e.add_argument("--images-mode", choices=["link", "copy", "png"], default="copy")
    e.set_defaults(func=run_export)

    c = sub.add_parser("sheet", help="render a contact sheet (image, mask overlay, expression)")
    c.add_argument("source")
    c.add_argument("--n", type=int, default=16)
    c.add_argument("--cols", type=int, default=4)
    c.add_argument("--out", required=True, help="PNG to write")
    c.set_defaults(func=run_sheet)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_synth(args) -> int:
    from rrsis_engine.data.jsonl import write_jsonl
    from rrsis_engine.data.synthetic import SyntheticReferringDataset

    if args.n <= 0:
        raise DataError("--n must be a positive number of samples.")
    ds = SyntheticReferringDataset(args.split, args.n, args.size, start=args.start)
    t = time.perf_counter()
    path = write_jsonl(ds, args.out, "data.jsonl", image_mode="png")
    dt = time.perf_counter() - t
    print(f"wrote {args.n} samples to {path} ({args.n / dt:.1f} samples/s including PNG writing)")
    return 0


def run_from_masks(args) -> int:
    from rrsis_engine.data.from_masks import records_from_folders
    from rrsis_engine.data.jsonl import write_jsonl

    holdout = [h.strip() for h in args.holdout.split(",") if h.strip()]
    val = [v.strip() for v in args.val.split(",") if v.strip()]
    common = dict(per_image=args.per_image, seed=args.seed)
    out = Path(args.out)
    paths = [write_jsonl(records_from_folders(args.images, args.masks, exclude=holdout + val, **common), out,
                         "train.jsonl", image_mode=args.images_mode)]
    for name, patterns, exclude in (("val.jsonl", val, holdout), ("eval.jsonl", holdout, ())):
        if patterns:  # an image matching both lists is held out (eval), never used for validation
            paths.append(write_jsonl(records_from_folders(args.images, args.masks, include=patterns,
                                                          exclude=exclude, **common), out, name,
                                     image_mode=args.images_mode))
    for p in paths:
        n = sum(1 for _ in open(p, encoding="utf-8"))
        print(f"wrote {n} records to {p}")
    return 0


def run_export(args) -> int:
    from rrsis_engine.data.jsonl import write_jsonl
    from rrsis_engine.data.readers import load_records

    recs = load_records(args.source)
    if args.limit:
        recs = islice(recs, args.limit)
    path = write_jsonl(recs, args.out, "data.jsonl", image_mode=args.images_mode)
    print(f"wrote {path}")
    return 0


def run_sheet(args) -> int:
    from rrsis_engine.data.readers import load_records
    from rrsis_engine.data.visualize import save_contact_sheet

    recs = list(islice(load_records(args.source), args.n))
    if not recs:
        raise DataError(f"{args.source} has no records.")
    print(f"wrote {save_contact_sheet(recs, args.out, cols=args.cols, title=str(args.source))}")
    return 0
