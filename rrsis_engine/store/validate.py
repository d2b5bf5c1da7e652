"""Checks on everything the store writes, so bad input fails with a clear StoreError before any row
is written (nothing is stored half-way).

Points are (x, y) = (col, row) pixels of an H×W image and must lie in [0, W] × [0, H]; boxes are
(x0, y0, x1, y1) with x0 ≤ x1, y0 ≤ y1 in the same range; masks are H×W.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rrsis_engine.errors import StoreError

MAX_TEXT_CHARS = 2000
MAX_NAME_CHARS = 200
CLIENTS = ("web", "napari", "cli")
STATUSES = ("accepted", "rejected", "skipped")
KINDS = ("text", "click", "box", "mask", "pick", "clear")


def check_text(value, what: str = "expression", max_chars: int = MAX_TEXT_CHARS) -> str:
    """A str that encodes as UTF-8, without NUL characters, at most ``max_chars`` long."""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(
                f"The {what} is not valid UTF-8 text (bad byte at position {exc.start}); re-type it or fix the "
                "encoding of its source."
            ) from None
    if not isinstance(value, str):
        raise StoreError(f"The {what} must be text, got {type(value).__name__}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(
            f"The {what} contains characters that are not valid Unicode (position {exc.start}, probably "
            "undecodable bytes from a file or terminal); re-type it."
        ) from None
    if "\x00" in value:
        raise StoreError(f"The {what} contains a NUL character; remove it.")
    if len(value) > max_chars:
        raise StoreError(
            f"The {what} is {len(value)} characters long; the limit is {max_chars}. Shorten it."
        )
    return value


def check_optional_name(value, what: str) -> str | None:
    if value is None:
        return None
    value = check_text(value, what, MAX_NAME_CHARS).strip()
    return value or None


def _finite(v, what: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise StoreError(f"The {what} must be a number, got {v!r}.") from None
    if not math.isfinite(f):
        raise StoreError(f"The {what} is {f} (not a finite number); the turn was not stored.")
    return f


def check_points(points: Sequence, labels: Sequence, height: int, width: int) -> tuple[list, list]:
    """N (x, y) pixel points inside [0, W] × [0, H] and N labels in {0, 1} -> JSON-ready lists."""
    pts = [list(p) for p in points]
    if len(pts) != len(labels):
        raise StoreError(f"{len(pts)} points but {len(labels)} labels; every click needs one label.")
    out = []
    for i, p in enumerate(pts):
        if len(p) != 2:
            raise StoreError(f"Point {i} must be (x, y), got {p!r}.")
        x, y = _finite(p[0], f"x of point {i}"), _finite(p[1], f"y of point {i}")
        if not (0 <= x <= width and 0 <= y <= height):
            raise StoreError(
                f"Point {i} at (x={x:g}, y={y:g}) is outside the {width}×{height} image; nothing was stored."
            )
        out.append([x, y])
    labs = []
    for i, lab in enumerate(labels):
        if int(lab) not in (0, 1) or float(lab) != int(lab):
            raise StoreError(f"Label {i} is {lab!r}; use 1 for a positive and 0 for a negative click.")
        labs.append(int(lab))
    return out, labs


def check_box(box, height: int, width: int) -> list[float] | None:
    if box is None:
        return None
    b = list(box)
    if len(b) != 4:
        raise StoreError(f"A box is (x0, y0, x1, y1), got {box!r}.")
    x0, y0, x1, y1 = (_finite(v, "box coordinate") for v in b)
    if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
        raise StoreError(
            f"Box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the {width}×{height} image with x0 ≤ x1 and "
            "y0 ≤ y1; nothing was stored."
        )
    return [x0, y0, x1, y1]


def check_mask(mask, height: int, width: int, what: str = "mask") -> np.ndarray:
    """An H×W boolean (or 0/1) mask -> bool array."""
    if mask is None:
        raise StoreError(f"The {what} is missing.")
    m = np.asarray(mask)
    if m.shape != (height, width):
        raise StoreError(
            f"The {what} is {'×'.join(map(str, m.shape))} but the session image is {height}×{width} (H×W); "
            "nothing was stored. Was the image changed without starting a new session log?"
        )
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number):
            raise StoreError(f"The {what} must be boolean, got dtype {m.dtype}.")
        if not np.isin(m, (0, 1)).all():
            raise StoreError(f"The {what} must hold only 0 and 1 (or True/False).")
        m = m.astype(bool)
    return m


def score(value) -> float | None:
    """A model score as float, NULL when missing or not finite (a NaN score never blocks a turn)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
