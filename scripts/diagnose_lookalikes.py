"""Where do a model's text-only masks go, and what would choosing among their regions be worth?

For each record of a data source with look-alike labels (the synthetic generator's and `rrsis data from-masks`'
``distractors_mask`` / ``candidates_mask``), the text turn's mask is sorted into: right (IoU ≥ 0.5), look-alike
(most of its pixels on objects the sentence rules out or on other candidates), partial (covers > 30 % of the target),
elsewhere, empty — counted by expression kind. Then the upper bound of the component ranker
(:mod:`rrsis_engine.model.component_ranker`): the mIoU of the best single connected region of p > τ, chosen with the
ground truth, for several τ.

    .venv/bin/python scripts/diagnose_lookalikes.py [DATA] [MODEL]   # default: synthetic:val:100:256, rsam-lite
"""

import collections
import sys

import numpy as np
import torch
from scipy import ndimage

from rrsis_engine.data.readers import load_records
from rrsis_engine.metrics import iou
from rrsis_engine.postprocess import sigmoid
from rrsis_engine.predictor import load_predictor

THRESHOLDS = (0.5, 0.3, 0.2, 0.1, 0.05)
OUTCOMES = ("right", "look-alike", "partial", "elsewhere", "empty")


def outcome(mask: np.ndarray, target: np.ndarray, others: np.ndarray) -> str:
    if iou(mask, target) >= 0.5:
        return "right"
    if not mask.any():
        return "empty"
    if (mask & others).sum() > 0.5 * mask.sum():
        return "look-alike"
    return "partial" if (mask & target).sum() > 0.3 * target.sum() else "elsewhere"


def main(data: str = "synthetic:val:100:256", model: str | None = None) -> None:
    torch.set_num_threads(1)
    predictor = load_predictor(model, device="cpu")
    kinds, outcomes, ious = [], [], []
    best = {t: [] for t in THRESHOLDS}
    for rec in load_records(data):
        predictor.set_image(rec["image"])
        pred = predictor.predict(rec["expression"])
        target = rec["mask"].astype(bool)
        others = np.zeros_like(target)
        for key in ("distractors_mask", "candidates_mask"):
            if rec.get(key) is not None:
                others |= rec[key].astype(bool) & ~target
        kinds.append(rec.get("kind") or "?")
        outcomes.append(outcome(pred.mask, target, others))
        ious.append(iou(pred.mask, target))
        prob = sigmoid(pred.logits)
        for t in THRESHOLDS:
            labels, n = ndimage.label(prob > t)
            best[t].append(max([iou(labels == i, target) for i in range(1, n + 1)], default=0.0))
    kinds, ious = np.array(kinds), np.array(ious)
    print(f"{'kind':10s} {'n':>4s} {'mIoU':>6s} " + " ".join(f"{o:>10s}" for o in OUTCOMES))
    for k in [*sorted(set(kinds)), "all"]:
        sel = np.ones(len(kinds), bool) if k == "all" else kinds == k
        count = collections.Counter(o for o, s in zip(outcomes, sel, strict=True) if s)
        print(f"{k:10s} {sel.sum():4d} {ious[sel].mean():6.3f} " + " ".join(f"{count[o]:10d}" for o in OUTCOMES))
    print("best single region of p > τ, chosen with the ground truth:")
    for t in THRESHOLDS:
        print(f"  τ = {t}: mIoU {np.mean(best[t]):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
