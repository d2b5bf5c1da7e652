"""How good is the mask shown? An estimate of its IoU with the object the labeler means, for the front ends.

The decoder's IoU head scores the model's own mask, not the mask the engine shows: the engine picks one look-alike
out of a category map, resolves spatial words by geometry, snaps to colour edges and applies the clicks. Over the
turns of 300 synthetic validation records (text and three simulated clicks) its rank correlation with the shown
mask's IoU was 0.18, and it gave 0.08 to a mask of IoU 0.99. The estimate here is a logistic regression over cues of
the shown mask (:data:`FEATURES`), fitted to the true IoUs of validation turns by ``rrsis calibrate`` and stored
in the checkpoint's JSON as ``meta.quality_calibration``:

* ``decoder_iou``: the IoU head's value;
* ``uncertainty_inside``, ``uncertainty_rim``: mean of the turn's uncertainty map (σ of the error head when the
  model has one) over the mask and over its one-pixel inner rim; ``uncertainty_image``: over the whole image
  (high on images unlike the training data);
* ``candidate_entropy``, ``second_share``, ``n_candidates``: the ambiguity cues (:mod:`rrsis_engine.ambiguity`);
* ``log_area``: log of the mask's share of the image; ``n_components``: log(1 + its 8-connected parts);
* ``clicks``: log(1 + clicks so far); ``one_candidate``: 1 when the mask is one look-alike of several.

An empty mask gets 0 (a referring expression names something) and is left out of the fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from rrsis_engine.ambiguity import fit_logistic, logistic, logistic_score
from rrsis_engine.errors import DataError
from rrsis_engine.metrics import iou, rank_correlation

FEATURES = ("decoder_iou", "uncertainty_inside", "uncertainty_rim", "uncertainty_image", "candidate_entropy",
            "second_share", "n_candidates", "log_area", "n_components", "clicks", "one_candidate")
#: fewest non-empty turns a fit accepts
MIN_TURNS = 20


def quality_features(prediction, n_clicks: int) -> dict[str, float] | None:
    """The cues of ``prediction``'s shown mask (see the module doc); None for an empty mask."""
    full = prediction.mask
    rows, cols = np.flatnonzero(full.any(1)), np.flatnonzero(full.any(0))
    if not len(rows):
        return None
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # read in the mask's box: ≈ 6 ms at 1 024²
    mask = full[box]
    unc = prediction.uncertainty
    unc_image = 0.0 if unc is None else float(unc.mean())
    unc = np.zeros(mask.shape, np.float32) if unc is None else unc[box]
    inner = np.pad(mask, 1)
    inner = inner[1:-1, 1:-1] & inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
    rim = mask & ~inner  # 4-neighbour rim; the image border counts as outside
    _, n_parts = ndimage.label(mask, structure=np.ones((3, 3), bool))
    cues = prediction.ambiguity_cues
    return {
        "decoder_iou": float(prediction.iou_score),
        "uncertainty_inside": float(unc[mask].mean()),
        "uncertainty_rim": float(unc[rim].mean()),
        "uncertainty_image": unc_image,
        "candidate_entropy": float(cues.get("candidate_entropy", 0.0)),
        "second_share": float(cues.get("second_share", 0.0)),
        "n_candidates": float(cues.get("n_candidates", 0.0)),
        "log_area": float(np.log(mask.sum() / full.size)),
        "n_components": float(np.log1p(n_parts)),
        "clicks": float(np.log1p(n_clicks)),
        "one_candidate": float(prediction.shows_one_candidate),
    }


@dataclass
class QualityCalibration:
    """Logistic regression from :data:`FEATURES` to the shown mask's IoU, fitted on validation turns.

    estimate = σ(bias + Σ weights[f] · (x[f] − mean[f]) / std[f]). ``mae`` and ``rank_corr`` (Spearman) are the
    fit's on its own ``n`` turns, from records ``data``.
    """

    weights: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]
    bias: float
    n: int
    mae: float
    rank_corr: float
    data: str = ""

    def estimate(self, features: dict[str, float]) -> float:
        return logistic_score(features, FEATURES, self.weights, self.mean, self.std, self.bias)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> QualityCalibration:
        missing = [f for f in FEATURES if f not in d.get("weights", {})]
        if missing:
            raise DataError(f"The mask-quality calibration lacks weights for {missing}; re-run `rrsis calibrate`.")
        return cls(**d)


def estimate_quality(prediction, n_clicks: int, calibration: QualityCalibration | None) -> float | None:
    """The estimated IoU of ``prediction``'s mask in [0, 1]: 0 for an empty mask, None without a calibration."""
    if calibration is None:
        return None
    features = quality_features(prediction, n_clicks)
    return 0.0 if features is None else calibration.estimate(features)


def fit_quality(features: list[dict[str, float]], ious: list[float], l2: float = 1e-2,
                data: str = "") -> QualityCalibration:
    """Fit the estimate to the true IoUs ``ious`` of the turns whose cues are ``features`` (non-empty masks)."""
    y = np.clip(np.asarray(ious, dtype=np.float64), 0.0, 1.0)
    if len(y) < MIN_TURNS:
        raise DataError(f"The mask-quality fit needs at least {MIN_TURNS} turns with a mask; got {len(y)}. Use more "
                        "validation records (e.g. synthetic:val:300).")
    x = np.array([[f[k] for k in FEATURES] for f in features], dtype=np.float64)
    w, mean, std, bias = fit_logistic(x, y, l2)
    fitted = logistic(bias + ((x - mean) / std) @ w)
    return QualityCalibration(
        weights={k: float(v) for k, v in zip(FEATURES, w, strict=True)},
        mean={k: float(v) for k, v in zip(FEATURES, mean, strict=True)},
        std={k: float(v) for k, v in zip(FEATURES, std, strict=True)},
        bias=bias, n=len(y), mae=float(np.abs(fitted - y).mean()), rank_corr=rank_correlation(fitted, y), data=data,
    )


def score_estimates(rows) -> dict | None:
    """(estimated IoU, the IoU head's value, true IoU) rows → {"n", "mae", "bias" (mean signed error: > 0 reads high),
    "rank_corr", "decoder_mae", "decoder_rank_corr"}, or None without rows (``rrsis eval``, ``rrsis sessions
    stats --estimated-iou``)."""
    rows = list(rows)
    if not rows:
        return None
    est, dec, iou = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    return {"n": len(rows), "mae": float(np.abs(est - iou).mean()), "bias": float((est - iou).mean()),
            "rank_corr": rank_correlation(est, iou), "decoder_mae": float(np.abs(dec - iou).mean()),
            "decoder_rank_corr": rank_correlation(dec, iou)}


def logged_estimates(annotations) -> Iterator[tuple[float, float, float]]:
    """For each turn of the logged ``annotations`` (the store's records, with turns) that carries an estimate and an
    IoU head value: (the estimated IoU shown, the IoU head's value, the IoU of the turn's mask with the mask the
    labeler accepted)."""
    for ann in annotations:
        accepted = None
        for turn in ann.turns:
            if turn.quality is None or turn.iou_score is None or turn.rle is None:
                continue
            accepted = ann.mask if accepted is None else accepted
            yield turn.quality, turn.iou_score, iou(turn.mask, accepted)
