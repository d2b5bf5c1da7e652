"""Boundary refiner: a small full-resolution convolutional net that redraws the mask shown near its outline.

The model's logits live on an S/4 grid (96² for rsam-lite at 384²) and the engine's colour-edge snap
(:mod:`rrsis_engine.edges`) moves the upsampled outline onto the nearest colour step, but the labels' outline is not
always there: a road's border pixels, a tree crown's soft rim, a shadow the object does not own. On synthetic
validation half of the wrong pixels the first click leaves on non-ambiguous records lie within 1.5 px of the true
outline (setting right just those would take one-click mIoU from 0.86 to 0.93). This head learns where the outline goes from the image colours and the
mask shown: it sees RGB and the mask (H×W, image pixels), runs dilated 3×3 convolutions (receptive field 19 px) and
predicts, for every pixel within :data:`BAND` px (chessboard) of the mask's outline, whether it belongs to the
object. Pixels farther away and the clicked pixels keep the mask's label, so it moves outlines and never adds or removes an object.
Trained alone on the engine's own turns (``rrsis train --boundary-refiner --train-only boundary_refiner
--refiner-cache N``, :mod:`rrsis_train.refiner_cache`); docs/training.md "The boundary refiner" has what it gained.

Frames: image H×W×3 uint8 RGB, masks H×W bool, both [row, col]; clicks N×2 (x, y) image pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

#: pixels within this many px of the mask's outline (on either side) may change
BAND = 3
#: the working window is the mask's bounding box grown by this many px (≥ BAND + the receptive field's radius)
MARGIN = 16
#: the net runs on tiles of this side (each with its receptive field's radius around it) that hold band pixels: a
#: road network's bounding box is mostly empty (an 800×644 mask: 1 s on one core over the whole box)
TILE = 96


class BoundaryRefiner(nn.Module):
    """RGB + mask (B×4×H×W: colour normalised, mask as ±1) → object logits B×1×H×W. The output is a residual on
    ``MASK_LOGIT`` × the mask channel, so a zero last layer returns the mask unchanged."""

    #: the logit the mask channel contributes (a zero residual keeps the mask)
    MASK_LOGIT = 2.0

    def __init__(self, width: int = 24, dilations: tuple[int, ...] = (1, 2, 4, 1)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(4, width, 3, padding=1), nn.ReLU(inplace=True)]
        for d in dilations:
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, 1, 1)
        #: how far (px) an output pixel sees: the first 3×3 convolution and the dilated ones
        self.receptive_radius = 1 + sum(dilations)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.MASK_LOGIT * x[:, 3:4] + self.out(self.body(x))


def refiner_input(pixels: np.ndarray, mask: np.ndarray) -> torch.Tensor:
    """pixels h×w×3 uint8, mask h×w bool → 1×4×h×w float32 (colour (I/255 − 0.5) / 0.25, mask ±1)."""
    rgb = (pixels[..., :3].astype(np.float32) / 255.0 - 0.5) / 0.25
    m = np.where(mask, 1.0, -1.0).astype(np.float32)[..., None]
    return torch.from_numpy(np.ascontiguousarray(np.concatenate([rgb, m], axis=-1).transpose(2, 0, 1)))[None]


def outline_band(mask: np.ndarray, band: int = BAND) -> np.ndarray:
    """H×W bool: the pixels within ``band`` px (chessboard distance) of ``mask``'s outline, inside or outside."""
    square = np.ones((3, 3), dtype=bool)
    grown = ndimage.binary_dilation(mask, square, iterations=band)
    shrunk = ndimage.binary_erosion(mask, square, iterations=band, border_value=1)
    return grown & ~shrunk


def coreless_zone(mask: np.ndarray, band: int = BAND, core: np.ndarray | None = None) -> np.ndarray:
    """H×W bool: the parts of ``mask`` (8-connected) with no pixel farther than ``band`` px from the outline — objects
    at most about 2·band px across, lying wholly in the outline band — grown by ``band``. The refiner leaves them
    alone: with no core to anchor it, it can erase a small ship or car it was never shown whole. ``core``: ``mask``
    without its outline band, when the caller has it."""
    square = np.ones((3, 3), dtype=bool)
    parts, n = ndimage.label(mask, structure=square)
    if not n:
        return np.zeros(mask.shape, dtype=bool)
    if core is None:
        core = ndimage.binary_erosion(mask, square, iterations=band, border_value=1)
    anchored = np.zeros(n + 1, dtype=bool)
    anchored[np.unique(parts[core])] = True
    coreless = (parts > 0) & ~anchored[parts]
    if not coreless.any():
        return coreless
    return ndimage.binary_dilation(coreless, square, iterations=band)


def tiled_logits(refiner: BoundaryRefiner, x: torch.Tensor, wanted: np.ndarray, tile: int = TILE) -> np.ndarray:
    """The refiner's logits (h×w float32) on input ``x`` (1×4×h×w) at the ``wanted`` pixels (h×w bool; 0 elsewhere):
    computed tile by tile on the tiles holding wanted pixels, each with the receptive field's radius of input around
    it, so each is exactly what one pass over the whole window gives."""
    h, w = wanted.shape
    halo = refiner.receptive_radius
    dtype = next(refiner.parameters()).dtype
    logits = np.zeros((h, w), dtype=np.float32)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            if not wanted[top:top + tile, left:left + tile].any():
                continue
            a, b = max(top - halo, 0), max(left - halo, 0)
            part = refiner(x[:, :, a:min(top + tile + halo, h), b:min(left + tile + halo, w)].to(dtype))
            logits[top:top + tile, left:left + tile] = \
                part[0, 0, top - a:top - a + tile, left - b:left - b + tile].float().numpy()
    return logits


@torch.inference_mode()
def refine_mask(refiner: BoundaryRefiner, pixels: np.ndarray, mask: np.ndarray, clicks=(), click_labels=(),
                band: int = BAND) -> np.ndarray:
    """The mask (H×W bool) with the pixels of its outline band relabelled by ``refiner`` on ``pixels`` (H×W×3 uint8);
    clicked pixels (N×2 x, y; labels 1/0) keep their label. Only the mask's bounding box grown by :data:`MARGIN` is
    computed; an empty mask is returned unchanged, and so are objects no wider than the band and the band around
    them (:func:`coreless_zone`)."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.nonzero(mask.any(axis=1))[0]
    if not len(rows):
        return mask
    cols = np.nonzero(mask.any(axis=0))[0]
    h, w = mask.shape
    y0, y1 = max(rows[0] - MARGIN, 0), min(rows[-1] + 1 + MARGIN, h)
    x0, x1 = max(cols[0] - MARGIN, 0), min(cols[-1] + 1 + MARGIN, w)
    window = mask[y0:y1, x0:x1]
    near = outline_band(window, band)
    inside = near & ~coreless_zone(window, band, core=window & ~near)
    logits = tiled_logits(refiner, refiner_input(pixels[y0:y1, x0:x1], window), inside)
    out = mask.copy()
    out[y0:y1, x0:x1] = np.where(inside, logits > 0, window)
    if len(clicks):
        pts = np.asarray(clicks, dtype=np.float64).reshape(-1, 2)
        r = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        c = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        out[r, c] = np.asarray(click_labels).reshape(-1) == 1
    return out
