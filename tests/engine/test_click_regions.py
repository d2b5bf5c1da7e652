"""Colour regions grown from positive clicks (rrsis_engine.click_regions) and their wiring in the predictor."""

import numpy as np
import pytest

from rrsis_engine import click_regions as C
from rrsis_engine import postprocess as P


def _scene(seed=0):
    """256×320×3 uint8: textured sand; a horizontal road (rows 100–111) with a dashed white centre line crossed by a
    vertical one of the same asphalt (cols 200–211); a compact red roof; a lone tree (a dark green disc of radius 3).
    Returns the image and the boolean masks of the two roads."""
    rng = np.random.default_rng(seed)
    img = (rng.normal(0, 6, (256, 320, 3)) + (200, 180, 140)).clip(0, 255).astype(np.uint8)
    horizontal = np.zeros((256, 320), bool)
    horizontal[100:112] = True
    vertical = np.zeros((256, 320), bool)
    vertical[:, 200:212] = True
    asphalt = horizontal | vertical
    img[asphalt] = (rng.normal(0, 4, (asphalt.sum(), 3)) + (80, 80, 85)).clip(0, 255).astype(np.uint8)
    for left in range(0, 320, 16):
        if not 190 <= left <= 212:
            img[105:107, left:left + 8] = (245, 245, 245)  # dashes along the centre line
    img[30:70, 30:70] = (190, 50, 40)
    rows, cols = np.mgrid[:256, :320]
    img[(cols - 60) ** 2 + (rows - 180) ** 2 <= 9] = (30, 90, 40)
    return img, horizontal, vertical


def test_the_median_network_is_the_median_of_five_along_each_direction():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (9, 9, 2), dtype=np.uint8)
    for step in ((0, 1), (1, 0), (1, 1), (1, -1)):
        out = C._median5(a, step)
        for channel in range(2):
            samples = [a[4 + k * step[0], 4 + k * step[1], channel] for k in range(-2, 3)]
            assert out[4, 4, channel] == np.median(samples)


def test_smoothing_removes_lane_marks_and_keeps_the_road_edge():
    img, horizontal, _ = _scene()
    smooth = C.smoothed(img).astype(int)
    assert C.smoothed(img).shape == (256, 320, 3) and C.smoothed(img).dtype == np.uint8
    assert np.abs(smooth[105, 20] - (80, 80, 85)).max() < 12  # on a dash: asphalt again
    assert np.abs(smooth[101, 20] - (80, 80, 85)).max() < 12 and np.abs(smooth[98, 20] - (200, 180, 140)).max() < 15
    assert C.smoothed(img[..., 0]).shape == (256, 320, 3)  # a grey image: its band thrice


def test_a_click_on_a_lane_mark_grows_the_whole_road_and_not_the_sand():
    img, horizontal, vertical = _scene()
    smooth = C.smoothed(img)
    region = C.grow_region(smooth, 20, 105)  # on a dash of the centre line
    roads = horizontal | vertical
    assert region is not None and region[horizontal].mean() > 0.97  # the dashes filled
    assert region[vertical].mean() > 0.9  # the crossing road has the same asphalt: the region runs into it
    assert region[~roads].sum() < 0.01 * roads.sum()


def test_nothing_grows_from_compact_objects_small_details_or_the_background():
    img, _, _ = _scene()
    smooth = C.smoothed(img)
    assert C.grow_region(smooth, 50, 50) is None  # the red roof: not long and thin
    assert C.grow_region(smooth, 60, 180) is None  # the lone tree, which the smoothing removed
    assert C.grow_region(smooth, 100, 200) is None  # the sand: most of the image
    assert C.grow_region(smooth, 30, 70) is None  # the roof's corner: no uniform colour around the click


def test_a_negative_click_on_the_crossing_road_cuts_it_off_and_keeps_the_clicked_road():
    img, horizontal, vertical = _scene()
    smooth = C.smoothed(img)
    region = C.grow_region(smooth, 20, 105)
    points, labels = np.array([[20.0, 105.0], [205.0, 20.0]]), np.array([1, 0])
    kept = C.split_at_negatives(region, smooth, points, labels)
    assert kept[horizontal].mean() > 0.9
    assert not kept[:90, 200:212].any() and not kept[20, 205]
    # without a negative click on it, or with no positive one, the region is returned as it is
    assert C.split_at_negatives(region, smooth, points[:1], labels[:1]) is region
    assert C.split_at_negatives(region, smooth, points[1:], labels[1:]) is region


def test_the_predictor_adds_the_grown_road_to_the_mask_and_keeps_the_models_prior(feature_on_and_off):
    img, horizontal, _ = _scene()
    growing, plain = feature_on_and_off(img, grow_clicks=False)
    for p in (growing, plain):  # the random model's road mask is in pieces: with the words on, "the road" keeps only the
        p.spatial_words = False  # clicked one (tests/engine/test_spatial_language.py); here the grown region alone
    a = growing.predict("the road", points=[[20, 105]], labels=[1])
    b = plain.predict("the road", points=[[20, 105]], labels=[1])
    assert "grow_ms" in a.timings and "grow_ms" not in b.timings
    assert a.mask[horizontal].mean() > 0.95 and a.mask[horizontal].mean() > b.mask[horizontal].mean() + 0.2
    np.testing.assert_array_equal(a.low_res_logits.numpy(), b.low_res_logits.numpy())
    # a negative click on the crossing road's far end cuts that branch off the grown region
    c = growing.predict("the road", points=[[20, 105], [205, 20]], labels=[1, 0])
    assert c.mask[horizontal].mean() > 0.9 and not c.mask[:60, 200:212].any()


@pytest.mark.parametrize("shape", [(160, 200), (160, 200, 4)])
def test_grey_and_multiband_images_grow_from_their_first_three_bands(shape):
    img = np.full(shape, 120, np.uint8)
    img[78:84] = 40  # a dark line across the image, 6 px wide
    region = C.grow_region(C.smoothed(img), 25, 80)
    assert region is not None and region[78:84].all() and region.sum() == 6 * 200


def test_a_ragged_patch_that_is_thin_only_locally_is_not_a_strip():
    """A comb of 6-px lines (a spine with 14 teeth) is as thin as a road everywhere, but its length (area / thickness,
    ≈ 1 100 px) is far beyond its extent (≈ 210 px): paving around a real road looks like that. Its spine alone is a
    strip and grows."""
    img = np.full((300, 300, 3), 200, np.uint8)
    spine = np.zeros((300, 300), bool)
    spine[147:153, 65:235] = True
    comb = spine.copy()
    for left in range(66, 230, 12):
        comb[90:210, left:left + 6] = True
    img[comb] = (90, 90, 95)
    assert C.grow_region(C.smoothed(img), 150, 150) is None
    img[comb & ~spine] = 200
    region = C.grow_region(C.smoothed(img), 150, 150)
    assert region is not None and not region[~spine].any() and region[spine].mean() > 0.98  # corners rounded


def _field_scene():
    """The road scene (256×256) with a yellow field (rows 60–159, cols 30–179) that the horizontal road crosses; returns
    the image, the horizontal road's mask and the field's rectangle (road included) as the model's spilled mask."""
    img, horizontal, _ = _scene()
    img, horizontal = img[:, :256].copy(), horizontal[:, :256]
    rect = np.zeros((256, 256), bool)
    rect[60:160, 30:180] = True
    img[rect & ~horizontal] = (215, 190, 60)
    return img, horizontal, rect


def test_a_negative_click_on_a_road_crossing_the_target_removes_the_road_across_it():
    """The model answered the negative click on the road around the click only; the click means the whole road. Near
    a positive click on the road (where it crosses the target) the road stays."""
    img, horizontal, rect = _field_scene()
    region = C.grow_region(C.smoothed(img), 60, 103)
    points, labels = np.array([[100.0, 80.0], [60.0, 103.0]]), np.array([1, 0])  # (x, y): field, road
    removed = P.negated_strip_regions(rect, [P.strip_through(region, 60, 103)], points, labels)
    assert removed[horizontal & rect].mean() > 0.97  # on both sides of the click, across the whole field
    assert not removed[rect & ~horizontal].any()  # none of the field
    points, labels = np.array([[100.0, 80.0], [60.0, 103.0], [150.0, 106.0]]), np.array([1, 0, 1])
    removed = P.negated_strip_regions(rect, [P.strip_through(region, 60, 103)], points, labels)
    rows, cols = np.nonzero(horizontal & rect)
    near = np.hypot(cols - 150, rows - 106) <= 12  # within two half-widths of the road (12 px wide: 7.5 px)
    far_left = ~near & (cols < 120)
    assert not removed[rows[near], cols[near]].any() and removed[rows[far_left], cols[far_left]].all()


def test_a_negative_click_on_one_road_of_a_network_keeps_the_crossing_road():
    """Two crossing roads of the same asphalt grow one region; the text turn found both and the labeller's negative
    click on one means that road, not the other (which may be the target)."""
    img, horizontal, vertical = _scene()
    region = C.grow_region(C.smoothed(img), 205, 20)
    assert region[horizontal].mean() > 0.9  # the region is the network
    removed = P.negated_strip_regions(horizontal | vertical, [P.strip_through(region, 205, 20)], [[205, 20]], [0])
    cols = np.arange(320)[None]
    assert removed[vertical & ~horizontal].mean() > 0.97
    assert not removed[horizontal & ((cols < 196) | (cols > 215))].any()  # beyond the crossing square


def test_the_kerbs_beside_a_negated_road_go_with_it_and_the_target_beside_it_stays():
    """Lighter kerbs (2 px) along the road are not in its colour region; the model's mask held them, and without the
    sliver rule each kerb line would take negative clicks of its own. The field beside the road is thick: it stays."""
    img, horizontal, rect = _field_scene()
    kerbs = np.zeros_like(rect)
    kerbs[98:100] = kerbs[112:114] = True
    img[kerbs & ~rect] = (150, 150, 150)
    mask = rect | horizontal | kerbs
    region = C.grow_region(C.smoothed(img), 60, 103)
    assert region[kerbs & ~rect].mean() < 0.2  # the kerbs are not the asphalt's (but near the crossing)
    removed = P.negated_strip_regions(mask, [P.strip_through(region, 60, 103)], [[100, 80], [60, 103]], [1, 0])
    assert removed[kerbs & ~rect & (np.arange(256) < 190)].all()  # up to where the crossing road begins
    assert removed[horizontal & rect].all() and not removed[rect & ~horizontal & ~kerbs].any()
    rows, cols = np.nonzero(removed & ~horizontal)
    assert np.isin(rows, [98, 99, 112, 113]).all()  # nothing else of the mask beside the road


def test_a_negated_road_that_is_most_of_the_mask_goes_only_before_a_positive_click():
    """The text turn found the wrong road (plus a bit of the field): a negative click on it rejects it, but after a
    positive click elsewhere the labeller is more likely trimming than rejecting most of the mask. Negative clicks
    that grew no region remove nothing."""
    img, horizontal, rect = _field_scene()
    mask = horizontal.copy()
    mask[60:70, 30:60] = True
    region = C.grow_region(C.smoothed(img), 60, 103)
    strip = P.strip_through(region, 60, 103)
    removed = P.negated_strip_regions(mask, [strip, None], [[60, 103], [50, 50]], [0, 0])
    assert np.array_equal(removed, mask & horizontal)
    assert not P.negated_strip_regions(mask, [strip], [[60, 103], [40, 65]], [0, 1]).any()
    assert not P.negated_strip_regions(mask, [None], [[60, 103]], [0]).any()


def test_the_predictor_removes_the_negated_road_across_the_mask(tiny_model, monkeypatch):
    """The model's logits are the field with the road across it (decode patched); a negative click on the road takes
    the road out of the shown mask on both sides of the click (not with remove_negated_regions off), keeps the
    model's prior and marks what it removed as settled."""
    import torch

    from rrsis_engine.predictor import Predictor

    img, horizontal, rect = _field_scene()
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    plain = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                      remove_negated_regions=False)
    grid = predictor.image_size // 4
    cell = 256 / grid
    low = torch.full((1, 1, grid, grid), -8.0)
    low[..., round(60 / cell):round(160 / cell), round(30 / cell):round(180 / cell)] = 8.0
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    kwargs = {"points": [[100, 80], [60, 103]], "labels": [1, 0]}  # (x, y): the field, the road
    for p in (predictor, plain):
        p.set_image(img)
    cut, kept = predictor.predict("the field", **kwargs), plain.predict("the field", **kwargs)
    inside = horizontal & rect & kept.mask
    assert inside.sum() > 0.9 * (horizontal & rect).sum()
    assert not cut.mask[inside].any() and cut.mask[rect & ~horizontal & kept.mask].all()
    assert (cut.uncertainty[inside] == 0).all()
    np.testing.assert_array_equal(cut.low_res_logits.numpy(), kept.low_res_logits.numpy())
