"""A small deterministic predictor (tests/fake_predictor.py's interface) for fast unit tests of the web app's state
functions (the browser tests use the real Predictor), and images for them.

Behaviour: text selects pixels brighter than the image mean (two candidate blobs when the text starts
with "a "/"an ", flagged ambiguous); a positive click adds a disk of radius 12 px, a negative click removes
a disk of radius 16 px; a box clips the mask. Points are (x, y) = (col, row) full-resolution pixels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import fake_predictor
import numpy as np

from rrsis_engine.prediction import Candidate


class FakePredictor(fake_predictor.FakePredictor):
    """The text selects the pixels brighter than the image mean (the left and right halves as two candidates, flagged
    ambiguous, when the text starts with "a "/"an "); a positive click adds a disk of radius 12, a negative one
    removes a disk of radius 16; a box clips the mask."""

    model_version = "test-0"

    def answer(self, image, text, points, labels, box):
        grey = image.pixels.mean(axis=2)
        h, w = grey.shape
        mask = np.zeros((h, w), bool)
        candidates = []
        ambiguous = False
        if text:
            mask = grey > grey.mean()
            if text.lower().startswith(("a ", "an ")):
                ambiguous = True
                left = mask.copy()
                left[:, w // 2:] = False
                right = mask & ~left
                for m in (left, right):
                    ys, xs = np.nonzero(m)
                    if xs.size:
                        candidates.append(Candidate(m, 0.6, (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                                                             int(ys.max()) + 1), (float(np.median(xs)), float(np.median(ys)))))
                mask = left if left.any() else mask
        if points is not None:
            for (x, y), lab in zip(points, labels, strict=True):
                if lab == 1:
                    mask |= fake_predictor.disk(h, w, x, y, 12)
                else:
                    mask &= ~fake_predictor.disk(h, w, x, y, 16)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            clip = np.zeros_like(mask)
            clip[y0:y1, x0:x1] = True
            mask = (mask & clip) if mask.any() else clip
        unc = np.zeros((h, w), np.float32)
        unc[1:, :] += mask[1:, :] != mask[:-1, :]
        unc[:, 1:] += mask[:, 1:] != mask[:, :-1]
        sugg = None
        if candidates:
            cx, cy = candidates[0].point
            sugg = (cx, cy, 1)
        return fake_predictor.fake_prediction(
            mask, logit=4.0, iou_score=0.8, uncertainty=np.clip(unc, 0, 1), ambiguity=0.8 if ambiguous else 0.1,
            ambiguous=ambiguous, candidates=candidates, suggested_click=sugg)


def write_geotiff(path: Path, pixels: np.ndarray, origin=(485900.0, 5209247.0), res=5.0) -> Path:
    """An H×W×3 uint8 GeoTIFF in EPSG:26914 (the NAIP tiles' CRS)."""
    import rasterio
    from rasterio.transform import from_origin

    h, w, _ = pixels.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8",
                       crs="EPSG:26914", transform=from_origin(origin[0], origin[1], res, res)) as dst:
        dst.write(np.moveaxis(pixels, -1, 0))
    return path


def scene(h=160, w=200, seed=0) -> np.ndarray:
    """Dark background with two bright blobs (left and right half), H×W×3 uint8."""
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w, 3)) * 40 + 20).astype(np.uint8)
    yy, xx = np.ogrid[:h, :w]
    for cx, cy, r in ((w * 0.25, h * 0.5, h * 0.2), (w * 0.75, h * 0.4, h * 0.15)):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (200, 190, 170)
    return img


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width×height (RGB) followed by a truncated image stream: what a huge
    upload looks like to a reader that checks the header before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
