"""Exports of stored annotations as training pairs: our JSONL (brief §5), COCO (RLE) and GeoJSON.

Image paths come from the database, so they are untrusted: an image is only copied or referenced when
its real path (symlinks resolved) lies inside one of the allowed roots (default: the current folder
and ``$RRSIS_ALLOWED_ROOTS``, ``os.pathsep``-separated). Images logged with ``store_images`` are
written from the database instead when their file is missing or outside the roots. Records whose image
cannot be used are skipped and counted, never silently.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrsis_engine import rle
from rrsis_engine.data.jsonl import write_mask_png
from rrsis_engine.errors import StoreError
from rrsis_engine.geo import crs_member, mask_geometry

log = logging.getLogger("rrsis.store")

FORMATS = ("jsonl", "coco", "geojson")


@dataclass
class ExportSummary:
    format: str
    out: str
    exported: int = 0
    images: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "out": self.out, "exported": self.exported, "images": self.images,
                "skipped": self.skipped}


def default_allowed_roots() -> list[Path]:
    roots = [Path.cwd()]
    env = os.environ.get("RRSIS_ALLOWED_ROOTS")
    if env:
        roots += [Path(p) for p in env.split(os.pathsep) if p]
    return roots


class _ImageResolver:
    """Decides, once per image, where the exported records point (copy / reference / from the DB)."""

    def __init__(self, store, out_dir: Path, mode: str, roots: Iterable[Path], summary: ExportSummary):
        if mode not in ("reference", "copy", "none"):
            raise StoreError(f"--images must be reference, copy or none, not {mode!r}.")
        self.store = store
        self.out_dir = out_dir
        self.mode = mode
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self.summary = summary
        self.cache: dict[int, str | None] = {}
        self.reasons: dict[int, str] = {}

    def allowed(self, path: str) -> Path | None:
        real = Path(os.path.realpath(path))
        for root in self.roots:
            if real == root or root in real.parents:
                return real
        return None

    def __call__(self, rec) -> str | None:
        """Path to write in the record (relative to the output folder), or None to skip the record."""
        if rec.image_id in self.cache:
            if self.cache[rec.image_id] is None:
                self.summary.skip(self.reasons[rec.image_id])
            return self.cache[rec.image_id]
        result, reason = self._resolve(rec)
        self.cache[rec.image_id] = result
        if result is None:
            self.reasons[rec.image_id] = reason
            self.summary.skip(reason)
            log.warning("export: skipping annotations of image %s: %s", rec.image_path or rec.image_hash[:12], reason)
        elif self.mode != "none":
            self.summary.images += 1
        return result

    def _resolve(self, rec) -> tuple[str | None, str]:
        if self.mode == "none":
            return rec.image_path or rec.image_hash, ""
        real = None
        reason = "image_missing"
        if rec.image_path:
            real = self.allowed(rec.image_path)
            if real is None:
                reason = "image_outside_allowed_roots"
            elif not real.is_file():
                real, reason = None, "image_missing"
        images_dir = self.out_dir / "images"
        if real is not None:
            if self.mode == "reference":
                return os.path.relpath(real, self.out_dir), ""
            images_dir.mkdir(parents=True, exist_ok=True)
            dest = images_dir / f"{rec.image_hash[:16]}{real.suffix.lower()}"
            if not dest.exists():
                shutil.copy2(real, dest)
            return os.path.relpath(dest, self.out_dir), ""
        png = self.store.image_pixels_png(rec.image_id)
        if png is not None:
            images_dir.mkdir(parents=True, exist_ok=True)
            dest = images_dir / f"{rec.image_hash[:16]}.png"
            dest.write_bytes(png)
            return os.path.relpath(dest, self.out_dir), ""
        return None, reason


def bbox_from_rle(r: dict) -> list[int]:
    """COCO (x, y, w, h) of an RLE mask without decoding it to pixels."""
    h = int(r["size"][0])
    counts = r["counts"]
    counts = np.asarray(rle.string_to_counts(counts) if isinstance(counts, (str, bytes)) else counts, np.int64)
    if counts.size < 2 or counts[1::2].sum() == 0:
        return [0, 0, 0, 0]
    ends = np.cumsum(counts)
    starts = ends - counts
    fg = np.arange(counts.size) % 2 == 1
    fg &= counts > 0
    s, e = starts[fg], ends[fg] - 1  # first and last flat (column-major) index of each foreground run
    c0, c1 = s // h, e // h
    r0 = np.where(c0 == c1, s % h, 0)
    r1 = np.where(c0 == c1, e % h, h - 1)
    x0, x1, y0, y1 = int(c0.min()), int(c1.max()), int(r0.min()), int(r1.max())
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def export_annotations(
    store,
    fmt: str,
    out: str | os.PathLike,
    status: str = "accepted",
    since=None,
    images: str = "reference",
    allowed_roots: Iterable[str | os.PathLike] | None = None,
    limit: int | None = None,
) -> ExportSummary:
    """Write annotations of ``status`` to ``out`` in ``fmt`` (jsonl / coco / geojson); returns counts.

    jsonl: one ``{"id", "image", "expression", "mask"}`` object per line (+ "expressions",
    "annotation_id", "session_id", "image_hash"); paths relative to the file; masks as binary PNG
    (0/255) in ``masks/`` beside it. coco: one JSON with RLE segmentations. geojson: a FeatureCollection
    of (Multi)Polygons in each image's CRS (pixel coordinates when the image has no transform).
    """
    if fmt not in FORMATS:
        raise StoreError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    out = Path(out)
    if out.is_dir():
        raise StoreError(f"--out {out} is a folder; give a file name such as {out / ('annotations.' + fmt)}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    roots = [Path(r) for r in allowed_roots] if allowed_roots else default_allowed_roots()
    summary = ExportSummary(fmt, str(out))
    resolver = _ImageResolver(store, out.parent, images if fmt != "geojson" else "none", roots, summary)
    records = store.iter_annotations(status=status, since=since, limit=limit)
    tmp = out.with_name(out.name + ".part")
    try:
        if fmt == "jsonl":
            _jsonl(records, out, tmp, resolver, summary)
        elif fmt == "coco":
            _coco(records, tmp, resolver, summary)
        else:
            _geojson(records, tmp, summary)
        os.replace(tmp, out)  # the output appears complete or not at all
    finally:
        if tmp.exists():
            tmp.unlink()
    return summary


#: Masks are decoded and PNG-encoded in worker processes, this many per batch.
_PNG_BATCH = 512


def _jsonl(records, out: Path, tmp: Path, resolver: _ImageResolver, summary: ExportSummary) -> None:
    """Lines are written here in record order; mask PNGs (decode + encode, ~0.6 ms each) in a process pool
    while this process reads the next batch from the database."""
    import concurrent.futures as cf
    import multiprocessing as mp

    masks_dir = out.parent / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(8, os.cpu_count() or 1))
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with open(tmp, "w", encoding="utf-8") as fh, cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: list[cf.Future] = []
        batch: list[tuple[dict, str]] = []

        def flush() -> None:
            pending.append(pool.submit(_write_rle_batch, list(batch)))
            batch.clear()
            while len(pending) > 2 * workers:  # bounded memory; also surfaces write errors early
                pending.pop(0).result()

        for rec in records:
            image = resolver(rec)
            if image is None:
                continue
            mask_path = masks_dir / f"ann-{rec.id}.png"
            batch.append((rec.rle, str(mask_path)))
            if len(batch) >= _PNG_BATCH:
                flush()
            fh.write(json.dumps({
                "id": f"ann-{rec.id}",
                "image": image,
                "expression": rec.expression,
                "mask": os.path.relpath(mask_path, out.parent),
                "expressions": rec.expressions,
                "annotation_id": rec.id,
                "session_id": rec.session_id,
                "image_hash": rec.image_hash,
            }, ensure_ascii=False) + "\n")
            summary.exported += 1
        if batch:
            flush()
        for future in pending:  # every mask is on disk before the JSONL appears
            future.result()


def _write_rle_batch(tasks: list[tuple[dict, str]]) -> None:
    """Worker: decode stored RLEs and write them as the JSONL format's 0/255 mask PNGs."""
    for rle_dict, path in tasks:
        write_mask_png(rle.decode(rle_dict), path)


def _coco(records, tmp: Path, resolver: _ImageResolver, summary: ExportSummary) -> None:
    images: dict[int, dict] = {}
    ann_tmp = tmp.with_name(tmp.name + ".ann")
    try:
        with open(ann_tmp, "w", encoding="utf-8") as fa:
            first = True
            for rec in records:
                file_name = resolver(rec)
                if file_name is None:
                    continue
                if rec.image_id not in images:
                    h, w = rec.image_size
                    images[rec.image_id] = {"id": rec.image_id, "file_name": file_name, "height": h, "width": w,
                                            "sha256": rec.image_hash, "crs": rec.crs,
                                            "transform": list(rec.transform) if rec.transform else None}
                ann = {"id": rec.id, "image_id": rec.image_id, "category_id": 1, "segmentation": rec.rle,
                       "area": rec.area, "bbox": bbox_from_rle(rec.rle), "iscrowd": 0,
                       "expression": rec.expression, "expressions": rec.expressions}
                fa.write(("" if first else ",\n") + json.dumps(ann, ensure_ascii=False))
                first = False
                summary.exported += 1
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write('{"info": {"description": "rrsis session store export", "version": "1.0"},\n')
            fh.write('"categories": [{"id": 1, "name": "object", "supercategory": "object"}],\n')
            fh.write('"images": ' + json.dumps(list(images.values()), ensure_ascii=False) + ',\n"annotations": [\n')
            with open(ann_tmp, encoding="utf-8") as fa:
                shutil.copyfileobj(fa, fh)
            fh.write("\n]}\n")
    finally:
        if ann_tmp.exists():
            ann_tmp.unlink()


def _geojson(records, tmp: Path, summary: ExportSummary) -> None:
    crss: set = set()
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write('{"type": "FeatureCollection", "features": [\n')
        first = True
        for rec in records:
            geom = mask_geometry(rec.mask, rec.transform)
            if geom is None:
                summary.skip("empty_mask")
                continue
            crss.add(rec.crs)
            feat = {"type": "Feature", "id": rec.id, "geometry": geom, "properties": {
                "annotation_id": rec.id, "expression": rec.expression, "expressions": rec.expressions,
                "image": rec.image_path, "image_hash": rec.image_hash, "session_id": rec.session_id,
                "crs": rec.crs, "area_px": rec.area,
                "coordinates": "map" if rec.transform else "pixel (x=col, y=row)",
            }}
            fh.write(("" if first else ",\n") + json.dumps(feat, ensure_ascii=False))
            first = False
            summary.exported += 1
        fh.write("\n]")
        if len(crss) == 1 and None not in crss:
            # RFC 7946 assumes WGS84; the named CRS (GeoJSON 2008 style) says these are image-CRS coordinates.
            fh.write(', "crs": ' + json.dumps(crs_member(crss.pop())))
        fh.write("}\n")
