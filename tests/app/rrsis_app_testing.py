"""A small deterministic predictor implementing the engine's predictor contract, for fast unit tests of
the web app's state functions (the browser tests use the real Predictor).

Behaviour: text selects pixels brighter than the image mean (two candidate blobs when the text starts
with "a "/"an ", flagged ambiguous); a positive click adds a disk of radius 12 px, a negative click removes
a disk of radius 16 px; a box clips the mask. Points are (x, y) = (col, row) full-resolution pixels.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np

from rrsis_engine.errors import NoImageError, PromptError
from rrsis_engine.imageio import read_image
from rrsis_engine.prediction import Candidate, Prediction


class FakePredictor:
    model_name = "fake"
    model_version = "test-0"

    def __init__(self):
        self.image = None
        self.set_image_calls = 0
        self.predict_images = []

    def set_image(self, image, bands=None):
        self.image = read_image(image, bands)
        self.set_image_calls += 1
        return self.image

    def validate_text(self, text):
        text = (text or "").strip()
        if len(text) > 300:
            raise PromptError("The expression is too long (max 300 characters).")
        return text

    def validate_point(self, x, y, image=None):
        image = image or self.image
        if image is None:
            raise NoImageError("No image is set.")
        if not (0 <= x < image.width and 0 <= y < image.height):
            raise PromptError(f"Point ({x}, {y}) is outside the {image.width}×{image.height} image.")
        return float(x), float(y)

    def validate_box(self, box, image=None):
        x0, y0, x1, y1 = (float(v) for v in box)
        if x1 <= x0 or y1 <= y0:
            raise PromptError("The box is empty.")
        return (x0, y0, x1, y1)

    def _disk(self, image, x, y, r):
        h, w = image.height, image.width
        yy, xx = np.ogrid[:h, :w]
        return (xx - x) ** 2 + (yy - y) ** 2 <= r * r

    def predict(self, text="", points=None, labels=None, box=None, mask_input=None, image=None, previous_mask=None,
                previous_text=""):
        t0 = time.perf_counter()
        image = image or self.image
        if image is None:
            raise NoImageError("No image is set.")
        self.predict_images.append(image)
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
                    mask |= self._disk(image, x, y, 12)
                else:
                    mask &= ~self._disk(image, x, y, 16)
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
        return Prediction(
            mask=mask, logits=np.where(mask, 4.0, -4.0).astype(np.float32), low_res_logits=mask,
            iou_score=0.8, object_score=0.9, latency_ms=(time.perf_counter() - t0) * 1000,
            uncertainty=np.clip(unc, 0, 1), ambiguity=0.8 if ambiguous else 0.1, ambiguous=ambiguous,
            candidates=candidates, suggested_click=sugg,
        )

    def prediction_from_mask(self, mask, image=None):
        m = np.asarray(mask, bool)
        return Prediction(mask=m, logits=np.where(m, 4.0, -4.0).astype(np.float32), low_res_logits=m,
                          iou_score=1.0, object_score=1.0, latency_ms=0.0)


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
