"""Overlays drawn on the display copy of the image (numpy + Pillow, no Gradio).

Frames: the full-resolution image is H×W; the display copy is h×w (h ≤ H, w ≤ W, see
:class:`DisplayFrame`). Masks and maps arrive in the full-resolution frame, indexed [row, col], and are
sampled onto the display grid; prompts arrive as full-resolution (x, y) = (col, row) pixels and are mapped
with :meth:`DisplayFrame.to_display`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Longest side of the image sent to the browser; larger images are downsampled for display only.
DEFAULT_MAX_DISPLAY_SIDE = 1024

MASK_COLOR = (0, 210, 255)  # cyan: stands out on vegetation, soil, roofs and water alike
POSITIVE_COLOR = (40, 200, 70)
NEGATIVE_COLOR = (235, 50, 50)
BOX_COLOR = (255, 215, 0)
SUGGEST_COLOR = (255, 255, 255)
CANDIDATE_COLORS = [(255, 140, 0), (255, 0, 200), (170, 255, 0), (160, 110, 255), (255, 255, 0), (0, 255, 160)]


@dataclass(frozen=True)
class DisplayFrame:
    """Mapping between the full-resolution image (W×H) and its display copy (w×h).

    Display pixel (dx, dy) covers the full-resolution block [dx·sx, (dx+1)·sx) × [dy·sy, (dy+1)·sy)
    with sx = W / w, sy = H / h. Pixel coordinates are pixel indices (pixel k's centre is k).
    """

    width: int
    height: int
    display_width: int
    display_height: int

    @classmethod
    def for_image(cls, width: int, height: int, max_side: int = DEFAULT_MAX_DISPLAY_SIDE) -> DisplayFrame:
        scale = min(1.0, max_side / max(width, height))
        return cls(width, height, max(1, round(width * scale)), max(1, round(height * scale)))

    @property
    def sx(self) -> float:
        return self.width / self.display_width

    @property
    def sy(self) -> float:
        return self.height / self.display_height

    @property
    def downsampled(self) -> bool:
        return (self.display_width, self.display_height) != (self.width, self.height)

    def to_full(self, dx: float, dy: float) -> tuple[float, float]:
        """Display pixel (dx, dy) → full-resolution (x, y): the centre of the block it covers, clipped
        to the image. Identity when the image is not downsampled."""
        x = (dx + 0.5) * self.sx - 0.5
        y = (dy + 0.5) * self.sy - 0.5
        return float(min(max(x, 0.0), self.width - 1)), float(min(max(y, 0.0), self.height - 1))

    def to_display(self, x: float, y: float) -> tuple[float, float]:
        """Full-resolution (x, y) → display (dx, dy), the inverse of :meth:`to_full`."""
        return (x + 0.5) / self.sx - 0.5, (y + 0.5) / self.sy - 0.5

    def sample_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices (h, w) of the full-resolution pixel under each display pixel centre."""
        rows = np.minimum(((np.arange(self.display_height) + 0.5) * self.sy).astype(np.int64), self.height - 1)
        cols = np.minimum(((np.arange(self.display_width) + 0.5) * self.sx).astype(np.int64), self.width - 1)
        return rows, cols

    def sample(self, array: np.ndarray) -> np.ndarray:
        """Nearest-neighbour sample of an H×W(×C) full-resolution array onto the display grid."""
        if not self.downsampled:
            return array
        rows, cols = self.sample_index()
        return array[rows][:, cols]

    def to_full_mask(self, display_mask: np.ndarray) -> np.ndarray:
        """h×w bool on the display grid → H×W bool: each full-resolution pixel takes the display pixel covering it."""
        if not self.downsampled:
            return np.asarray(display_mask, bool)
        rows = np.minimum((np.arange(self.height) / self.sy).astype(np.int64), self.display_height - 1)
        cols = np.minimum((np.arange(self.width) / self.sx).astype(np.int64), self.display_width - 1)
        return np.asarray(display_mask, bool)[rows][:, cols]

    def display_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 → h×w×3 uint8 (area-averaged, so thin features stay visible)."""
        if not self.downsampled:
            return np.ascontiguousarray(pixels)
        im = Image.fromarray(pixels).resize((self.display_width, self.display_height), Image.Resampling.BOX)
        return np.asarray(im)


@lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` that touch the background (4-neighbourhood), thickened by one pixel."""
    m = mask
    interior = m.copy()
    interior[1:, :] &= m[:-1, :]
    interior[:-1, :] &= m[1:, :]
    interior[:, 1:] &= m[:, :-1]
    interior[:, :-1] &= m[:, 1:]
    edge = m & ~interior
    thick = edge.copy()
    thick[1:, :] |= edge[:-1, :]
    thick[:, 1:] |= edge[:, :-1]
    return thick


def _heat(u: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → RGB float (black-red-yellow-white ramp, like matplotlib's 'hot')."""
    u = np.clip(u, 0.0, 1.0)[..., None]
    r = np.clip(u * 3.0, 0, 1)
    g = np.clip(u * 3.0 - 1.0, 0, 1)
    b = np.clip(u * 3.0 - 2.0, 0, 1)
    return np.concatenate([r, g, b], axis=-1) * 255.0


@dataclass
class OverlayOptions:
    opacity: float = 0.45
    show_uncertainty: bool = False
    show_candidates: bool = True


def render_overlay(
    base: np.ndarray,
    frame: DisplayFrame,
    *,
    mask: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    candidates=(),
    suggested_click: tuple[float, float, int] | None = None,
    points=(),
    labels=(),
    box: tuple[float, float, float, float] | None = None,
    pending_corner: tuple[float, float] | None = None,
    options: OverlayOptions | None = None,
) -> np.ndarray:
    """Draw everything on the h×w×3 uint8 display image ``base``; returns a new h×w×3 uint8 array.

    mask, uncertainty, candidate masks: H×W full-resolution. points: N×2 (x, y) full-resolution pixels,
    labels: N (1 positive, 0 negative), numbered 1..N in order. box: (x0, y0, x1, y1) full-resolution.
    """
    opt = options or OverlayOptions()
    out = base.astype(np.float32)
    alpha = float(np.clip(opt.opacity, 0.0, 1.0))
    if opt.show_uncertainty and uncertainty is not None:
        u = frame.sample(np.asarray(uncertainty, dtype=np.float32))
        a = (np.clip(u, 0, 1) * 0.8)[..., None]
        out = out * (1 - a) + _heat(u) * a
    if mask is not None:
        md = frame.sample(np.asarray(mask, dtype=bool))
        if alpha > 0 and not (opt.show_uncertainty and uncertainty is not None):  # outline only over the heat map
            out[md] = out[md] * (1 - alpha) + np.asarray(MASK_COLOR, np.float32) * alpha
        out[_boundary(md)] = MASK_COLOR
    candidates = list(candidates)[: len(CANDIDATE_COLORS)]
    if opt.show_candidates and candidates:
        for i, cand in enumerate(candidates):
            cd = frame.sample(np.asarray(cand.mask, dtype=bool))
            out[_boundary(cd)] = CANDIDATE_COLORS[i % len(CANDIDATE_COLORS)]
    im = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    side = max(frame.display_width, frame.display_height)
    radius = max(6, round(side / 90))
    font = _font(max(11, round(radius * 1.6)))
    if opt.show_candidates and candidates:
        for i, cand in enumerate(candidates):
            cx, cy = frame.to_display(*cand.point)
            color = CANDIDATE_COLORS[i % len(CANDIDATE_COLORS)]
            _label(draw, (cx, cy), str(i + 1), color, font, radius)
    if box is not None:
        x0, y0 = frame.to_display(box[0], box[1])
        x1, y1 = frame.to_display(box[2], box[3])
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=BOX_COLOR, width=3)
    if pending_corner is not None:
        px, py = frame.to_display(*pending_corner)
        r = radius * 1.5
        draw.line([px - r, py, px + r, py], fill=BOX_COLOR, width=3)
        draw.line([px, py - r, px, py + r], fill=BOX_COLOR, width=3)
    if suggested_click is not None:
        sx, sy = frame.to_display(suggested_click[0], suggested_click[1])
        color = POSITIVE_COLOR if int(suggested_click[2]) == 1 else NEGATIVE_COLOR
        for r, w, c in ((radius * 2.2, 4, (0, 0, 0)), (radius * 2.2, 2, SUGGEST_COLOR), (radius * 1.2, 2, color)):
            draw.ellipse([sx - r, sy - r, sx + r, sy + r], outline=c, width=w)
        draw.text((sx + radius * 2.4, sy), "?", fill=SUGGEST_COLOR, font=font, anchor="lm",
                  stroke_width=2, stroke_fill=(0, 0, 0))
    for n, ((x, y), lab) in enumerate(zip(points, labels, strict=False), start=1):
        dx, dy = frame.to_display(float(x), float(y))
        color = POSITIVE_COLOR if int(lab) == 1 else NEGATIVE_COLOR
        draw.ellipse([dx - radius, dy - radius, dx + radius, dy + radius], fill=color, outline=(255, 255, 255),
                     width=2)
        draw.text((dx + radius + 2, dy - radius - 2), str(n), fill=(255, 255, 255), font=font, anchor="lb",
                  stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(im)


def _label(draw, xy, text, color, font, radius) -> None:
    x, y = xy
    r = radius * 1.3
    draw.ellipse([x - r, y - r, x + r, y + r], fill=(0, 0, 0), outline=color, width=2)
    draw.text((x, y), text, fill=color, font=font, anchor="mm")
