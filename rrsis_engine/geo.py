"""Masks → vector output: GeoJSON polygons in the image CRS (or pixel coordinates) and overlay PNGs.

Masks are H×W bool, [row, col]. ``transform`` is the rasterio affine (a, b, c, d, e, f) of the image;
polygon vertices are pixel *corners* mapped through it, so a georeferenced mask lands exactly on the map.
"""

from __future__ import annotations

import numpy as np


def crs_member(crs: str | None) -> dict | None:
    """The (GeoJSON 2008) named-CRS member GDAL/QGIS read, e.g. urn:ogc:def:crs:EPSG::26914; None without a CRS."""
    if not crs:
        return None
    try:
        from rasterio.crs import CRS

        epsg = CRS.from_user_input(crs).to_epsg()
    except Exception:  # an unparseable CRS string is passed through as is
        epsg = None
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs}}


def label_geometries(labels: np.ndarray, transform=None) -> dict[int, dict]:
    """H×W integer labels (0 = background) → {label id: Polygon or MultiPolygon geometry}.

    Vertices are pixel corners mapped through ``transform`` (map coordinates), or pixel (x, y) = (col, row)
    corners without one. 8-connected components; holes kept.
    """
    from affine import Affine
    from rasterio.features import shapes

    labels = np.asarray(labels)
    labels = labels.astype(np.int32) if labels.dtype != np.uint8 else labels
    aff = Affine(*transform) if transform is not None else Affine.identity()
    rings: dict[int, list] = {}
    for geom, value in shapes(labels, mask=labels > 0, connectivity=8, transform=aff):
        rings.setdefault(int(value), []).append(geom["coordinates"])
    return {
        k: {"type": "Polygon", "coordinates": v[0]} if len(v) == 1 else {"type": "MultiPolygon", "coordinates": v}
        for k, v in sorted(rings.items())
    }


def mask_geometry(mask: np.ndarray, transform=None) -> dict | None:
    """H×W bool mask → one Polygon/MultiPolygon geometry (None for an empty mask)."""
    return label_geometries(np.asarray(mask, dtype=bool).astype(np.uint8), transform).get(1)


def mask_to_geojson(mask: np.ndarray, transform=None, crs: str | None = None,
                    properties: dict | None = None) -> dict:
    """A FeatureCollection with the mask as one feature (Polygon, or MultiPolygon for several parts).

    Without a transform, coordinates are (x, y) = (col, row) pixel-corner coordinates.
    """
    geometry = mask_geometry(mask, transform)
    feats = [] if geometry is None else [{"type": "Feature", "geometry": geometry, "properties": dict(properties or {})}]
    collection: dict = {"type": "FeatureCollection", "features": feats}
    member = crs_member(crs)
    if member:
        collection["crs"] = member
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
