"""Trainability: rsam-tiny learns the easy task ("the red square" vs "the blue circle" on plain backgrounds)
from scratch in a few hundred steps (fixture ``easy_task_model``, which also sees twin scenes), and a
correction click on a poorly segmented object raises its IoU."""

import numpy as np
import pytest


def _iou(a, b):
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.slow
def test_rsam_tiny_learns_the_easy_task_and_clicks_help(easy_task_model):
    from rrsis_train.clicks import sample_correction_click
    from rrsis_train.easy import easy_sample

    from rrsis_engine.predictor import Predictor

    size = 128
    # inference in float32, as the model was trained (the bf16 encoder's rounding moves IoUs here by up to 0.007, as
    # much as the click-gain margin of the few missed-part cases below)
    predictor = Predictor(easy_task_model, device="cpu", disk_cache=False, encoder_precision="fp32")
    text_only, after_click, missed_before, missed_after = [], [], [], []
    for n in range(10**6, 10**6 + 24):  # item numbers never used in training
        rec = easy_sample(n, size=size)
        predictor.set_image(rec["image"])
        pred = predictor.predict(rec["expression"])
        i0 = _iou(pred.mask, rec["mask"])
        click = sample_correction_click(pred.mask, rec["mask"], np.random.default_rng(n), center_prob=1.0)
        i1 = i0
        if click is not None:
            pred1 = predictor.predict(rec["expression"], points=np.array([click[:2]], np.float32),
                                      labels=np.array([click[2]]), mask_input=pred.low_res_logits)
            i1 = _iou(pred1.mask, rec["mask"])
        text_only.append(i0)
        after_click.append(i1)
        if click is not None and click[2] == 1 and i0 < 0.8:  # part of the object was missed
            missed_before.append(i0)
            missed_after.append(i1)
    assert np.mean(text_only) > 0.8, np.round(text_only, 2)
    assert np.mean(after_click) >= np.mean(text_only)
    if missed_before:  # a positive click on the missed part raises IoU where it was needed
        assert np.mean(missed_after) > np.mean(missed_before)
