"""Referring specs, their geometric resolution, and their wording.

A *spec* is a small dict describing which objects an expression means, e.g.
``{"category": "pool", "relation": "left_of", "anchor": {"category": "building", "color": "red"}}``.
:func:`resolve` checks it geometrically against a scene's objects and returns the objects that
definitely match and those that are borderline (within a safety margin of a rule): an expression is
only claimed *unique* when exactly one object definitely matches and none is borderline, and
*ambiguous* when two or more definitely match. :func:`realize` words a spec with varied synonyms and
word order. Both the synthetic generator and the real-mask generator use this module.

Frames: masks are H×W bool [row, col]; centroids and boxes are (x, y) = (col, row) pixels; "north"
is the top of the image (row 0).
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np
from scipy import ndimage

# ---- objects -------------------------------------------------------------------------------------


@dataclass
class SceneObject:
    """One referable object. mask: H×W bool. color/shape: attribute words or None."""

    id: int
    category: str
    mask: np.ndarray
    color: str | None = None
    shape: str | None = None
    extra: dict = field(default_factory=dict)
    # (rows, cols) slices known to hold every pixel of mask: the pixels are looked for there only
    within: InitVar[tuple[slice, slice] | None] = None

    def __post_init__(self, within: tuple[slice, slice] | None) -> None:
        # the pixels are read in the mask's box: a small object of a large image costs two passes of any(), not nonzero
        rows_in, cols_in = within or (slice(0, self.mask.shape[0]), slice(0, self.mask.shape[1]))
        inside = self.mask[rows_in, cols_in]
        row_hit, col_hit = inside.any(axis=1), inside.any(axis=0)
        if not row_hit.any():
            self.area, self.centroid, self.bbox = 0, (float("nan"), float("nan")), (0, 0, 0, 0)
            return
        r0 = rows_in.start + int(np.argmax(row_hit))
        r1 = rows_in.start + len(row_hit) - int(np.argmax(row_hit[::-1]))
        c0 = cols_in.start + int(np.argmax(col_hit))
        c1 = cols_in.start + len(col_hit) - int(np.argmax(col_hit[::-1]))
        rows, cols = np.nonzero(self.mask[r0:r1, c0:c1])
        self.area = int(rows.size)
        self.centroid = (float(cols.mean()) + c0, float(rows.mean()) + r0)
        self.bbox = (c0, r0, c1, r1)

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    def to_dict(self) -> dict:
        """JSON-friendly description (no mask)."""
        return {
            "id": self.id,
            "category": self.category,
            "color": self.color,
            "shape": self.shape,
            "area": self.area,
            "centroid": [round(self.centroid[0], 1), round(self.centroid[1], 1)],
            "bbox": list(self.bbox),
        }


@dataclass
class Match:
    definite: list[SceneObject]
    borderline: list[SceneObject]

    @property
    def unique(self) -> bool:
        return len(self.definite) == 1 and not self.borderline

    @property
    def ambiguous(self) -> bool:
        return len(self.definite) >= 2


class SpecError(ValueError):
    """The spec cannot be evaluated (e.g. its anchor is not unique)."""


# ---- geometry rules ------------------------------------------------------------------------------
REGIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom", "left", "right", "center")
EXTREMES = ("north", "south", "west", "east")
RELATIONS = ("nearest", "left_of", "right_of", "above", "below", "on", "touching")

#: fraction of the image side used as the no-claim band around region borders
REGION_MARGIN = 0.04
#: the nearest object must be this much closer than the runner-up (ratio and pixels)
NEAREST_RATIO = 1.5
NEAREST_GAP_FRAC = 0.02
#: "largest"/"smallest"/ordinals need this area ratio to their neighbours in the ranking
SIZE_RATIO = 1.3
#: extremes need this gap (fraction of image side) to the runner-up
EXTREME_GAP_FRAC = 0.05


def region_tristate(obj: SceneObject, region: str, hw: tuple[int, int]) -> bool | None:
    """True if the centroid is inside ``region`` by a margin, False if outside by a margin, else None."""
    h, w = hw
    x, y = obj.centroid
    fx, fy = x / w, y / h
    m = REGION_MARGIN
    third = 1.0 / 3.0

    def lt(v, t):  # v < t with margin
        return True if v < t - m else (False if v > t + m else None)

    def gt(v, t):
        return True if v > t + m else (False if v < t - m else None)

    def both(a, b):
        if a is False or b is False:
            return False
        if a is None or b is None:
            return None
        return True

    if region == "top-left":
        return both(lt(fx, third), lt(fy, third))
    if region == "top-right":
        return both(gt(fx, 2 * third), lt(fy, third))
    if region == "bottom-left":
        return both(lt(fx, third), gt(fy, 2 * third))
    if region == "bottom-right":
        return both(gt(fx, 2 * third), gt(fy, 2 * third))
    if region == "top":
        return lt(fy, third)
    if region == "bottom":
        return gt(fy, 2 * third)
    if region == "left":
        return lt(fx, third)
    if region == "right":
        return gt(fx, 2 * third)
    if region == "center":
        return both(both(gt(fx, third), lt(fx, 2 * third)), both(gt(fy, third), lt(fy, 2 * third)))
    raise SpecError(f"unknown region {region!r}")


def boundary_distance(anchor: SceneObject, obj: SceneObject, cache: dict) -> float:
    """Smallest pixel distance from ``obj``'s mask to ``anchor``'s mask (0 when touching/overlapping)."""
    key = anchor.id
    if key not in cache:
        cache[key] = ndimage.distance_transform_edt(~anchor.mask)
    d = cache[key][obj.mask]
    return float(d.min()) if d.size else float("inf")


def relation_tristate(obj: SceneObject, anchor: SceneObject, relation: str, hw, cache) -> bool | None:
    h, w = hw
    ax0, ay0, ax1, ay1 = anchor.bbox
    ox0, oy0, ox1, oy1 = obj.bbox
    cx, cy = obj.centroid
    acx, acy = anchor.centroid
    reach = 0.35 * max(h, w)  # "left of X" means near X, not anywhere on that side
    if relation in ("left_of", "right_of"):
        rows_overlap = min(oy1, ay1) - max(oy0, ay0) > 0
        if relation == "left_of":
            clear, rough, gap = ox1 <= ax0, cx < acx, ax0 - ox1
        else:
            clear, rough, gap = ox0 >= ax1, cx > acx, ox0 - ax1
        if clear and rows_overlap and gap <= reach:
            return True
        return None if rough and (rows_overlap or abs(cy - acy) < 0.5 * (anchor.height + obj.height) + 0.05 * h) else False
    if relation in ("above", "below"):
        cols_overlap = min(ox1, ax1) - max(ox0, ax0) > 0
        if relation == "above":
            clear, rough, gap = oy1 <= ay0, cy < acy, ay0 - oy1
        else:
            clear, rough, gap = oy0 >= ay1, cy > acy, oy0 - ay1
        if clear and cols_overlap and gap <= reach:
            return True
        return None if rough and (cols_overlap or abs(cx - acx) < 0.5 * (anchor.width + obj.width) + 0.05 * w) else False
    if relation == "on":
        inside = float((obj.mask & ndimage.binary_dilation(anchor.mask, iterations=2)).sum()) / max(obj.area, 1)
        return True if inside >= 0.8 else (False if inside < 0.2 else None)
    if relation == "touching":
        d = boundary_distance(anchor, obj, cache)
        tol = 0.01 * max(h, w)
        return True if d <= tol else (False if d > 3 * tol else None)
    raise SpecError(f"unknown relation {relation!r}")


#: a direction's unit step in (x, y) = (col, row) pixels, north up
DIRECTION_VECTORS = {"north": (0, -1), "south": (0, 1), "west": (-1, 0), "east": (1, 0)}
#: "no, the one further left": an object whose centroid lies at least this share of the image's longer side further in
#: the direction than the object shown's
REDIRECT_MARGIN = 0.05

#: an object's place in an extreme's order, the extreme object first ("north": the smallest centroid row)
EXTREME_KEYS = {
    "north": lambda o: o.centroid[1],
    "south": lambda o: -o.centroid[1],
    "west": lambda o: o.centroid[0],
    "east": lambda o: -o.centroid[0],
}


def size_ranked(objects: list[SceneObject], size: str) -> list[SceneObject]:
    """``objects`` by area, the largest first for ``size`` "largest", the smallest first for "smallest"."""
    return sorted(objects, key=lambda o: -o.area if size == "largest" else o.area)


def _select_extreme(cands: list[SceneObject], key, gap: float) -> Match:
    """Pick the candidate with the smallest ``key``; unique only if the runner-up is ``gap`` behind."""
    if not cands:
        return Match([], [])
    ranked = sorted(cands, key=key)
    if len(ranked) == 1 or key(ranked[1]) - key(ranked[0]) >= gap:
        return Match([ranked[0]], [])
    close = [o for o in ranked if key(o) - key(ranked[0]) < gap]
    return Match([], close)


def resolve(spec: dict, objects: list[SceneObject], hw: tuple[int, int], _cache: dict | None = None) -> Match:
    """Objects matching ``spec`` (see module doc). hw = (H, W) of the image.

    Keys: category (required), all (class-level: every object of the category is definite),
    color, shape, region (one of REGIONS), extreme (one of EXTREMES), size ("largest"/"smallest"),
    rank (1-based with size: 2 = "second largest"), relation (one of RELATIONS) with anchor (a spec
    that must itself resolve uniquely), exclude (object ids not to consider).
    """
    cache = {} if _cache is None else _cache
    h, w = hw
    cat = spec["category"]
    exclude = set(spec.get("exclude", ()))
    cands = [o for o in objects if o.category == cat and o.id not in exclude and o.area > 0]
    if spec.get("all"):
        return Match(cands, [])
    if spec.get("color") is not None:
        cands = [o for o in cands if o.color == spec["color"]]
    if spec.get("shape") is not None:
        cands = [o for o in cands if o.shape == spec["shape"]]
    definite, border = list(cands), []
    if spec.get("region"):
        d2, b2 = [], []
        for o in definite:
            t = region_tristate(o, spec["region"], hw)
            (d2 if t else b2 if t is None else []).append(o)
        definite, border = d2, border + b2
    if spec.get("relation"):
        anchor_match = resolve(spec["anchor"], objects, hw, cache)
        if not anchor_match.unique:
            raise SpecError("the anchor of a relation must resolve to exactly one object")
        anchor = anchor_match.definite[0]
        definite = [o for o in definite if o.id != anchor.id]
        border = [o for o in border if o.id != anchor.id]
        if spec["relation"] == "nearest":
            pool = definite + border
            gap_px = NEAREST_GAP_FRAC * max(h, w)
            dists = {o.id: boundary_distance(anchor, o, cache) for o in pool}
            ranked = sorted(pool, key=lambda o: dists[o.id])
            if not ranked:
                return Match([], [])
            best = ranked[0]
            ok = best in definite and (
                len(ranked) == 1
                or dists[ranked[1].id] >= max(NEAREST_RATIO * dists[best.id], dists[best.id] + gap_px)
            )
            if ok:
                return Match([best], [])
            return Match([], [o for o in ranked if dists[o.id] < NEAREST_RATIO * dists[best.id] + gap_px])
        d2, b2 = [], []
        for o in definite + border:
            t = relation_tristate(o, anchor, spec["relation"], hw, cache)
            if t and o in definite:
                d2.append(o)
            elif t is None or t:
                b2.append(o)
        definite, border = d2, b2
    if spec.get("extreme"):
        e = spec["extreme"]
        keyf = EXTREME_KEYS[e]
        side = h if e in ("north", "south") else w
        m = _select_extreme(definite + border, keyf, EXTREME_GAP_FRAC * side)
        return _keep_definite_only(m, definite)
    if spec.get("size"):
        rank = int(spec.get("rank", 1))
        pool = definite + border
        big_first = size_ranked(pool, spec["size"])
        if len(big_first) < max(2, rank + 1):  # "largest" needs a rival, "second largest" two
            return Match([], [])

        def separated(a, b):
            lo, hi = sorted((a.area, b.area))
            return hi >= SIZE_RATIO * lo

        target = big_first[rank - 1]
        ok = all(separated(target, big_first[i]) for i in (rank - 2, rank) if 0 <= i < len(big_first))
        if ok and target in definite:
            return Match([target], [])
        return Match([], [target])
    return Match(definite, border)


def _keep_definite_only(m: Match, definite: list[SceneObject]) -> Match:
    if m.definite and m.definite[0] not in definite:
        return Match([], m.definite)
    return m


def spec_mask(spec: dict, objects: list[SceneObject], hw: tuple[int, int]) -> np.ndarray:
    """Union of the definite matches of ``spec`` (H×W bool)."""
    m = resolve(spec, objects, hw)
    out = np.zeros(hw, dtype=bool)
    for o in m.definite:
        out |= o.mask
    return out


# ---- wording -------------------------------------------------------------------------------------
NOUNS: dict[str, list[str]] = {
    "building": ["building", "house", "structure", "roof"],
    "pool": ["swimming pool", "pool"],
    "car": ["car", "vehicle"],
    "ship": ["ship", "boat", "vessel"],
    "water": ["lake", "body of water", "water body"],  # not "pond": real water bodies are often huge
    "field": ["field", "crop field", "farm plot"],
    "trees": ["group of trees", "cluster of trees", "grove", "tree clump"],
    "road": ["road", "street"],
    "parking": ["parking lot", "car park"],
    # real-mask classes (Dubai)
    "land": ["patch of bare land", "unpaved area", "sandy area"],
    "vegetation": ["patch of vegetation", "green area", "vegetated area"],
    "river": ["river", "canal"],
}
#: Labels of the per-pixel category map synthetic records carry (``record["semantic"]``, H×W uint8; index 0 =
#: no object). Append only: a model's semantic head (``use_semantic_head``) has one output per entry.
SEMANTIC_CLASSES: tuple[str, ...] = ("background", *NOUNS)
PLURALS: dict[str, list[str]] = {
    "building": ["buildings", "houses", "structures"],
    "pool": ["swimming pools", "pools"],
    "car": ["cars", "vehicles"],
    "ship": ["ships", "boats"],
    "water": ["water", "water bodies"],
    "field": ["fields", "crop fields"],
    "trees": ["trees", "tree clumps"],
    "road": ["roads", "streets"],
    "parking": ["parking lots"],
    "land": ["bare land", "unpaved areas"],
    "vegetation": ["vegetation", "green areas"],
    "river": ["water"],
}
REGION_WORDS = {
    "top-left": ["in the top-left corner", "in the upper left", "at the top left", "in the north-west corner"],
    "top-right": ["in the top-right corner", "in the upper right", "at the top right", "in the north-east corner"],
    "bottom-left": ["in the bottom-left corner", "in the lower left", "at the bottom left", "in the south-west corner"],
    "bottom-right": ["in the bottom-right corner", "in the lower right", "at the bottom right", "in the south-east corner"],
    "top": ["at the top of the image", "in the upper part", "along the top edge", "in the north"],
    "bottom": ["at the bottom of the image", "in the lower part", "along the bottom edge", "in the south"],
    "left": ["on the left side", "on the left", "along the left edge", "in the west"],
    "right": ["on the right side", "on the right", "along the right edge", "in the east"],
    "center": ["in the center", "in the middle of the image", "near the center"],
}
EXTREME_WORDS = {
    "north": ["northernmost", "topmost", "uppermost"],
    "south": ["southernmost", "bottommost"],
    "west": ["westernmost", "leftmost"],
    "east": ["easternmost", "rightmost"],
}
RELATION_WORDS = {
    "nearest": ["nearest to", "closest to", "next to", "beside", "nearest"],
    "left_of": ["left of", "to the left of", "west of"],
    "right_of": ["right of", "to the right of", "east of"],
    "above": ["above", "north of", "just above"],
    "below": ["below", "south of", "just below"],
    "on": ["on", "in"],
    "touching": ["next to", "bordering", "along", "adjacent to"],
}
REGION_ADJ = {
    "top-left": "top-left", "top-right": "top-right", "bottom-left": "bottom-left",
    "bottom-right": "bottom-right", "top": "upper", "bottom": "lower", "left": "left-hand",
    "right": "right-hand", "center": "central",
}
ORDINALS = {2: "second", 3: "third", 4: "fourth"}


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _noun(category: str, rng, color=None) -> str:
    nouns = NOUNS.get(category, [category])
    if category == "building" and color is None:
        nouns = [n for n in nouns if n != "roof"]
    return _pick(rng, nouns)


def realize(spec: dict, rng: np.random.Generator) -> str:
    """Word a spec; varied synonyms and word order. Returns a lower-case phrase (no final period)."""
    cat = spec["category"]
    if spec.get("all"):
        plural = _pick(rng, PLURALS.get(cat, [cat + "s"]))
        lead = _pick(rng, ["all the", "all", "every", "all of the", "segment all"])
        if lead == "every":
            return f"every {_noun(cat, rng)}"
        return f"{lead} {plural}"
    color, shape = spec.get("color"), spec.get("shape")
    noun = _noun(cat, rng, color)
    adjs = []
    if spec.get("size"):
        rank = int(spec.get("rank", 1))
        sup = spec["size"]
        adjs.append(f"{ORDINALS[rank]} {sup}" if rank > 1 else sup)
    if spec.get("extreme"):
        adjs.append(_pick(rng, EXTREME_WORDS[spec["extreme"]]))
    if shape:
        adjs.append(shape)
    color_post = ""  # "with a grey roof" after the noun
    if color:
        if cat == "building" and noun != "roof" and rng.random() < 0.5:
            color_post = " " + _pick(rng, [f"with the {color} roof", f"with {'an' if color[0] in 'aeiou' else 'a'} {color} roof"])
        else:
            adjs.append(color)
    phrase = f"the {' '.join(adjs + [noun])}{color_post}"
    tail = []
    if spec.get("region"):
        tail.append(_pick(rng, REGION_WORDS[spec["region"]]))
    if spec.get("relation"):
        rel = spec["relation"]
        anchor_text = realize(spec["anchor"], rng)
        word = _pick(rng, RELATION_WORDS[rel])
        if rel == "nearest" and word == "nearest":
            word = "nearest to"
        tail.append(f"{word} {anchor_text}")
    if tail and spec.get("region") and not spec.get("relation") and rng.random() < 0.35 and not adjs:
        # fronted position: "in the top-left corner, the building"
        if rng.random() < 0.5:
            return f"{tail[0]}, {phrase}"
        return f"the {REGION_ADJ[spec['region']]} {noun}{color_post}"
    return " ".join([phrase] + tail)


def union_mask(objects: list[SceneObject], hw: tuple[int, int]) -> np.ndarray:
    """H×W bool union of the objects' masks (all False for no objects); hw = (rows, cols)."""
    mask = np.zeros(hw, bool)
    for o in objects:
        mask |= o.mask
    return mask


def distractors(objects: list[SceneObject], referred: list[SceneObject]) -> list[SceneObject]:
    """The look-alikes an expression must rule out: objects of a referred object's category that it does not
    refer to (for an ambiguous expression, ``referred`` are all the objects it matches)."""
    ids = {o.id for o in referred}
    cats = {o.category for o in referred}
    return [o for o in objects if o.category in cats and o.id not in ids]
