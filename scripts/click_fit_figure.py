"""Figures of the standard click protocol on one synthetic scene, an engine feature off (top row) and on (bottom row),
cropped around the target. Magenta: the mask; yellow: the target's outline; dots: positive (green) and negative (red)
clicks.

    .venv/bin/python scripts/click_fit_figure.py        # docs/click-fit.png: click fitting (rrsis_engine.model.click_fit)
    .venv/bin/python scripts/click_fit_figure.py seeds  # docs/click-seeds.png: the clicks seeding the edge snap
    .venv/bin/python scripts/click_fit_figure.py roads  # docs/click-roads.png: regions grown from positive clicks
    .venv/bin/python scripts/click_fit_figure.py negatives  # docs/click-negatives.png: negative clicks and the previous mask
    .venv/bin/python scripts/click_fit_figure.py strips  # docs/click-strips.png: negative clicks on roads

docs/click-fit.png: "find the white ship nearest to the grove" (validation), nine clicks. docs/click-seeds.png: "the
cluster of trees on the left" (validation), seven clicks; "unseeded" there is the snap without the turn's clicks.
docs/click-roads.png: "segment the smallest road" (validation), six clicks, without and with the colour regions grown
from positive clicks (rrsis_engine.click_regions). docs/click-negatives.png: "the building beside the canal"
(validation), five clicks, the negative-click rules without and with the previous turn's mask
(rrsis_engine.postprocess.negated_previous_parts). docs/click-strips.png: "show me the yellow farm plot closest to the
largest street" (validation), five clicks, without and with the negative clicks' colour strips
(rrsis_engine.postprocess.negated_strip_regions).
"""

import sys
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from edge_snap_figure import grid, labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw

from rrsis_engine import edges, postprocess
from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession


@contextmanager
def snap_without_clicks():
    """The edge snap as it was before stop 38: the turn's clicks are not passed to it."""
    snap = edges.snap_to_edges
    edges.snap_to_edges = lambda pixels, mask, grid_side, **kw: snap(pixels, mask, grid_side)
    try:
        yield
    finally:
        edges.snap_to_edges = snap


@contextmanager
def negatives_without_previous_mask():
    """The negative-click rules as they were before stop 40: the previous turn's mask is not passed to them."""
    negated = postprocess.negated_by_clicks
    postprocess.negated_by_clicks = lambda mask, points, labels, previous=None, colour_strips=None: negated(
        mask, points, labels)
    try:
        yield
    finally:
        postprocess.negated_by_clicks = negated


@contextmanager
def negatives_without_colour_strips():
    """The negative-click rules as they were before stop 41: no colour strip grown from a negative click."""
    negated = postprocess.negated_strip_regions
    postprocess.negated_strip_regions = lambda mask, *a, **k: np.zeros_like(mask)
    try:
        yield
    finally:
        postprocess.negated_strip_regions = negated


#: name → (record, crop x0, y0, x1, y1 in image pixels, scale, clicks, [(row label, predictor options, context)], output)
FIGURES = {
    "fit": ("synth-val-000077", (40, 130, 130, 220), 2, 9,
            [("plain", {"click_fit": False}, nullcontext), ("fit", {}, nullcontext)], "docs/click-fit.png"),
    "seeds": ("synth-val-000043", (28, 52, 64, 88), 6, 7,
              [("unseeded", {}, snap_without_clicks), ("seeded", {}, nullcontext)], "docs/click-seeds.png"),
    "roads": ("synth-val-000064", (0, 0, 256, 128), 1, 6,
              [("model", {"grow_clicks": False}, nullcontext), ("grown", {}, nullcontext)], "docs/click-roads.png"),
    "negatives": ("synth-val-000038", (0, 100, 256, 200), 2, 5,
                  [("this turn's mask", {}, negatives_without_previous_mask), ("previous mask", {}, nullcontext)],
                  "docs/click-negatives.png"),
    "strips": ("synth-val-000051", (96, 0, 208, 72), 3, 5,
               [("mask's strips", {}, negatives_without_colour_strips), ("colour strips", {}, nullcontext)],
               "docs/click-strips.png"),
}


def panel(image: np.ndarray, mask: np.ndarray, target: np.ndarray, clicks, title: str, crop, scale: int) -> Image.Image:
    im = overlay(image, mask, target).crop(crop)
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for x, y, positive in clicks:
        cx, cy = (x + 0.5 - crop[0]) * scale, (y + 0.5 - crop[1]) * scale
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(40, 200, 70) if positive else (235, 50, 50),
                     outline=(255, 255, 255))
    return labelled(im, title)


def main(name: str = "fit") -> None:
    record, crop, scale, n_clicks, rows_spec, out = FIGURES[name]
    torch.set_num_threads(1)
    rec = next(r for r in load_records("synthetic:val:100:256") if r["id"] == record)
    image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
    rows = []
    for label, options, context in rows_spec:
        with context():
            session = RefinementSession(load_predictor("rsam-lite", device="cpu", disk_cache=False, **options))
            session.set_image(image)
            pred = session.text(rec["expression"])
            clicks, panels = [], []
            for k in range(n_clicks):
                clicks.append(M.next_click(pred.mask, target))
                x, y, positive = clicks[-1]
                pred = session.click(x, y, positive=bool(positive))
                panels.append(panel(image, pred.mask, target, clicks,
                                    f"{label} {k + 1}: IoU {M.iou(pred.mask, target):.2f}", crop, scale))
        rows.append(panels)
    grid(rows).save(out)
    print(f"wrote {out}: {rec['expression']!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
