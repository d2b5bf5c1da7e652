"""Writers for labels layers: GeoJSON polygons and GeoTIFF rasters in the source image's CRS.

Labels are H×W integer arrays indexed [row, col], 0 = background, each other value one object. The
geotransform comes from the layer metadata (``transform``, set by the reader and the RRSIS dock) or,
failing that, from the layer's scale/translate/affine. Per-object properties (expression, model version,
scores) come from ``metadata["objects"][str(label_id)]``, which the dock fills on Accept.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_rrsis._geo import Transform, transform_from_layer_state
from rrsis_engine.errors import RRSISError
from rrsis_engine.geo import crs_member, label_geometries


class ExportError(RRSISError):
    """A labels layer cannot be exported (empty, wrong shape, unwritable path)."""


def _as_labels(data: Any) -> np.ndarray:
    labels = np.asarray(data)
    if labels.ndim != 2:
        raise ExportError(
            f"Only 2-D labels can be exported (got shape {labels.shape}); select a single 2-D labels layer."
        )
    if labels.dtype.kind not in "iub":
        raise ExportError(f"Labels must be integers, got {labels.dtype}.")
    if labels.size and (labels.max() > np.iinfo(np.int32).max or labels.min() < 0):
        raise ExportError("Label ids must be between 0 and 2^31-1.")
    return labels.astype(np.int32)


def labels_to_geojson(
    labels: np.ndarray,
    transform: Transform | None,
    crs: str | None = None,
    objects: dict[str, dict] | None = None,
) -> dict:
    """FeatureCollection with one (Multi)Polygon feature per label id.

    Coordinates: map (x, y) through ``transform`` (pixel corners), or pixel (col, row) corners when
    ``transform`` is None. Properties: ``label`` plus everything in ``objects[str(label)]`` and the
    object's area in pixels (and in map units² when georeferenced).
    """
    labels = _as_labels(labels)
    geometries = label_geometries(labels, transform)
    objects = objects or {}
    a, b, _c, d, e, _f = transform if transform is not None else (1, 0, 0, 0, 1, 0)
    pixel_area = abs(a * e - b * d)
    features = []
    for label_id, geometry in geometries.items():
        area_px = int((labels == label_id).sum())
        props = {"label": label_id, "area_px": area_px}
        if transform is not None:
            props["area_map_units2"] = area_px * pixel_area
        props.update(objects.get(str(label_id), {}))
        features.append({"type": "Feature", "id": label_id, "geometry": geometry, "properties": props})
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    member = crs_member(crs)
    if member:
        collection["crs"] = member
    if transform is None:
        collection["rrsis_coordinates"] = "pixel (col, row) corners; the image had no geotransform"
    return collection


def _state(meta: dict[str, Any]) -> tuple[Transform | None, str | None, dict]:
    metadata = meta.get("metadata") or {}
    return transform_from_layer_state(meta), metadata.get("crs"), metadata.get("objects") or {}


def write_labels_geojson(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 writer: labels layer -> GeoJSON FeatureCollection (image CRS). Returns [path]."""
    transform, crs, objects = _state(meta)
    collection = labels_to_geojson(data, transform, crs, objects)
    if not collection["features"]:
        warnings.warn(f"{Path(path).name}: the labels layer is empty; writing an empty FeatureCollection.",
                      stacklevel=2)
    try:
        Path(path).write_text(json.dumps(collection, indent=1))
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror}. Choose a writable folder.") from None
    return [str(path)]


def write_labels_geotiff(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 writer: labels layer -> single-band GeoTIFF (deflate, nodata 0) with the image's CRS and
    transform; per-object properties stored as JSON in the ``rrsis_objects`` tag. Returns [path]."""
    import rasterio
    from affine import Affine

    labels = _as_labels(data)
    transform, crs, objects = _state(meta)
    top = int(labels.max()) if labels.size else 0
    dtype = "uint8" if top < 2**8 else "uint16" if top < 2**16 else "uint32"
    profile = {
        "driver": "GTiff", "width": labels.shape[1], "height": labels.shape[0], "count": 1, "dtype": dtype,
        "nodata": 0, "compress": "deflate",
    }
    if transform is not None:
        profile["transform"] = Affine(*transform)
    if crs:
        profile["crs"] = crs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning for pixel-only labels
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(labels.astype(dtype), 1)
                if objects:
                    dst.update_tags(rrsis_objects=json.dumps(objects))
    except rasterio.errors.RasterioIOError as exc:
        raise ExportError(f"Cannot write {path}: {exc}. Choose a writable folder.") from None
    return [str(path)]
