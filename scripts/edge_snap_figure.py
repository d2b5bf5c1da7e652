"""docs/edge-snap.png: the same session (text turn + two standard clicks) on two synthetic validation scenes and a real
``*_part_007`` record, with the model's upsampled mask and with the edge snap (rrsis_engine.edges), each cropped around
the target. Run from the repository root after ``make venv`` and ``rrsis data from-masks ... --out data/dubai-refer``:
``python scripts/edge_snap_figure.py``."""

import numpy as np
from PIL import Image, ImageDraw

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

SIDE = 300  # pixels per panel


def session_mask(predictor, rec, n_clicks: int = 2) -> np.ndarray:
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    pred = session.text(rec["expression"])
    for _ in range(n_clicks):
        click = M.next_click(pred.mask, rec["mask"])
        if click is None:
            break
        pred = session.click(click[0], click[1], positive=bool(click[2]))
    return pred.mask


def panel(rec, mask: np.ndarray, label: str) -> Image.Image:
    """A square crop around the target (H×W bool ``rec["mask"]``), magnified to SIDE: mask magenta, target outline
    yellow."""
    gt = np.asarray(rec["mask"], bool)
    rows, cols = np.nonzero(gt)
    side = int(min(max(np.ptp(rows), np.ptp(cols)) * 1.6 + 16, *gt.shape))
    y0 = int(np.clip((rows.min() + rows.max()) / 2 - side / 2, 0, gt.shape[0] - side))
    x0 = int(np.clip((cols.min() + cols.max()) / 2 - side / 2, 0, gt.shape[1] - side))
    crop = (slice(y0, y0 + side), slice(x0, x0 + side))

    def grow(a, mode):
        return np.array(Image.fromarray(a[crop]).resize((SIDE, SIDE), mode))

    return labelled(overlay(grow(np.asarray(rec["image"]), Image.NEAREST), grow(mask, Image.NEAREST),
                            grow(gt, Image.NEAREST)), label)


def overlay(image: np.ndarray, mask: np.ndarray, target: np.ndarray) -> Image.Image:
    """``image`` (H×W×3) with ``mask`` (H×W bool) in magenta and the outline of ``target`` (H×W bool) in yellow."""
    img = image[..., :3].astype(float)
    img[mask] = img[mask] * 0.45 + np.array([255, 0, 255]) * 0.55
    img[(target ^ np.roll(target, 1, 0)) | (target ^ np.roll(target, 1, 1))] = (255, 255, 0)
    return Image.fromarray(img.astype(np.uint8))


def labelled(panel_image: Image.Image, label: str) -> Image.Image:
    """``panel_image`` with ``label`` in white on black in its top-left corner (drawn in place)."""
    draw = ImageDraw.Draw(panel_image)
    draw.rectangle([0, 0, 8 + 6 * len(label), 14], fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return panel_image


def ring(panel: Image.Image, x: float, y: float) -> Image.Image:
    """``panel`` with a white ring around (x, y) (panel pixels) and a white dot in it (drawn in place)."""
    draw = ImageDraw.Draw(panel)
    draw.ellipse([x - 9, y - 9, x + 9, y + 9], outline=(255, 255, 255), width=3)
    draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 255))
    return panel


def grid(rows: list[list[Image.Image]]) -> Image.Image:
    """Panels of one size (rows of them) pasted edge to edge on a white sheet."""
    width, height = rows[0][0].size
    sheet = Image.new("RGB", (width * max(len(r) for r in rows), height * len(rows)), (255, 255, 255))
    for r, panels in enumerate(rows):
        for i, p in enumerate(panels):
            sheet.paste(p, (width * i, height * r))
    return sheet


def main() -> None:
    predictor = load_predictor("rsam-lite", disk_cache=False, zoom_in=True)
    synth = {r["id"]: r for r in load_records("synthetic:val:40:256")}
    real = {r["id"]: r for r in load_records("data/dubai-refer/sel007.jsonl")}
    records = [synth["synth-val-000003"], synth["synth-val-000005"], real["tile1_image_part_007-001"]]
    sheet = Image.new("RGB", (2 * SIDE + 30, len(records) * (SIDE + 24) + 26), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 6), "text turn + 2 standard clicks, crop around the target; magenta = mask, yellow = target outline",
              fill=(0, 0, 0))
    for i, rec in enumerate(records):
        y = 26 + i * (SIDE + 24)
        for j, snap in enumerate((False, True)):
            predictor.edge_refine = snap
            mask = session_mask(predictor, rec)
            label = f"{'snapped' if snap else 'model mask'}: IoU {M.iou(mask, rec['mask']):.2f}"
            sheet.paste(panel(rec, mask, label), (10 + j * (SIDE + 10), y))
        draw.text((10, y + SIDE + 4), rec["expression"], fill=(0, 0, 0))
    sheet.save("docs/edge-snap.png")
    print("wrote docs/edge-snap.png")


if __name__ == "__main__":
    main()
