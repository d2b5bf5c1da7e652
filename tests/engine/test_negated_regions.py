"""A negative click on a separate part of the mask removes that part whole (rrsis_engine.postprocess.negated_regions
and its wiring in the predictor)."""

import numpy as np
import pytest
import torch

from rrsis_engine import postprocess
from rrsis_engine.predictor import Predictor


def _three_blobs():
    mask = np.zeros((100, 160), bool)
    mask[10:40, 10:40] = True  # A
    mask[10:40, 60:90] = True  # B
    mask[60:90, 110:150] = True  # C
    return mask


def test_the_part_under_a_negative_click_goes_and_the_others_stay():
    mask = _three_blobs()
    negated = postprocess.negated_regions(mask, [[25, 25], [75, 25]], [1, 0])  # (x, y): positive on A, negative on B
    assert negated[10:40, 60:90].all() and negated.sum() == 30 * 30


@pytest.mark.parametrize("points, labels", [
    ([[75, 25], [80, 30]], [0, 1]),  # the part also holds a positive click: the labeller trims it, not removes it
    ([[75, 25], [5, 95]], [1, 0]),  # the negative click is on the background
    ([[75, 25]], [1]),  # no negative click
])
def test_nothing_is_removed_without_a_negative_click_on_a_part_of_its_own(points, labels):
    assert not postprocess.negated_regions(_three_blobs(), points, labels).any()


def test_parts_larger_than_the_rest_of_the_mask_are_never_removed():
    one = np.zeros((50, 50), bool)
    one[10:30, 10:30] = True
    assert not postprocess.negated_regions(one, [[20, 20]], [0]).any()
    assert not postprocess.negated_regions(_three_blobs(), [[25, 25], [75, 25], [130, 75]], [0, 0, 0]).any()
    big_and_small = np.zeros((100, 160), bool)
    big_and_small[10:90, 10:90] = True
    big_and_small[10:30, 120:140] = True
    assert not postprocess.negated_regions(big_and_small, [[50, 50]], [0]).any()  # 6 400 px against 400
    assert postprocess.negated_regions(big_and_small, [[130, 20]], [0]).sum() == 400


def test_the_predictor_removes_a_negated_look_alike(tiny_model, monkeypatch):
    """The model's logits are two blobs (decode patched); a negative click on one removes it from the shown mask,
    not from the prior the next turn gets."""
    image = np.full((256, 256, 3), 120, np.uint8)
    on = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    off = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                    remove_negated_regions=False)
    grid = on.image_size // 4
    low = torch.full((1, 1, grid, grid), -8.0)
    s = grid // 8
    low[..., s:3 * s, s:3 * s] = 8.0  # top left blob
    low[..., 5 * s:7 * s, 5 * s:7 * s] = 8.0  # bottom right blob
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    preds = {}
    for name, p in (("on", on), ("off", off)):
        p.set_image(image)
        preds[name] = p.predict("the roof", points=[[192, 192]], labels=[0])
    assert preds["off"].mask[192, 192] and preds["off"].mask[64, 64]
    assert not preds["on"].mask[160:224, 160:224].any() and preds["on"].mask[64, 64]
    np.testing.assert_array_equal(preds["on"].low_res_logits.numpy(), preds["off"].low_res_logits.numpy())
