"""COCO-compatible run-length encoding of binary masks, in plain numpy (no pycocotools).

A COCO RLE is ``{"size": [H, W], "counts": ...}``: run lengths of the mask flattened in column-major
(Fortran) order, starting with a run of zeros (possibly of length 0). ``counts`` is either a list of ints
("uncompressed RLE") or pycocotools' compact ASCII string ("compressed RLE", the form ``encode`` returns,
byte-identical to ``pycocotools.mask.encode``). Masks are H×W bool arrays indexed [row, col].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrsis_engine.errors import DataError

__all__ = [
    "encode",
    "decode",
    "area",
    "to_bbox",
    "counts_to_string",
    "string_to_counts",
    "mask_to_counts",
    "counts_to_mask",
    "decode_segmentation",
]


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """H×W mask -> run lengths (column-major, first run counts zeros).

    Works on the row-major array without a transposed copy: a run boundary is a change between
    vertical neighbours (flat index col·H + row) or between the bottom of one column and the top of
    the next (flat index (col+1)·H).
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise DataError(f"RLE encoding needs a 2-D H×W mask, got shape {m.shape}.")
    m = m != 0
    h, w = m.shape
    if m.size == 0:
        return [0]
    rows, cols = np.nonzero(m[1:] != m[:-1])
    column_starts = (np.flatnonzero(m[-1, :-1] != m[0, 1:]) + 1) * h
    change = np.sort(np.concatenate((cols * h + rows + 1, column_starts)))
    runs = np.diff(np.concatenate(([0], change, [h * w])))
    if m[0, 0]:  # COCO counts always start with a (possibly empty) run of zeros
        runs = np.concatenate(([0], runs))
    return runs.tolist()


def counts_to_mask(counts: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Run lengths + (H, W) -> H×W bool mask."""
    h, w = int(size[0]), int(size[1])
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise DataError("Corrupt RLE: negative run length.")
    total = int(counts.sum())
    if total != h * w:
        raise DataError(f"Corrupt RLE: run lengths sum to {total} but size {h}×{w} needs {h * w} pixels.")
    values = np.zeros(counts.size, dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()


def counts_to_string(counts: Sequence[int]) -> str:
    """pycocotools' compact string form of run lengths (``rleToString`` in maskApi.c)."""
    out = bytearray()
    cnts = [int(c) for c in counts]
    for i, x in enumerate(cnts):
        if i > 2:
            x -= cnts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as for C's signed long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(c + 48)
    return out.decode("ascii")


def string_to_counts(s: str | bytes) -> list[int]:
    """Inverse of :func:`counts_to_string` (``rleFrString`` in maskApi.c)."""
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    cnts: list[int] = []
    p = 0
    n = len(data)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise DataError("Corrupt RLE string: it ends in the middle of a number.")
            c = data[p] - 48
            if c < 0 or c > 63:
                raise DataError(f"Corrupt RLE string: unexpected character {chr(data[p])!r}.")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def encode(mask: np.ndarray) -> dict:
    """H×W mask -> ``{"size": [H, W], "counts": str}`` (compressed COCO RLE, JSON-serialisable)."""
    m = np.asarray(mask)
    counts = mask_to_counts(m)
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts_to_string(counts)}


def decode(rle: dict) -> np.ndarray:
    """COCO RLE (compressed string, bytes, or uncompressed list counts) -> H×W bool mask."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise DataError("An RLE must be a dict with 'size' [H, W] and 'counts'; got " + repr(rle)[:80])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    return counts_to_mask(counts, rle["size"])


def area(rle: dict) -> int:
    """Foreground pixel count of an RLE without decoding it."""
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    return int(sum(counts[1::2]))


def to_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """COCO box (x, y, w, h) of an H×W mask; (0, 0, 0, 0) when empty."""
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    cols = np.flatnonzero(np.asarray(mask).any(axis=0))
    if rows.size == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def decode_segmentation(seg, height: int, width: int) -> np.ndarray:
    """Any COCO ``segmentation`` value -> H×W bool: an RLE dict, or a list of polygons
    ``[[x0, y0, x1, y1, ...], ...]`` in (x, y) pixel coordinates."""
    if isinstance(seg, dict):
        m = decode(seg)
        if m.shape != (height, width):
            raise DataError(f"RLE size {m.shape} does not match the image size {(height, width)}.")
        return m
    if isinstance(seg, list):
        from skimage.draw import polygon as draw_polygon

        out = np.zeros((height, width), dtype=bool)
        for poly in seg:
            xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            rr, cc = draw_polygon(xy[:, 1], xy[:, 0], shape=(height, width))
            out[rr, cc] = True
        return out
    raise DataError(f"Unsupported segmentation type {type(seg).__name__}: expected an RLE dict or polygons.")
