"""docs/click-rim.png: synthetic validation scenes where the standard protocol's first click lies on the rim of a
nearly right mask. Left: the text turn and the click (white ring: positive, red: negative). Middle: the model's answer
to that click as it is (``--no-rim-clicks``). Right: with the rim rule (stop 46), the mask shown before changed only
on its rim around the click. Magenta: the mask; yellow: the target's outline; each panel the 128² window around the
click, enlarged 3×.

    .venv/bin/python scripts/rim_click_figure.py
"""

import numpy as np
from edge_snap_figure import grid, labelled, overlay, ring  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw
from spatial_words_figure import validation_scenes

from rrsis_engine import metrics as M
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

RECORDS = ("synth-val-000036", "synth-val-000020")
SCALE = 3
WINDOW = 128
OUT = "docs/click-rim.png"


def panel(image: np.ndarray, mask: np.ndarray, target: np.ndarray, click, label: str) -> Image.Image:
    """The overlay, enlarged SCALE×, with the click ringed (white: positive, red: negative) and ``label``."""
    x, y, positive = click
    h, w = mask.shape
    x0, y0 = int(min(max(x - WINDOW // 2, 0), w - WINDOW)), int(min(max(y - WINDOW // 2, 0), h - WINDOW))
    out = overlay(image, mask, target).crop((x0, y0, x0 + WINDOW, y0 + WINDOW))
    cx, cy = (x - x0 + 0.5) * SCALE, (y - y0 + 0.5) * SCALE
    out = ring(out.resize((WINDOW * SCALE, WINDOW * SCALE), Image.NEAREST), cx, cy)
    if not positive:
        ImageDraw.Draw(out).ellipse([cx - 9, cy - 9, cx + 9, cy + 9], outline=(255, 40, 40), width=3)
    return labelled(out, label)


def main() -> None:
    ids, records, out = validation_scenes(__doc__, RECORDS, OUT)
    predictors = {rim: load_predictor("rsam-lite", device="cpu", disk_cache=False, rim_clicks=rim)
                  for rim in (False, True)}
    rows = []
    for rid in ids:
        rec = records[rid]
        image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
        row = []
        for rim in (False, True):
            session = RefinementSession(predictors[rim])
            session.set_image(image)
            text = session.text(rec["expression"])
            x, y, label = M.next_click(text.mask, target)
            if not row:
                row.append(panel(image, text.mask, target, (x, y, label),
                                 f"\"{rec['expression']}\" IoU {M.iou(text.mask, target):.2f}, "
                                 f"{'positive' if label else 'negative'} click"))
            click = session.click(x, y, positive=bool(label))
            row.append(panel(image, click.mask, target, (x, y, label),
                             f"{'rim rule' if rim else 'model alone'}: IoU {M.iou(click.mask, target):.2f}"))
        rows.append(row)
    grid(rows).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
