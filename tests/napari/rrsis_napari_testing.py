"""Helpers for the napari plugin tests: small GeoTIFFs made with rasterio, and a deterministic predictor.

FakePredictor follows the engine's Predictor interface (set_image / predict / validate_* /
prediction_from_mask / model_name / model_version) with a rule a test can check exactly: the text
selects all bright pixels (connected components = candidates; ambiguous when there are several),
positive clicks add the component (or a disk) under the click, negative clicks remove a disk of radius
6 px around the click. A box keeps only pixels inside it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from rrsis_engine.errors import PromptError
from rrsis_engine.imageio import read_image
from rrsis_engine.prediction import Candidate, Prediction

TRANSFORM = (5.0, 0.0, 485900.0, 0.0, -5.0, 5209247.0)  # NAIP-like: 5 m pixels, UTM 14N
CRS = "EPSG:26914"
H, W = 64, 80
SQUARE_A = (slice(10, 30), slice(8, 28))  # rows, cols: bright square, the larger object
SQUARE_B = (slice(40, 52), slice(50, 62))  # a second, smaller bright square


def scene_rgb() -> np.ndarray:
    """H×W×3 uint8: dark field with two bright squares (A larger, B smaller)."""
    rgb = np.full((H, W, 3), 40, np.uint8)
    rgb[SQUARE_A] = (230, 220, 200)
    rgb[SQUARE_B] = (220, 230, 210)
    return rgb


def write_tif(path, data_chw: np.ndarray, crs=CRS, transform=TRANSFORM) -> str:
    profile = {"driver": "GTiff", "height": data_chw.shape[1], "width": data_chw.shape[2],
               "count": data_chw.shape[0], "dtype": str(data_chw.dtype)}
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = Affine(*transform)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data_chw)
    return str(path)


@pytest.fixture
def geotiff(tmp_path) -> str:
    """3-band uint8 GeoTIFF in EPSG:26914 with TRANSFORM."""
    return write_tif(tmp_path / "scene.tif", np.moveaxis(scene_rgb(), -1, 0))


@pytest.fixture
def geotiff_4band_uint16(tmp_path) -> str:
    """4-band uint16 (R, G, B, NIR) GeoTIFF, like NAIP."""
    rgb = scene_rgb().astype(np.uint16) * 40
    nir = np.full((H, W), 3000, np.uint16)
    nir[SQUARE_B] = 9000
    return write_tif(tmp_path / "nir.tif", np.concatenate([np.moveaxis(rgb, -1, 0), nir[None]], 0))


@pytest.fixture
def tif_without_crs(tmp_path) -> str:
    return write_tif(tmp_path / "plain.tif", np.moveaxis(scene_rgb(), -1, 0), crs=None, transform=None)


def _disk(h, w, x, y, r):
    rr, cc = np.ogrid[:h, :w]
    return (rr - y) ** 2 + (cc - x) ** 2 <= r * r


class FakePredictor:
    model_name = "fake"
    model_version = "fake-1"

    def __init__(self):
        self.image = None
        self.set_image_calls = 0

    def set_image(self, image, bands=None):
        self.image = read_image(image, bands=bands)
        self.set_image_calls += 1
        return self.image

    def validate_text(self, s):
        s = (s or "").strip()
        if not s:
            raise PromptError("The expression is empty.")
        return s

    def validate_point(self, x, y, image=None):
        if not (0 <= x < self.image.width and 0 <= y < self.image.height):
            raise PromptError(f"Click ({x:.0f}, {y:.0f}) is outside the image.")
        return float(x), float(y)

    def validate_box(self, b, image=None):
        x0, y0, x1, y1 = (float(v) for v in b)
        if x1 <= x0 or y1 <= y0:
            raise PromptError("Empty box.")
        return (x0, y0, x1, y1)

    def predict(self, text="", points=None, labels=None, box=None, mask_input=None, image=None, previous_mask=None,
                previous_text=""):
        from scipy import ndimage

        t0 = time.perf_counter()
        px = (image or self.image).pixels.astype(float).mean(axis=2)
        h, w = px.shape
        bright = px > 128
        comps, n = ndimage.label(bright)
        mask = bright.copy() if text else np.zeros((h, w), bool)
        if points is not None:
            for (x, y), lab in zip(points, labels, strict=True):
                r, c = int(round(y)), int(round(x))
                if lab:
                    mask |= (comps == comps[r, c]) if comps[r, c] else _disk(h, w, x, y, 4)
                else:
                    mask &= ~_disk(h, w, x, y, 6)
        if box is not None:
            x0, y0, x1, y1 = box
            inside = np.zeros((h, w), bool)
            inside[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = True
            mask &= inside
        cands = []
        for i in range(1, n + 1):
            cm = (comps == i) & mask
            if cm.any():
                rows, cols = np.nonzero(cm)
                cands.append(Candidate(cm, 0.9, (int(cols.min()), int(rows.min()), int(cols.max()) + 1,
                                                 int(rows.max()) + 1), (float(cols.mean()), float(rows.mean()))))
        cands.sort(key=lambda c: -c.area)
        ambiguous = len(cands) > 1
        return Prediction(
            mask=mask, logits=np.where(mask, 5.0, -5.0).astype(np.float32), low_res_logits=mask.copy(),
            iou_score=0.8, object_score=0.9, latency_ms=(time.perf_counter() - t0) * 1000,
            uncertainty=np.full((h, w), 0.5 if ambiguous else 0.1, np.float32),
            ambiguity=0.7 if ambiguous else 0.1, ambiguous=ambiguous, candidates=cands,
            suggested_click=(*cands[0].point, 1) if ambiguous else None,
        )

    def prediction_from_mask(self, mask, image=None):
        mask = np.asarray(mask, bool)
        return Prediction(mask=mask, logits=np.where(mask, 5.0, -5.0).astype(np.float32),
                          low_res_logits=mask.copy(), iou_score=1.0, object_score=1.0, latency_ms=0.0)


