"""Readers for referring-segmentation data sets, all yielding the common record dict.

Record: {"id": str, "image": H×W×3 uint8, "mask": H×W bool, "expression": str, "ambiguous": bool,
"followup": str|None, "followup_mask": H×W bool|None, "kind": str, "image_path": str|None} and, for ambiguous
expressions whose data know all look-alikes, "candidates_mask": H×W bool; "distractors_mask" (H×W bool, the
target's look-alikes the expression rules out) where the data know them.

Formats:
- ours: JSONL, paths relative to the file (see :mod:`rrsis_engine.data.jsonl`).
- RefSegRS: ``ROOT/images/<id>.tif``, ``ROOT/masks/<id>.tif`` and ``ROOT/output_phrase_<split>.txt``
  with lines ``<id> <expression>``; mask pixels > 0 are the target.
- RRSIS-D: ``ROOT/rrsisd/refs(unc).p`` (pickled list of refs with image_id, ann_id, split, sentences),
  ``ROOT/rrsisd/instances.json`` (COCO images/annotations, polygon or RLE segmentation) and images in
  ``ROOT/images/rrsisd/JPEGImages/<file_name>``. The pickle is read with an unpickler that refuses any
  class or function, so it cannot run code.
- RISBench-style JSONL: one object per line with ``image`` (or ``image_path``/``file_name``), an
  expression (``expression``/``sentence``/``text``/``ref_sent``) and a COCO RLE mask dict
  (``mask``/``segmentation``/``rle``), paths relative to the file.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from rrsis_engine import rle as rle_mod
from rrsis_engine.errors import DataError, RRSISError
from rrsis_engine.imageio import read_image


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"Missing {what}: {path} does not exist. Check the data set folder layout (see docs/data.md).")
    return path


class _ImageCache:
    """Keeps the last image so consecutive records on one image are read once."""

    def __init__(self):
        self.path: str | None = None
        self.pixels: np.ndarray | None = None

    def get(self, path: Path, what: str) -> np.ndarray:
        key = str(path)
        if key != self.path:
            _need(path, what)
            try:
                self.pixels = read_image(path).pixels
            except RRSISError as exc:
                raise DataError(f"Cannot read {what} {path}: {exc}") from exc
            self.path = key
        return self.pixels


def read_mask(path: Path, what: str = "mask") -> np.ndarray:
    """Binary mask file (PNG/TIF, any bit depth) → H×W bool (pixels > 0)."""
    _need(path, what)
    try:
        arr = np.asarray(Image.open(path))
    except Exception as exc:  # PIL raises many types
        raise DataError(f"Cannot read {what} {path}: {exc}") from exc
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1)
    return arr > 0


def _record(rid, image, mask, expression, image_path=None, ambiguous=False, followup=None,
            followup_mask=None, kind="") -> dict:
    if mask.shape != image.shape[:2]:
        raise DataError(f"Record {rid}: mask {mask.shape} and image {image.shape[:2]} sizes differ.")
    return {"id": str(rid), "image": image, "mask": mask, "expression": str(expression).strip(),
            "ambiguous": bool(ambiguous), "followup": followup, "followup_mask": followup_mask,
            "kind": kind or "", "image_path": image_path}


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    _need(path, "JSONL file")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg}).") from exc


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Our JSONL format (paths relative to the file)."""
    path = Path(path)
    base = path.parent
    cache = _ImageCache()
    for n, obj in _json_lines(path):
        for key in ("image", "expression", "mask"):
            if key not in obj:
                raise DataError(f"{path}:{n}: record lacks the required key {key!r}.")
        if isinstance(obj["mask"], dict):
            raise DataError(f"{path}:{n}: the mask is an RLE dict; read this file with read_risbench (risbench:FILE).")
        ip = base / obj["image"]
        image = cache.get(ip, f"image of {path.name}:{n}")
        mask = read_mask(base / obj["mask"], f"mask of {path.name}:{n}")
        fm = None
        if obj.get("followup_mask"):
            fm = read_mask(base / obj["followup_mask"], f"follow-up mask of {path.name}:{n}")
        rec = _record(obj.get("id", f"{path.stem}-{n}"), image, mask, obj["expression"], str(ip),
                      obj.get("ambiguous", False), obj.get("followup"), fm, obj.get("kind", ""))
        for key in ("candidates_mask", "distractors_mask"):
            if obj.get(key):
                rec[key] = read_mask(base / obj[key], f"{key.replace('_', ' ')} of {path.name}:{n}")
        yield rec


def read_refsegrs(root: str | Path, split: str = "test") -> Iterator[dict]:
    """RefSegRS folder layout (see module doc)."""
    root = Path(root)
    phrases = _need(root / f"output_phrase_{split}.txt", f"RefSegRS {split} phrase file")
    cache = _ImageCache()
    with open(phrases, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if len(parts) < 2:
                continue
            stem, sentence = parts
            image = cache.get(root / "images" / f"{stem}.tif", "RefSegRS image")
            mask = read_mask(root / "masks" / f"{stem}.tif", "RefSegRS mask")
            yield _record(f"refsegrs-{split}-{n:05d}-{stem}", image, mask, sentence, str(root / "images" / f"{stem}.tif"))


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise DataError(f"refs pickle references {module}.{name}; only plain lists/dicts/strings are accepted.")


def load_plain_pickle(path: Path):
    """Unpickle data made only of builtins (dict, list, str, int, float, ...), refusing any class."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"Cannot read {path}: {exc}") from exc


def read_rrsisd(root: str | Path, split: str = "test", split_by: str = "unc") -> Iterator[dict]:
    """RRSIS-D layout (refer-style refs pickle + COCO instances.json); one record per sentence."""
    root = Path(root)
    refs = load_plain_pickle(_need(root / "rrsisd" / f"refs({split_by}).p", "RRSIS-D refs file"))
    inst = json.loads(_need(root / "rrsisd" / "instances.json", "RRSIS-D instances file").read_text())
    images = {im["id"]: im for im in inst.get("images", [])}
    anns = {a["id"]: a for a in inst.get("annotations", [])}
    img_dir = root / "images" / "rrsisd" / "JPEGImages"
    cache = _ImageCache()
    for ref in refs:
        if ref.get("split") != split:
            continue
        im = images.get(ref["image_id"])
        ann = anns.get(ref["ann_id"])
        if im is None or ann is None:
            raise DataError(f"RRSIS-D ref {ref.get('ref_id')} points at a missing image/annotation in instances.json.")
        image = cache.get(img_dir / im["file_name"], "RRSIS-D image")
        mask = rle_mod.decode_segmentation(ann["segmentation"], image.shape[0], image.shape[1])
        for j, sent in enumerate(ref.get("sentences", [])):
            text = sent.get("sent") or sent.get("raw") or ""
            yield _record(f"rrsisd-{ref.get('ref_id')}-{j}", image, mask, text, str(img_dir / im["file_name"]))


_IMAGE_KEYS = ("image", "image_path", "file_name", "img")
_TEXT_KEYS = ("expression", "sentence", "text", "ref_sent", "caption")
_MASK_KEYS = ("mask", "segmentation", "rle")


def _first(obj: dict, keys, what, where):
    for k in keys:
        if k in obj:
            return obj[k]
    raise DataError(f"{where}: no {what} key (expected one of {', '.join(keys)}).")


def read_risbench(path: str | Path) -> Iterator[dict]:
    """RISBench-style JSONL with COCO RLE masks (see module doc)."""
    path = Path(path)
    cache = _ImageCache()
    for n, obj in _json_lines(path):
        where = f"{path}:{n}"
        ip = path.parent / _first(obj, _IMAGE_KEYS, "image", where)
        text = _first(obj, _TEXT_KEYS, "expression", where)
        seg = _first(obj, _MASK_KEYS, "mask", where)
        image = cache.get(ip, f"image of {where}")
        mask = rle_mod.decode_segmentation(seg, image.shape[0], image.shape[1])
        yield _record(obj.get("id", f"{path.stem}-{n}"), image, mask, text, str(ip), obj.get("ambiguous", False))


def detect_format(path: Path) -> str:
    """'jsonl' | 'risbench' | 'refsegrs' | 'rrsisd' from what is on disk."""
    if path.is_dir():
        if (path / "rrsisd").is_dir():
            return "rrsisd"
        if list(path.glob("output_phrase_*.txt")):
            return "refsegrs"
        raise DataError(f"{path} is neither a RefSegRS folder (output_phrase_*.txt) nor an RRSIS-D folder (rrsisd/).")
    for _n, obj in _json_lines(path):
        return "risbench" if isinstance(obj.get("mask", obj.get("segmentation", obj.get("rle"))), dict) else "jsonl"
    raise DataError(f"{path} has no records.")


def load_records(source: str | Path) -> Iterator[dict]:
    """Records from any supported source.

    source: a JSONL path (ours or RISBench-style, detected), a RefSegRS/RRSIS-D folder (test split), or
    an explicit spec ``refsegrs:ROOT[:SPLIT]``, ``rrsisd:ROOT[:SPLIT]``, ``risbench:FILE``, ``jsonl:FILE``,
    ``synthetic:SPLIT:N[:SIZE]`` (e.g. ``synthetic:test:200:512``).
    """
    s = str(source)
    if s.startswith("synthetic:"):
        from rrsis_engine.data.synthetic import SyntheticReferringDataset

        parts = s.split(":")
        try:
            split, n = parts[1], int(parts[2])
            size = int(parts[3]) if len(parts) > 3 else 512
        except (IndexError, ValueError) as exc:
            raise DataError(f"Bad synthetic spec {s!r}: use synthetic:SPLIT:N[:SIZE], e.g. synthetic:test:200:512.") from exc
        return iter(SyntheticReferringDataset(split, n, size))
    for prefix in ("refsegrs:", "rrsisd:", "risbench:", "jsonl:"):
        if s.startswith(prefix):
            rest = s[len(prefix):]
            fmt = prefix[:-1]
            break
    else:
        p = Path(s)
        if not p.exists():
            raise DataError(f"Data source {s!r} does not exist: give a JSONL file, a data set folder, or a spec like synthetic:test:200.")
        fmt, rest = detect_format(p), s
    if fmt in ("refsegrs", "rrsisd"):
        root, split = (rest, "") if Path(rest).exists() else rest.rpartition(":")[::2]
        reader = read_refsegrs if fmt == "refsegrs" else read_rrsisd
        return reader(root, split or "test")
    if fmt == "risbench":
        return read_risbench(rest)
    return read_jsonl(rest)
