"""What one turn of the predictor returns.

Frames: ``mask``/``logits``/``uncertainty`` are H×W in the full-resolution image frame, indexed
[row, col]. Points and boxes are (x, y) = (col, row) pixels of that image. ``low_res_logits`` live in the
model's square input frame (1×1×h×w, h = w = image_size / 4) and are only meant to be fed back as the
next turn's mask prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Candidate:
    """One separate region the expression could mean.

    mask: H×W bool. score: mean foreground probability in [0, 1]. bbox: (x0, y0, x1, y1) pixels,
    inclusive-exclusive. point: an interior (x, y) pixel, far from the region's boundary.
    """

    mask: np.ndarray
    score: float
    bbox: tuple[int, int, int, int]
    point: tuple[float, float]

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Prediction:
    """Result of one turn.

    mask: H×W bool (= logits > 0). logits: H×W float32 mask logits as shown: the model's upsampled logits, or with the
    predictor's edge snap ±10 around the snapped boundary (:func:`rrsis_engine.edges.refined_logits`) and −10 on
    removed negated regions. low_res_logits: torch tensor 1×1×h×w (model frame), the model's own: the next turn's
    prior.
    iou_score: predicted IoU in [0, 1]. object_score: probability the referred object exists.
    uncertainty: H×W float32 in [0, 1] (high = the model is unsure; 0 on what negative clicks removed) or None.
    ambiguity: per-expression score in [0, 1]; ambiguous: ambiguity above the calibrated threshold.
    candidates: separate plausible regions, best first. suggested_click: (x, y, label) with label 1 for a
    positive and 0 for a negative click, or None: a correction (positive outside the mask, negative inside) or a
    confirmation (positive inside the mask: :attr:`suggests_confirmation`).
    ambiguity_cues: the cues the ambiguity score combines (:mod:`rrsis_engine.ambiguity`).
    latency_ms: wall time of the turn; timings: per stage (ms).
    """

    mask: np.ndarray
    logits: np.ndarray
    low_res_logits: object
    iou_score: float
    object_score: float
    latency_ms: float
    uncertainty: np.ndarray | None = None
    ambiguity: float | None = None
    ambiguous: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    suggested_click: tuple[float, float, int] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    ambiguity_cues: dict[str, float] = field(default_factory=dict)

    @property
    def suggests_confirmation(self) -> bool:
        """Whether ``suggested_click`` asks "is it this one?": a positive click inside the mask, on the likeliest of
        several look-alikes a sentence about one object shows (a positive click there keeps it alone)."""
        if self.suggested_click is None or int(self.suggested_click[2]) != 1:
            return False
        x, y, _ = self.suggested_click
        h, w = self.mask.shape
        return bool(self.mask[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)])

    @property
    def shows_one_candidate(self) -> bool:
        """Whether ``mask`` holds one of two or more candidate regions only: for a sentence about one object the
        predictor shows the likeliest look-alike alone, and a negative click on it shows the next likeliest alone."""
        if len(self.candidates) < 2:
            return False
        return sum(bool((c.mask & self.mask).any()) for c in self.candidates) == 1

    @property
    def area(self) -> int:
        """Foreground pixels of ``mask``."""
        return int(self.mask.sum())

    def summary(self) -> dict:
        """JSON-serialisable scores (no arrays)."""
        return {
            "area_px": self.area,
            "iou_score": round(float(self.iou_score), 4),
            "object_score": round(float(self.object_score), 4),
            "ambiguity": None if self.ambiguity is None else round(float(self.ambiguity), 4),
            "ambiguous": bool(self.ambiguous),
            "n_candidates": len(self.candidates),
            "suggested_click": None if self.suggested_click is None else [
                round(float(self.suggested_click[0]), 1), round(float(self.suggested_click[1]), 1),
                int(self.suggested_click[2])],
            "suggests_confirmation": self.suggests_confirmation,
            "latency_ms": round(float(self.latency_ms), 2),
            "timings_ms": {k: round(float(v), 2) for k, v in self.timings.items()},
        }
