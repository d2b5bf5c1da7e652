"""Spatial words resolved by geometry over the model's mask of the whole category (rrsis_engine.spatial_language)."""

import numpy as np
import pytest
from scipy import ndimage

from rrsis_engine import spatial_language as S
from rrsis_engine.spatial_language import SpatialSpec


@pytest.mark.parametrize("text, spec", [
    ("the leftmost building", SpatialSpec("building", extreme="west")),
    ("Segment the northernmost house.", SpatialSpec("building", extreme="north")),
    ("show me the house at the top of the image", SpatialSpec("building", region="top")),
    ("in the top-left corner, the building", SpatialSpec("building", region="top-left")),
    ("the top-left cluster of trees", SpatialSpec("trees", region="top-left")),
    ("the upper swimming pool", SpatialSpec("pool", region="top")),
    ("the second largest lake", SpatialSpec("water", size="largest", rank=2)),
    ("find the smallest cluster of trees", SpatialSpec("trees", size="smallest")),
    ("the biggest house", SpatialSpec("building", size="largest")),
    ("the body of water along the right edge", SpatialSpec("water", region="right")),
    ("the lowest road in the west", SpatialSpec("road", region="left", extreme="south")),
    ("find the group of trees along the top edge", SpatialSpec("trees", region="top")),  # a region, not "along"
    ("select the street nearest to the largest tree clump",
     SpatialSpec("road", relation="nearest", anchor=SpatialSpec("trees", size="largest"))),
    ("the building beside the canal", SpatialSpec("building", relation="nearest", anchor=SpatialSpec("river"))),
    ("select the structure right of the boat", SpatialSpec("building", relation="right_of",
                                                           anchor=SpatialSpec("ship"))),
    ("the red building on the left", SpatialSpec("building", region="left", color="red")),
    ("the building with a white roof", SpatialSpec("building", color="white")),
    ("the largest house with an orange roof", SpatialSpec("building", size="largest", color="orange")),
    ("show me the L-shaped structure", SpatialSpec("building", shape="L-shaped")),
    ("the gray square house", SpatialSpec("building", color="grey", shape="square")),
    ("the green field beside the black vehicle",
     SpatialSpec("field", color="green", relation="nearest", anchor=SpatialSpec("car", color="black"))),
    ("the building with a dark roof just above the car park",
     SpatialSpec("building", color="dark", relation="above", anchor=SpatialSpec("parking"))),
])
def test_sentences_of_a_category_and_spatial_words_are_parsed(text, spec):
    assert S.parse(text) == spec


@pytest.mark.parametrize("text", [
    "the building",  # no spatial word, colour or shape: which one is the model's call
    "the round pool",  # a pool's outline does not tell its shape
    "the building with a flat roof",  # a roof that is no colour
    "the red house with a white roof",  # two colours
    "the lake with a blue roof",  # only buildings have roofs
    "the road nearest to the thing",  # an anchor without a category
    "the leftmost thing",  # no category noun
    "the leftmost building with a chimney",  # words the parser does not know
    "not this one, the building to its right",
    "",
])
def test_sentences_with_other_words_are_left_to_the_model(text):
    assert S.parse(text) is None


@pytest.mark.parametrize("text, category", [
    ("the farm plot", "field"),
    ("find the crop field", "field"),
    ("show me the house at the top of the image", "building"),
    ("the road", "road"),
    ("the leftmost building", "building"),
])
def test_a_sentence_about_one_object_is_read_whatever_its_words_pick(text, category):
    assert S.parse_object(text).category == category


@pytest.mark.parametrize("text", ["all of the structures", "every patch of vegetation", "all bare land",
                                  "the building with a chimney", ""])
def test_a_class_or_other_words_make_no_sentence_about_one_object(text):
    assert S.parse_object(text) is None


@pytest.mark.parametrize("text, spec", [
    ("not that one, the one further right", S.SpatialSpec("building", extreme="east")),
    ("I mean the one at the top", S.SpatialSpec("building", extreme="north")),
    ("the leftmost one", S.SpatialSpec("building", extreme="west")),
    ("no, the larger of the two", S.SpatialSpec("building", size="largest")),
    ("the smallest one", S.SpatialSpec("building", size="smallest")),
    ("the gray one", S.SpatialSpec("building", color="grey")),
])
def test_a_follow_up_that_picks_a_look_alike_is_read_as_a_spec_of_the_sentence_befores_category(text, spec):
    assert S.parse_followup(text, "building") == spec


@pytest.mark.parametrize("text", ["wrong one, the one to its right", "no, the building further left",
                                  "also the one next to it", "the one with a chimney", "further left", ""])
def test_other_follow_ups_are_left_to_the_model(text):
    assert S.parse_followup(text, "building") is None


@pytest.mark.parametrize("text, correction", [
    ("no, the road further right", ("redirect", "east")),
    ("wrong one, the one to its left", ("redirect", "west")),
    ("not this one, the street above it", ("redirect", "north")),
    ("also the one next to it", ("add", None)),
    ("and the street next to it too", ("add", None)),
    ("add the closest road as well", ("add", None)),
    ("no, the building further right", None),  # another category's noun
    ("the larger of the two", None),
])
def test_a_correction_relative_to_the_object_shown_is_read(text, correction):
    assert S.parse_correction(text, "road") == correction


def test_a_correction_moves_to_the_nearest_object_ahead_or_adds_the_nearest_one():
    """Roofs (x0, y0, x1, y1) around the one shown at the centre (centroid 99.5, 99.5): a redirect goes to the nearest
    whose centroid lies at least 5 % of the image's side (10 px) ahead — the roof up and 5 px to the right is not
    "further right" —, an addition adds the nearest by the gap between the masks."""
    shown = _blobs((200, 200), [(90, 90, 110, 110)])
    up, right, left = _blobs((200, 200), [(100, 40, 110, 50)]), _blobs((200, 200), [(155, 95, 175, 105)]), \
        _blobs((200, 200), [(30, 95, 40, 105)])
    category_mask = shown | up | right | left
    pixels = np.zeros((200, 200, 3), np.uint8)
    for direction, expected in (("east", right), ("north", up), ("west", left)):
        assert np.array_equal(S.corrected(("redirect", direction), "building", category_mask, shown, pixels), expected)
    assert S.corrected(("redirect", "south"), "building", category_mask, shown, pixels) is None
    assert np.array_equal(S.corrected(("add", None), "building", category_mask, shown, pixels), shown | up)
    assert S.corrected(("add", None), "building", shown, shown, pixels) is None
    # the mask shown as the previous turn's coarse logits draw it spills over the roof: the addition is the roofs
    spilled = _blobs((200, 200), [(86, 86, 114, 114)])
    assert np.array_equal(S.corrected(("add", None), "building", category_mask, spilled, pixels), shown | up)
    assert np.array_equal(S.corrected(("redirect", "east"), "building", category_mask, spilled, pixels), right)


def _blobs(shape, boxes):
    """H×W bool with the (x0, y0, x1, y1) boxes set."""
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def test_objects_are_the_separate_regions_and_a_group_of_trees_is_one():
    # three blobs: two 2 px apart (one group of trees), one far away; a 2-pixel speck and a 25-pixel one (under a
    # tenth of the largest blob)
    mask = _blobs((100, 100), [(10, 10, 20, 20), (22, 10, 30, 20), (70, 70, 90, 90), (50, 5, 52, 6), (40, 80, 45, 85)])
    assert len(S.objects_in(mask, "building")) == 3  # the specks are left out
    trees = S.objects_in(mask, "trees")
    assert sorted(o.area for o in trees) == [180, 400]
    assert all(not (o.mask & ~mask).any() for o in trees)  # joined, but only the mask's own pixels


def test_a_grove_is_its_crowns_up_to_twelve_pixels_apart_on_a_256_scene():
    # the generators' groves: crowns scattered with gaps up to ~12 px at 256² (scripts/grove_gaps.py); two groves
    # further apart stay two, and the gap scales with the image
    crowns = [(20, 20, 28, 28), (38, 22, 45, 29), (30, 38, 37, 45)]  # gaps 10 and 9 px
    other = [(70, 20, 78, 28)]  # 25 px from the nearest crown
    for scale in (1, 2):
        boxes = [tuple(v * scale for v in b) for b in crowns + other]
        groves = S.objects_in(_blobs((256 * scale, 256 * scale), boxes), "trees")
        assert sorted(o.area for o in groves) == sorted([64 * scale**2, (64 + 49 + 49) * scale**2])
    assert len(S.objects_in(_blobs((256, 256), crowns), "building")) == 3  # only groups join: three buildings


def test_the_words_pick_the_object_by_centroid_area_and_region():
    shape = (120, 120)
    left, middle, right = (5, 50, 25, 70), (50, 10, 90, 40), (100, 90, 115, 110)
    objects = S.objects_in(_blobs(shape, [left, middle, right]), "building")

    def picked(**kw):
        found = S.choose(SpatialSpec("building", **kw), objects, shape)
        return None if found is None else found.bbox

    assert picked(extreme="west") == left and picked(extreme="east") == right
    assert picked(extreme="north") == middle and picked(extreme="south") == right
    assert picked(size="largest") == middle and picked(size="smallest") == right
    assert picked(size="largest", rank=2) == left
    assert picked(size="largest", rank=4) is None  # only three
    assert picked(region="bottom-right") == right
    assert picked(region="center") is None  # none there
    assert picked(region="left", extreme="north") == left
    assert S.choose(SpatialSpec("building", region="top"), objects + objects, shape) is None  # two: ambiguous

    # the objects the words fit when they leave several and nothing picks one: the look-alikes a turn may show
    top_right = (100, 10, 115, 25)
    masks = {"building": _blobs(shape, [left, middle, right, top_right])}
    pixels = np.full((*shape, 3), 128, dtype=np.uint8)
    on_the_right = S.look_alikes(SpatialSpec("building", region="right"), masks, pixels)
    assert sorted(S.objects_in(m, "building")[0].bbox for m in on_the_right) == [top_right, right]
    assert S.look_alikes(SpatialSpec("building", region="bottom-right"), masks, pixels) == []  # one
    assert S.look_alikes(SpatialSpec("building", region="right", extreme="east"), masks, pixels) == []


def test_a_relation_picks_the_object_by_its_anchor():
    shape = (120, 120)
    pool_box, near, far, left = (50, 50, 60, 60), (64, 48, 80, 60), (100, 100, 115, 115), (5, 48, 30, 64)
    buildings = S.objects_in(_blobs(shape, [near, far, left]), "building")
    pools = S.objects_in(_blobs(shape, [pool_box]), "pool")

    def picked(relation, anchor=None, anchors=pools):
        spec = SpatialSpec("building", relation=relation, anchor=anchor or SpatialSpec("pool"))
        found = S.choose(spec, buildings, shape, anchors)
        return None if found is None else found.bbox

    assert picked("nearest") == near
    assert picked("left_of") == left and picked("right_of") == near
    assert picked("below") is None  # none is below the pool
    assert picked("nearest", anchors=pools + pools) is None  # "the pool" is not one object
    assert picked("nearest", anchors=[]) is None  # no pool found: the relation rules nothing out, three buildings stay
    # ... but the words about the target alone may leave one: "the building on the left beside the pool"
    lone = S.choose(SpatialSpec("building", region="left", relation="nearest", anchor=SpatialSpec("pool")),
                    buildings, shape, [])
    assert lone is not None and lone.bbox == left
    # a found anchor still rules: no building on the left is below the pool
    assert S.choose(SpatialSpec("building", region="left", relation="below", anchor=SpatialSpec("pool")),
                    buildings, shape, pools) is None
    # the anchor of the object's own category is not a candidate: the building nearest to the largest building
    assert picked("nearest", SpatialSpec("building", size="largest"), buildings) == near
    masks = {"building": _blobs(shape, [near, far, left]), "pool": _blobs(shape, [pool_box])}
    chosen = S.resolve(SpatialSpec("building", relation="nearest", anchor=SpatialSpec("pool")), masks,
                       np.zeros((*shape, 3), dtype=np.uint8))
    assert np.array_equal(chosen, _blobs(shape, [near]))


def _paint(shape, boxes_and_colours, seed=0):
    """H×W×3 uint8 grey ground with (x0, y0, x1, y1) boxes painted in RGB colours, the lower half of each box shaded
    like a gable roof's far side (×0.78), a dark windscreen-like stripe across it and pixel noise."""
    rng = np.random.default_rng(seed)
    img = np.full((*shape, 3), 150.0)
    for (x0, y0, x1, y1), rgb in boxes_and_colours:
        img[y0:y1, x0:x1] = rgb
        img[(y0 + y1) // 2:y1, x0:x1] *= 0.78
        img[y0 + 2:y0 + 4, x0:x1] = (40, 46, 56)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def test_colours_are_named_by_the_categorys_palette():
    from rrsis_engine.data.synthetic import CAR_COLORS, ROOF_COLORS

    shape = (60, 60 * len(ROOF_COLORS))
    boxes = [((60 * i + 10, 10, 60 * i + 50, 50), rgb) for i, rgb in enumerate(ROOF_COLORS.values())]
    pixels = _paint(shape, boxes)
    named = [S.color_name(pixels, _blobs(shape, [box]), "building") for box, _ in boxes]
    assert named == list(ROOF_COLORS)
    # the same pixels as a car's: the car palette's words (no "dark" or "orange" car)
    assert set(S.color_name(pixels, _blobs(shape, [box]), "car") for box, _ in boxes) <= set(CAR_COLORS)


def test_a_colour_is_named_lit_or_shaded():
    """A roof lit a fifth brighter or shaded a fifth darker than its palette colour keeps its word: plain nearest RGB
    named the grey roof of a partial mask, whose lit half it missed, green (synthetic test 058)."""
    from rrsis_engine.data.synthetic import ROOF_COLORS

    roof = np.zeros((20, 20), dtype=bool)
    roof[5:15, 5:15] = True
    for word, rgb in ROOF_COLORS.items():
        for shade in (0.83, 1.0, 1.17):
            painted = np.empty((20, 20, 3), dtype=np.uint8)
            painted[:] = np.clip(np.asarray(rgb, np.float32) * shade, 0, 255)
            assert S.color_name(painted, roof, "building") == word, (word, shade)
    grey = np.empty((20, 20, 3), dtype=np.uint8)
    grey[:] = (115, 109, 110)
    assert S.color_name(grey, roof, "building") == "grey"  # plain nearest RGB: green


def test_two_fields_of_different_colours_joined_in_one_mask_region_are_two_fields():
    """The mask joins a striped yellow field (40×30) to a brown one below it (40×60) and holds a separate yellow field
    (30×30 to 30×60): "the largest yellow field" is the yellow part of the joined region only when it is larger than
    the separate one (synthetic validation 107: the joined region, named yellow by its brighter half, was chosen), and
    "the southernmost field" is its brown part (147); a one-colour field with stripes is not split."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.synthetic import FIELD_COLORS

    shape = (120, 160)
    yellow_top, brown_below = (10, 10, 50, 40), (10, 40, 50, 100)
    for height, meant in ((50, "separate"), (60, "separate"), (30, "joined")):
        separate = (100, 20, 130, 20 + height)
        pixels = _grounds_and_roofs(shape, [(yellow_top, FIELD_COLORS["yellow"]), (brown_below, FIELD_COLORS["brown"]),
                                            (separate, FIELD_COLORS["yellow"])])
        pixels[::3] = (pixels[::3] * 0.85).astype(np.uint8)  # a field's stripes
        masks = {"field": _blobs(shape, [yellow_top, brown_below, separate])}
        chosen = S.resolve(SpatialSpec("field", size="largest", color="yellow"), masks, pixels)
        expected = _blobs(shape, [separate if meant == "separate" else yellow_top])
        assert chosen is not None and M.iou(chosen, expected) > 0.9, (height, meant)
        southern = S.resolve(SpatialSpec("field", extreme="south"), masks, pixels)
        assert southern is not None and M.iou(southern, _blobs(shape, [brown_below])) > 0.9
        striped = S.objects_in(masks["field"], "field")
        assert len(S.colour_split(striped, pixels, "field")) == 3  # the joined region in two, the separate one whole


def _grounds_and_roofs(shape, roofs, seed=0):
    """H×W×3 uint8: grass-green ground with (x0, y0, x1, y1) roofs painted in RGB colours, each casting a 4-pixel
    shadow below and to the right, and pixel noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((*shape, 3))
    img[:] = (116, 132, 84)
    for (x0, y0, x1, y1), _ in roofs:
        img[y0 + 4:y1 + 4, x0 + 4:x1 + 4] *= 0.55
    for (x0, y0, x1, y1), rgb in roofs:
        img[y0:y1, x0:x1] = rgb
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def test_a_roof_the_mask_covers_in_part_is_completed_to_its_colour_region(monkeypatch):
    from rrsis_engine.click_regions import smoothed
    from rrsis_engine.data.synthetic import ROOF_COLORS

    shape = (200, 200)
    roof, dark, red, small = (20, 110, 70, 170), (120, 30, 170, 70), (130, 120, 180, 160), (150, 176, 166, 192)
    pixels = _grounds_and_roofs(shape, [(roof, ROOF_COLORS["brown"]), (dark, ROOF_COLORS["dark"]),
                                        (red, ROOF_COLORS["red"]), (small, ROOF_COLORS["grey"])])
    smooth = smoothed(pixels)
    # the model's mask: a corner of the brown roof (the westernmost), the others whole
    mask = _blobs(shape, [(22, 112, 40, 128), dark, red, small])
    objects = S.completed_objects(S.objects_in(mask, "building"), smooth)
    whole = _blobs(shape, [roof])
    west = min(objects, key=lambda o: o.centroid[0])
    assert (west.mask & whole).sum() > 0.97 * whole.sum() and (west.mask & ~whole).sum() < 0.03 * whole.sum()
    assert S.color_name(pixels, west.mask, "building") == "brown"
    # the regions kept for the next turn give the same objects, and are read from there the second time
    regions = {}
    for _ in range(2):
        kept = S.completed_objects(S.objects_in(mask, "building"), smooth, regions)
        assert len(regions) == 4 and all(np.array_equal(a.mask, b.mask) for a, b in zip(kept, objects, strict=True))
        monkeypatch.setattr(S, "_colour_region_of", None)  # the second time nothing is grown again
    monkeypatch.undo()
    # the roofs covered whole are left as they are (no shadow added), and the small one is still an object: the
    # brown roof grown to 3 000 pixels makes it no speck (objects are grown after the specks are left out)
    rest = sorted((o.bbox for o in objects if o is not west), key=lambda box: box[0])
    assert rest == [dark, red, small]
    assert S.choose(SpatialSpec("building", size="smallest"), objects, shape).bbox == small
    assert S.choose(SpatialSpec("building", size="largest"), objects, shape).bbox == roof

    # left as they are: a piece on the ground (its colour region reaches beyond the window), a piece on a textured roof
    on_ground = S.objects_in(_blobs(shape, [(80, 20, 100, 40), dark]), "building")
    assert sorted(o.bbox for o in S.completed_objects(on_ground, smooth)) == sorted(o.bbox for o in on_ground)
    textured = pixels.copy()
    textured[110:170, 20:70] = np.random.default_rng(1).integers(60, 200, (60, 50, 3))
    plain = S.objects_in(mask, "building")
    assert sorted(o.bbox for o in S.completed_objects(plain, smoothed(textured))) == sorted(o.bbox for o in plain)


def test_a_colour_or_shape_picks_the_object():
    from rrsis_engine.data.synthetic import ROOF_COLORS

    shape = (100, 160)
    red, white, dark = (10, 10, 40, 40), (60, 10, 100, 30), (110, 50, 150, 90)
    pixels = _paint(shape, [(red, ROOF_COLORS["red"]), (white, ROOF_COLORS["white"]), (dark, ROOF_COLORS["dark"])])
    mask = _blobs(shape, [red, white, dark])
    l_shape = (70, 60, 90, 95)  # with the box below: an L
    mask |= _blobs(shape, [l_shape, (70, 80, 105, 95)])
    objects = S.objects_in(mask, "building")

    def picked(**kw):
        found = S.choose(SpatialSpec("building", **kw), objects, shape, pixels=pixels)
        return None if found is None else found.bbox

    assert picked(color="red") == red and picked(color="white") == white
    assert picked(color="black") == dark  # a roof's "black" is the palette's "dark"
    assert picked(color="blue") is None
    assert picked(shape="L-shaped") == (70, 60, 105, 95)
    assert picked(shape="square") is None  # two squares: ambiguous
    assert picked(shape="square", color="dark") == dark
    assert picked(shape="rectangular") == white
    with pytest.raises(ValueError, match="pixels"):
        S.choose(SpatialSpec("building", color="red"), objects, shape)
    # a piece of a building under a quarter of the median area has no shape: not a second L
    piece = S.objects_in(_blobs(shape, [(5, 60, 12, 70), (5, 70, 18, 76)]), "building")
    assert S.shape_name(piece[0].mask) == "L-shaped"
    assert S.choose(SpatialSpec("building", shape="L-shaped"), objects + piece, shape).bbox == (70, 60, 105, 95)


def test_a_pixel_found_by_two_categories_is_the_likelier_ones():
    """A brown roof the field query also finds is a building, not a second brown field (synthetic test scene 81);
    a car keeps the road pixels it stands on."""
    shape = (60, 120)
    roof, field = (10, 10, 30, 30), (60, 5, 110, 55)
    masks = {"building": _blobs(shape, [roof]), "field": _blobs(shape, [roof, field]), "car": _blobs(shape, [field])}
    logits = {"building": np.where(masks["building"], 3.0, -5.0), "field": np.where(masks["field"], 1.0, -5.0),
              "car": np.full(shape, 9.0)}
    one = S.one_category_a_pixel(masks, logits)
    assert np.array_equal(one["building"], masks["building"]) and np.array_equal(one["field"], _blobs(shape, [field]))
    assert np.array_equal(one["car"], masks["car"])  # on top of the field: not a rival for its pixels
    assert S.one_category_a_pixel({"field": masks["field"]}, logits)["field"] is masks["field"]


def test_a_cars_colour_is_read_pixel_by_pixel_and_the_road_under_it_is_nearest():
    """The model's mask of "all the cars" is mostly the roads they stand on (synthetic test scene 114): "the blue car"
    is the blue pixels there, not the colour of that region, and the road it stands on is the one nearest to it."""
    from rrsis_engine.data.synthetic import CAR_COLORS

    shape = (100, 100)
    road, other_road = (0, 40, 100, 52), (0, 80, 100, 92)
    blue, white, line = (20, 42, 29, 48), (70, 82, 79, 88), (40, 45, 100, 46)  # a 1-pixel painted line
    pixels = np.full((*shape, 3), 150, dtype=np.uint8)
    for box, rgb in ((road, (80, 82, 84)), (other_road, (80, 82, 84)), (blue, CAR_COLORS["blue"]),
                     (white, CAR_COLORS["white"]), (line, CAR_COLORS["white"])):
        pixels[_blobs(shape, [box])] = rgb
    cars = S.objects_in(_blobs(shape, [road, other_road]), "car")  # the cars' mask: the roads
    found = S.choose(SpatialSpec("car", color="blue"), cars, shape, pixels=pixels)
    assert found is not None and found.bbox == blue
    assert S.choose(SpatialSpec("car", color="white"), cars, shape, pixels=pixels).bbox == white  # not the line
    assert S.choose(SpatialSpec("car", color="red"), cars, shape, pixels=pixels) is None
    masks = {"road": _blobs(shape, [road, other_road]), "car": _blobs(shape, [road, other_road])}
    chosen = S.resolve(S.parse("the road nearest to the blue car"), masks, pixels)
    assert np.array_equal(chosen, _blobs(shape, [road]))


def test_shapes_are_read_from_the_outline():
    from skimage.draw import polygon

    def drawn(points, size=80):
        mask = np.zeros((size, size), dtype=bool)
        rows, cols = polygon([y for _, y in points], [x for x, _ in points], mask.shape)
        mask[rows, cols] = True
        return mask

    def turned(points, degrees, centre=(40, 40)):
        a = np.deg2rad(degrees)
        return [(centre[0] + (x - centre[0]) * np.cos(a) - (y - centre[1]) * np.sin(a),
                 centre[1] + (x - centre[0]) * np.sin(a) + (y - centre[1]) * np.cos(a)) for x, y in points]

    square = [(25, 25), (55, 25), (55, 55), (25, 55)]
    rectangle = [(20, 30), (60, 30), (60, 50), (20, 50)]
    ell = [(20, 20), (60, 20), (60, 40), (40, 40), (40, 60), (20, 60)]
    for degrees in (0, 30, 65):
        assert S.shape_name(drawn(turned(square, degrees))) == "square"
        assert S.shape_name(drawn(turned(rectangle, degrees))) == "rectangular"
        assert S.shape_name(drawn(turned(ell, degrees))) == "L-shaped"


def test_a_river_is_one_object_and_crossing_roads_are_split_along_their_lines():
    shape = (200, 200)
    river = _blobs(shape, [(90, 0, 110, 60), (92, 80, 112, 140), (95, 160, 115, 200)])  # cut in three by roads
    assert len(S.objects_in(river, "river")) == 1 and len(S.objects_in(river, "water")) == 3
    # a horizontal road crossing a vertical one, the vertical one cut by a lake: two roads, not one region and a piece
    horizontal, upper, lower = (0, 90, 200, 102), (60, 0, 72, 120), (60, 150, 72, 200)
    roads = _blobs(shape, [horizontal, upper, lower])
    found = sorted(S.objects_in(roads, "road"), key=lambda o: o.width)
    assert len(found) == 2, [o.bbox for o in found]
    vertical, across = found
    assert vertical.width <= 16 and vertical.height == 200 and across.width == 200 and across.height <= 16
    assert len(S.objects_in(roads, "building")) == 2  # other categories keep their connected regions
    # a curved road (a quarter ring) joining a straight one is no set of lines (most of it is off the straight one's
    # line): their connected region stays the object
    rows, cols = np.mgrid[:200, :200]
    network = (np.hypot(rows, cols) > 120) & (np.hypot(rows, cols) < 132) | _blobs(shape, [(0, 125, 200, 137)])
    assert [o.area for o in S.objects_in(network, "road")] == [int(network.sum())]
    # a noisy mask (an untrained model's) has hundreds of line peaks: at most LINE_MAX_COUNT are tried, and they do
    # not explain it
    noise = np.random.default_rng(0).random((400, 400)) < 0.5
    assert len(S.objects_in(noise, "road")) == len(S.objects_in(noise, "building"))


def test_a_slanted_road_is_one_line_though_two_hough_peaks_run_inside_it(monkeypatch):
    """The Hough peaks of the shipped model's road mask on synthetic validation scene 186 ("the road to the left of the
    dark house"): its slanted road gave a line at -4 degrees and a weaker one at -8 degrees, 15 pixels apart in offset,
    so the peaks' suppression window kept both and the road was split lengthwise into two objects; two roads matched,
    the sentence chose none (text IoU 0.00; with one line 0.85). The weaker line, most of whose strip is the stronger
    one's, is dropped."""
    shape = (256, 256)
    rows, cols = np.mgrid[:256, :256]
    slanted = np.abs(cols - (45 + rows * np.tan(np.deg2rad(4)))) <= 5  # x·cos θ + y·sin θ = 45 at θ = -4°
    roads = slanted | _blobs(shape, [(0, 213, 256, 223)])
    peaks = (None, np.deg2rad([89.0, -4.0, -8.0]), np.array([218.0, 45.0, 30.0]))
    monkeypatch.setattr(S, "hough_line_peaks", lambda *a, **k: peaks)
    found = S.objects_in(roads, "road")
    assert len(found) == 2, [o.bbox for o in found]
    assert sorted((o.height, o.width) for o in found)[-1][0] == 256  # the slanted road, whole
    monkeypatch.setattr(S, "LINE_SAME_SHARE", 1.0)  # every line kept: the road split in two
    assert len(S.objects_in(roads, "road")) == 3


def test_the_pieces_of_a_field_a_road_cuts_are_one_object():
    shape = (200, 200)
    cut = _blobs(shape, [(60, 20, 100, 80), (110, 20, 140, 80)])  # a field with a 10-pixel road across it
    other = _blobs(shape, [(20, 130, 80, 190)])
    grey = np.full(shape + (3,), 120, dtype=np.uint8)
    groups = S.object_groups(cut | other, "field", grey)
    assert sorted(int(g.sum()) for g in groups) == sorted([int(cut.sum()), int(other.sum())])
    # a field cut by two crossing roads joins piece by piece (the far corners alone do not fill their hull)
    quarters = _blobs(shape, [(20, 20, 60, 60), (70, 20, 110, 60), (20, 70, 60, 110), (70, 70, 110, 110)])
    assert len(S.object_groups(quarters, "field", grey)) == 1
    assert len(S.object_groups(_blobs(shape, [(20, 20, 60, 60), (70, 70, 110, 110)]), "field", grey)) == 2
    # a green field beside a brown one is two fields, however well they fill their hull
    coloured = grey.copy()
    coloured[_blobs(shape, [(60, 20, 100, 80)])] = S.COLOR_PALETTES["field"]["green"]
    coloured[_blobs(shape, [(110, 20, 140, 80)])] = S.COLOR_PALETTES["field"]["brown"]
    assert len(S.object_groups(cut, "field", coloured)) == 2


def test_size_and_position_words_read_a_cut_field_as_one():
    """A field a road cuts is one field: "the smallest field" is not one of its pieces, "the leftmost field" takes all
    of it (synthetic test scenes 5, 39 and 86 chose a piece)."""
    shape = (200, 200)
    cut = _blobs(shape, [(10, 20, 40, 80), (50, 20, 70, 80)])  # 1 800 + 1 200 pixels, a 10-pixel road between
    small = _blobs(shape, [(120, 120, 160, 170)])  # 2 000 pixels
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    masks = {"field": cut | small}
    assert np.array_equal(S.resolve(S.parse("the smallest field"), masks, pixels), small)
    assert np.array_equal(S.resolve(S.parse("the leftmost field"), masks, pixels), cut)


def test_a_positive_click_picks_one_of_the_look_alikes():
    shape = (100, 100)
    a, b, c = (5, 5, 20, 20), (40, 40, 60, 60), (80, 80, 95, 95)
    mask = _blobs(shape, [a, b, c])
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    assert np.array_equal(S.unclicked_objects(mask, "building", np.array([[50.0, 50.0]]), pixels), _blobs(shape, [a, c]))
    assert not S.unclicked_objects(mask, "building", np.array([[30.0, 70.0]]), pixels).any()  # a click off the mask


def test_a_positive_click_on_a_sliver_across_the_road_keeps_the_field_beside_it():
    """A sliver of a field across a road (under a tenth of the field: a speck, no object of its own) is more of the
    field beside it: a click on it keeps that field and drops the other look-alikes (synthetic validation 272 "the crop
    field": 0.96 → 0.51 when the click left every field in the mask). A click on a speck far from every object tells
    nothing, and removes nothing."""
    shape = (200, 200)
    field, sliver, other = (10, 60, 90, 140), (30, 45, 70, 50), (130, 20, 190, 90)  # (x0, y0, x1, y1): the sliver
    # lies 10 px above the field
    mask = _blobs(shape, [field, sliver, other])
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    assert np.array_equal(S.unclicked_objects(mask, "field", np.array([[50.0, 47.0]]), pixels), _blobs(shape, [other]))
    far = _blobs(shape, [field, (30, 5, 70, 10), other])  # a speck 50 px off: no piece of the field, no object
    assert not S.unclicked_objects(far, "field", np.array([[50.0, 7.0]]), pixels).any()


def test_a_positive_click_on_the_crossing_of_the_road_shown_keeps_that_road():
    """ "the road" shows the vertical road without its crossing (the split gave the crossing to the horizontal one); a
    positive click there keeps the vertical road, not the crossing road (synthetic validation 248: 0.90 → 0.01)."""
    shape = (200, 200)
    horizontal, vertical = _blobs(shape, [(0, 150, 200, 162)]), _blobs(shape, [(60, 0, 72, 200)])
    roads = horizontal | vertical
    pixels = np.full(shape + (3,), 90, dtype=np.uint8)
    crossing = np.array([[66.0, 156.0]])
    shown = vertical & ~horizontal
    others = S.unclicked_objects(roads, "road", crossing, pixels, previous=shown)
    assert not (others & vertical).any() and others[150:162, :55].all() and others[150:162, 80:].all()
    # without the mask shown before, the click lies on both roads; one beside the crossing picks its own road
    assert not S.unclicked_objects(roads, "road", crossing, pixels).any()
    others = S.unclicked_objects(roads, "road", np.array([[150.0, 156.0]]), pixels, previous=shown)
    assert not (others & horizontal).any() and others[:145, 60:72].all()


def _likeliest(*args, **kwargs):
    """The first of :func:`S.ranked_objects`, or None."""
    ranked = S.ranked_objects(*args, **kwargs)
    return ranked[0] if ranked else None


def test_the_likeliest_look_alike_is_the_one_no_negative_click_lies_on_and_the_confirmation_asks_about_it():
    shape = (100, 100)
    a, b, c = (5, 5, 20, 20), (40, 40, 60, 60), (80, 80, 95, 95)
    mask = _blobs(shape, [a, b, c])
    logits = np.where(_blobs(shape, [c]), 2.0, 0.5)
    none = np.zeros((0, 2))
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    assert np.array_equal(_likeliest(mask, "building", logits, none, pixels), _blobs(shape, [c]))
    # a negative click on c (the labeller's "no"): the next likeliest, the larger of a and b
    likeliest = _likeliest(mask, "building", logits, np.array([[90.0, 90.0]]), pixels)
    assert np.array_equal(likeliest, _blobs(shape, [b]))
    x, y, label = S.confirmation_click(likeliest)
    assert label == 1 and 49 <= x <= 51 and 49 <= y <= 51  # b's middle
    assert _likeliest(_blobs(shape, [b]), "building", logits, none, pixels) is None  # one object: no choice
    assert _likeliest(mask, "building", logits, np.array([[10.0, 10], [50, 50], [90, 90]]), pixels) is None


def test_what_is_left_of_a_rejected_look_alike_is_not_the_next_one_and_a_trimmed_one_stays():
    """A negative click on c took most of it out of the turn's mask (``removed``): the strip left of c is not an object
    of its own, so b is next; a click that took a little of c (a trim) leaves c the likeliest."""
    shape = (100, 100)
    a, b, c = (5, 5, 15, 15), (40, 40, 60, 60), (70, 70, 95, 95)
    logits = np.where(_blobs(shape, [c]), 2.0, 0.5)
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    click = np.array([[85.0, 85.0]])
    rejected = _blobs(shape, [(70, 70, 95, 91)])  # all of c but a 4-pixel strip along its right side
    left = _blobs(shape, [a, b, c]) & ~rejected
    assert np.array_equal(_likeliest(left, "building", logits, click, pixels, removed=rejected),
                          _blobs(shape, [b]))
    only = _blobs(shape, [b, c]) & ~rejected  # one object and a rejected one's strip: that object alone
    assert np.array_equal(_likeliest(only, "building", logits, click, pixels, removed=rejected),
                          _blobs(shape, [b]))
    trimmed = _blobs(shape, [(80, 80, 90, 90)])  # the click's neighbourhood, 16 % of c
    kept = _blobs(shape, [a, b, c]) & ~trimmed
    assert np.array_equal(_likeliest(kept, "building", logits, click, pixels, removed=trimmed),
                          _blobs(shape, [c]) & ~trimmed)


def test_a_later_turn_drops_the_categorys_other_objects():
    shape = (100, 100)
    a, b, c = (5, 5, 20, 20), (40, 40, 60, 60), (80, 80, 95, 95)
    mask = _blobs(shape, [a, b, c])
    previous = _blobs(shape, [(8, 8, 15, 15)])  # on a
    others = S.other_objects(mask, "building", previous, np.array([[50.0, 50.0]]))  # a positive click on b
    assert np.array_equal(others, _blobs(shape, [c]))
    assert not S.other_objects(mask, "building", mask, np.zeros((0, 2))).any()


def test_a_later_turn_drops_a_road_crossing_the_chosen_one():
    """Crossing roads share their crossing: the vertical roads touch the chosen horizontal one there, and go all the
    same (less than half of each lies on the chosen road), the crossings staying with it."""
    shape = (200, 200)
    horizontal, vertical = _blobs(shape, [(0, 150, 200, 162)]), _blobs(shape, [(60, 0, 72, 200), (130, 0, 142, 200)])
    roads = horizontal | vertical
    others = S.other_objects(roads, "road", horizontal, np.zeros((0, 2)))
    assert np.array_equal(others[:145], vertical[:145]) and not (others & horizontal).any()
    assert not S.other_objects(roads, "building", horizontal, np.zeros((0, 2))).any()  # one region, touching
    # the chosen road shown without its crossing (the split gave the crossing to the vertical road): a positive click
    # there adds the crossing, not the vertical road (synthetic validation scene 158); one beside it adds that road
    chosen = horizontal & ~vertical
    crossing = np.array([[66.0, 156.0]])
    others = S.other_objects(roads, "road", chosen, crossing)
    assert not others[150:162, 60:72].any() and others[:145, 60:72].all() and others[:145, 130:142].all()
    others = S.other_objects(roads, "road", chosen, np.array([[66.0, 100.0]]))
    assert not others[:, 60:72].any() and others[:145, 130:142].all()


def _decode_three_buildings(tiny_model, monkeypatch, image_size):
    """Patch the tiny model's decoder to answer every turn with three buildings of a 256² image, (x0, y0, x1, y1)
    (20, 100, 60, 140), (110, 30, 150, 70) and (190, 180, 230, 220) image pixels, at logit +8 (−8 elsewhere)."""
    import torch

    grid = image_size // 4
    cell = 256 / grid
    low = torch.full((1, 1, grid, grid), -8.0)
    for x0, y0, x1, y1 in [(20, 100, 60, 140), (110, 30, 150, 70), (190, 180, 230, 220)]:
        low[..., round(y0 / cell):round(y1 / cell), round(x0 / cell):round(x1 / cell)] = 8.0
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))


def test_the_predictor_shows_the_object_the_words_pick(tiny_model, monkeypatch):
    """The model's mask (decode patched) holds three buildings for every sentence: "the leftmost building" shows the
    left one only (all three with spatial_words off), a click turn on it keeps it alone, the category's sentence is
    what the click turn is fused with, and a sentence without spatial words gets the likeliest of the model's objects
    alone (stop 46: here they are equally likely and equally large, so one of the three)."""
    import torch

    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    plain = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                      spatial_words=False)
    _decode_three_buildings(tiny_model, monkeypatch, predictor.image_size)
    fused = []
    fuse = Predictor._fuse
    monkeypatch.setattr(Predictor, "_fuse", lambda self, key, feats, text: fused.append(text) or fuse(
        self, key, feats, text))
    img = np.full((256, 256, 3), 120, dtype=np.uint8)
    for p in (predictor, plain):
        p.set_image(img)
    buildings = plain.predict("the leftmost building").mask  # the model's mask: all three
    left = buildings.copy()
    left[:, 100:] = False
    assert S.objects_in(buildings, "building").__len__() == 3 and left.sum() > 1000

    text = predictor.predict("the leftmost building")
    assert np.array_equal(text.mask, left)
    one = predictor.predict("the building").mask
    assert len(S.objects_in(one, "building")) == 1 and not (one & ~buildings).any() and one.sum() == left.sum()
    # the next turn's prior is the chosen object, shaped like a ranked text turn's (peak at SELECTED_LOGIT)
    prior = text.low_res_logits
    cols = torch.nonzero(prior[0, 0] > 0)[:, 1]
    assert float(prior.max()) == pytest.approx(1.0) and len(cols) and int(cols.max()) < 100 / (256 / (predictor.image_size // 4))

    fused.clear()
    click = predictor.predict("the leftmost building", points=[[40, 120]], labels=[1], mask_input=prior)
    assert np.array_equal(click.mask, left)
    assert fused == ["all the buildings"]
    assert np.array_equal(plain.predict("the leftmost building", points=[[40, 120]], labels=[1],
                                        mask_input=prior).mask, buildings)


def test_the_predictor_shows_the_whole_roof_of_an_object_its_mask_covers_in_part(tiny_model, monkeypatch):
    """The model's mask (decode patched: three buildings) covers the upper 40 of the left roof's 70 rows: "the leftmost
    building" and "all the buildings" show the whole roof, its colour region (spatial_language.completed_objects);
    without spatial words the mask is the model's, and without roof completion the leftmost building is its part."""
    from rrsis_engine.data.synthetic import ROOF_COLORS
    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    plain = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                      spatial_words=False)
    _decode_three_buildings(tiny_model, monkeypatch, predictor.image_size)
    roof = (20, 100, 60, 170)
    pixels = _grounds_and_roofs((256, 256), [(roof, ROOF_COLORS["brown"]), ((110, 30, 150, 70), ROOF_COLORS["red"]),
                                             ((190, 180, 230, 220), ROOF_COLORS["dark"])])
    whole = _blobs((256, 256), [roof])
    shown = predictor.predict("the leftmost building", image=predictor.set_image(pixels)).mask
    assert (shown & whole).sum() > 0.95 * whole.sum() and (shown & ~whole).sum() < 0.05 * whole.sum()
    every = predictor.predict("all the buildings").mask
    assert (every & whole).sum() > 0.95 * whole.sum() and len(S.objects_in(every, "building")) == 3
    model_mask = plain.predict("the leftmost building", image=plain.set_image(pixels)).mask
    assert (model_mask & whole).sum() < 0.65 * whole.sum()
    assert np.array_equal(plain.predict("all the buildings").mask, model_mask)
    uncompleted = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                            complete_roofs=False)
    part = uncompleted.predict("the leftmost building", image=uncompleted.set_image(pixels)).mask
    assert (part & whole).sum() < 0.65 * whole.sum() and not (part & ~model_mask).any()
    assert np.array_equal(uncompleted.predict("all the buildings").mask, model_mask)


def test_a_turn_that_shows_nothing_shows_the_likeliest_object_the_words_fit(tiny_model, monkeypatch):
    """The model (decode patched) draws nothing for "the building on the left side" and three buildings for "all the
    buildings", two of them on the left: the turn shows the likelier of those two (equally probable: the larger), not
    nothing; without spatial words it shows nothing."""
    import torch

    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    plain = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                      spatial_words=False)
    grid = predictor.image_size // 4
    cell = 256 / grid
    buildings, nothing = torch.full((1, 1, grid, grid), -8.0), torch.full((1, 1, grid, grid), -8.0)
    small, large = (20, 100, 60, 140), (20, 168, 72, 232)
    for x0, y0, x1, y1 in (small, large, (190, 30, 230, 70)):
        buildings[..., round(y0 / cell):round(y1 / cell), round(x0 / cell):round(x1 / cell)] = 8.0
    asked = []
    fuse = Predictor._fuse
    monkeypatch.setattr(Predictor, "_fuse", lambda self, key, feats, text: asked.append(text) or fuse(
        self, key, feats, text))
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (
        (buildings if asked[-1] == "all the buildings" else nothing).clone(), torch.ones(1, 1), torch.ones(1, 1)))
    img = np.full((256, 256, 3), 120, dtype=np.uint8)
    shown = predictor.predict("the building on the left side", image=predictor.set_image(img)).mask
    assert S.objects_in(shown, "building")[0].bbox == large and len(S.objects_in(shown, "building")) == 1
    assert not plain.predict("the building on the left side", image=plain.set_image(img)).mask.any()


@pytest.mark.parametrize("text, expected", [
    ("segment every road", True), ("all the buildings", True), ("Show me ALL pools", True), ("each field", True),
    ("the road", False), ("the smallest building", False), ("the tall building", False), ("the ball field", False),
])
def test_class_sentences_ask_for_every_object(text, expected):
    assert S.is_class_sentence(text) is expected


def test_a_positive_click_on_another_look_alike_picks_it_instead():
    """For a sentence about one object, a positive click on an object that does not touch the one shown means "not
    that one, this one"; on the shown object, on its piece across a road or off the model's mask it does not."""
    shape = (100, 100)
    a, b = (5, 5, 20, 20), (40, 40, 60, 60)
    mask = _blobs(shape, [a, b])
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    chosen = _blobs(shape, [a])
    assert S.picks_another_object(mask, "building", chosen, np.array([50.0, 50.0]), pixels)
    assert not S.picks_another_object(mask, "building", chosen, np.array([10.0, 10.0]), pixels)
    assert not S.picks_another_object(mask, "building", chosen, np.array([80.0, 80.0]), pixels)  # off the mask
    big = (200, 200)  # one field cut by a 10-pixel road (as in test_size_and_position_words_read_a_cut_field_as_one)
    grey = np.full(big + (3,), 120, dtype=np.uint8)
    cut = _blobs(big, [(10, 20, 40, 80), (50, 20, 70, 80)])
    assert not S.picks_another_object(cut, "field", _blobs(big, [(10, 20, 40, 80)]), np.array([60.0, 50.0]), grey)
    # a piece within a road's width of the one shown, though the pieces are not joined (a green one beside a brown one)
    coloured = grey.copy()
    coloured[_blobs(big, [(50, 20, 70, 80)])] = S.COLOR_PALETTES["field"]["green"]
    coloured[_blobs(big, [(10, 20, 40, 80)])] = S.COLOR_PALETTES["field"]["brown"]
    assert len(S.object_groups(cut, "field", coloured)) == 2
    assert not S.picks_another_object(cut, "field", _blobs(big, [(10, 20, 40, 80)]), np.array([60.0, 50.0]), coloured)
    far = _blobs(big, [(10, 20, 40, 80), (100, 20, 130, 80)])
    assert S.picks_another_object(far, "field", _blobs(big, [(10, 20, 40, 80)]), np.array([115.0, 50.0]), coloured)
    # a grove farther than a road's width from the one shown is another grove; a clump beside it is more of it
    assert S.picks_another_object(mask, "trees", chosen, np.array([50.0, 50.0]), pixels)
    clump_beside = _blobs(shape, [a, (5, 23, 20, 30)])  # 3 px below the grove shown
    assert clump_beside[26, 12] and not S.picks_another_object(clump_beside, "trees", chosen, np.array([12.0, 26.0]),
                                                                pixels)
    # a road's lines are a guess: not swapped
    roads = _blobs(shape, [(0, 70, 100, 78), (30, 0, 38, 100)])
    assert not S.picks_another_object(roads, "road", _blobs(shape, [(0, 70, 100, 78)]), np.array([34.0, 20.0]), pixels)


def test_the_predictor_swaps_the_chosen_object_for_the_one_a_positive_click_picks(tiny_model, monkeypatch):
    """The model's mask (decode patched) holds three buildings: "the leftmost building" shows the left one; a positive
    click on the middle one shows the middle one alone (it added the click's object to the wrong one: synthetic
    validation "the largest yellow field", one click 0.44 → 0.94)."""
    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    _decode_three_buildings(tiny_model, monkeypatch, predictor.image_size)
    predictor.set_image(np.full((256, 256, 3), 120, dtype=np.uint8))
    text = predictor.predict("the leftmost building")
    assert text.mask[120, 40] and not text.mask[50, 130]
    click = predictor.predict("the leftmost building", points=[[130, 50]], labels=[1], mask_input=text.low_res_logits)
    assert click.mask[50, 130] and not click.mask[120, 40] and not click.mask[200, 210]
    assert len(S.objects_in(click.mask, "building")) == 1
    # a second positive click, on the left one: the labeller has picked one and adds another
    both = predictor.predict("the leftmost building", points=[[130, 50], [40, 120]], labels=[1, 1],
                             mask_input=click.low_res_logits)
    assert both.mask[50, 130] and both.mask[120, 40] and not both.mask[200, 210]


def test_a_negative_click_on_the_chosen_road_trims_it(tiny_model, monkeypatch):
    """The model's mask (decode patched) is a road network: "the bottommost road" shows the horizontal road, and after
    a negative click on it (a car in a lane, which the model cuts out) it is still there and the crossing roads are not
    (they touch it at the crossings; kept, they made the click's strip rule remove the chosen road: synthetic
    validation "the bottommost street", 0.95 → 0.00)."""
    import torch

    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False,
                          grow_clicks=False)
    grid = predictor.image_size // 4
    cell = 256 / grid
    low = torch.full((1, 1, grid, grid), -8.0)
    for x0, y0, x1, y1 in [(0, 192, 256, 208), (64, 0, 80, 256), (160, 0, 176, 256)]:  # image pixels
        low[..., round(y0 / cell):round(y1 / cell), round(x0 / cell):round(x1 / cell)] = 8.0
    carved = low.clone()  # a click turn: the model cuts the car under the negative click at (120, 195) out
    carved[..., round(192 / cell):round(200 / cell), round(116 / cell):round(124 / cell)] = -8.0

    def decode(vd, t_global, feats, points, *a, **k):
        return (low if points is None else carved).clone(), torch.ones(1, 1), torch.ones(1, 1)

    monkeypatch.setattr(tiny_model, "decode", decode)
    predictor.set_image(np.full((256, 256, 3), 120, dtype=np.uint8))
    text = predictor.predict("the bottommost road")
    away = np.r_[0:50, 95:145, 190:256]  # columns away from the crossings (which the vertical roads may hold)
    assert text.mask[192:208, away].all() and not text.mask[:180].any()
    click = predictor.predict("the bottommost road", points=[[120, 195]], labels=[0],  # in a lane, not deep
                              mask_input=text.low_res_logits)
    assert click.mask[192:208, away].mean() > 0.9 and not click.mask[:180].any()


def test_a_positive_click_on_one_of_the_objects_shown_keeps_it_alone(tiny_model, monkeypatch):
    """The model's mask (decode patched) holds three fields, for "the farm plot" and after a click: the text turn shows
    the likeliest alone (stop 46); a negative click on it shows the likeliest of the others alone and asks about it
    (stop 49);
    a positive click on one keeps it alone (with its piece across a road) and a later negative click keeps it so; with
    spatial_words off the text turn and the click keep all three."""
    import torch

    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    kwargs = dict(device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    predictor, plain = Predictor(tiny_model, **kwargs), Predictor(tiny_model, spatial_words=False, **kwargs)
    grid = predictor.image_size // 4
    cell = 256 / grid
    # the left field is cut by a 12-pixel road at x 52–64
    boxes = [(20, 100, 52, 150), (64, 100, 90, 150), (120, 30, 170, 70), (180, 170, 230, 220)]
    low = torch.full((1, 1, grid, grid), -8.0)
    for (x0, y0, x1, y1), logit in zip(boxes, (4.0, 4.0, 2.0, 2.0), strict=True):  # the left field is the likeliest
        low[..., round(y0 / cell):round(y1 / cell), round(x0 / cell):round(x1 / cell)] = logit
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    for p in (predictor, plain):
        p.set_image(np.full((256, 256, 3), 120, dtype=np.uint8))
    fields = plain.predict("the farm plot").mask
    assert len(S.object_groups(fields, "field", np.full((256, 256, 3), 120, dtype=np.uint8))) == 3
    left = fields.copy()
    left[:, 100:] = False
    text = predictor.predict("the farm plot")  # the likeliest field alone, not "is it this one?"
    assert np.array_equal(text.mask, left) and not text.suggests_confirmation
    no = predictor.predict("the farm plot", points=[[30, 120]], labels=[0], mask_input=text.low_res_logits)
    # not this one: the next likeliest alone, and is it this one? The negative click removed the piece it lay on, more
    # than half the field, so the piece across the road is no look-alike of its own; the other two fields tie on the
    # logits: the larger, bottom right
    bottom_right = fields.copy()
    bottom_right[:160] = False
    assert np.array_equal(no.mask, bottom_right) and not no.mask[120, 80]
    assert no.suggests_confirmation and no.mask[int(no.suggested_click[1]), int(no.suggested_click[0])]
    again = predictor.predict("the farm plot", points=[[30, 120], [205, 195]], labels=[0, 0],
                              mask_input=no.low_res_logits)
    assert again.mask[50, 150] and not again.mask[195, 205] and not again.mask[120, 80]  # and not that one: the last
    click = predictor.predict("the farm plot", points=[[30, 120]], labels=[1], mask_input=text.low_res_logits)
    assert np.array_equal(click.mask, left) and left[120, 80]  # the piece across the road stays
    later = predictor.predict("the farm plot", points=[[30, 120], [200, 200]], labels=[1, 0],
                              mask_input=click.low_res_logits)
    assert np.array_equal(later.mask, left)
    assert np.array_equal(plain.predict("the farm plot", points=[[30, 120]], labels=[1],
                                        mask_input=text.low_res_logits).mask, fields)


def test_a_positive_click_on_one_road_of_a_network_keeps_that_road(tiny_model, monkeypatch):
    """The image is two crossing grey roads on grass, and so is the model's mask (decode patched): "the road" shows
    one of them (since stop 46); a positive click on the horizontal one keeps it, though the click's colour region
    (grown along the road it lies on, :mod:`rrsis_engine.click_regions`) is the whole network (it re-added the other road: synthetic
    validation "the road", 0.40 after 20 clicks)."""
    import torch

    from rrsis_engine import click_regions
    from rrsis_engine.model import transforms as T
    from rrsis_engine.predictor import Predictor

    monkeypatch.setattr(tiny_model, "component_ranker", None)
    predictor = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    horizontal, vertical = _blobs((512, 512), [(0, 380, 512, 392)]), _blobs((512, 512), [(130, 0, 142, 512)])
    image = np.zeros((512, 512, 3), dtype=np.uint8)
    image[:] = (70, 120, 60)
    image[horizontal | vertical] = (110, 110, 110)
    low = T.image_logits_to_model(np.where(horizontal | vertical, 8.0, -8.0).astype(np.float32),
                                  predictor.image_size // 4)
    monkeypatch.setattr(tiny_model, "decode", lambda *a, **k: (low.clone(), torch.ones(1, 1), torch.ones(1, 1)))
    predictor.set_image(image)
    network = click_regions.grow_region(click_regions.smoothed(image), 300, 386)
    assert network is not None and network[100, 136]  # the click's colour region: both roads
    text = predictor.predict("the road")
    assert text.mask[386, 300] != text.mask[100, 136]  # one road: the likeliest (stop 46), here a tie
    click = predictor.predict("the road", points=[[300, 386]], labels=[1], mask_input=text.low_res_logits)
    assert click.mask[384:388, 200:].all() and not click.mask[:360].any() and not click.mask[400:].any()


@pytest.mark.slow
def test_the_shipped_model_finds_the_object_the_words_pick():
    """On synthetic scenes whose sentence is a category with spatial words, colours or shapes (the first 16
    unambiguous validation scenes the parser reads, relations included), the shipped model with the geometry finds the
    object the model alone mostly misses (measured when written, at 256²: mean IoU 0.94 against 0.41)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor

    with_words = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    model_only = load_predictor("rsam-lite", device="cpu", disk_cache=False, spatial_words=False)
    ds = SyntheticReferringDataset("val", size=100, image_size=256)
    ious = []
    for i in range(len(ds)):
        rec = ds[i]
        if rec["ambiguous"] or S.parse(rec["expression"]) is None:
            continue
        for p in (with_words, model_only):
            p.set_image(rec["image"])
        ious.append((M.iou(with_words.predict(text=rec["expression"]).mask, rec["mask"]),
                     M.iou(model_only.predict(text=rec["expression"]).mask, rec["mask"])))
        if len(ious) == 16:
            break
    resolved, alone = np.mean(ious, axis=0)
    assert len(ious) == 16 and resolved > 0.85 and resolved > alone + 0.4, ious


def _lake_with_ships():
    """A 200×200 scene: a dark lake (rows 40–160, cols 30–170) on grey ground, a white ship and a red one on it in the
    scenes' shifted lighting, a wake behind the white ship (water × 0.7 + 60), and the model's water mask: the lake
    grown by 2 pixels onto the shore, with holes where the ships are. Returns (pixels, water, white ship, red ship)."""
    shape = (200, 200)
    pixels = np.full((*shape, 3), (150, 150, 140), dtype=np.uint8)  # the generators' grey ground
    lake = _blobs(shape, [(30, 40, 170, 160)])
    pixels[lake] = (40, 80, 105)
    white, red = _blobs(shape, [(60, 70, 82, 76)]), _blobs(shape, [(120, 120, 126, 138)])
    wake = _blobs(shape, [(82, 69, 100, 77)])
    pixels[wake] = (np.array([40, 80, 105]) * 0.7 + 60).astype(np.uint8)
    pixels[white], pixels[red] = (195, 208, 203), (142, 51, 46)  # 50 from the palette's white; darker red
    water = ndimage.binary_dilation(lake, iterations=2) & ~ndimage.binary_dilation(white | red, iterations=1)
    return pixels, water, white, red


def test_ships_are_read_off_the_water_by_their_contrast_not_the_wake_or_the_shore():
    from rrsis_engine import metrics as M

    pixels, water, white, red = _lake_with_ships()
    ships = S.ships_on(water, pixels)
    found = S.objects_in(ships, "ship")
    assert len(found) == 2  # no wake, no band of shore inside the model's water, no island
    assert max(M.iou(o.mask, white) for o in found) > 0.9 and max(M.iou(o.mask, red) for o in found) > 0.9
    # their colours are read per object (whole=ship): the palette's nearest colour despite the lighting
    shape = water.shape
    assert S.choose(SpatialSpec("ship", color="white"), found, shape, pixels=pixels, whole=frozenset({"ship"})).mask[
        white].all()
    assert S.choose(SpatialSpec("ship", color="red"), found, shape, pixels=pixels, whole=frozenset({"ship"})).mask[
        red].all()
    # an island covering more than SHIP_MAX_SHARE of the image is no ship; no water, no ships
    island = _blobs(shape, [(35, 100, 85, 150)])
    pixels[island] = (120, 140, 90)
    assert not S.ships_on(water, pixels)[island].any()
    assert not S.ships_on(np.zeros(shape, dtype=bool), pixels).any()


@pytest.mark.parametrize("text, expected", [
    ("the ship", ("ship", "one")), ("find the boat", ("ship", "one")), ("show me the vessel", ("ship", "one")),
    ("find all of the ships", ("ship", "all")), ("every vessel", ("ship", "all")), ("segment all boats", ("ship", "all")),
    ("the ships", ("ship", "all")), ("the vehicle", ("car", "one")), ("segment all cars", ("car", "all")),
    ("every vehicle", ("car", "all")), ("show me the car park", ("parking", "one")),
    ("all parking lots", ("parking", "all")), ("segment the car parks", ("parking", "all")),
    ("the red ship", None), ("the blue car", None),  # a colour: parse() reads it
    ("the ship along the left edge", None), ("all the buildings", None), ("the ship and the pool", None),
    ("every ship near the lake", None), ("the car park nearest to the pool", None),
])
def test_sentences_that_name_ships_cars_or_car_parks_and_nothing_else_are_recognised(text, expected):
    assert S.read_off_sentence(text) == expected


def test_a_ship_near_the_bank_is_found_although_the_water_mask_is_open_there(monkeypatch):
    """The model's water leaves a gap between a ship near the bank and the shore, so the ship is no hole in it, and
    filling holes alone never brought it inside (synthetic validation 34, "all the ships": 0.00); the closing
    (SHIP_CLOSING) does."""
    shape = (200, 200)
    pixels = np.full((*shape, 3), (150, 150, 140), dtype=np.uint8)
    river = _blobs(shape, [(0, 90, 200, 122)])  # 32 pixels wide, left to right
    pixels[river] = (40, 80, 105)
    ship = _blobs(shape, [(60, 94, 84, 104)])  # 4 pixels from the upper bank
    pixels[ship] = (142, 51, 46)
    water = river & ~ndimage.binary_dilation(ship, iterations=1) & ~_blobs(shape, [(71, 90, 74, 94)])  # a 3-pixel gap
    assert not ndimage.binary_fill_holes(water)[ship].any()
    found = S.ships_on(water, pixels)
    assert found[ship].mean() > 0.9 and not found[~ndimage.binary_dilation(ship)].any()
    monkeypatch.setattr(S, "SHIP_CLOSING", 0.0)
    assert not S.ships_on(water, pixels).any()


def _road_with_cars():
    """A 256² image: sand, a grey road 12 px wide from left to right with white lane dashes 2 px wide, a red car in
    the middle of the road, a blue one at its lower edge (half on the sand), each with a dark shadow sliver; and the
    model's road mask as it is drawn: a notch where each car stands, a cell of overshoot over the sand."""
    shape = (256, 256)
    pixels = np.full((*shape, 3), (196, 180, 132), dtype=np.uint8)
    road = _blobs(shape, [(0, 120, 256, 132)])
    pixels[road] = (96, 96, 100)
    dashes = _blobs(shape, [(x, 125, x + 8, 127) for x in range(4, 256, 16) if not 50 < x < 80])
    pixels[dashes] = (225, 225, 220)
    red, blue = _blobs(shape, [(60, 122, 70, 127)]), _blobs(shape, [(150, 128, 160, 134)])
    pixels[_blobs(shape, [(61, 127, 71, 128)])] = (58, 58, 60)  # a shadow sliver beside the red car
    pixels[red], pixels[blue] = (175, 45, 45), (55, 80, 160)
    ground = (road | _blobs(shape, [(0, 132, 256, 134)])) & ~ndimage.binary_dilation(red | blue, iterations=1)
    return pixels, ground, red, blue, dashes


def test_cars_are_read_off_the_road_by_their_contrast_not_the_lane_dashes_or_the_verge(monkeypatch):
    """The model's mask of "all the cars" is the roads (synthetic validation: not one of 289 cars in it); a car is a
    compact patch of another colour on the road, where the model's road mask has a notch."""
    from rrsis_engine import metrics as M

    pixels, ground, red, blue, dashes = _road_with_cars()
    cars = S.cars_on(ground, pixels)
    found = S.objects_in(cars, "car")
    assert len(found) == 2, [o.area for o in found]  # no lane dash, no strip of sand along the road's edge
    assert max(M.iou(o.mask, red) for o in found) > 0.6 and max(M.iou(o.mask, blue) for o in found) > 0.6
    assert not cars[dashes].any()
    # whole objects: their colours are read per object, and a relation to "the blue car" finds the blue one
    shape = ground.shape
    whole = frozenset({"car"})
    assert S.choose(SpatialSpec("car", color="blue"), found, shape, pixels=pixels, whole=whole).mask[blue].mean() > 0.9
    assert S.choose(SpatialSpec("car", color="red"), found, shape, pixels=pixels, whole=whole).mask[red].mean() > 0.9
    # the notch at the road's edge: without the closing none of the blue car's pixels lie on the ground (a hole, as the
    # red car's, is filled either way)
    monkeypatch.setattr(S, "CAR_CLOSING", 0.0)
    assert not S.cars_on(ground, pixels)[blue].any()
    assert not S.cars_on(np.zeros(shape, dtype=bool), pixels).any()


def test_a_car_park_is_what_the_road_strips_leave_of_the_road_mask_less_its_cars():
    """The model's road mask holds most of a car park beside the road, with holes where the cars are; the car park is
    what the road's straight strip does not explain, its parked cars left out (the labels give them to the cars)."""
    from rrsis_engine import metrics as M

    shape = (256, 256)
    pixels = np.full((*shape, 3), (150, 148, 104), dtype=np.uint8)
    road = _blobs(shape, [(0, 120, 256, 132)])
    park = _blobs(shape, [(100, 132, 150, 170)])
    pixels[road | park] = (120, 120, 124)
    car = _blobs(shape, [(110, 150, 116, 160)])
    pixels[car] = (175, 45, 45)
    ground = (road | park) & ~car & ~_blobs(shape, [(130, 160, 150, 170)])  # a corner the model missed
    found = S.car_parks_on(ground, pixels)
    assert M.iou(found, park & ~car) > 0.85  # less most of the corner the model missed
    assert found[_blobs(shape, [(100, 132, 150, 134)])].mean() > 0.9  # the road strip's margin is the car park's
    assert not found[car].any() and not found[road & ~ndimage.binary_dilation(park, iterations=3)].any()
    assert not S.car_parks_on(road, pixels).any()  # a road alone holds no car park
    # read through the spatial words: "the car park" is that region, not the road the model's mask also holds
    assert M.iou(S.resolve(SpatialSpec("parking"), {"parking": found}, pixels), found) == 1.0


def test_the_shipped_model_reads_ships_off_the_water_for_sentences_that_name_only_ships():
    """ "the ship" and "all the ships" name no spatial word; the model's own mask of them holds no ship (synthetic
    validation 146 "the ship": 0.00; "all the ships" over the 74 validation scenes with ships, measured when written:
    0.78)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.expressions import SEMANTIC_CLASSES
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("val", size=300, image_size=256)
    rec = ds[146]
    assert rec["expression"] == "the ship"
    predictor.set_image(rec["image"])
    alone = predictor.predict(text="the ship")
    assert M.iou(alone.mask, rec["mask"]) > 0.9 and not alone.ambiguous  # the only ship on the water
    ious = []
    for index in (34, 36, 42, 78, 185, 248):  # two or three ships each, on lakes and rivers
        rec = ds[index]
        every_ship = rec["semantic"] == SEMANTIC_CLASSES.index("ship")
        predictor.set_image(rec["image"])
        ious.append(M.iou(predictor.predict(text="all the ships").mask, every_ship))
    assert np.mean(ious) > 0.8 and min(ious) > 0.3, ious


def test_a_positive_click_on_another_ship_shows_that_ship_and_keeps_every_ship_of_a_class_sentence():
    """ "the ship" shows one of several (the largest); a positive click on another is "not that one, this one". The
    model's own answer to that click was a blob of water around the clicked ship beside the first ship (synthetic
    validation 42 and 78, measured when written: the clicked ship's IoU 0.39 and 0.61, now 1.00 and 1.00)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.expressions import SEMANTIC_CLASSES
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor
    from rrsis_engine.session import RefinementSession

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("val", size=300, image_size=256)
    for index in (42, 78):
        rec = ds[index]
        every_ship = rec["semantic"] == SEMANTIC_CLASSES.index("ship")
        labels, n = ndimage.label(every_ship, structure=np.ones((3, 3), dtype=bool))
        assert n == 2
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        shown = session.text("the ship").mask
        ious = [M.iou(shown, labels == k) for k in (1, 2)]
        assert max(ious) > 0.9 and min(ious) < 0.1, ious
        assert session.current.ambiguous  # which of the two is the labeller's call
        other = labels == 1 + int(np.argmin(ious))
        rows, cols = np.nonzero(other)
        after = session.click(cols.mean(), rows.mean(), positive=True).mask
        assert M.iou(after, other) > 0.9
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        assert M.iou(session.text("all the ships").mask, every_ship) > 0.9
        assert M.iou(session.click(cols.mean(), rows.mean(), positive=True).mask, every_ship) > 0.9


def _read_off_and_model_ious(predictor, ds, indices, category, text):
    """IoU of ``text``'s mask with every object of ``category`` on the scenes ``indices`` of ``ds``: with the engine's
    reading off the ground (``predictor``) and with the model's own mask (spatial words off)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.expressions import SEMANTIC_CLASSES
    from rrsis_engine.predictor import load_predictor

    model_only = load_predictor("rsam-lite", device="cpu", disk_cache=False, spatial_words=False)
    read_off, own = [], []
    for index in indices:
        rec = ds[index]
        every_one = rec["semantic"] == SEMANTIC_CLASSES.index(category)
        for p, ious in ((predictor, read_off), (model_only, own)):
            p.set_image(rec["image"])
            ious.append(M.iou(p.predict(text=text).mask, every_one))
    return read_off, own


def test_the_shipped_model_reads_cars_off_the_roads_for_sentences_that_name_only_cars():
    """The model's own mask of "all the cars" is the roads they stand on (IoU with the cars under 0.1); read off the
    roads it is the cars (every 4th of the 300 validation scenes, the 64 with cars, measured when written: 0.014 →
    0.560). "the vehicle" shows one car, and a positive click on another shows that one instead."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor
    from rrsis_engine.session import RefinementSession

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("val", size=300, image_size=256)
    # the first six of every 4th scene that have cars
    read_off, own = _read_off_and_model_ious(predictor, ds, (0, 4, 8, 16, 20, 28), "car", "all the cars")
    assert np.mean(read_off) > 0.4 and np.mean(own) < 0.1, (read_off, own)
    rec = ds[0]
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    shown = session.text("the vehicle").mask
    # the cars the text turn read off the roads (cached per image: no features needed to fetch them)
    cars, _ = predictor._read_off_ground(predictor._key(predictor._image_or_raise(None)), None, None, "car")
    labels, n = ndimage.label(cars, structure=np.ones((3, 3), dtype=bool))
    assert n >= 2 and shown.any() and (labels[shown] > 0).mean() > 0.9  # one of the cars read off the roads
    sizes = np.bincount(labels.ravel())
    sizes[[0, np.bincount(labels[shown]).argmax()]] = 0
    other = labels == sizes.argmax()  # the largest of the others
    rows, cols = np.nonzero(other)
    after = session.click(cols.mean(), rows.mean(), positive=True).mask
    assert M.iou(after, other) > 0.8 and not (after & shown).any()


def test_the_shipped_model_reads_car_parks_off_the_roads():
    """The model's mask of "all car parks" is the roads with a part of each car park (every 3rd of the 300 validation
    scenes, the 14 with a car park: IoU 0.123); read off the roads 0.729 (measured when written, before the engine's
    snap). Validation 188 "select the parking lot nearest to the largest pool" was 0.11 at the text turn and 0.23
    after one click (the road network)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor
    from rrsis_engine.session import RefinementSession

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("val", size=300, image_size=256)
    # the first four of every 3rd scene that have a car park
    read_off, own = _read_off_and_model_ious(predictor, ds, (9, 15, 39, 78), "parking", "all parking lots")
    assert np.mean(read_off) > 0.6 and np.mean(own) < 0.3, (read_off, own)
    rec = ds[188]
    assert rec["expression"] == "select the parking lot nearest to the largest pool"
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    shown = session.text(rec["expression"]).mask
    assert M.iou(shown, rec["mask"]) > 0.8
    x, y, label = M.next_click(shown, rec["mask"])
    assert M.iou(session.click(x, y, positive=bool(label)).mask, rec["mask"]) > 0.8  # not the roads


def test_a_negative_click_on_a_ship_rejects_it_whole():
    """ "the ship": a negative click on the ship shown is "not that one" and shows the other; "all the ships": it
    removes that ship only. Before, the click trimmed a disc out of the ship shown, as on the rim of a thin object
    (synthetic validation 86 "the boat": 67 of the ship's 89 pixels stayed)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.expressions import SEMANTIC_CLASSES
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor
    from rrsis_engine.session import RefinementSession

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    rec = SyntheticReferringDataset("val", size=300, image_size=256)[42]
    labels, n = ndimage.label(rec["semantic"] == SEMANTIC_CLASSES.index("ship"), structure=np.ones((3, 3), dtype=bool))
    assert n == 2
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    shown = session.text("the ship").mask
    first = labels == 1 + int(np.argmax([M.iou(shown, labels == k) for k in (1, 2)]))
    other = (labels > 0) & ~first
    rows, cols = np.nonzero(ndimage.distance_transform_edt(first) == ndimage.distance_transform_edt(first).max())
    assert M.iou(session.click(cols[0], rows[0], positive=False).mask, other) > 0.9
    session = RefinementSession(predictor)
    session.set_image(rec["image"])
    assert M.iou(session.text("all the ships").mask, labels > 0) > 0.9
    assert M.iou(session.click(cols[0], rows[0], positive=False).mask, other) > 0.9


def test_the_shipped_model_finds_ships_the_words_name_and_ships_as_anchors():
    """The model's mask of "all the ships" holds none of these ships; read off its water they are found, as targets
    and as anchors (synthetic validation scenes; measured when written: 151 0.00 → 1.00, 200 0.00 → 1.00, 261 0.00 →
    0.98, 168 0.00 → 0.95)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import load_predictor

    predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("val", size=300, image_size=256)
    for index, expression in ((151, "select the red ship next to the body of water"),
                              (200, "the ship along the left edge"),
                              (261, "the swimming pool closest to the vessel")):
        rec = ds[index]
        assert rec["expression"] == expression
        predictor.set_image(rec["image"])
        assert M.iou(predictor.predict(text=expression).mask, rec["mask"]) > 0.85, expression


def test_the_look_alikes_are_ranked_likeliest_first_and_become_candidates():
    """Of the look-alikes a mask holds, the likeliest first (mean probability, then area), the negated one left out;
    as candidates each keeps its whole region, its box, a point inside it and that probability as its score."""
    from rrsis_engine import postprocess

    shape = (100, 100)
    a, b, c = (5, 5, 20, 20), (40, 40, 60, 60), (80, 80, 95, 95)
    mask = _blobs(shape, [a, b, c])
    pixels = np.full(shape + (3,), 120, dtype=np.uint8)
    logits = np.where(_blobs(shape, [b]), 3.0, np.where(_blobs(shape, [a]), 1.0, 2.0)).astype(np.float32)
    ranked = S.ranked_objects(mask, "building", logits, np.zeros((0, 2)), pixels)
    assert [r.nonzero()[0].min() for r in ranked] == [40, 80, 5]  # b (σ 0.95), c (0.88), a (0.73)
    assert [r.nonzero()[0].min() for r in S.ranked_objects(mask, "building", logits, np.array([[50.0, 50.0]]),
                                                            pixels)] == [80, 5]  # a negative click on b
    assert S.ranked_objects(_blobs(shape, [a]), "building", logits, np.zeros((0, 2)), pixels) == []  # one object
    candidates = postprocess.candidates_from_objects(ranked, logits)
    assert [cand.bbox for cand in candidates] == [(40, 40, 60, 60), (80, 80, 95, 95), (5, 5, 20, 20)]
    assert all(cand.mask[int(cand.point[1]), int(cand.point[0])] for cand in candidates)
    assert candidates[0].score == pytest.approx(1 / (1 + np.exp(-3.0)))
