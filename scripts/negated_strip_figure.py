"""docs/negated-strip.png: the same session (text turn + three standard clicks) on two synthetic validation scenes
whose target is a road, with the negative-click rules off (``--keep-negated-regions``) and on (shipped:
``postprocess.negated_regions`` + ``negated_strips``). The first scene is what the strip rule is for (a crossing road
the negative clicks lie on), the second what it still gets wrong (a negative click trimming the end of the target's
own road). Run from the repository root after ``make venv``: ``python scripts/negated_strip_figure.py``."""

import numpy as np
from edge_snap_figure import labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image, ImageDraw

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

SIDE = 320  # pixels per panel
RECORDS = ("synth-val-000006", "synth-val-000063")


def session(predictor, rec, n_clicks: int) -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """The mask (H×W bool) after the text turn and ``n_clicks`` standard clicks, and those clicks ((x, y, label))."""
    s = RefinementSession(predictor)
    s.set_image(rec["image"])
    pred = s.text(rec["expression"])
    clicks = []
    for _ in range(n_clicks):
        click = M.next_click(pred.mask, rec["mask"])
        if click is None:
            break
        clicks.append(click)
        pred = s.click(click[0], click[1], positive=bool(click[2]))
    return pred.mask, clicks


def panel(rec, mask: np.ndarray, clicks, label: str) -> Image.Image:
    """The whole image magnified to SIDE: mask magenta, target outline yellow, positive clicks green, negative red."""
    gt = np.asarray(rec["mask"], bool)
    out = overlay(np.asarray(rec["image"]), mask, gt).resize((SIDE, SIDE), Image.NEAREST)
    scale = SIDE / gt.shape[1]
    draw = ImageDraw.Draw(out)
    for x, y, positive in clicks:
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=(40, 200, 70) if positive else (235, 50, 50),
                     outline=(255, 255, 255))
    return labelled(out, label)


def main() -> None:
    predictor = load_predictor("rsam-lite", disk_cache=False, zoom_in=True)
    records = {r["id"]: r for r in load_records("synthetic:val:70:256")}
    sheet = Image.new("RGB", (2 * SIDE + 30, len(RECORDS) * (SIDE + 24) + 26), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 6), "text turn + 3 standard clicks; magenta = mask, yellow = target outline, green / red = "
              "positive / negative click", fill=(0, 0, 0))
    for i, rid in enumerate(RECORDS):
        rec, y = records[rid], 26 + i * (SIDE + 24)
        for j, rules in enumerate((False, True)):
            predictor.remove_negated_regions = rules
            mask, clicks = session(predictor, rec, 3)
            label = f"{'shipped' if rules else 'negative-click rules off'}: IoU {M.iou(mask, rec['mask']):.2f}"
            sheet.paste(panel(rec, mask, clicks, label), (10 + j * (SIDE + 10), y))
        draw.text((10, y + SIDE + 4), rec["expression"], fill=(0, 0, 0))
    sheet.save("docs/negated-strip.png")
    print("wrote docs/negated-strip.png")


if __name__ == "__main__":
    main()
