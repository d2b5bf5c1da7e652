"""docs/click-fit.png: the standard click protocol on one synthetic validation scene ("find the white ship nearest to
the grove"), without and with click fitting (rrsis_engine.model.click_fit), nine clicks each, cropped around the ship.
Magenta: the mask; yellow: the target's outline; dots: positive (green) and negative (red) clicks.

    .venv/bin/python scripts/click_fit_figure.py
"""

import numpy as np
import torch
from edge_snap_figure import labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

RECORD = "synth-val-000077"
CROP = (40, 130, 130, 220)  # x0, y0, x1, y1 image pixels around the ship
SCALE = 2
CLICKS = 9


def panel(image: np.ndarray, mask: np.ndarray, target: np.ndarray, clicks, title: str) -> Image.Image:
    side = (CROP[2] - CROP[0]) * SCALE
    im = overlay(image, mask, target).crop(CROP).resize((side, side), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for x, y, positive in clicks:
        cx, cy = (x + 0.5 - CROP[0]) * SCALE, (y + 0.5 - CROP[1]) * SCALE
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(40, 200, 70) if positive else (235, 50, 50),
                     outline=(255, 255, 255))
    return labelled(im, title)


def main() -> None:
    torch.set_num_threads(1)
    rec = next(r for r in load_records("synthetic:val:100:256") if r["id"] == RECORD)
    image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
    rows = []
    for fit in (False, True):
        session = RefinementSession(load_predictor("rsam-lite", device="cpu", disk_cache=False, click_fit=fit))
        session.set_image(image)
        pred = session.text(rec["expression"])
        clicks, panels = [], []
        for k in range(CLICKS):
            clicks.append(M.next_click(pred.mask, target))
            x, y, label = clicks[-1]
            pred = session.click(x, y, positive=bool(label))
            title = f"{'fit' if fit else 'plain'} {k + 1}: IoU {M.iou(pred.mask, target):.2f}"
            panels.append(panel(image, pred.mask, target, clicks, title))
        rows.append(panels)
    side = rows[0][0].width
    sheet = Image.new("RGB", (side * CLICKS, side * len(rows)), (255, 255, 255))
    for r, panels in enumerate(rows):
        for i, p in enumerate(panels):
            sheet.paste(p, (side * i, side * r))
    sheet.save("docs/click-fit.png")


if __name__ == "__main__":
    main()
