"""docs/click-next.jpg: synthetic validation scenes whose sentence is about one object ("the upper swimming pool" among
pools its words do not tell apart). Each row, left to right: the text turn, which shows the likeliest look-alike
alone (stop 46); the labeller's "not this one", a negative click on it, after which the mask shows the likeliest of the
others alone and asks "is it this one?" (white ring, the suggested click; stop 49), as many times as it takes; then
"yes", the positive click at the ring. Magenta: the mask; yellow: the target's outline; red dot: a negative click.

    .venv/bin/python scripts/next_lookalike_figure.py
"""

import numpy as np
from edge_snap_figure import grid, labelled, overlay, ring  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw
from spatial_words_figure import validation_scenes

from rrsis_engine import metrics as M
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession
from rrsis_engine.spatial_language import confirmation_click

RECORDS = ("synth-val-000069", "synth-val-000084", "synth-val-000097")
SCALE = 2
MAX_NOS = 5
OUT = "docs/click-next.jpg"


def dot(panel: Image.Image, x: float, y: float) -> Image.Image:
    """``panel`` with a red dot (a negative click) at (x, y) panel pixels (drawn in place)."""
    ImageDraw.Draw(panel).ellipse([x - 4, y - 4, x + 4, y + 4], fill=(255, 40, 40), outline=(0, 0, 0))
    return panel


def at(x: float, y: float) -> tuple[float, float]:
    """Image pixel (x, y) → the centre of its enlarged panel pixel."""
    return (x + 0.5) * SCALE, (y + 0.5) * SCALE


def panel(image: np.ndarray, mask: np.ndarray, target: np.ndarray, label: str) -> Image.Image:
    out = overlay(image, mask, target)
    return labelled(out.resize((out.width * SCALE, out.height * SCALE), Image.NEAREST), label)


def main() -> None:
    ids, records, out = validation_scenes(__doc__, RECORDS, OUT)
    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    rows = []
    for rid in ids:
        rec = records[rid]
        image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
        session = RefinementSession(predictor)
        session.set_image(image)
        pred = session.text(rec["expression"])
        row = [panel(image, pred.mask, target, f"\"{rec['expression']}\" IoU {M.iou(pred.mask, target):.2f}")]
        nos = 0
        while M.iou(pred.mask, target) < 0.5 and pred.mask.any() and nos < MAX_NOS:
            x, y, _ = confirmation_click(pred.mask)  # "not this one": a negative click where the question would be
            pred = session.click(x, y, positive=False)
            nos += 1
            row.append(dot(panel(image, pred.mask, target, f"no: IoU {M.iou(pred.mask, target):.2f}"), *at(x, y)))
            if pred.suggests_confirmation:
                ring(row[-1], *at(*pred.suggested_click[:2]))
        if not pred.suggests_confirmation or M.iou(pred.mask, target) < 0.5:
            raise SystemExit(f"{rid}: the target is not asked about after {nos} negative clicks; choose another record")
        x, y, _ = pred.suggested_click
        pred = session.click(x, y, positive=True)
        row.append(ring(panel(image, pred.mask, target, f"yes: IoU {M.iou(pred.mask, target):.2f}"), *at(x, y)))
        rows.append(row)
    grid(rows).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
