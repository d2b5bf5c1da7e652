"""Masks → vector output: GeoJSON polygons in the image CRS (or pixel coordinates) and overlay PNGs.

Masks are H×W bool, [row, col]. ``transform`` is the rasterio affine (a, b, c, d, e, f) of the image;
polygon vertices are pixel *corners* mapped through it, so a georeferenced mask lands exactly on the map.
"""

from __future__ import annotations

import numpy as np


def crs_urn(crs: str) -> str:
    """"EPSG:26914" → "urn:ogc:def:crs:EPSG::26914" (GeoJSON 2008 named CRS); other strings unchanged."""
    code = crs.strip()
    if code.upper().startswith("EPSG:") and code[5:].isdigit():
        return f"urn:ogc:def:crs:EPSG::{code[5:]}"
    return crs


def mask_to_geojson(mask: np.ndarray, transform=None, crs: str | None = None,
                    properties: dict | None = None) -> dict:
    """A FeatureCollection with one Polygon feature per 8-connected component (holes kept).

    Without a transform, coordinates are (x, y) = (col, row) pixel-corner coordinates.
    """
    from affine import Affine
    from rasterio import features

    m = np.asarray(mask, dtype=bool)
    aff = Affine(*transform) if transform is not None else Affine.identity()
    feats = [
        {"type": "Feature", "geometry": geom, "properties": dict(properties or {})}
        for geom, value in features.shapes(m.astype(np.uint8), mask=m, transform=aff, connectivity=8)
        if value == 1
    ]
    collection: dict = {"type": "FeatureCollection", "features": feats}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs_urn(crs)}}
    elif transform is None:
        collection["properties"] = {"coordinates": "pixel (x=col, y=row); the image has no CRS"}
    return collection


def overlay(pixels: np.ndarray, mask: np.ndarray, color=(255, 64, 32), alpha: float = 0.45,
            points=None, labels=None, box=None) -> np.ndarray:
    """H×W×3 uint8 image with the mask blended in, its outline, clicks (green +, red −) and the box."""
    from scipy import ndimage

    out = pixels.astype(np.float32).copy()
    m = np.asarray(mask, dtype=bool)
    out[m] = out[m] * (1 - alpha) + np.asarray(color, np.float32) * alpha
    edge = m & ~ndimage.binary_erosion(m, iterations=2)
    out[edge] = color
    out = out.astype(np.uint8)
    h, w = m.shape
    r = max(3, min(h, w) // 100)
    if points is not None:
        for (x, y), lab in zip(np.asarray(points).reshape(-1, 2), labels if labels is not None else [1] * len(points), strict=True):
            cx, cy = int(round(x)), int(round(y))
            y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
            out[y0:y1, x0:x1] = (255, 255, 255)
            out[max(0, cy - r + 1):min(h, cy + r), max(0, cx - r + 1):min(w, cx + r)] = (
                (40, 200, 60) if int(lab) == 1 else (220, 40, 40))
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, x1 = np.clip([x0, x1 - 1], 0, w - 1)
        y0, y1 = np.clip([y0, y1 - 1], 0, h - 1)
        out[y0, x0:x1 + 1] = out[y1, x0:x1 + 1] = (255, 220, 0)
        out[y0:y1 + 1, x0] = out[y0:y1 + 1, x1] = (255, 220, 0)
    return out
