"""Helpers for the napari plugin tests: small GeoTIFFs made with rasterio, and a deterministic predictor.

FakePredictor (tests/fake_predictor.py) answers with a rule a test can check exactly: the text selects all bright
pixels (connected components = candidates; ambiguous when there are several), positive clicks add the component (or a
disk) under the click, negative clicks remove a disk of radius 6 px around the click. A box keeps only pixels inside
it.
"""

from __future__ import annotations

import fake_predictor
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from rrsis_engine.prediction import Candidate

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


class FakePredictor(fake_predictor.FakePredictor):
    """The text selects the bright pixels (components = candidates, ambiguous when several); a positive click adds the
    component under it (or a disk of radius 4), a negative one removes a disk of radius 6; a box keeps what is in it."""

    def answer(self, image, text, points, labels, box):
        from scipy import ndimage

        px = image.pixels.astype(float).mean(axis=2)
        h, w = px.shape
        bright = px > 128
        comps, n = ndimage.label(bright)
        mask = bright.copy() if text else np.zeros((h, w), bool)
        if points is not None:
            for (x, y), lab in zip(points, labels, strict=True):
                r, c = int(round(y)), int(round(x))
                if lab:
                    mask |= (comps == comps[r, c]) if comps[r, c] else fake_predictor.disk(h, w, x, y, 4)
                else:
                    mask &= ~fake_predictor.disk(h, w, x, y, 6)
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
        return fake_predictor.fake_prediction(
            mask, iou_score=0.8, uncertainty=np.full((h, w), 0.5 if ambiguous else 0.1, np.float32),
            ambiguity=0.7 if ambiguous else 0.1, ambiguous=ambiguous, candidates=cands,
            suggested_click=(*cands[0].point, 1) if ambiguous else None)


