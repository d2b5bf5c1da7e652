"""Mask downloads: binary PNG, GeoJSON in the image CRS, COCO JSON (compressed RLE).

Masks are H×W bool in the full-resolution image frame, indexed [row, col].
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from rrsis_engine import rle
from rrsis_engine.data.jsonl import write_mask_png
from rrsis_engine.errors import PromptError
from rrsis_engine.geo import mask_to_geojson


def _stem(name: str) -> str:
    stem = Path(name or "image").stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:60] or "image"


def mask_coco(mask: np.ndarray, file_name: str, expressions: list[str], annotation_id: int = 1) -> dict:
    """A one-image, one-annotation COCO dict: compressed RLE segmentation, bbox [x, y, w, h], area."""
    m = np.asarray(mask, bool)
    h, w = m.shape
    ys, xs = np.nonzero(m)
    bbox = [0, 0, 0, 0] if xs.size == 0 else [int(xs.min()), int(ys.min()),
                                              int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return {
        "info": {"description": "rrsis web app annotation"},
        "images": [{"id": 1, "file_name": file_name, "width": int(w), "height": int(h)}],
        "categories": [{"id": 1, "name": "object", "supercategory": "object"}],
        "annotations": [{
            "id": int(annotation_id), "image_id": 1, "category_id": 1, "iscrowd": 0,
            "segmentation": rle.encode(m), "area": int(m.sum()), "bbox": bbox,
            "expressions": list(expressions),
        }],
    }


def export_mask(mask: np.ndarray, image, expressions: list[str], out_dir: Path, tag: str) -> list[Path]:
    """Write ``<stem>_<tag>_mask.png``, ``.geojson`` and ``_coco.json`` into ``out_dir``; returns the paths.

    image: the RasterImage the mask belongs to (its path names the files; its CRS/transform georeference
    the GeoJSON).
    """
    if mask is None or not np.asarray(mask).any():
        raise PromptError("The mask is empty: nothing to export. Prompt the object first.")
    if np.asarray(mask).shape != (image.height, image.width):
        raise PromptError("The mask does not match the image size; prompt again on this image.")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = f"{_stem(image.path or 'image')}_{tag}"
    name = Path(image.path).name if image.path else "image.png"
    props = {"expressions": list(expressions), "area_px": int(np.asarray(mask).sum())}
    if image.transform is not None:
        a, b, _, d, e, _ = image.transform
        props["area_map_units"] = float(abs(a * e - b * d) * props["area_px"])
    png = write_mask_png(mask, out_dir / f"{base}_mask.png")
    gj = out_dir / f"{base}_mask.geojson"
    gj.write_text(json.dumps(mask_to_geojson(mask, image.transform, image.crs, props)))
    coco = out_dir / f"{base}_coco.json"
    coco.write_text(json.dumps(mask_coco(mask, name, expressions)))
    return [png, gj, coco]
