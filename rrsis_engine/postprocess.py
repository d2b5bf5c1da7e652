"""From mask logits to what a labeler sees: uncertainty map, candidate regions, a suggested click.

All arrays are in the image frame (H×W, [row, col]); points are (x, y) = (col, row).
The probability-margin uncertainty is the model-agnostic baseline; the CroBIM-U uncertainty head (RUS,
when a model has one) replaces it. The ambiguity score lives in :mod:`rrsis_engine.ambiguity`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from rrsis_engine.prediction import Candidate

#: A component smaller than this share of the largest one is noise, not a candidate.
MIN_CANDIDATE_SHARE = 0.05


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def margin_uncertainty(prob: np.ndarray) -> np.ndarray:
    """1 at p = 0.5, 0 at p ∈ {0, 1}: H×W float32."""
    return (1.0 - np.abs(2.0 * prob - 1.0)).astype(np.float32)


def interior_point(region: np.ndarray) -> tuple[float, float]:
    """(x, y) of the region pixel farthest from its boundary (the standard click-simulation point)."""
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(col), float(row)


def resample_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """h×w array → height×width by nearest neighbour (pixel centres aligned), up or down: a coarse grid's cells
    spread over the pixels, or a fine array read at the cell centres."""
    h, w = grid.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return grid[rows[:, None], cols[None, :]]


def point_pixels(points: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, cols) int arrays of the pixels that ``points`` (N×2 x, y image pixels) fall on, rounded and clipped
    to an image of ``shape`` (H, W, ...)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.round(points[:, 0]).astype(int), 0, shape[1] - 1)
    return rows, cols


def negated_by_clicks(mask: np.ndarray, points: np.ndarray, labels: np.ndarray,
                      previous: np.ndarray | None = None,
                      colour_strips: list[tuple[np.ndarray, float] | None] | None = None,
                      trim_only: bool = False, class_sentence: bool = False) -> np.ndarray:
    """What the negative clicks among ``points`` (N×2 x, y; ``labels`` N, 1 positive / 0 negative) remove from
    ``mask`` (H×W bool), H×W bool: the separate look-alikes they lie on (:func:`negated_regions`), then the strips
    crossing the target they lie on (:func:`negated_strips`) in what is left; given the ``previous`` turn's mask
    (H×W bool), what is left in ``mask`` of the parts they lie deep in there (:func:`negated_previous_parts`); and
    given the straight stretch of the colour strip (a road) each negative click lies on, in order (``colour_strips``:
    H×W bool and half-width, or None), what :func:`negated_strip_regions` takes out of ``mask`` with them. trim_only:
    for the object the sentence's words chose, the clicks trim it and do not reject it whole (as after a positive
    click). class_sentence: the sentence asks for every object of a category ("segment every road"): a click deep in a
    part that is most of the mask takes out no more than the model's answer did — the road network with a car park
    the model added is not the wrong object (:func:`negated_previous_parts`)."""
    removed = negated_regions(mask, points, labels)
    removed |= negated_strips(mask & ~removed, points, labels)
    if previous is not None:
        removed |= negated_previous_parts(mask, previous, points, labels, trim_only or class_sentence)
    if colour_strips is not None and any(s is not None for s in colour_strips):
        removed |= negated_strip_regions(mask, colour_strips, points, labels, trim_only)
    return removed


def holes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The holes of ``mask`` (H×W bool): the 4-connected pieces of its background that the array's border does not
    reach, as an H×W int label image (0 on the mask and on the open background; labels are not consecutive) and the
    number of background pieces labelled (the largest label possible)."""
    background, count = ndimage.label(~mask)
    if count:
        open_background = np.zeros(count + 1, dtype=bool)
        open_background[np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])] = True
        background[open_background[background]] = 0
    return background, count


def boundary_distance(region: np.ndarray, max_side: int = 512) -> tuple[np.ndarray, int]:
    """Distances (pixels) of every step-th pixel of ``region`` (H×W bool, [row, col]) to the region's boundary, the
    array's border counting as outside, and the step: 1 up to ``max_side`` pixels a side, more above it (a 1 024² EDT
    costs ≈ 50 ms). Returns (⌈H / step⌉×⌈W / step⌉ float distances in full-resolution pixels / step, step)."""
    step = distance_step(region.shape, max_side)
    sub = region[::step, ::step]
    return ndimage.distance_transform_edt(np.pad(sub, 1))[1:-1, 1:-1], step


def distance_step(shape: tuple[int, ...], max_side: int = 512) -> int:
    """The step of the pixels a distance transform of an array of ``shape`` (H, W) runs on: 1 up to ``max_side``
    pixels a side, more above it (:func:`boundary_distance`)."""
    return -(-max(shape[:2]) // max_side)


#: A negative click lies on the rim of the shown part it is in when its depth there (distance to the part's outside) is
#: below this share of the part's deepest pixel's, or below one model cell in the mask's largest part (a grove 4.5
#: pixels deep at 2.7 pixels a cell is under two cells deep in its middle: a click 2.2 pixels in trims it; synthetic
#: validation 30 and 199; a smaller separate piece is still the labeller's to remove whole, test 54); a positive click
#: when it lies within RIM_GAP_CELLS model cells of the shown mask.
RIM_DEPTH_SHARE = 0.5
RIM_GAP_CELLS = 1.15
#: The rim band of a click at depth (or gap) d: the part's pixels at most RIM_BAND_SCALE · d + 1 deep (a negative
#: click), the pixels at most that far from the mask (a positive one). The model's answer stands when it changes at most
#: RIM_FREE_SHARE of the part beyond that band; otherwise only the band within RIM_ZONE_SCALE · (d + 1) of the click
#: changes.
RIM_BAND_SCALE = 2.0
RIM_FREE_SHARE = 0.1
RIM_ZONE_SCALE = 2.0
#: ... nor when a negative click on the rim of a part removes more than this share of it: on a small part the band is
#: nearly all of it (a grove 4 pixels deep, clicked 1 pixel in: the band is every pixel up to 3 deep), so the answer
#: "drop the grove" changed almost nothing beyond the band (synthetic validation 212 and 298: 0.90 → 0.00, 0.97 → 0.29).
#: Then the band is the part's pixels at most d + 1 deep; for a click under one model cell deep in the largest part,
#: those no deeper than the click within d + 1 of it: the model cannot tell such a rim's width, and the wider zone cut
#: a nearly right grove to half (validation 30: 0.96 → 0.47; with the thin zone 0.93). On real images (a cell is 6–12
#: pixels) the thin zone for every drop left spills 30 pixels deep (held-out 009-002: three clicks 0.73 → 0.58)
RIM_DROP_SHARE = 0.5


def rim_click_zone(previous: np.ndarray, new: np.ndarray, x: float, y: float, positive: bool,
                   cell_px: float, local_only: bool = False) -> np.ndarray | None:
    """Where the model's answer ``new`` to a click at (x, y) pixels may change ``previous`` (the mask shown before the
    click; both H×W bool), H×W bool, when the click lies on the rim of ``previous`` and ``new`` changed far more than
    that rim; None when ``new`` stands as it is — a negative click deep in a part or a positive one away from the mask
    may add or remove a whole object, and an answer that changes the rim, however long, corrects it. Changes the click
    did not ask for (pixels added after a negative click, removed after a positive one) count as beyond the rim.

    On the rim a click corrects the boundary: the standard protocol clicks the centre of the largest wrong region,
    on a nearly right mask a sliver along it. The model answered a negative click 2 pixels inside a grove by removing
    the grove (synthetic test "segment the grove on the left": IoU 0.96 → 0.00), and positive clicks beside a road by
    adding the roads it meets. With d the click's depth in its part (negative) or gap to the mask (positive), the rim
    band is the part's pixels at most RIM_BAND_SCALE · d + 1 deep, or the pixels at most that far from the mask; when
    the answer changes more pixels than RIM_FREE_SHARE of the part beyond the band, or removes more than
    RIM_DROP_SHARE of the part after a negative click, the zone is the band within RIM_ZONE_SCALE · (d + 1) of the
    click (after a drop, the band is at most d + 1 deep; for a click under one cell deep in the mask's largest part,
    the pixels no deeper than the click within d + 1 of it). A first click after a text turn deeper than the rim but
    short of REJECT_CLICK_DEPTH of the largest part, answered by dropping the part, removes the disc of one cell around
    it: the standard protocol clicks a crack between two clumps of a nearly right grove there, and the model dropped
    the grove (synthetic validation 082 and 137: 0.95 and 0.93 → 0.00; now 0.92 and 0.87); later such clicks let the
    drop stand (one cell a click stalled "the parking lot nearest to the largest pool" at 0.24 for 18 clicks, where
    the drops had reached 0.85 in 13). ``cell_px``: image pixels per cell of the model's S/4
    logits. local_only: the first click after a text turn touches up that turn's outline, so the answer stands only
    when it changes at most RIM_FREE_SHARE of the part beyond the zone itself, not the whole band: the model answered a
    click on a 1-pixel sliver of a nearly right 146-pixel grove with a mask 1 pixel wider all round (synthetic
    validation "the smallest group of trees": 0.99 → 0.85, with it 0.97). Later rim clicks may still move the whole
    outline: with every rim click local, repeated clicks on slivers of a mask that is 2 pixels off all round stalled
    (validation "the topmost street": 6 clicks to 0.85 became 20)."""
    h, w = previous.shape
    row, col = int(min(max(round(y), 0), h - 1)), int(min(max(round(x), 0), w - 1))
    if bool(previous[row, col]) == positive or not previous.any():
        return None  # a positive click on the mask, a negative one off it: nothing to correct on the rim
    if positive:  # the gap to the mask, from the mask pixels in a window around the click
        reach = int(np.ceil(RIM_GAP_CELLS * cell_px))
        r0, c0 = max(row - reach, 0), max(col - reach, 0)
        rows, cols = np.nonzero(previous[r0:row + reach + 1, c0:col + reach + 1])
        if len(rows) == 0:
            return None
        gaps = np.hypot(rows + r0 - row, cols + c0 - col)
        nearest = int(np.argmin(gaps))
        depth = float(gaps[nearest])
        if depth > RIM_GAP_CELLS * cell_px:
            return None
        seed = (rows[nearest] + r0, cols[nearest] + c0)
    else:
        seed = (row, col)
    parts, _ = ndimage.label(previous)
    part = parts == parts[seed]
    changed = new != previous  # beyond the band: what the click did not ask for, in either direction
    limit = RIM_FREE_SHARE * np.count_nonzero(part)
    if np.count_nonzero(changed) <= limit:  # the answer stands whatever the band (most click turns end here)
        return None
    # distances on every step-th pixel above 512 pixels a side, as boundary_distance (a 1 024² EDT costs ≈ 50 ms)
    dropped = sub_cell = mid_depth = False
    if positive:
        step = distance_step(previous.shape)
        gap = resample_nearest(ndimage.distance_transform_edt(~previous[::step, ::step]) * step, h, w)
        band = ~previous & (gap <= RIM_BAND_SCALE * depth + 1)
    else:
        rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        sub, step = boundary_distance(part[r0:r1, c0:c1])
        inside = resample_nearest(sub * step, r1 - r0, c1 - c0)  # the part's box
        depth = float(inside[row - r0, col - c0])
        largest = np.count_nonzero(part) == np.bincount(parts.ravel())[1:].max()
        sub_cell = depth < cell_px and largest
        dropped = np.count_nonzero(part & ~new) > RIM_DROP_SHARE * np.count_nonzero(part)
        mid_depth = depth >= RIM_DEPTH_SHARE * float(inside.max()) and not sub_cell
        if mid_depth and not (local_only and dropped and largest and depth < REJECT_CLICK_DEPTH * float(inside.max())):
            return None
        band = np.zeros_like(part)
        band[r0:r1, c0:c1] = part[r0:r1, c0:c1] & (inside <= RIM_BAND_SCALE * depth + 1)
        if dropped:  # the model's answer is no guide to the rim's width: the click's own depth is
            band[r0:r1, c0:c1] &= inside <= (depth if sub_cell else depth + 1)
    # a click between the rim and the middle that the model answered by dropping the part: the disc of one cell
    reach = cell_px if mid_depth else depth + 1 if dropped and sub_cell else RIM_ZONE_SCALE * (depth + 1)
    yy, xx = np.ogrid[:h, :w]
    zone = band & ((xx - col) ** 2 + (yy - row) ** 2 <= reach ** 2)
    if not dropped and np.count_nonzero(changed & ~(zone if local_only else band)) <= limit:
        return None
    return zone


def _parts_under(parts: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The label in ``parts`` (H×W int, 0 = background, from ``ndimage.label``) under each of ``points`` (N×2 x, y
    image pixels), N ints; a point in a hole of a part (:func:`holes`) takes the label of the part around the hole, 0
    stays for the open background."""
    rows, cols = point_pixels(points, parts.shape)
    ids = parts[rows, cols].copy()
    if (ids == 0).any():
        hole_labels, _ = holes(parts > 0)
        for i in np.nonzero(ids == 0)[0]:
            hole = hole_labels[rows[i], cols[i]]
            if hole == 0:
                continue
            box = ndimage.find_objects(hole_labels, max_label=hole)[hole - 1]
            box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
            rim = ndimage.binary_dilation(hole_labels[box] == hole) & (parts[box] > 0)
            ids[i] = np.bincount(parts[box][rim]).argmax()
    return ids


def negated_regions(mask: np.ndarray, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` (H×W bool, 4-connected) that a negative click lies on and no positive click
    does (H×W bool); empty when together they are larger than the rest of the mask (on real images removing those
    cost one-click mIoU; on synthetic scenes the guard changed nothing measurable).

    points: N×2 (x, y) image pixels; labels: N (1 positive, 0 negative). A labeller who clicks "not this" on a separate
    look-alike means the whole look-alike; the model often shrinks it only around the click, or not at all. A click in
    a hole of a part (the model or the edge snap cut out the clicked spot itself) lies on that part."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    none = np.zeros(mask.shape, dtype=bool)
    if not (labels == 0).any() or not mask.any():
        return none
    parts, _, drop = _negated_parts(mask, points, labels)
    if not drop:
        return none
    return _unless_most_of(np.isin(parts, sorted(drop)), mask)


def _negated_parts(mask: np.ndarray, points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """The parts of ``mask`` (H×W bool; ``ndimage.label`` image, 4-connected), the part under each of ``points`` (N
    ints, :func:`_parts_under`) and the set of parts a negative click lies on and no positive click does."""
    parts, _ = ndimage.label(mask)
    ids = _parts_under(parts, points)
    return parts, ids, set(ids[labels == 0].tolist()) - set(ids[labels == 1].tolist()) - {0}


def _depth_share(depth: np.ndarray, step: int, box: tuple[slice, slice], row: int, col: int) -> float:
    """The depth of pixel (row, col) in a part as a share of its deepest pixel's, from the part's
    :func:`boundary_distance` in its ``box`` (``depth``, ``step``); 0 off the box and for a part thinner than the step
    (which the sampled pixels miss). A click in a hole lies off the part (depth 0) — also when the hole's rim is mostly
    a part whose box does not reach the click (a hole closed by two parts; found by tests/engine/test_quality.py's
    random model)."""
    peak = depth.max()
    r, c = (row - box[0].start) // step, (col - box[1].start) // step
    on_box = 0 <= r < depth.shape[0] and 0 <= c < depth.shape[1]
    return float(depth[r, c] / peak) if peak and on_box else 0.0


def _unless_most_of(removed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``removed`` (H×W bool), or nothing when it is more than half of ``mask``: then the negative click more likely
    trims a spill than rejects a look-alike."""
    return removed if 2 * int(removed.sum()) <= int(mask.sum()) else np.zeros_like(removed)


#: :func:`negated_previous_parts`: a negative click lies deep in a part when the part's distance to its own boundary
#: there is at least this share of its largest (chosen on the validation scenes against 0.75; a click that trims a
#: spill, or cuts a bridge between two parts, lies near the boundary of what it joins)
DEEP_CLICK_DEPTH = 0.5
#: ... and, before any positive click, a negative click at least this deep rejects its part even when that part is
#: most of the mask (the sentence found the wrong object: a canal for "the building beside the canal"; chosen on the
#: validation scenes against 0.5, which removed targets the labeller was trimming)
REJECT_CLICK_DEPTH = 0.8


def negated_previous_parts(mask: np.ndarray, previous: np.ndarray, points: np.ndarray,
                           labels: np.ndarray, trim_only: bool = False) -> np.ndarray:
    """What is left in ``mask`` (H×W bool, this turn's) of the parts of ``previous`` (H×W bool, the mask the labeller
    clicked on) that a negative click lies deep in and no positive click lies on, H×W bool.

    The model answers a negative click on a look-alike by removing the clicked spot, often cutting the look-alike
    into pieces that no longer lie under the click, so :func:`negated_regions` on this turn's mask misses them. The
    parts are those of ``mask | previous`` (4-connected). A part goes when the click's distance to the part's boundary
    is at least :data:`DEEP_CLICK_DEPTH` of the part's largest, unless the parts going are together larger than the
    rest (as :func:`negated_regions`); before any positive click, a part goes whatever its size when the click is at
    least :data:`REJECT_CLICK_DEPTH` deep — not with ``trim_only`` (the object the sentence's words chose by geometry:
    a negative click on a crossing of that road rejected all of it, synthetic test scene 114). points: N×2 (x, y) image
    pixels; labels: N (1 positive, 0 negative)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    none = np.zeros(mask.shape, dtype=bool)
    if not (labels == 0).any() or not mask.any():
        return none
    rows, cols = point_pixels(points, mask.shape)
    if (labels == 1).any() and mask[rows[labels == 0], cols[labels == 0]].all():
        return none  # negated_regions already sees the clicked parts (validation: identical results with the rule)
    seen = mask | previous
    parts, ids, candidates = _negated_parts(seen, points, labels)
    if not candidates:
        return none
    boxes = ndimage.find_objects(parts, max_label=max(candidates))
    deep, rejected = set(), set()
    depths: dict[int, tuple[np.ndarray, int]] = {}
    for i in np.nonzero(labels == 0)[0]:
        part = int(ids[i])
        if part not in candidates:
            continue
        box = boxes[part - 1]
        if part not in depths:
            depths[part] = boundary_distance(parts[box] == part)
        share = _depth_share(*depths[part], box, rows[i], cols[i])
        if share >= DEEP_CLICK_DEPTH:
            deep.add(part)
        if share >= REJECT_CLICK_DEPTH and not (trim_only or (labels == 1).any()):
            rejected.add(part)
    return (_unless_most_of(np.isin(parts, sorted(deep)), seen) | np.isin(parts, sorted(rejected))) & mask


#: :func:`rejected_choice`: the model's answer to such a click kept at least this share of the object clicked
UNMOVED_SHARE = 0.9
#: ... and the object is compact: its area at most this many times the disc its deepest pixel's depth spans (a blob or
#: a lake, 1–3; a road w wide and L long, 4L / πw: every pixel on its axis and its crossings is "deep")
COMPACT_AREA = 4.0


def rejected_choice(previous: np.ndarray, mask: np.ndarray, x: float, y: float) -> np.ndarray | None:
    """The object a negative click at (x, y) pixels rejects when the model did not: H×W bool, the part of
    ``previous`` (H×W bool, the mask the labeller clicked on) the click lies at least :data:`REJECT_CLICK_DEPTH` deep
    in, with the parts of ``mask`` (H×W bool, the model's answer) that overlap it, when that part is compact
    (:data:`COMPACT_AREA`) and ``mask`` still holds :data:`UNMOVED_SHARE` of it; None otherwise (a click near the rim
    or on a road trims, and an answer that dropped or cut the part needs no help).

    For the object a sentence's words chose by geometry the negative clicks only trim (:func:`negated_by_clicks`'s
    ``trim_only``: a click on a crossing of the road chosen had rejected all of it). When the words chose the wrong
    object — the sea for "the smallest body of water" or "the leftmost lake" — the standard protocol clicks the
    middle of it, the model removes a few pixels around the click, and twenty such clicks left IoU at 0.00 (real
    held-out tile6 008-002 and 009-000). A ragged or long part (two fifths of an image for "the smallest unpaved
    area", tile2 009-006) is not compact and stays a trim."""
    row, col = (int(v[0]) for v in point_pixels(np.array([[x, y]]), previous.shape))
    if not previous[row, col]:
        return None
    parts, _ = ndimage.label(previous)
    part = parts == parts[row, col]
    area = np.count_nonzero(part)
    if np.count_nonzero(mask & part) < UNMOVED_SHARE * area:
        return None  # the model answered (most click turns end here, before the distance transform)
    box = ndimage.find_objects(part.astype(np.int32))[0]
    depth, step = boundary_distance(part[box])
    if _depth_share(depth, step, box, row, col) < REJECT_CLICK_DEPTH:
        return None
    if area > COMPACT_AREA * math.pi * (float(depth.max()) * step) ** 2:
        return None  # a strip: a click on its axis or a crossing trims it (synthetic validation 079, a road crossing)
    answer, _ = ndimage.label(mask)
    overlapping = np.unique(answer[part & mask])
    return part | np.isin(answer, overlapping[overlapping > 0])


#: a negative click's strip (:func:`negated_strips`): the window whose mask pixels give the strip's direction and width
#: has this radius as a fraction of the image's longer side (10 cells of rsam-lite's 96² logit grid, where it was
#: chosen: 27 px of a 256² image, 107 px of a 1 024² one)
STRIP_WINDOW = 10 / 96
#: those pixels form a strip when the variance of their coordinates along its direction is this many times the
#: variance across it (a uniform strip as long as the window's diameter and w wide: ≈ (2r)² / w²)
STRIP_ELONGATION = 4.0
#: the click lies on the strip when it is within this many half-widths of the strip's axis (nearer its edge it more
#: likely trims a spill along the target: a river's bank, chosen on the validation scenes against 1.0)
STRIP_AXIS_HALF_WIDTHS = 0.5
#: mask pixels within this many half-widths of a positive click always stay
STRIP_KEEP_HALF_WIDTHS = 2.0


def negated_strips(mask: np.ndarray, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The strips of ``mask`` (H×W bool) that a negative click lies on and no positive click does (H×W bool): a road
    or canal crossing the target, which the model keeps because it touches it.

    For each negative click, the mask pixels within :data:`STRIP_WINDOW` × the image's longer side of it give a
    direction and a width (principal axes of their coordinates; a strip when :data:`STRIP_ELONGATION` holds and the
    click lies near its axis, :data:`STRIP_AXIS_HALF_WIDTHS`); the mask pixels in that band (along the axis,
    half-width √3·σ_across + 1.5 px) connected to the window form the branch (:func:`strip_through`), which goes
    unless a positive click lies on it; pixels within :data:`STRIP_KEEP_HALF_WIDTHS` half-widths of a positive click
    stay (the crossing with the target). A branch that is more than half the mask stays (it is more likely the target).
    points: N×2 (x, y) image pixels; labels: N (1 positive, 0 negative)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    removed = np.zeros(mask.shape, dtype=bool)
    if not (labels == 0).any() or not mask.any():
        return removed
    positives = points[labels == 1]
    pixels = None  # all mask pixels, found once a click's window holds a strip
    for x, y in points[labels == 0]:
        found = strip_through(mask, x, y, pixels)
        if found is None:
            continue
        branch, half_width = found
        if branch[point_pixels(positives, mask.shape)].any():
            continue  # the labeller trims the target's own strip, not a crossing one
        rows, cols = pixels = np.nonzero(mask) if pixels is None else pixels
        branch[rows, cols] &= _far_from(rows, cols, positives, STRIP_KEEP_HALF_WIDTHS * half_width)
        if 2 * int(branch.sum()) <= len(rows):  # a branch larger than the rest of the mask is the target's own
            removed |= branch
    return removed


def strip_through(mask: np.ndarray, x: float, y: float,
                  pixels: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, float] | None:
    """The straight strip of ``mask`` (H×W bool) through the pixel at (x, y) and its half-width in pixels, or None
    when the mask near the click is no strip or the click lies beside its axis (:func:`negated_strips` describes
    the test). The strip (H×W bool) is the mask pixels within a half-width of its axis (through the mean of the
    window's pixels) that are connected to the click's window: a road through a crossing, without the crossing road.
    pixels: the mask's ``np.nonzero``, when the caller has it."""
    height, width = mask.shape
    radius = STRIP_WINDOW * max(height, width)
    top, left = max(0, int(y - radius)), max(0, int(x - radius))
    win_rows, win_cols = np.nonzero(mask[top:int(y + radius) + 1, left:int(x + radius) + 1])
    win_rows, win_cols = win_rows + top, win_cols + left
    near = (win_cols - x) ** 2 + (win_rows - y) ** 2 <= radius ** 2
    if near.sum() < 10:
        return None
    win_rows, win_cols = win_rows[near], win_cols[near]
    coords = np.stack([win_cols, win_rows], axis=1).astype(np.float64)
    centre = coords.mean(axis=0)
    variances, axes = np.linalg.eigh(np.cov((coords - centre).T))
    across_var = max(float(variances[0]), 1e-6)
    if variances[1] < STRIP_ELONGATION * across_var:
        return None
    normal = axes[:, 0]  # unit vector across the strip
    half_width = float(np.sqrt(3.0 * across_var)) + 1.5
    if abs(float((np.array([x, y]) - centre) @ normal)) > STRIP_AXIS_HALF_WIDTHS * half_width:
        return None  # the click lies beside the strip the window's pixels form, or on its edge
    rows, cols = np.nonzero(mask) if pixels is None else pixels
    band = np.abs((cols - centre[0]) * normal[0] + (rows - centre[1]) * normal[1]) <= half_width
    strip = np.zeros(mask.shape, dtype=bool)
    strip[rows[band], cols[band]] = True
    parts, _ = ndimage.label(strip)
    ids = np.unique(parts[win_rows, win_cols])
    return np.isin(parts, ids[ids > 0]), half_width


def _far_from(rows: np.ndarray, cols: np.ndarray, points: np.ndarray, radius: float) -> np.ndarray:
    """For each pixel (``rows``, ``cols``: N ints each), whether it lies farther than ``radius`` pixels from every one
    of ``points`` (M×2 x, y), N bool."""
    far = np.ones(len(rows), dtype=bool)
    for px, py in points:
        far &= (cols - px) ** 2 + (rows - py) ** 2 > radius ** 2
    return far


#: :func:`slivers_beside`: the band beside a negated strip, in half-widths of the strip, and the opening that tells a
#: sliver (a kerb line) from the target beside the road (chosen on the validation scenes against 1 and 3 iterations,
#: and a band of 1.0)
SLIVER_BAND_HALF_WIDTHS = 0.5
SLIVER_OPENING = 2


def negated_strip_regions(mask: np.ndarray, strips: list[tuple[np.ndarray, float] | None], points: np.ndarray,
                          labels: np.ndarray, trim_only: bool = False) -> np.ndarray:
    """What the negative clicks' colour strips remove from ``mask`` (H×W bool), H×W bool: a road crossing the target,
    or the wrong road the text turn found, after the model answered the click only around it.

    strips: one per negative click, in order: the straight stretch through the click (:func:`strip_through`) of the
    long, thin colour region it lies on (:func:`rrsis_engine.click_regions.grow_region`; the road without the roads
    of the same asphalt that cross it, one of which may be the target), H×W bool, with its half-width in pixels; or
    None. Each goes with the thin leftovers of ``mask`` beside it (its kerbs, :func:`slivers_beside`), less the pixels
    within :data:`STRIP_KEEP_HALF_WIDTHS` of its half-width from a positive click (the crossing with the target; a boat
    the medians merged into its river). Once the labeller has a positive click nothing is removed when it would be
    more than half the mask (a trim, not a rejection); so with ``trim_only`` (the object the sentence's words chose).
    points: N×2 (x, y) image pixels; labels: N (1 positive, 0 negative)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    removed = np.zeros_like(mask)
    for found in strips:
        if found is None:
            continue
        strip, half_width = found
        rows, cols = np.nonzero((strip | slivers_beside(strip, mask & ~strip, half_width)) & mask)
        far = _far_from(rows, cols, points[labels == 1], STRIP_KEEP_HALF_WIDTHS * half_width)
        removed[rows[far], cols[far]] = True
    if (trim_only or (labels == 1).any()) and 2 * int(removed.sum()) > int(mask.sum()):
        return np.zeros_like(mask)
    return removed


def slivers_beside(strip: np.ndarray, rest: np.ndarray, half_width: float) -> np.ndarray:
    """The pixels of ``rest`` (H×W bool, the mask without ``strip``) within :data:`SLIVER_BAND_HALF_WIDTHS` ×
    ``half_width`` (at least 2 px) of ``strip`` (H×W bool) that belong to parts thinner than about 2 ×
    :data:`SLIVER_OPENING` + 1 px (gone after a binary opening with that many iterations), H×W bool: the lighter
    kerbs along a road, which its colour region leaves out and the snap keeps, so that each took a negative click of
    its own; the target beside the road is thicker and stays. Only the strip's box, grown by the band, is examined."""
    band = max(2, int(round(SLIVER_BAND_HALF_WIDTHS * half_width)))
    margin = band + 2 * SLIVER_OPENING + 1  # the opening within the band reads this far: none of it off the box's edge
    box = tuple(slice(max(b.start - margin, 0), b.stop + margin)
                for b in ndimage.find_objects(strip.astype(np.uint8))[0])
    near = ndimage.binary_dilation(strip[box], iterations=band) & ~strip[box]
    crop = rest[box]
    out = np.zeros_like(rest)
    out[box] = near & crop & ~ndimage.binary_opening(crop, structure=np.ones((3, 3), bool), iterations=SLIVER_OPENING)
    return out


#: the most candidate regions a turn outlines (the front ends number and colour each)
MAX_CANDIDATES = 8


def tight_box(region: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box (x0, y0, x1, y1) pixels, inclusive-exclusive, of ``region`` (h×w bool, not empty)."""
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def candidates_from_mask(mask: np.ndarray, prob_low: np.ndarray,
                         max_candidates: int = MAX_CANDIDATES) -> list[Candidate]:
    """Connected components as candidates, scored by mean probability, best (score × √area) first.

    mask: H×W bool (image frame). prob_low: h×w foreground probability on a coarser grid of the same
    extent (the model's low-res logits): components are found there, and each candidate's full-resolution
    region is only computed inside its own bounding box, so this stays fast on large images.
    """
    height, width = mask.shape
    h, w = prob_low.shape
    labels, n = ndimage.label(prob_low > 0.5)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    areas = ndimage.sum(np.ones_like(prob_low), labels, idx)
    means = ndimage.mean(prob_low, labels, idx)
    keep = [i for i in range(n) if areas[i] >= MIN_CANDIDATE_SHARE * areas.max()]
    keep.sort(key=lambda i: -means[i] * np.sqrt(areas[i]))
    keep = keep[:max_candidates]
    # nearest-neighbour map image row/col → low-res row/col (pixel centres aligned)
    low_row = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    low_col = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    slices = ndimage.find_objects(labels)
    out = []
    for i in keep:
        rs, cs = slices[i]
        # image rows/cols whose low-res cell lies in the component's bounding box
        r0, r1 = np.searchsorted(low_row, rs.start), np.searchsorted(low_row, rs.stop)
        c0, c1 = np.searchsorted(low_col, cs.start), np.searchsorted(low_col, cs.stop)
        crop = (labels[low_row[r0:r1, None], low_col[None, c0:c1]] == i + 1) & mask[r0:r1, c0:c1]
        if not crop.any():
            continue
        x0, y0, x1, y1 = tight_box(crop)
        bbox = (c0 + x0, r0 + y0, c0 + x1, r0 + y1)
        region = np.zeros_like(mask)
        region[r0:r1, c0:c1] = crop
        x, y = interior_point(labels[rs, cs] == i + 1)
        px = int(min(width - 1, (cs.start + x + 0.5) * width / w))
        py = int(min(height - 1, (rs.start + y + 0.5) * height / h))
        if not region[py, px]:  # thin shapes: search the full-resolution region itself (its bbox only)
            x, y = interior_point(region[bbox[1]:bbox[3], bbox[0]:bbox[2]])
            px, py = int(x) + bbox[0], int(y) + bbox[1]
        out.append(Candidate(mask=region, score=float(means[i]), bbox=bbox, point=(float(px), float(py))))
    return out


def candidates_from_objects(objects: list[np.ndarray], logits: np.ndarray,
                            max_candidates: int = MAX_CANDIDATES) -> list[Candidate]:
    """Candidates from whole objects (H×W bool each, not empty, in the order given: likeliest first), scored by
    their mean probability σ(``logits``) (H×W), each with its bounding box and interior point (image frame)."""
    out = []
    for region in objects[:max_candidates]:
        c0, r0, c1, r1 = tight_box(region)
        x, y = interior_point(region[r0:r1, c0:c1])
        out.append(Candidate(mask=region, score=float(sigmoid(logits[region]).mean()), bbox=(c0, r0, c1, r1),
                             point=(x + c0, y + r0)))
    return out


#: Side (in cells of the low-res grid, S/4 of the model input) of the window whose expected error one click
#: is credited with removing: about the reach of a click on its surroundings.
CLICK_REACH_CELLS = 5
#: Expected error within this many low-res cells (Gaussian σ) of an earlier click is discounted: that
#: place has been answered already, and σ(U) does not change with clicks.
CLICKED_SIGMA_CELLS = 4.0


def clicked_discount(grid: tuple[int, int], image_shape: tuple[int, int], clicks=(),
                     sigma: float = CLICKED_SIGMA_CELLS) -> np.ndarray:
    """h×w factors in [0, 1] on the low-res ``grid`` of an H×W image: the product over the earlier ``clicks`` ((x, y)
    image pixels) of 1 − exp(−d²/2σ²), d the distance in cells to that click, σ = ``sigma`` cells."""
    h, w = grid
    height, width = image_shape
    factor = np.ones((h, w))
    if len(clicks):
        rows, cols = np.mgrid[:h, :w]
        for x, y in clicks:
            cx, cy = x * w / width - 0.5, y * h / height - 0.5
            factor *= 1 - np.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * sigma ** 2))
    return factor


def suggest_click(mask: np.ndarray, uncertainty_low: np.ndarray, candidates: list[Candidate], ambiguous: bool,
                  clicks=()) -> tuple[float, float, int] | None:
    """Where one click would remove the most expected error, as (x, y, label) in the H×W image frame.

    Ambiguous: a positive click inside the best candidate (confirm one of them). Otherwise the expected
    error ``uncertainty_low`` (h×w on the low-res grid: σ(U) or the probability margin), discounted near the
    earlier ``clicks`` ((x, y) image pixels), is summed over a window of :data:`CLICK_REACH_CELLS`; the
    suggestion is the centre of the best window — positive if the model leans to background there, else
    negative. None when nothing is uncertain (all expected error below 0.05 per cell).
    """
    if ambiguous and candidates:
        x, y = candidates[0].point
        return x, y, 1
    expected_error = uncertainty_low.astype(np.float64) * clicked_discount(uncertainty_low.shape, mask.shape, clicks)
    window = ndimage.uniform_filter(expected_error, CLICK_REACH_CELLS, mode="constant")
    # ties between windows covering the same error go to the cell that is itself most uncertain
    row, col = np.unravel_index(int(np.argmax(window + 1e-3 * expected_error)), window.shape)
    if window[row, col] < 0.05:
        return None
    return _correction_at_cell(mask, row, col, uncertainty_low.shape)


#: the click-gain head's gains are discounted only at an earlier click's own place (σ in cells): the head sees the
#: clicks, and the σ(U) rule's wider discount cost 0.12 NoC@85 on validation scenes (model card, "Suggested clicks")
CLICKED_GAIN_SIGMA_CELLS = 1.5
#: the click-gain head's predicted gain (IoU points / 10) below which no click is suggested (+0.005 IoU)
MIN_CLICK_GAIN = 0.05


def suggest_by_gain(mask: np.ndarray, gain_low: np.ndarray, clicks=(),
                    wrong_low: np.ndarray | None = None) -> tuple[float, float, int] | None:
    """The cell where the click-gain head expects one click to gain most (``gain_low`` h×w, IoU points / 10, on the
    low-res grid of the H×W ``mask``) as (x, y, label) in the image frame — positive outside the mask, negative
    inside; None when no cell promises :data:`MIN_CLICK_GAIN`. Gains at the earlier ``clicks``' own places ((x, y)
    image pixels) are discounted (:data:`CLICKED_GAIN_SIGMA_CELLS`): the labeler has answered there already.
    wrong_low: h×w bool, the cells the error head marks as wrong: only those are suggested, and the click goes to
    the cell deepest inside the best cell's region of them on its side of the mask (as the standard click goes deep
    into its error region)."""
    discount = clicked_discount(gain_low.shape, mask.shape, clicks, CLICKED_GAIN_SIGMA_CELLS)
    positive = gain_low > 0  # only those are discounted: -inf (cells ruled out) stays -inf, without -inf × 0 = nan
    gain_low = gain_low.copy()
    gain_low[positive] *= discount[positive]
    if wrong_low is not None:
        gain_low = np.where(wrong_low, gain_low, -np.inf)
    row, col = np.unravel_index(int(np.argmax(gain_low)), gain_low.shape)
    if gain_low[row, col] < MIN_CLICK_GAIN:
        return None
    if wrong_low is not None:
        mask_low = resample_nearest(mask, *gain_low.shape)  # the mask at the cell centres
        labels, _ = ndimage.label(wrong_low & (mask_low == mask_low[row, col]))
        row, col = interior_point(labels == labels[row, col])[::-1]
        row, col = int(row), int(col)
    return _correction_at_cell(mask, row, col, gain_low.shape)


def suggest_by_policy(mask: np.ndarray, policy_low: np.ndarray, clicks=()) -> tuple[float, float, int]:
    """The cell where the click-policy head expects the best next correction click (``policy_low`` h×w logits
    on the low-res grid of the H×W ``mask``, a softmax over the cells) as (x, y, label) in the image frame — positive
    outside the mask, negative inside. Probabilities at the earlier ``clicks``' own places ((x, y) image pixels) are
    discounted as in :func:`suggest_by_gain`."""
    score = policy_low.astype(np.float64)
    prob = np.exp(score - score.max()) * clicked_discount(score.shape, mask.shape, clicks, CLICKED_GAIN_SIGMA_CELLS)
    row, col = np.unravel_index(int(np.argmax(prob)), prob.shape)
    return _correction_at_cell(mask, row, col, prob.shape)


def _correction_at_cell(mask: np.ndarray, row: int, col: int, grid: tuple[int, int]) -> tuple[float, float, int]:
    """The centre of cell (row, col) of an h×w ``grid`` over the H×W ``mask`` as a correction click (x, y, label):
    positive where the mask is background, negative where it is foreground."""
    height, width = mask.shape
    h, w = grid
    px = min(width - 1, int((col + 0.5) * width / w))
    py = min(height - 1, int((row + 0.5) * height / h))
    return float(px), float(py), 0 if mask[py, px] else 1
