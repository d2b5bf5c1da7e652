"""From mask logits to what a labeler sees: uncertainty map, candidate regions, a suggested click.

All arrays are in the image frame (H×W, [row, col]); points are (x, y) = (col, row).
These are model-agnostic baselines computed from the logits alone; the CroBIM-U uncertainty head
(when a model has one) replaces the probability-margin uncertainty.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from rrsis_engine.prediction import Candidate

#: A component smaller than this share of the largest one is noise, not a candidate.
MIN_CANDIDATE_SHARE = 0.05


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def margin_uncertainty(prob: np.ndarray) -> np.ndarray:
    """1 at p = 0.5, 0 at p ∈ {0, 1}: H×W float32."""
    return (1.0 - np.abs(2.0 * prob - 1.0)).astype(np.float32)


def interior_point(region: np.ndarray) -> tuple[float, float]:
    """(x, y) of the region pixel farthest from its boundary (the standard click-simulation point)."""
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(col), float(row)


def candidates_from_mask(mask: np.ndarray, prob: np.ndarray, max_candidates: int = 8) -> list[Candidate]:
    """Connected components of ``mask`` as candidates, scored by mean probability × relative size."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    areas = ndimage.sum(np.ones_like(prob), labels, idx)
    means = ndimage.mean(prob, labels, idx)
    keep = [i for i in range(n) if areas[i] >= MIN_CANDIDATE_SHARE * areas.max()]
    keep.sort(key=lambda i: -means[i] * np.sqrt(areas[i]))
    out = []
    slices = ndimage.find_objects(labels)
    for i in keep[:max_candidates]:
        region = labels == i + 1
        sl = slices[i]
        bbox = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        out.append(Candidate(mask=region, score=float(means[i]), bbox=bbox, point=interior_point(region)))
    return out


def ambiguity_from_candidates(candidates: list[Candidate]) -> float:
    """0 for one clear region; approaches 1 when several similar-scoring regions compete."""
    if len(candidates) < 2:
        return 0.0
    weights = np.array([c.score * np.sqrt(c.area) for c in candidates], dtype=np.float64)
    p = weights / weights.sum()
    entropy = -(p * np.log(p + 1e-12)).sum()
    return float(min(1.0, entropy / np.log(2)))  # two equal regions → 1


def suggest_click(mask: np.ndarray, uncertainty: np.ndarray, candidates: list[Candidate], ambiguous: bool,
                  threshold: float = 0.5) -> tuple[float, float, int] | None:
    """Where one click would remove the most expected error.

    Ambiguous: a positive click inside the best candidate (confirm one of them). Otherwise: the interior
    point of the largest uncertain region; positive if the model leans to background there, else negative.
    """
    if ambiguous and candidates:
        x, y = candidates[0].point
        return x, y, 1
    unsure = uncertainty > threshold
    if not unsure.any():
        return None
    labels, n = ndimage.label(unsure)
    sizes = ndimage.sum(uncertainty, labels, np.arange(1, n + 1))
    region = labels == int(np.argmax(sizes)) + 1
    x, y = interior_point(region)
    label = 0 if mask[int(y), int(x)] else 1
    return x, y, label
