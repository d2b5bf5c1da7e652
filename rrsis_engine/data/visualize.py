"""Overlays and contact sheets for data sets and evaluation results (PIL only).

Images are H×W×3 uint8, masks H×W bool [row, col]; clicks are (x, y, label) pixels.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage


def overlay(image: np.ndarray, mask: np.ndarray | None, color=(255, 0, 220), alpha: float = 0.5,
            second: np.ndarray | None = None, second_color=(40, 220, 255)) -> np.ndarray:
    """Tint ``mask`` on ``image`` with an outline; ``second`` (e.g. the prediction) as an outline only."""
    out = image.astype(np.float32).copy()
    if mask is not None and mask.any():
        m = mask.astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
        edge = ndimage.binary_dilation(m, iterations=2) & ~m
        out[edge] = (255, 255, 0)
    if second is not None and second.any():
        s = second.astype(bool)
        edge = ndimage.binary_dilation(s, iterations=1) & ~ndimage.binary_erosion(s, iterations=1)
        out[edge] = second_color
    return np.clip(out, 0, 255).astype(np.uint8)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def tile(image: np.ndarray, caption: str, size: int = 256, clicks: Sequence | None = None,
         scale_from: tuple[int, int] | None = None) -> Image.Image:
    """One contact-sheet cell: the (overlaid) image resized to ``size`` wide plus a wrapped caption."""
    pil = Image.fromarray(image)
    h, w = image.shape[:2]
    th = max(1, int(round(size * h / w)))
    pil = pil.resize((size, th), Image.BILINEAR)
    if clicks:
        d = ImageDraw.Draw(pil)
        sx, sy = size / w, th / h
        for x, y, lab in clicks:
            cx, cy = x * sx, y * sy
            d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(40, 220, 40) if lab else (230, 30, 30), outline=(0, 0, 0))
    font = _font(12)
    lines = textwrap.wrap(caption, width=max(20, size // 7))[:4]
    cap_h = 6 + 15 * max(1, len(lines))
    cell = Image.new("RGB", (size, th + cap_h), (250, 250, 250))
    cell.paste(pil, (0, 0))
    d = ImageDraw.Draw(cell)
    for i, line in enumerate(lines):
        d.text((4, th + 3 + 15 * i), line, fill=(10, 10, 10), font=font)
    return cell


def contact_sheet(cells: Iterable[Image.Image], cols: int = 4, title: str | None = None) -> Image.Image:
    cells = list(cells)
    if not cells:
        raise ValueError("no cells to lay out")
    cw = max(c.width for c in cells)
    ch = max(c.height for c in cells)
    rows = (len(cells) + cols - 1) // cols
    top = 28 if title else 0
    sheet = Image.new("RGB", (cols * (cw + 6) + 6, rows * (ch + 6) + 6 + top), (200, 200, 200))
    if title:
        ImageDraw.Draw(sheet).text((8, 6), title, fill=(0, 0, 0), font=_font(16))
    for i, c in enumerate(cells):
        r, k = divmod(i, cols)
        sheet.paste(c, (6 + k * (cw + 6), top + 6 + r * (ch + 6)))
    return sheet


def record_cells(records: Iterable[dict], size: int = 256) -> list[Image.Image]:
    """Cells for records (common dict format): target in red; the follow-up target outlined in cyan."""
    cells = []
    for rec in records:
        kind = rec.get("kind") or "?"
        flag = ", ambiguous" if rec.get("ambiguous") and kind != "ambiguous" else ""
        cap = f"[{kind}{flag}] {rec['expression']}"
        if rec.get("followup"):
            cap += f"  >> {rec['followup']}"
        fm = rec.get("followup_mask")
        second = fm if (fm is not None and not np.array_equal(fm, rec["mask"])) else None
        cells.append(tile(overlay(rec["image"], rec["mask"], second=second), cap, size))
    return cells


def save_contact_sheet(records: Iterable[dict], path: str | Path, cols: int = 4, size: int = 256,
                       title: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(record_cells(records, size), cols, title).save(path)
    return path
