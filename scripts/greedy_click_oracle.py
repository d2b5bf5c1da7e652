"""How many clicks a better click placement could save: the standard protocol against greedy oracles.

For the first N records of DATA (any `rrsis eval --data` spec), a session runs the text turn and then clicks until
IoU 0.9 (at most 20 clicks), once per mode:

* standard — the standard click (:func:`rrsis_engine.metrics.next_click`, the centre of the largest error region);
* oracle — each of the centres of the three largest false-negative and three largest false-positive regions
  (:func:`rrsis_engine.metrics.error_region_clicks`) is clicked, labelled from the ground truth, and undone, and the
  one with the best IoU is kept: what a click-policy head (`rrsis train --click-policy-head`) learns to imitate;
* visible — the same greedy choice among the places the *model* can point to, which is what any suggested-click
  rule chooses from: the centres of the three largest regions the turn's uncertainty map marks as likely wrong
  (σ(E) > 0.5) inside the mask and the three largest outside it, and the current suggested click — each kept only
  where it lies on a wrong pixel, with the standard click as the fallback, as `rrsis eval --click-policy suggested`
  does. Its NoC is the ceiling of any suggestion rule over these places under that protocol.

All need the ground truth. Zoom-in pinned on, as in `rrsis eval`.

    .venv/bin/python scripts/greedy_click_oracle.py MODEL DATA N [MODES]   # e.g. rsam-lite synthetic:val:100:256 100
                                                                          # MODES default: standard,oracle,visible
"""

import itertools
import sys

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession

MODES = ("standard", "oracle", "visible")


def visible_places(pred, per_side: int = 3) -> list[tuple[float, float]]:
    """(x, y) places the model can point to after a turn: the interior points of the ``per_side`` largest likely-wrong
    regions (``pred.uncertainty`` > 0.5) inside and outside ``pred.mask``, and ``pred.suggested_click``."""
    likely = pred.uncertainty > 0.5
    places = [M.region_centre(region) for side in (pred.mask, ~pred.mask)
              for _, region in M.largest_regions(likely & side, per_side)]
    if pred.suggested_click is not None:
        places.append(tuple(pred.suggested_click[:2]))
    return places


def trajectory(predictor, rec: dict, mode: str, stop_iou: float = 0.9) -> list[float]:
    """IoU after 0, 1, ... clicks until ``stop_iou`` or :data:`rrsis_engine.metrics.MAX_CLICKS` clicks."""
    gt = np.asarray(rec["mask"], bool)
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    pred = session.text(rec["expression"])
    ious = [M.iou(pred.mask, gt)]
    while len(ious) <= M.MAX_CLICKS and ious[-1] < stop_iou:
        click = M.next_click(pred.mask, gt)
        if mode != "standard" and click is not None:
            if mode == "oracle":
                options = M.error_region_clicks(pred.mask, gt)
            else:  # the model's places where they lie on a wrong pixel, labelled truthfully; the standard click else
                options = [click]
                for x, y in visible_places(pred):
                    row, col = int(round(y)), int(round(x))
                    if pred.mask[row, col] != gt[row, col]:
                        options.append((x, y, int(gt[row, col])))
            tried = []
            for x, y, label in options:
                tried.append((M.iou(session.click(x, y, positive=bool(label)).mask, gt), (x, y, label)))
                session.undo()
            click = max(tried, key=lambda t: t[0])[1]
        if click is None:
            ious.append(ious[-1])
            continue
        pred = session.click(click[0], click[1], positive=bool(click[2]))
        ious.append(M.iou(pred.mask, gt))
    return ious


def main(model: str, data: str, n: int, modes: list[str]) -> None:
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    predictor = load_predictor(model, device="cpu", disk_cache=False, zoom_in=True)
    records = list(itertools.islice(load_records(data), n))
    for mode in modes:
        trajectories = [trajectory(predictor, rec, mode) for rec in records]
        noc = {t: np.mean([M.clicks_to_reach(x, t) for x in trajectories]) for t in (0.85, 0.9)}
        print(f"{mode}: NoC@85 {noc[0.85]:.2f}, NoC@90 {noc[0.9]:.2f} ({len(trajectories)} records)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",") if len(sys.argv) > 4 else list(MODES))
