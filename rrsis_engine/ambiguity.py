"""Per-turn ambiguity score and flag: "does this expression pick out one object, or several look-alikes?"

The score combines cues computed from one prediction (all on the model's low-res grid, so it is cheap):

* ``candidate_entropy``: how evenly the separate candidate regions share score × √area (two equal → 1);
* ``n_candidates``: log(1 + number of separate plausible regions);
* ``second_share``: the runner-up candidate's score × √area relative to the best one's;
* ``uncertainty``: mean uncertainty (RUS σ(U) when the model has one, else the probability margin) over
  the union of the prediction and its uncertain surroundings;
* ``object_score`` and ``iou_score``: the decoder's own confidence (σ of the object logit, predicted IoU);
* ``head_score``: the learned ambiguity head's probability (:mod:`rrsis_engine.model.ambiguity_head`), 0 for
  models without one (the calibration then gives it no weight).

Without calibration the score is ``candidate_entropy`` and the flag fires at 0.5 (the baseline). A
calibration (:class:`AmbiguityCalibration`, fitted by :func:`fit_calibration` on validation predictions with
``ambiguous`` labels, e.g. ``rrsis calibrate``) is a logistic regression over the cues plus a threshold
chosen for a stated precision; it is stored in the checkpoint's JSON (``meta.ambiguity_calibration``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rrsis_engine.errors import DataError

FEATURES = ("candidate_entropy", "n_candidates", "second_share", "uncertainty", "object_score", "iou_score",
            "head_score")
#: cues added after calibrations were first stored: a calibration without them gives them no weight
LATER_FEATURES = ("head_score",)
BASELINE_THRESHOLD = 0.5


def candidate_weights(candidates) -> np.ndarray:
    return np.array([max(c.score, 0.0) * np.sqrt(max(c.area, 1)) for c in candidates], dtype=np.float64)


def candidate_entropy(candidates) -> float:
    """0 for at most one region; 1 for two equally strong ones (more regions can exceed 1, clipped)."""
    if len(candidates) < 2:
        return 0.0
    w = candidate_weights(candidates)
    p = w / max(w.sum(), 1e-12)
    entropy = -(p * np.log(p + 1e-12)).sum()
    return float(min(1.0, entropy / np.log(2)))


def ambiguity_features(candidates, prob_low: np.ndarray, uncertainty_low: np.ndarray, object_prob: float,
                       iou_score: float, head_prob: float | None = None) -> dict[str, float]:
    """The cues of one prediction. prob_low / uncertainty_low: h×w arrays on the same (low-res) grid;
    object_prob: σ(object logit); iou_score: the decoder's predicted IoU; head_prob: the ambiguity head's
    probability, or None (no head, or no text this turn)."""
    w = candidate_weights(candidates)
    second = float(np.sort(w)[-2] / w.max()) if len(w) >= 2 and w.max() > 0 else 0.0
    region = (prob_low > 0.5) | (uncertainty_low > 0.5)
    unc = float(uncertainty_low[region].mean()) if region.any() else float(uncertainty_low.mean())
    return {
        "candidate_entropy": candidate_entropy(candidates),
        "n_candidates": float(np.log1p(len(candidates))),
        "second_share": second,
        "uncertainty": unc,
        "object_score": float(object_prob),
        "iou_score": float(iou_score),
        "head_score": 0.0 if head_prob is None else float(head_prob),
    }


@dataclass
class AmbiguityCalibration:
    """Logistic regression over :data:`FEATURES` plus the flag threshold, fitted on validation data.

    score = σ(bias + Σ weights[f] · (x[f] − mean[f]) / std[f]); ambiguous = score ≥ threshold, chosen so the
    flag's precision on the validation data is at least ``target_precision`` (``precision`` and ``recall``
    are what it reached there, on ``n`` predictions of which ``n_ambiguous`` were ambiguous).
    """

    weights: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]
    bias: float
    threshold: float
    target_precision: float
    precision: float
    recall: float
    n: int
    n_ambiguous: int
    data: str = ""

    def score(self, features: dict[str, float]) -> float:
        return logistic_score(features, FEATURES, self.weights, self.mean, self.std, self.bias)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AmbiguityCalibration:
        d = dict(d)
        later = [f for f in LATER_FEATURES if f not in d.get("weights", {})]
        if later and "weights" in d:  # fitted before these cues existed: they get no weight
            d["weights"] = {**d["weights"], **dict.fromkeys(later, 0.0)}
            d["mean"] = {**d.get("mean", {}), **dict.fromkeys(later, 0.0)}
            d["std"] = {**d.get("std", {}), **dict.fromkeys(later, 1.0)}
        missing = [f for f in FEATURES if f not in d.get("weights", {})]
        if missing:
            raise DataError(f"Ambiguity calibration lacks weights for {missing}; re-run `rrsis calibrate`.")
        return cls(**d)


def score_and_flag(features: dict[str, float], calibration: AmbiguityCalibration | None) -> tuple[float, bool]:
    """(ambiguity score in [0, 1], flag)."""
    if calibration is None:
        s = features["candidate_entropy"]
        return s, s >= BASELINE_THRESHOLD
    s = calibration.score(features)
    return s, s >= calibration.threshold


def fit_calibration(features: list[dict[str, float]], labels: list[bool], target_precision: float = 0.8,
                    l2: float = 1e-2, iterations: int = 50, data: str = "") -> AmbiguityCalibration:
    """Fit the logistic regression (Newton steps, L2 on the weights) and pick the threshold.

    The threshold is the lowest score whose flag reaches ``target_precision`` on these data (highest
    recall at that precision); if no threshold reaches it, the one with the best precision is used and
    ``precision`` says so.
    """
    y = np.asarray(labels, dtype=np.float64)
    if len(y) < 10 or y.sum() < 2 or (1 - y).sum() < 2:
        raise DataError(f"Calibration needs at least 10 predictions with both labels (≥ 2 each); got {len(y)} "
                        f"with {int(y.sum())} ambiguous. Use a larger validation set (e.g. synthetic:val:300).")
    x = np.array([[f[k] for k in FEATURES] for f in features], dtype=np.float64)
    w, mean, std, bias = fit_logistic(x, y, l2, iterations)
    scores = logistic(bias + ((x - mean) / std) @ w)
    threshold, precision, recall = _threshold_for_precision(scores, y.astype(bool), target_precision)
    names = list(FEATURES)
    return AmbiguityCalibration(
        weights={k: float(v) for k, v in zip(names, w, strict=True)},
        mean={k: float(v) for k, v in zip(names, mean, strict=True)},
        std={k: float(v) for k, v in zip(names, std, strict=True)},
        bias=bias, threshold=threshold, target_precision=float(target_precision),
        precision=precision, recall=recall, n=len(y), n_ambiguous=int(y.sum()), data=data,
    )


def logistic(z):
    """σ(z), clipped to |z| ≤ 30 (array or float)."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def logistic_score(features: dict[str, float], names, weights: dict[str, float], mean: dict[str, float],
                   std: dict[str, float], bias: float) -> float:
    """σ(bias + Σ weights[f] · (features[f] − mean[f]) / std[f]) over the cue ``names`` (a fitted
    :func:`fit_logistic`)."""
    return float(logistic(bias + sum(weights[f] * (features[f] - mean[f]) / std[f] for f in names)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2,
                 iterations: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Fit p = σ(bias + ((x − mean) / std) · w) to targets ``y`` in [0, 1] (labels, or fractions such as IoUs) by
    Newton steps on the mean cross-entropy, with L2 ``l2`` on w (not on the bias). x: N×F features, standardised
    here (a constant feature gets std 1). Returns (w F, mean F, std F, bias)."""
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-6] = 1.0
    xs = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    w = np.zeros(xs.shape[1])
    reg = np.full(xs.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iterations):
        p = logistic(xs @ w)
        grad = xs.T @ (p - y) / len(y) + reg * w
        hess = (xs.T * (p * (1 - p))) @ xs / len(y) + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[1:], mean, std, float(w[0])


def _threshold_for_precision(scores: np.ndarray, labels: np.ndarray, target: float) -> tuple[float, float, float]:
    """(threshold, precision, recall) of the flag ``score ≥ threshold`` with the highest recall whose
    precision ≥ target; falls back to the best precision."""
    best = None  # (reaches target, recall or precision, threshold, precision, recall)
    n_pos = max(int(labels.sum()), 1)
    for t in np.unique(scores):
        flag = scores >= t
        tp = int((flag & labels).sum())
        prec = tp / max(int(flag.sum()), 1)
        rec = tp / n_pos
        key = (prec >= target, rec if prec >= target else prec, -t)
        if best is None or key > best[0]:
            best = (key, float(t), prec, rec)
    _, t, prec, rec = best
    return t, float(prec), float(rec)
