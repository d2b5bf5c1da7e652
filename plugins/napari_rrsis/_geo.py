"""Geo transforms between rasterio and napari layers.

Frames: rasterio's affine ``(a, b, c, d, e, f)`` maps the *upper-left corner* of pixel (col, row) to map
(x, y): ``x = a*col + b*row + c``, ``y = d*col + e*row + f``. napari places the *centre* of pixel
[row, col] at data coordinate (row, col), world = data·scale + translate, axes in (row, col) = (y, x)
order. So a layer in map coordinates has scale (e, a) and translate (f + e/2, c + a/2) for a north-up
raster, and a full 3×3 affine for a rotated one. North-up rasters have e < 0: the viewer's vertical
axis must point up (``camera.orientation2d = ("up", "right")``) for north to be on top.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Transform = tuple[float, float, float, float, float, float]


def is_north_up(transform: Transform) -> bool:
    a, b, _c, d, e, _f = transform
    return b == 0 and d == 0 and a != 0 and e != 0


def layer_kwargs(transform: Transform | None) -> dict[str, Any]:
    """napari layer kwargs (``scale``/``translate`` or ``affine``) putting pixels at their map position."""
    if transform is None:
        return {}
    a, b, c, d, e, f = (float(v) for v in transform)
    if is_north_up(transform):
        return {"scale": (e, a), "translate": (f + e / 2.0, c + a / 2.0)}
    # General affine in napari's (row, col) axis order, pixel centres at integer data coordinates.
    affine = np.array(
        [[e, d, f + (d + e) / 2.0], [b, a, c + (a + b) / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )
    return {"affine": affine}


def transform_from_layer_state(state: dict[str, Any]) -> Transform | None:
    """Pixel-corner affine (a, b, c, d, e, f) of a layer, from its metadata or its scale/translate/affine.

    ``state`` is a napari layer state dict (``layer._get_state()``, what npe2 writers receive as ``meta``)
    or a dict with ``metadata``/``scale``/``translate``/``affine`` keys. Returns None for a layer that is
    in plain pixel coordinates (identity transform, no geo metadata).
    """
    metadata = state.get("metadata") or {}
    if metadata.get("transform") is not None:
        return tuple(float(v) for v in metadata["transform"])  # type: ignore[return-value]
    scale = np.asarray(state.get("scale", (1.0, 1.0)), dtype=np.float64)[-2:]
    translate = np.asarray(state.get("translate", (0.0, 0.0)), dtype=np.float64)[-2:]
    affine = state.get("affine")
    m = np.eye(3)
    if affine is not None:
        aff = np.asarray(getattr(affine, "affine_matrix", affine), dtype=np.float64)
        m = aff[-3:, -3:] if aff.shape[0] >= 3 else m
    # world (row', col') = M · (row·sy + ty, col·sx + tx, 1)
    st = np.array([[scale[0], 0.0, translate[0]], [0.0, scale[1], translate[1]], [0.0, 0.0, 1.0]])
    full = m @ st
    if np.allclose(full, np.eye(3)):
        return None
    # full maps data (row, col, 1) -> world (y, x); pixel corners are at data coordinate -0.5.
    e, d, yc = full[0]
    b, a, xc = full[1]
    c = xc - (a + b) / 2.0
    f = yc - (d + e) / 2.0
    return (float(a), float(b), float(c), float(d), float(e), float(f))


def orient_viewer(viewer, transform: Transform | None) -> None:
    """Point the viewer's vertical axis up for north-up rasters (e < 0) and down otherwise."""
    if viewer is None:
        return
    up = transform is not None and float(transform[4]) < 0
    try:
        viewer.camera.orientation2d = ("up" if up else "down", "right")
    except Exception:  # pragma: no cover - very old napari without camera orientation
        pass
