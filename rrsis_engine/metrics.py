"""Referring-segmentation metrics and the standard interactive click simulation.

Masks are H×W bool arrays indexed [row, col]; clicks are (x, y, label) with (x, y) = (col, row) pixels
and label 1 for a positive (add) click, 0 for a negative (remove) click.

Conventions (stated once, used everywhere):
- ``iou`` of two empty masks is 1.0 (nothing to find, nothing predicted); empty vs non-empty is 0.0.
- mIoU is the mean of per-sample IoUs; oIoU is cumulative intersection over cumulative union
  (1.0 when every union is empty).
- P@t is the fraction of samples with IoU >= t (t in 0.5 ... 0.9).
- NoC@t counts the clicks added on top of the text-only prediction until IoU >= t (0 when the text
  alone reaches t); a sample that never reaches t within ``max_clicks`` counts ``max_clicks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy import ndimage

PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
NOC_THRESHOLDS = (0.85, 0.90)
MAX_CLICKS = 20


def _as_bool(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m if m.dtype == bool else m != 0


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts |pred ∩ gt| and |pred ∪ gt| of two H×W masks of the same shape."""
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: prediction {p.shape} vs ground truth {g.shape}")
    return int(np.count_nonzero(p & g)), int(np.count_nonzero(p | g))


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two H×W masks; 1.0 when both are empty."""
    i, u = intersection_union(pred, gt)
    return 1.0 if u == 0 else i / u


def precision_at(ious: Sequence[float], thresholds: Iterable[float] = PRECISION_THRESHOLDS) -> dict[str, float]:
    """{"P@0.5": fraction of IoUs >= 0.5, ...}; 0.0 for every key when ``ious`` is empty."""
    arr = np.asarray(list(ious), dtype=np.float64)
    return {f"P@{t:g}": (float(np.mean(arr >= t - 1e-12)) if arr.size else 0.0) for t in thresholds}


def summarize(ious: Sequence[float], inters: Sequence[int], unions: Sequence[int]) -> dict[str, float]:
    """One report row: {"mIoU", "oIoU", "P@0.5", ..., "P@0.9"} (fractions in [0, 1])."""
    ious = list(ious)
    cum_i, cum_u = float(np.sum(inters)), float(np.sum(unions))
    row = {
        "mIoU": float(np.mean(ious)) if ious else 0.0,
        "oIoU": 1.0 if cum_u == 0 else cum_i / cum_u,
    }
    row.update(precision_at(ious))
    return row


class IoUAccumulator:
    """Collects (prediction, ground truth) pairs and yields one :func:`summarize` row."""

    def __init__(self) -> None:
        self.ious: list[float] = []
        self.inters: list[int] = []
        self.unions: list[int] = []

    def add(self, pred: np.ndarray, gt: np.ndarray) -> float:
        i, u = intersection_union(pred, gt)
        v = 1.0 if u == 0 else i / u
        self.ious.append(v)
        self.inters.append(i)
        self.unions.append(u)
        return v

    def __len__(self) -> int:
        return len(self.ious)

    def summary(self) -> dict[str, float]:
        return summarize(self.ious, self.inters, self.unions)


# ---- click simulation ----------------------------------------------------------------------------
def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, int] | None:
    """The standard simulated correction click.

    Finds the largest connected error region (false negatives gt & ~pred, or false positives
    pred & ~gt; 4-connectivity) and returns its interior point farthest from the region's boundary
    (the image border counts as boundary), as (x, y, label) with label 1 for a false-negative region
    (positive click) and 0 for a false-positive region (negative click). None when pred == gt.
    Ties between equally large FN and FP regions go to the FN region.
    """
    p, g = _as_bool(pred), _as_bool(gt)
    best = None  # (area, label, region mask)
    for label, err in ((1, g & ~p), (0, p & ~g)):
        for area, region in largest_regions(err, 1):
            if best is None or area > best[0]:
                best = (area, label, region)
    if best is None:
        return None
    _, label, region = best
    return (*region_centre(region), label)


def error_region_clicks(pred: np.ndarray, gt: np.ndarray, per_kind: int = 3) -> list[tuple[float, float, int]]:
    """Correction clicks at the centres of the ``per_kind`` largest false-negative regions (label 1) and of the
    ``per_kind`` largest false-positive regions (label 0), each placed as :func:`next_click` places its one — whose
    click is among these. (x, y, label) in ``pred``'s frame; empty when pred == gt."""
    p, g = _as_bool(pred), _as_bool(gt)
    return [(*region_centre(region), label) for label, err in ((1, g & ~p), (0, p & ~g))
            for _, region in largest_regions(err, per_kind)]


def largest_regions(err: np.ndarray, k: int) -> list[tuple[int, np.ndarray]]:
    """The ``k`` largest 4-connected regions of the boolean map ``err`` as (area, region mask), largest first."""
    if not err.any():
        return []
    lab, _ = ndimage.label(err)
    sizes = np.bincount(lab.ravel())[1:]
    return [(int(sizes[j]), lab == (j + 1)) for j in np.argsort(-sizes, kind="stable")[:k]]


def region_centre(region: np.ndarray) -> tuple[float, float]:
    """The interior point of ``region`` farthest from its boundary (the image border counts as boundary), (x, y)."""
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(c), float(r)


PredictFn = Callable[[list[tuple[float, float, int]]], np.ndarray]


def simulate_clicks(
    predict: PredictFn,
    gt: np.ndarray,
    initial: np.ndarray,
    max_clicks: int = MAX_CLICKS,
    stop_iou: float | None = None,
) -> tuple[list[float], list[tuple[float, float, int]]]:
    """Run the click loop: IoU of ``initial`` (0 clicks), then after each simulated click.

    predict(clicks) -> H×W mask, called with all clicks so far (each (x, y, label)); it is expected to
    keep its own prior state (e.g. a RefinementSession). When the prediction equals gt no further click
    exists and the IoU (1.0) is repeated. Stops early once IoU >= ``stop_iou`` (if given).
    Returns (ious, clicks) with ``len(ious) == len(clicks) + 1`` unless padded after a perfect mask.
    """
    gt = _as_bool(gt)
    mask = _as_bool(initial)
    ious = [iou(mask, gt)]
    clicks: list[tuple[float, float, int]] = []
    while len(ious) <= max_clicks:
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
        click = next_click(mask, gt)
        if click is None:
            ious.append(ious[-1])
            continue
        clicks.append(click)
        mask = _as_bool(predict(list(clicks)))
        ious.append(iou(mask, gt))
    return ious, clicks


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """NoC for one sample: first index k with ious[k] >= threshold (ious[0] = no click), else max_clicks."""
    for k, v in enumerate(ious[: max_clicks + 1]):
        if v >= threshold - 1e-12:
            return k
    return max_clicks


def noc(per_sample_ious: Sequence[Sequence[float]], threshold: float, max_clicks: int = MAX_CLICKS) -> float:
    """Mean number of clicks to reach ``threshold`` over samples (see :func:`clicks_to_reach`)."""
    if not per_sample_ious:
        return float("nan")
    return float(np.mean([clicks_to_reach(s, threshold, max_clicks) for s in per_sample_ious]))


# ---- ambiguity -----------------------------------------------------------------------------------
def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann–Whitney U, ties count 1/2).

    None when only one class is present (AUROC undefined).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equal-length sequences (ties share their average rank); None when either is
    constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(_average_ranks(a), _average_ranks(b))[0, 1])


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks
