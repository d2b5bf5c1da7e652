"""Metric functions against hand-computed values, and the click simulation with a mask oracle."""

import numpy as np
import pytest
from scipy import ndimage

from rrsis_engine import metrics as M


def _mask(h, w, *boxes):
    m = np.zeros((h, w), bool)
    for r0, r1, c0, c1 in boxes:
        m[r0:r1, c0:c1] = True
    return m


def test_iou_hand_computed():
    gt = _mask(10, 10, (0, 4, 0, 4))  # 16 px
    pred = _mask(10, 10, (2, 6, 2, 6))  # 16 px, overlap 2×2 = 4
    assert M.intersection_union(pred, gt) == (4, 28)
    assert M.iou(pred, gt) == pytest.approx(4 / 28)
    assert M.iou(gt, gt) == 1.0


def test_iou_empty_masks():
    empty = np.zeros((5, 5), bool)
    assert M.iou(empty, empty) == 1.0
    assert M.iou(empty, _mask(5, 5, (0, 1, 0, 1))) == 0.0
    assert M.iou(_mask(5, 5, (0, 1, 0, 1)), empty) == 0.0


def test_summary_miou_oiou_precision():
    acc = M.IoUAccumulator()
    gt1 = _mask(10, 10, (0, 10, 0, 10))  # 100 px
    pred1 = _mask(10, 10, (0, 10, 0, 5))  # I=50, U=100 -> 0.5
    gt2 = _mask(10, 10, (0, 2, 0, 2))  # 4 px
    pred2 = _mask(10, 10, (0, 2, 0, 2))  # 1.0, I=U=4
    empty = np.zeros((10, 10), bool)
    assert acc.add(pred1, gt1) == 0.5
    assert acc.add(pred2, gt2) == 1.0
    assert acc.add(empty, empty) == 1.0  # I=U=0
    assert acc.add(empty, gt2) == 0.0  # I=0, U=4
    row = acc.summary()
    assert row["mIoU"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert row["oIoU"] == pytest.approx((50 + 4 + 0 + 0) / (100 + 4 + 0 + 4))
    assert row["P@0.5"] == 0.75 and row["P@0.6"] == 0.5 and row["P@0.9"] == 0.5
    assert set(row) == {"mIoU", "oIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"}


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        M.iou(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_next_click_positive_at_center_of_largest_fn_region():
    gt = _mask(21, 21, (5, 16, 5, 16))  # 11×11 square centred at (10, 10)
    pred = np.zeros_like(gt)
    assert M.next_click(pred, gt) == (10.0, 10.0, 1)


def test_next_click_negative_for_larger_fp_region():
    gt = _mask(30, 30, (0, 3, 0, 3))  # small FN (9 px)
    pred = gt.copy()
    pred[:, :] = False
    pred[10:25, 10:25] = True  # FP 225 px, centre (17, 17)
    x, y, label = M.next_click(pred, gt)
    assert label == 0 and (x, y) == (17.0, 17.0)
    assert M.next_click(gt, gt) is None


def test_next_click_treats_image_border_as_boundary():
    gt = _mask(20, 40, (0, 20, 0, 40))  # the whole image
    x, y, label = M.next_click(np.zeros_like(gt), gt)
    assert label == 1 and 9 <= y <= 10 and 9 <= x <= 30  # any point of the central ridge


def test_error_region_clicks_centre_each_of_the_largest_regions_of_both_kinds():
    gt = _mask(40, 40, (2, 9, 2, 9), (20, 23, 20, 23), (30, 31, 30, 31), (35, 36, 0, 1))  # missed: 49, 9, 1, 1 px
    pred = _mask(40, 40, (10, 15, 30, 35))  # one false positive, 25 px centred at (32, 12)
    clicks = M.error_region_clicks(pred, gt, per_kind=3)
    # the three largest false-negative regions, largest first (ties in label order), then the false positive
    assert clicks == [(5.0, 5.0, 1), (21.0, 21.0, 1), (30.0, 30.0, 1), (32.0, 12.0, 0)]
    assert M.next_click(pred, gt) in clicks
    assert M.error_region_clicks(pred, gt, per_kind=1) == [(5.0, 5.0, 1), (32.0, 12.0, 0)]
    assert M.error_region_clicks(gt, gt) == []


def test_noc_reaches_iou_one_with_mask_oracle():
    """Oracle: a positive click adds the GT component under it, a negative click removes the predicted
    component under it. Starting from a wrong text prediction, the simulated clicks fix it."""
    gt = _mask(64, 64, (5, 20, 5, 20), (40, 60, 40, 60), (5, 12, 50, 60))
    initial = _mask(64, 64, (5, 20, 5, 20), (30, 38, 5, 25))  # one right, one false positive, two missed
    state = {"mask": initial.copy()}

    def predict(clicks):
        x, y, label = clicks[-1]
        r, c = int(y), int(x)
        m = state["mask"].copy()
        if label == 1:
            lab, _ = ndimage.label(gt)
            assert lab[r, c] > 0, "positive click must land inside the ground truth"
            m |= lab == lab[r, c]
        else:
            lab, _ = ndimage.label(m & ~gt)
            assert lab[r, c] > 0, "negative click must land on a false positive"
            m &= lab != lab[r, c]
        state["mask"] = m
        return m

    ious, clicks = M.simulate_clicks(predict, gt, initial, max_clicks=20)
    assert ious[-1] == 1.0
    assert len(clicks) == 3  # largest error first: 20×20 FN, then 8×20 FP, then 7×10 FN
    assert [c[2] for c in clicks] == [1, 0, 1]
    assert M.clicks_to_reach(ious, 0.85) <= 3 and M.clicks_to_reach(ious, 1.0) == 3
    assert ious == sorted(ious)


def test_noc_counts_and_cap():
    assert M.clicks_to_reach([0.9, 0.95], 0.85) == 0
    assert M.clicks_to_reach([0.1, 0.5, 0.86], 0.85) == 2
    assert M.clicks_to_reach([0.1] * 21, 0.85) == 20
    assert M.noc([[0.9], [0.1, 0.5, 0.86], [0.1] * 21], 0.85) == pytest.approx((0 + 2 + 20) / 3)


def test_simulate_clicks_stops_and_pads_on_perfect_mask():
    gt = _mask(8, 8, (2, 4, 2, 4))
    ious, clicks = M.simulate_clicks(lambda c: gt, gt, gt, max_clicks=3)
    assert ious == [1.0, 1.0, 1.0, 1.0] and clicks == []
    ious, _ = M.simulate_clicks(lambda c: gt, gt, np.zeros_like(gt), max_clicks=3, stop_iou=0.9)
    assert ious == [0.0, 1.0]


def test_auroc_hand_computed():
    assert M.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert M.auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # pairs (pos, neg): (0.5 vs 0.5) tie = 0.5, (0.5 vs 0.1) = 1, (0.3 vs 0.5) = 0, (0.3 vs 0.1) = 1
    assert M.auroc([0.5, 0.3, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(2.5 / 4)
    assert M.auroc([0.1, 0.2], [1, 1]) is None
