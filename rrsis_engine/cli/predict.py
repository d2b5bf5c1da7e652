"""``rrsis predict``: one headless prediction (text, clicks, box) on one image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rrsis_engine.cli.engine_rules import add_engine_rule_switches, engine_rule_options
from rrsis_engine.errors import PromptError


def _point(value: str) -> tuple[float, float, int]:
    parts = value.split(",")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"--point takes X,Y or X,Y,LABEL (LABEL 1 positive, 0 negative), got {value!r}")
    try:
        x, y = float(parts[0]), float(parts[1])
        label = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"--point takes numbers X,Y[,LABEL], got {value!r}") from None
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"--point label must be 1 or 0, got {label}")
    return x, y, label


def _box(value: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box takes X0,Y0,X1,Y1 pixels, got {value!r}") from None
    return x0, y0, x1, y1


def _bands(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands takes 1-based band numbers like 1,2,3, got {value!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="segment the object an expression refers to",
        description="Predict a mask for IMAGE from an expression, clicks and/or a box. The clicks and box refine "
                    "the text turn as later turns (each fed the previous mask as prior), as in the app.",
    )
    p.add_argument("image", help="PNG/JPEG/TIFF/GeoTIFF")
    p.add_argument("--text", default="", help="referring expression, e.g. 'the largest lake'")
    p.add_argument("--point", type=_point, action="append", default=[], metavar="X,Y[,1|0]",
                   help="click in pixels (x = column, y = row); label 1 positive (default), 0 negative; repeatable")
    p.add_argument("--box", type=_box, metavar="X0,Y0,X1,Y1", help="box in pixels")
    p.add_argument("--bands", type=_bands, help="1-based bands to use as R,G,B for multispectral images")
    p.add_argument("--model", help="model name (rrsis models) or checkpoint path; default: the shipped model")
    p.add_argument("--out", required=True, help="mask PNG to write (255 = object)")
    p.add_argument("--overlay", help="also write the image with the mask drawn on it")
    p.add_argument("--geojson", help="also write polygons (in the image CRS when it has one)")
    p.add_argument("--json", action="store_true", help="print scores and timings as JSON")
    p.add_argument("--db", help="log the turns and the accepted mask to this session database (path or URL)")
    add_engine_rule_switches(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from PIL import Image

    from rrsis_engine.data.jsonl import write_mask_png
    from rrsis_engine.geo import mask_to_geojson, overlay
    from rrsis_engine.predictor import load_predictor
    from rrsis_engine.session import RefinementSession

    if not args.text and not args.point and args.box is None:
        raise PromptError("Give --text, --point or --box: there is nothing to segment.")
    predictor = load_predictor(args.model, **engine_rule_options(args))
    session = RefinementSession(predictor)
    session.set_image(args.image, bands=args.bands)
    logger = None
    if args.db:
        from rrsis_engine.store import open_store

        logger = open_store(args.db).start_session(
            session.image, client="cli", model_version=predictor.model_version)
        session.subscribe(logger)
    pred = None
    if args.text:
        pred = session.text(args.text)
    if args.box is not None:
        pred = session.box(*args.box)
    for x, y, label in args.point:
        pred = session.click(x, y, positive=bool(label))
    image = session.image
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_mask_png(pred.mask, out)
    if args.overlay:
        st = session.state
        Image.fromarray(overlay(image.pixels, pred.mask, points=st.points or None, labels=st.labels,
                                box=st.box)).save(args.overlay)
    if args.geojson:
        props = {"expression": args.text, "model": predictor.model_name, "model_version": predictor.model_version,
                 "iou_score": round(pred.iou_score, 4), "object_score": round(pred.object_score, 4)}
        Path(args.geojson).write_text(json.dumps(mask_to_geojson(pred.mask, image.transform, image.crs, props)))
    n_turns = len(session.turns)
    if logger is not None:
        session.accept()
        logger.close()
    if args.json:
        info = {"image": args.image, "width": image.width, "height": image.height, "crs": image.crs,
                "model": predictor.model_name, "model_version": predictor.model_version, **pred.summary(),
                "turns": n_turns}
        json.dump(info, sys.stdout, indent=2)
        print()
    else:
        print(f"wrote {out} ({pred.area} px, IoU score {pred.iou_score:.2f}, {pred.latency_ms:.0f} ms)")
    return 0
