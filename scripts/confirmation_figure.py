"""docs/click-confirm.png: synthetic validation scenes whose sentence is about one object and whose text turn shows
several look-alikes. Top row: the text turn and its suggestion, "is it this one?" (white ring: a positive click
inside the likeliest object shown, stop 45). Bottom row: that click made, as the simulated labeler makes it when the
object is the target (``rrsis eval --click-policy suggested``): the look-alikes no positive click lies on leave the
mask (stop 44). Magenta: the mask; yellow: the target's outline.

    .venv/bin/python scripts/confirmation_figure.py
"""

import numpy as np
from edge_snap_figure import grid, labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw
from spatial_words_figure import validation_scenes

from rrsis_engine import metrics as M
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

RECORDS = ("synth-val-000014", "synth-val-000021", "synth-val-000084")
SCALE = 2
OUT = "docs/click-confirm.png"


def ring(panel: Image.Image, x: float, y: float) -> Image.Image:
    """``panel`` with a white ring around (x, y) (panel pixels) and a white dot in it (drawn in place)."""
    draw = ImageDraw.Draw(panel)
    draw.ellipse([x - 9, y - 9, x + 9, y + 9], outline=(255, 255, 255), width=3)
    draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 255))
    return panel


def main() -> None:
    ids, records, out = validation_scenes(__doc__, RECORDS, OUT)
    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    asked, confirmed = [], []
    for rid in ids:
        rec = records[rid]
        image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
        session = RefinementSession(predictor)
        session.set_image(image)
        text = session.text(rec["expression"])
        if not text.suggests_confirmation:
            raise SystemExit(f"{rid}: the text turn suggests no confirmation; choose another record")
        x, y, _ = text.suggested_click
        panel = overlay(image, text.mask, target)
        panel = panel.resize((panel.width * SCALE, panel.height * SCALE), Image.NEAREST)
        asked.append(labelled(ring(panel, (x + 0.5) * SCALE, (y + 0.5) * SCALE),
                              f"\"{rec['expression']}\" IoU {M.iou(text.mask, target):.2f}: is it this one?"))
        click = session.click(x, y, positive=True)
        panel = overlay(image, click.mask, target)
        panel = panel.resize((panel.width * SCALE, panel.height * SCALE), Image.NEAREST)
        confirmed.append(labelled(ring(panel, (x + 0.5) * SCALE, (y + 0.5) * SCALE),
                                  f"yes (positive click there): IoU {M.iou(click.mask, target):.2f}"))
    grid([asked, confirmed]).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
