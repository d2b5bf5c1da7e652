"""What one turn of the predictor returns.

Frames: ``mask``/``logits``/``uncertainty`` are H×W in the full-resolution image frame, indexed
[row, col]. Points and boxes are (x, y) = (col, row) pixels of that image. ``low_res_logits`` live in the
model's square input frame (1×1×h×w, h = w = image_size / 4) and are only meant to be fed back as the
next turn's mask prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: an estimated IoU below this marks the mask as likely off (the front ends ask for a click): of the 538 turns of the
#: synthetic test split (text and three clicks, ambiguous expressions included; stop 52), 70 % of the masks under it
#: had IoU < 0.5, and it held 61 % of those
LIKELY_OFF_QUALITY = 0.5


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
    iou_score: the decoder's IoU head, in [0, 1] (it scores the model's own mask, not the one shown).
    object_score: probability the referred object exists. quality: estimated IoU of ``mask`` with the object meant,
    in [0, 1] (:mod:`rrsis_engine.quality`; what the front ends show), or None when the checkpoint has no
    calibration for it or the mask was edited by hand.
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
    quality: float | None = None

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
    def offers_choice(self) -> bool:
        """Whether the front ends should ask which one: the expression is flagged ambiguous and two or more candidate
        regions are there to choose from (a follow-up the geometry resolved shows one, which the ambiguity head, reading
        its wording, may still flag)."""
        return self.ambiguous and len(self.candidates) > 1

    @property
    def shows_one_candidate(self) -> bool:
        """Whether ``mask`` holds one of two or more candidate regions only: for a sentence about one object the
        predictor shows the likeliest look-alike alone, and a negative click on it shows the next likeliest alone."""
        if len(self.candidates) < 2:
            return False
        return sum(bool((c.mask & self.mask).any()) for c in self.candidates) == 1

    @property
    def likely_off(self) -> bool:
        """Whether the front ends should say the mask is likely off and ask for a click: the estimated IoU
        (:attr:`quality`) is below :data:`LIKELY_OFF_QUALITY`. False without an estimate, for an empty mask and for an
        expression flagged ambiguous (the front ends report those on their own, and ask for a click there too)."""
        return (self.quality is not None and self.area > 0 and not self.ambiguous
                and self.quality < LIKELY_OFF_QUALITY)

    @property
    def shown_iou(self) -> float:
        """The IoU the front ends show: the estimate (:attr:`quality`) when there is one, else the decoder's IoU head
        (which scores the model's own mask)."""
        return self.iou_score if self.quality is None else self.quality

    @property
    def iou_label(self) -> str:
        """:attr:`shown_iou` with what it is: "estimated IoU 0.87" or "decoder IoU 0.08"."""
        return f"{'decoder' if self.quality is None else 'estimated'} IoU {self.shown_iou:.2f}"

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
            "quality": None if self.quality is None else round(float(self.quality), 4),
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
