"""How many clicks a better click placement could save: the standard protocol against a greedy oracle.

For the first N records of DATA (any `rrsis eval --data` spec), a session runs the text turn and then clicks until
IoU 0.9 (at most 20 clicks) twice: with the standard click (:func:`rrsis_engine.metrics.next_click`, the centre of
the largest error region) and with the greedy oracle — each of the centres of the three largest false-negative and
three largest false-positive regions (:func:`rrsis_engine.metrics.error_region_clicks`) is clicked, labelled from the
ground truth, and undone, and the one with the best IoU is kept. Both need the ground truth; the oracle is what a
click-policy head (`rrsis train --click-policy-head`) learns to imitate, so its NoC is that head's upper bound.
Zoom-in pinned on, as in `rrsis eval`.

    .venv/bin/python scripts/greedy_click_oracle.py MODEL DATA N    # e.g. rsam-lite synthetic:val:20:256 20
"""

import sys

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor
from rrsis_engine.session import RefinementSession


def trajectory(predictor, rec: dict, greedy: bool, stop_iou: float = 0.9) -> list[float]:
    """IoU after 0, 1, ... clicks until ``stop_iou`` or :data:`rrsis_engine.metrics.MAX_CLICKS` clicks."""
    gt = np.asarray(rec["mask"], bool)
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    mask = session.text(rec["expression"]).mask
    ious = [M.iou(mask, gt)]
    while len(ious) <= M.MAX_CLICKS and ious[-1] < stop_iou:
        click = M.next_click(mask, gt)
        if greedy and click is not None:
            tried = []
            for x, y, label in M.error_region_clicks(mask, gt):
                tried.append((M.iou(session.click(x, y, positive=bool(label)).mask, gt), (x, y, label)))
                session.undo()
            click = max(tried, key=lambda t: t[0])[1]
        if click is None:
            ious.append(ious[-1])
            continue
        mask = session.click(click[0], click[1], positive=bool(click[2])).mask
        ious.append(M.iou(mask, gt))
    return ious


def main(model: str, data: str, n: int) -> None:
    predictor = load_predictor(model, device="cpu", disk_cache=False, zoom_in=True)
    runs = {"standard": [], "greedy oracle": []}
    for i, rec in enumerate(load_records(data)):
        if i >= n:
            break
        for name, greedy in (("standard", False), ("greedy oracle", True)):
            runs[name].append(trajectory(predictor, rec, greedy))
    for name, trajectories in runs.items():
        noc = {t: np.mean([M.clicks_to_reach(x, t) for x in trajectories]) for t in (0.85, 0.9)}
        print(f"{name}: NoC@85 {noc[0.85]:.2f}, NoC@90 {noc[0.9]:.2f} ({len(trajectories)} records)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
