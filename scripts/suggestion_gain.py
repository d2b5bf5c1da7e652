"""One-click gain of the model's suggested click against the standard (ground-truth) click.

For N synthetic validation scenes, a session runs the text turn and up to 4 standard correction clicks; at every
state it tries (then undoes) one click at the suggestion and one at the standard position, both labelled from the
ground truth, and reports the mean IoU gain of each and how often the suggestion fell on a wrong pixel. Per turn it
also reports how well each uncertainty map ranks the pixels the model has wrong (error-map AUROC): the model's
σ(U) (RUS, computed from image and text only) against the probability margin 1 − |2p − 1| of the current mask.

    .venv/bin/python scripts/suggestion_gain.py [MODEL] [N]      # default: rsam-lite 30
"""

import sys

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine import postprocess
from rrsis_engine.data.synthetic import SyntheticReferringDataset
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

TURNS = 4
PIXELS_PER_STATE = 4000


def main(model: str = "rsam-lite", n: int = 30) -> None:
    predictor = load_predictor(model, device="cpu", disk_cache=False)
    data = SyntheticReferringDataset("val", size=n, image_size=predictor.image_size)
    gains: dict[str, list[tuple[float, bool]]] = {"standard": [], "suggested": []}
    # per turn: sampled pixels as (wrong, σ(U), margin)
    pixels: list[list[np.ndarray]] = [[] for _ in range(TURNS)]
    rng = np.random.default_rng(0)
    for rec in data:
        gt = rec["mask"]
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        pred = session.text(rec["expression"])
        for turn in range(TURNS):
            standard = M.next_click(pred.mask, gt)
            if standard is None:
                break
            margin = postprocess.margin_uncertainty(postprocess.sigmoid(pred.logits))
            idx = rng.choice(gt.size, min(PIXELS_PER_STATE, gt.size), replace=False)
            pixels[turn].append(np.stack([(pred.mask != gt).ravel()[idx], pred.uncertainty.ravel()[idx],
                                          margin.ravel()[idx]], axis=1))
            tries = {"standard": standard[:2]}
            if pred.suggested_click is not None:
                tries["suggested"] = pred.suggested_click[:2]
            base = M.iou(pred.mask, gt)
            for name, (x, y) in tries.items():
                col = int(min(max(round(x), 0), gt.shape[1] - 1))
                row = int(min(max(round(y), 0), gt.shape[0] - 1))
                after = session.click(col, row, positive=bool(gt[row, col]))
                gains[name].append((M.iou(after.mask, gt) - base, bool(pred.mask[row, col]) != bool(gt[row, col])))
                session.undo()
            pred = session.click(standard[0], standard[1], positive=bool(standard[2]))
    for name, values in gains.items():
        g = np.array(values, dtype=np.float64).reshape(-1, 2)
        print(f"{name:10s} states {len(g):4d}  mean IoU gain {g[:, 0].mean():+.4f}  on a wrong pixel {g[:, 1].mean():.2f}")
    for turn, samples in enumerate(pixels):
        if not samples:
            continue
        p = np.concatenate(samples)
        wrong = p[:, 0] > 0
        print(f"after {turn} clicks: error-map AUROC σ(U) {M.auroc(p[:, 1], wrong):.3f}  "
              f"margin {M.auroc(p[:, 2], wrong):.3f}  ({wrong.mean():.1%} of pixels wrong)")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["rsam-lite"]), *(int(a) for a in sys.argv[2:3]))
