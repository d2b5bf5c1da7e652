"""Colour regions grown from clicks: a magic wand for roads, added to the model's mask before the snap, or cut from it.

A positive click on a long road or canal that the model covers only around the click (its S/4 logit grid and the local
click refiner reach a few cells) means the whole uniformly coloured strip it lies on. From each positive click the
pixels whose colour (after medians that remove lane marks, :func:`smoothed`) lies within a tolerance of the click's are
flood-filled (4-connected) and the region's small holes (marks, cars) filled; the region is used only when it is long
and thin, not large (:func:`grow_region`), and negative clicks on it cut it rather than drop it
(:func:`split_at_negatives`). A negative click on such a strip means the road it lies on: its straight stretch
through the click and the kerbs beside it leave the mask, except near positive clicks
(:func:`rrsis_engine.postprocess.negated_strip_regions`).
The region depends only on the image and the click, so the predictor caches it per image (docs/training.md,
"Positive clicks along roads", "Negative clicks on roads").

Frames: the image is H×W×C uint8 ([row, col]); points are (x, y) = (col, row) image pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from rrsis_engine.postprocess import boundary_distance, holes, negated_strips, point_pixels

#: the click's colour: the median of the smoothed colours within this many pixels of it
SEED_RADIUS = 2
#: colour tolerance (RGB units, 0–255, Euclidean): this many times the colour spread around the click, within
#: [TOLERANCE_MIN, TOLERANCE_MAX]
TOLERANCE_SPREAD = 3.0
TOLERANCE_MIN = 12.0
TOLERANCE_MAX = 40.0
#: a click whose neighbourhood varies more than this (RGB rms around its median) lies on an edge or on texture: nothing
#: is grown from it (on synthetic validation scenes the median spread is 8 inside objects, 34 on their boundary)
MAX_SEED_SPREAD = 12.0
#: a grown region larger than this share of the image is the background's colour, not an object's
MAX_AREA_FRACTION = 0.15
#: only long, thin regions are grown (roads, rivers, field strips: the model's clicks reach a few cells along them):
#: area / thickness² at least this, the thickness being four times the mean distance from the region's boundary
MIN_ELONGATION = 6.0
#: ... and at most this thick, as a share of the image's longer side: a road or a canal, not a patch of ground (on
#: synthetic validation scenes roads measure 3–4 %; the ground around a lone tree the smoothing removed, 8 %)
MAX_THICKNESS_FRACTION = 0.06
#: ... and a strip, not a ragged patch that is thin only locally: its extent (the diagonal of its box) at least this
#: share of its length (area / thickness). On the real `*_part_007` records the regions that leaked from a road into
#: the paving around it (11–21 % of them on the road) measured 0.39–0.53, those on their target 0.60–1.06; synthetic
#: roads 1.0–1.3
MIN_EXTENT_RATIO = 0.55
#: holes of the grown region up to this share of its area are filled (lane marks, cars on a car park)
HOLE_SHARE = 0.1


def smoothed(pixels: np.ndarray) -> np.ndarray:
    """H×W×C uint8 → H×W×3 uint8: the first three bands (or the grey band thrice) through 5-pixel medians along
    rows, columns and both diagonals in turn, which remove lines up to 2 px wide in any direction (lane marks) and noise
    but keep the edges of wider regions; ≈ 13 ms on a 1 024² image (``scipy.ndimage.median_filter`` 5×5: ≈ 0.6 s)."""
    out = np.ascontiguousarray(_bands(pixels))
    for step in ((0, 1), (1, 0), (1, 1), (1, -1)):
        out = _median5(out, step)
    return out


def _bands(pixels: np.ndarray) -> np.ndarray:
    """H×W or H×W×C → H×W×3: the first three bands, or the grey band thrice."""
    img = pixels if pixels.ndim == 3 else pixels[..., None]
    return img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)


def _median5(a: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """The median of the 5 pixels at offsets −2…2 × ``step`` (row, col) around every pixel of ``a`` (H×W×C; edge
    pixels repeated), by a min/max network."""
    padded = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode="edge")
    height, width = a.shape[:2]
    p0, p1, p2, p3, p4 = (padded[2 + k * step[0]:2 + k * step[0] + height, 2 + k * step[1]:2 + k * step[1] + width]
                          for k in range(-2, 3))
    low = np.maximum(np.minimum(p0, p1), np.minimum(p3, p4))
    high = np.minimum(np.maximum(p0, p1), np.maximum(p3, p4))
    return np.maximum(np.minimum(p2, low), np.minimum(np.maximum(p2, low), high))


def seed_colour(window: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The colour of a click and how far from it a pixel may be to share it, from ``window`` (h×w×3, the pixels around
    the click): (the median colour, 3 floats; the tolerance, RGB units), None where the window varies more than
    :data:`MAX_SEED_SPREAD` (an edge or texture). The tolerance is :data:`TOLERANCE_SPREAD` times the window's rms
    spread around the median, within [:data:`TOLERANCE_MIN`, :data:`TOLERANCE_MAX`]."""
    colours = window.reshape(-1, 3).astype(np.float32)
    colour = np.median(colours, axis=0)
    spread = float(np.sqrt(((colours - colour) ** 2).sum(axis=1).mean()))
    if spread > MAX_SEED_SPREAD:
        return None
    return colour, float(np.clip(TOLERANCE_SPREAD * spread, TOLERANCE_MIN, TOLERANCE_MAX))


def grow_region(smooth: np.ndarray, x: float, y: float) -> np.ndarray | None:
    """The colour region around the pixel at (x, y) in ``smooth`` (H×W×3 from :func:`smoothed`), H×W bool; None
    where the click's neighbourhood is not uniform (:data:`MAX_SEED_SPREAD`), or the region is large
    (:data:`MAX_AREA_FRACTION`) or not a long, thin strip (:data:`MIN_ELONGATION`, :data:`MAX_THICKNESS_FRACTION`,
    :data:`MIN_EXTENT_RATIO`)."""
    rows, cols = point_pixels(np.array([[x, y]]), smooth.shape)
    row, col = int(rows[0]), int(cols[0])
    seed = seed_colour(smooth[max(row - SEED_RADIUS, 0):row + SEED_RADIUS + 1,
                              max(col - SEED_RADIUS, 0):col + SEED_RADIUS + 1])
    if seed is None:
        return None
    colour, tolerance = seed
    similar = ((smooth.astype(np.float32) - colour) ** 2).sum(axis=2) <= tolerance ** 2
    similar[row, col] = True
    parts, _ = ndimage.label(similar)
    label = int(parts[row, col])
    box = ndimage.find_objects(parts, max_label=label)[label - 1]
    inner = parts[box] == label
    hole_labels, count = holes(inner)  # the pieces of the box's background that its border does not reach
    if count:
        small = np.bincount(hole_labels.ravel(), minlength=count + 1) <= HOLE_SHARE * inner.sum()
        small[0] = False
        inner |= small[hole_labels]
    area = int(inner.sum())
    if area > MAX_AREA_FRACTION * similar.size:
        return None
    # a strip w wide has distances to its boundary spread evenly over [0, w / 2]: mean w / 4 (a fat spot where two
    # roads meet barely moves it); measured on every step-th pixel of a large box
    distance, step = boundary_distance(inner)
    thickness = 4.0 * step * float(distance[inner[::step, ::step]].mean())
    if area < MIN_ELONGATION * thickness ** 2 or thickness > MAX_THICKNESS_FRACTION * max(similar.shape):
        return None
    if np.hypot(box[0].stop - box[0].start, box[1].stop - box[1].start) < MIN_EXTENT_RATIO * area / thickness:
        return None
    region = np.zeros(similar.shape, dtype=bool)
    region[box] = inner
    return region


def split_at_negatives(region: np.ndarray, smooth: np.ndarray, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The part of a grown ``region`` (H×W bool) that the positive clicks mean when negative clicks lie on it too.

    A negative click on a road crossing the clicked one (same asphalt, so in the same region) removes that road's
    strip (:func:`rrsis_engine.postprocess.negated_strips`); where negative clicks still lie on what is left (a spill
    that is not a strip), the region is flooded from both kinds of click (watershed on the colour gradient of
    ``smooth``, inside the region) and keeps what the positive clicks reach first. points: N×2 (x, y) image pixels;
    labels: N (1 positive, 0 negative)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    rows, cols = point_pixels(points, region.shape)
    if not (region[rows, cols] & (labels == 0)).any() or not (region[rows, cols] & (labels == 1)).any():
        return region
    region = region & ~negated_strips(region, points, labels)
    inside = region[rows, cols]
    if not (inside & (labels == 0)).any() or not (inside & (labels == 1)).any():
        return region
    box = ndimage.find_objects(region.astype(np.int32))[0]
    top, left = box[0].start, box[1].start
    crop = smooth[box].astype(np.float32)
    gradient = np.sqrt(sum(ndimage.sobel(crop[..., c], axis=a) ** 2 for c in range(3) for a in (0, 1)))
    markers = np.zeros(gradient.shape, dtype=np.int32)
    markers[rows[inside] - top, cols[inside] - left] = np.where(labels[inside] == 1, 1, 2)
    flooded = watershed(gradient, markers, mask=region[box])
    kept = np.zeros_like(region)
    kept[box] = flooded == 1
    return kept


#: :func:`inclusion_at`: a negative click on a small blob of its own colour that the mask covers or surrounds (a car on
#: a road, a shed on a field) means that blob: the blob is grown in a window of this many model cells around the click
INCLUSION_WINDOW_CELLS = 5.0
#: ... must be at most this many model cells² in area (a car on a 256² synthetic scene, 2.7 pixels a cell: ≈ 45
#: pixels, 6 cells²) and at least this many pixels
INCLUSION_MAX_CELLS2 = 16.0
INCLUSION_MIN_PIXELS = 4
#: ... its outline (the pixels just outside it) must lie at least this share on the mask (a car at the road's edge has
#: the road on three sides; a look-alike shown alone has none of its outline on the mask)
INCLUSION_RING_SHARE = 0.5
#: ... the mask's part around it must be at least this many times its area
INCLUSION_PART_RATIO = 8.0
#: ... and the click must lie at least this share of the blob's largest depth inside it (on the blob, not its edge)
INCLUSION_CLICK_DEPTH = 0.5
#: the blob then takes the pixels within this many model cells of the click whose colour is unlike the mask's around it
#: and which join it (a car's windows, roof and shadow), unless that makes it larger than INCLUSION_MAX_CELLS2
INCLUSION_GROW_CELLS = 4.0


def inclusion_at(pixels: np.ndarray, mask: np.ndarray, x: float, y: float, cell_px: float) -> np.ndarray | None:
    """The small blob of one colour under a negative click at (x, y) pixels that ``mask`` (H×W bool, the mask the
    labeller clicked on) covers or surrounds, H×W bool; None when the click lies on no such blob.

    The standard protocol — and a labeller — clicks "not this" on a car parked on the road shown: the model read the
    click as "not this road" and dropped it, or the road rule removed the road's stretch through the click (synthetic
    validation 063 "segment the road": 0.83 → 0.00). The blob is the 4-connected region of pixels within a colour
    tolerance of the click's (:func:`seed_colour` of its 3×3 neighbourhood) inside a window
    of :data:`INCLUSION_WINDOW_CELLS` model cells (``cell_px`` image pixels each) around the click; it must not reach
    the window's edge, be between :data:`INCLUSION_MIN_PIXELS` pixels and :data:`INCLUSION_MAX_CELLS2` cells², have at
    least :data:`INCLUSION_RING_SHARE` of its outline on ``mask``, lie in or beside a part of ``mask`` at least
    :data:`INCLUSION_PART_RATIO` times larger, and hold the click at least :data:`INCLUSION_CLICK_DEPTH` of its depth
    in. The blob then takes the pixels within :data:`INCLUSION_GROW_CELLS` of the click that join it and whose colour
    is unlike the mask's farther out, unless that makes it larger than the limit. pixels: H×W×C uint8 ([row, col])."""
    height, width = mask.shape
    rows, cols = point_pixels(np.array([[x, y]]), mask.shape)
    row, col = int(rows[0]), int(cols[0])
    reach = max(3, int(math.ceil(INCLUSION_WINDOW_CELLS * cell_px)))
    r0, r1 = max(row - reach, 0), min(row + reach + 1, height)
    c0, c1 = max(col - reach, 0), min(col + reach + 1, width)
    crop = _bands(pixels)[r0:r1, c0:c1].astype(np.float32)
    seed = seed_colour(crop[max(row - r0 - 1, 0):row - r0 + 2, max(col - c0 - 1, 0):col - c0 + 2])
    if seed is None:
        return None
    colour, tolerance = seed
    similar = ((crop - colour) ** 2).sum(axis=2) <= tolerance ** 2
    similar[row - r0, col - c0] = True
    parts, _ = ndimage.label(similar)
    blob = parts == parts[row - r0, col - c0]
    area = int(blob.sum())
    # a blob reaching the window's edge is the window's background, not a spot on it (unless the image ends there)
    edge_rows = [i for i, inner in ((0, r0 > 0), (-1, r1 < height)) if inner]
    edge_cols = [i for i, inner in ((0, c0 > 0), (-1, c1 < width)) if inner]
    if any(blob[i].any() for i in edge_rows) or any(blob[:, i].any() for i in edge_cols):
        return None
    if not INCLUSION_MIN_PIXELS <= area <= INCLUSION_MAX_CELLS2 * cell_px ** 2:
        return None
    on_mask = mask[r0:r1, c0:c1]
    ring = ndimage.binary_dilation(blob) & ~blob
    if on_mask[ring].mean() < INCLUSION_RING_SHARE:
        return None
    labels, _ = ndimage.label(mask)
    touching = np.unique(labels[r0:r1, c0:c1][ring | blob])
    touching = touching[touching > 0]
    if not len(touching) or np.bincount(labels.ravel())[touching].max() < INCLUSION_PART_RATIO * area:
        return None
    depth = ndimage.distance_transform_edt(np.pad(blob, 1))[1:-1, 1:-1]
    if depth[row - r0, col - c0] < INCLUSION_CLICK_DEPTH * depth.max():
        return None
    # the rest of the thing the colour region is part of (a car's windscreen and the body beyond it): the pixels near
    # the click, joined to it, unlike the mask's colour farther out (the median of the mask's pixels in the window
    # beyond INCLUSION_GROW_CELLS; the spread as the median distance to it, scaled to a normal's standard deviation,
    # so lane marks do not widen it)
    yy, xx = np.ogrid[r0 - row:r1 - row, c0 - col:c1 - col]
    near = xx ** 2 + yy ** 2 <= (INCLUSION_GROW_CELLS * cell_px) ** 2
    around = crop[on_mask & ~near]
    if not len(around):
        return None
    background = np.median(around, axis=0)
    background_spread = 1.4826 * float(np.median(np.sqrt(((around - background) ** 2).sum(axis=1))))
    unlike = ((crop - background) ** 2).sum(axis=2) > max(TOLERANCE_MIN, TOLERANCE_SPREAD * background_spread) ** 2
    grown, _ = ndimage.label(blob | (unlike & near))
    grown = grown == grown[row - r0, col - c0]
    if grown.sum() <= INCLUSION_MAX_CELLS2 * cell_px ** 2:
        blob = grown
    region = np.zeros(mask.shape, dtype=bool)
    region[r0:r1, c0:c1] = blob
    return region

