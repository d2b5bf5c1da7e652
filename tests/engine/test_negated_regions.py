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


def test_a_negative_click_in_a_hole_of_a_part_removes_that_part_and_only_its_pixels():
    """The model (or the edge snap) cut the clicked spot out of look-alike B; the click still means B."""
    mask = _three_blobs()
    mask[20:30, 70:80] = False  # a hole in B around the click
    negated = postprocess.negated_regions(mask, [[25, 25], [75, 25]], [1, 0])
    assert np.array_equal(negated, mask & (np.arange(160) >= 60)[None] & (np.arange(160) < 90)[None])
    assert not negated[20:30, 70:80].any()  # the hole is not part of the mask and stays out of what goes


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
    # without the spatial words: "the roof" is about one object, whose negative-click turn shows one look-alike alone
    kw = dict(device="cpu", disk_cache=False, zoom_in=False, edge_refine=False, spatial_words=False)
    on, off = Predictor(tiny_model, **kw), Predictor(tiny_model, remove_negated_regions=False, **kw)
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


def _crossing_roads():
    """A horizontal road (rows 75–84, the whole width) crossed by a vertical one (cols 95–104), 160×200."""
    mask = np.zeros((160, 200), bool)
    mask[75:85, :] = True
    mask[:, 95:105] = True
    return mask


def test_a_negative_click_on_a_crossing_road_removes_that_road_on_both_sides_of_the_crossing():
    mask = _crossing_roads()
    # (x, y): positive on the horizontal road, negative on the vertical one above the crossing
    negated = postprocess.negated_strips(mask, [[30, 80], [100, 30]], [1, 0])
    assert negated[:75, 95:105].all() and negated[85:, 95:105].all()  # beyond the crossing too
    assert not negated[:, :90].any() and not negated[:, 110:].any()  # the horizontal road stays
    assert not postprocess.negated_regions(mask, [[30, 80], [100, 30]], [1, 0]).any()  # one part: the old rule can't


@pytest.mark.parametrize("points, labels", [
    ([[100, 30], [100, 140]], [0, 1]),  # the negative click's strip holds a positive click: the labeller trims it
    ([[116, 30]], [0]),  # beside the road, not on it
    ([[104, 30]], [0]),  # on the road's edge pixel: trimming a spill along it, not removing it
    ([[30, 80]], [1]),  # no negative click
])
def test_no_strip_goes_without_a_negative_click_on_a_strip_of_its_own(points, labels):
    assert not postprocess.negated_strips(_crossing_roads(), points, labels).any()


def test_a_negative_click_on_a_compact_part_removes_no_strip():
    square = np.zeros((160, 200), bool)
    square[40:120, 60:140] = True
    assert not postprocess.negated_strips(square, [[100, 80]], [0]).any()


def test_strips_larger_than_the_rest_of_the_mask_are_never_removed():
    mask = np.zeros((160, 200), bool)
    mask[75:85, :60] = True  # a short horizontal stub (600 px) on a long vertical road (1 600 px)
    mask[:, 95:105] = True
    assert not postprocess.negated_strips(mask, [[20, 80], [100, 30]], [1, 0]).any()


def test_the_predictor_removes_a_negated_crossing_strip(tiny_model, monkeypatch):
    """The model's logits are a cross (decode patched): a positive click on one arm and a negative one on the other
    leave only the first in the shown mask."""
    image = np.full((256, 256, 3), 120, np.uint8)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    grid = predictor.image_size // 4
    low = torch.full((1, 1, grid, grid), -8.0)
    mid, half = grid // 2, max(1, grid // 32)
    low[..., mid - 2 * half:mid + 2 * half, :] = 8.0  # a wide horizontal road
    low[..., :, mid - half:mid + half] = 8.0  # a narrow vertical one (less than half the mask, or nothing goes)
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    predictor.set_image(image)
    pred = predictor.predict("the road", points=[[20, 128], [128, 20]], labels=[1, 0])
    assert pred.mask[128, 20] and pred.mask[128, 236]  # the horizontal road, both ends
    assert not pred.mask[:100, 120:136].any() and not pred.mask[160:, 120:136].any()  # the vertical one is gone


def test_a_look_alike_the_model_cut_at_the_click_goes_whole_given_the_previous_mask():
    """The labeller clicked "not this" in the middle of look-alike B; the model removed only a band around the click,
    leaving two pieces of B beside it. In the previous mask (what the labeller clicked on) the click lies deep in B."""
    previous = _three_blobs()
    mask = previous.copy()
    mask[10:40, 70:80] = False  # B cut in two around the click
    points, labels = [[25, 25], [75, 25]], [1, 0]  # (x, y): positive on A, negative on B
    assert not postprocess.negated_by_clicks(mask, points, labels).any()  # the click lies in the cut: no part
    negated = postprocess.negated_by_clicks(mask, points, labels, previous=previous)
    assert np.array_equal(negated, mask & (np.arange(160) >= 60)[None] & (np.arange(160) < 90)[None])


def test_a_negative_click_on_a_bridge_between_two_parts_removes_neither():
    """The previous mask joined A and C by a thin spill; a click on it trims the spill, it does not reject A + C."""
    previous = _three_blobs()
    previous[23:27, 40:110] = True  # a 4-pixel bridge from A to C (through B)
    previous[27:60, 106:110] = True
    mask = _three_blobs()  # the model removed the bridge
    negated = postprocess.negated_by_clicks(mask, [[100, 25]], [0], previous=previous)  # on the bridge, between B and C
    assert not negated.any()


def test_a_negative_click_in_a_hole_closed_by_several_parts_is_on_none_of_them():
    """A fragmented mask: the hole at (5, 5) is closed by four bars that touch only at its sides, and the part it is
    given (the top bar, rows 1–4) does not reach the click's row. The click lies off every part: nothing deep is
    removed (it used to index the top bar's depth map out of range; found on a random model's fragmented mask)."""
    previous = np.zeros((11, 11), bool)
    previous[1:5, 5] = True  # top bar, ends at row 4
    previous[6:10, 5] = True  # bottom bar
    previous[5, 1:5] = True  # left bar
    previous[5, 6:10] = True  # right bar
    negated = postprocess.negated_previous_parts(previous, previous, np.array([[5.0, 5.0]]), np.array([0]))
    assert not negated.any()


def _canal(cut: bool):
    """A horizontal strip 16 pixels wide across a 160×200 image; cut: without columns 90–109 (the model's answer to a
    negative click at its middle)."""
    mask = np.zeros((160, 200), bool)
    mask[70:86] = True
    if cut:
        mask[:, 90:110] = False
    return mask


def test_before_any_positive_click_a_deep_negative_click_rejects_the_part_even_when_it_is_the_whole_mask():
    """ "the building beside the canal" found the canal: a negative click on its axis removes what is left of it."""
    negated = postprocess.negated_by_clicks(_canal(cut=True), [[100, 78]], [0], previous=_canal(cut=False))
    assert np.array_equal(negated, _canal(cut=True))


def test_a_deep_negative_click_trims_the_object_the_words_chose_and_does_not_reject_it():
    """ "the road nearest to the blue car" chose the road by geometry: a negative click on it (at a crossing the ground
    truth gives to the other road) trims it, as after a positive click (synthetic test scene 114: 0.89 → 0.00)."""
    negated = postprocess.negated_by_clicks(_canal(cut=True), [[100, 78]], [0], previous=_canal(cut=False),
                                            trim_only=True)
    assert not negated.any()


def test_a_deep_negative_click_does_not_reject_the_mask_of_a_class_sentence():
    """ "segment every road" found the road network and a car park beside it: a negative click deep in the car park
    leaves what the model's answer kept, not an empty mask (synthetic validation scene 252: 0.90 → 0.00)."""
    negated = postprocess.negated_by_clicks(_canal(cut=True), [[100, 78]], [0], previous=_canal(cut=False),
                                            class_sentence=True)
    assert not negated.any()


@pytest.mark.parametrize("points, labels", [
    ([[100, 78], [20, 78]], [0, 1]),  # a positive click on the strip: the labeller trims the target
    ([[100, 78], [100, 20]], [0, 1]),  # a positive click elsewhere: the strip is most of the mask, so it stays
    ([[100, 72]], [0]),  # near the strip's edge, not deep in it
])
def test_a_part_that_is_most_of_the_mask_stays_after_a_positive_click_or_an_edge_click(points, labels):
    negated = postprocess.negated_by_clicks(_canal(cut=True), points, labels, previous=_canal(cut=False))
    assert not negated.any()


def test_the_predictor_reads_the_previous_mask_from_the_prior(tiny_model, monkeypatch):
    """The model's logits are look-alike A and a look-alike B cut around the negative click (decode patched); with the
    prior (B whole) as mask_input the pieces of B go, without a prior they stay."""
    image = np.full((256, 256, 3), 120, np.uint8)
    # spatial words off: with them "the roof" is one object, and the positive click on A alone would drop B
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                          spatial_words=False)
    grid = predictor.image_size // 4
    s = grid // 8
    prior = torch.full((1, 1, grid, grid), -8.0)
    prior[..., s:3 * s, s:3 * s] = 8.0  # A, top left
    prior[..., 5 * s:7 * s, 5 * s:7 * s] = 8.0  # B, bottom right
    low = prior.clone()
    low[..., 5 * s:7 * s, 6 * s - 2:6 * s + 2] = -8.0  # B cut through its middle column
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    predictor.set_image(image)
    kwargs = {"points": [[64, 64], [192, 192]], "labels": [1, 0]}  # (x, y): positive on A, negative in B's cut
    without = predictor.predict("the roof", **kwargs)
    assert without.mask[192, 165] and without.mask[192, 220]  # both pieces of B
    cut = predictor.predict("the roof", mask_input=prior, **kwargs)
    assert not cut.mask[160:224, 160:224].any() and cut.mask[64, 64]
    removed = without.mask & ~cut.mask
    assert removed.any() and (cut.uncertainty[removed] == 0).all()  # what the labeller removed is settled
    assert (without.uncertainty[removed] > 0).all()
    np.testing.assert_array_equal(cut.low_res_logits.numpy(), without.low_res_logits.numpy())


def _square(size=120, lo=20, hi=100):
    mask = np.zeros((size, size), bool)
    mask[lo:hi, lo:hi] = True
    return mask


def test_a_negative_click_in_the_middle_of_an_object_the_model_kept_rejects_it():
    """ "the smallest body of water" chose the sea: a negative click in its middle, answered by a hole around the
    click, rejects the whole part (real held-out tile6 009-000: IoU 0.00 for 20 clicks)."""
    answer = _square()
    answer[55:65, 55:65] = False  # the model's answer: a hole at the click
    rejected = postprocess.rejected_choice(_square(), answer, 60, 60)
    assert rejected is not None and np.array_equal(rejected, _square())


def test_the_rejected_object_takes_the_parts_of_the_answer_that_overlap_it():
    answer = _square()
    answer[20:100, 100:110] = True  # the model's answer grew the sea by a strip
    answer[5:10, 5:10] = True  # and a separate pond it does not touch
    rejected = postprocess.rejected_choice(_square(), answer, 60, 60)
    assert rejected[50, 105] and not rejected[7, 7]


@pytest.mark.parametrize("x, y, cut", [
    (25, 60, False),  # near the rim: a trim
    (60, 60, True),  # the model's answer removed half of it: it listened
    (5, 5, False),  # off the mask
])
def test_a_negative_click_the_model_answered_or_on_the_rim_rejects_nothing(x, y, cut):
    answer = _square()
    if cut:
        answer[:, 60:] = False
    assert postprocess.rejected_choice(_square(), answer, x, y) is None


def test_a_negative_click_on_the_axis_of_a_road_rejects_nothing():
    """ "The bottommost street" chose the right road; the click on its crossing with another road, as deep as any
    pixel on the road's axis, trims it (synthetic validation 079: two clicks 0.92 -> 0.00 without this)."""
    assert postprocess.rejected_choice(_canal(cut=False), _canal(cut=False), 100, 78) is None


@pytest.mark.parametrize("click, rejected", [((128, 128), True), ((70, 128), False)])
def test_the_predictor_rejects_the_object_the_words_chose_when_the_model_keeps_it(tiny_model, monkeypatch, click,
                                                                                  rejected):
    """ "The smallest lake" chose a large square; the model answers a negative click in its middle with a hole there
    (decode patched). The square goes, from the mask and the next turn's prior; a click near its rim only trims."""
    from rrsis_engine.model import transforms as T
    from rrsis_engine.model.component_ranker import SELECTED_LOGIT
    from rrsis_engine.spatial_language import SpatialSpec

    image = np.full((256, 256, 3), 120, np.uint8)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    square = np.zeros((256, 256), bool)
    square[64:192, 64:192] = True
    chosen = np.where(square, 10.0, -10.0).astype(np.float32)
    chosen.setflags(write=False)
    chosen_low = T.image_logits_to_model(chosen, predictor.image_size // 4)
    monkeypatch.setattr(predictor, "_spatial_object", lambda *a: (SpatialSpec("water", size="smallest"), chosen,
                                                                  chosen_low))
    answer = np.where(square, 10.0, -10.0).astype(np.float32)
    answer[click[1] - 6:click[1] + 6, click[0] - 6:click[0] + 6] = -10.0  # a hole at the click
    answer_low = T.image_logits_to_model(answer, predictor.image_size // 4)
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (answer_low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    predictor.set_image(image)
    text_turn = predictor.predict("the smallest lake")
    assert np.array_equal(text_turn.mask, square)
    turn = predictor.predict("the smallest lake", points=[click], labels=[0], mask_input=text_turn.low_res_logits,
                             previous_mask=text_turn.mask)
    if rejected:
        assert not turn.mask.any()
        cells = T.image_logits_to_model(np.where(square, 1.0, -1.0), predictor.image_size // 4) > 0
        assert (turn.low_res_logits[cells] <= -SELECTED_LOGIT).all()
    else:
        assert turn.mask[128, 128] and turn.mask.sum() > 0.9 * square.sum()
