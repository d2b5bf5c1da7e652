"""Spatial words in a referring expression, resolved by geometry over the model's mask of the whole category.

The mask model finds a category well ("all the buildings": 0.93 mIoU on the synthetic validation scenes) but often not
which of them a sentence means ("the leftmost building" and the other position sentences: 0.32 there). For a sentence
that says nothing but a category and where, how large or next to what the object is — an extreme ("leftmost",
"northernmost"), a size rank ("the largest", "the second smallest"), a part of the image ("in the top-left corner",
"the lower …") or a relation to an anchor ("the road nearest to the largest building") — the predictor asks the model
for every object of the category ("all the buildings") and picks one here, by centroid, area or the relation's rule
(:func:`choose`). Any other word (a colour, a shape, a word the parser does not know) leaves the sentence to the model:
:func:`parse` returns None. So do words that pick no object, or several ("the house at the top" when two are there:
ambiguous).

The vocabulary is the one the data generators word their specs with (:mod:`rrsis_engine.data.expressions`: the
category nouns, extremes, region phrases, "largest"/"smallest" with ordinals, relation phrases) and a few common
synonyms (:data:`EXTRA_EXTREME_WORDS`, :data:`EXTRA_SIZE_WORDS`, :data:`EXTRA_REGION_WORDS`). The geometry follows
those specs too: extremes and regions read an object's centroid, sizes its area, relations the generators' rules.

Frames: masks are H×W bool [row, col]; centroids are (x, y) = (col, row) pixels; north is row 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rrsis_engine.data import expressions as E
from rrsis_engine.postprocess import point_pixels

#: synonyms beyond the generators' wording
EXTRA_EXTREME_WORDS = {"north": ["top-most", "upper-most", "highest"], "south": ["lowest", "bottom-most"],
                       "west": ["left-most", "furthest left"], "east": ["right-most", "furthest right"]}
EXTRA_SIZE_WORDS = {"largest": ["biggest"], "smallest": ["tiniest"]}
EXTRA_REGION_WORDS = {"top-left": ["in the top left"], "top-right": ["in the top right"],
                      "bottom-left": ["in the bottom left"], "bottom-right": ["in the bottom right"],
                      "top": ["at the top"], "bottom": ["at the bottom"], "center": ["in the centre", "in the middle"]}
#: words that carry nothing for the choice ("segment the …", "show me the …")
FILLER_WORDS = frozenset({"the", "a", "an", "segment", "select", "find", "show", "me", "mask", "please", "one"})
#: categories whose objects are groups of separate blobs ("group of trees"): blobs this close (a share of the image's
#: longer side; 3 px on the synthetic 256² scenes) are one object
GROUP_CATEGORIES = frozenset({"trees"})
GROUP_GAP_FRACTION = 3 / 256
#: a region of the category's mask smaller than this share of the largest one is a speck, not an object
MIN_OBJECT_SHARE = 0.1
#: ... and never smaller than this many pixels
MIN_OBJECT_PIXELS = 12


@dataclass(frozen=True)
class SpatialSpec:
    """What :func:`parse` read: the category (a key of :data:`rrsis_engine.data.expressions.NOUNS`), at most one
    region (:data:`rrsis_engine.data.expressions.REGIONS`), one extreme (north/south/west/east), one size
    ("largest"/"smallest" with ``rank`` 1 = the largest itself, 2 = the second largest) and one relation
    (:data:`rrsis_engine.data.expressions.RELATIONS`) to an ``anchor``, itself a spec (that may have no spatial word:
    "the canal" when there is one canal)."""

    category: str
    region: str | None = None
    extreme: str | None = None
    size: str | None = None
    rank: int = 1
    relation: str | None = None
    anchor: SpatialSpec | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories whose masks the choice reads: the object's, then its anchor's (if another)."""
        if self.anchor is None or self.anchor.category == self.category:
            return (self.category,)
        return (self.category, self.anchor.category)

    @property
    def class_query(self) -> str:
        """:func:`class_query` of the spec's category."""
        return class_query(self.category)


def class_query(category: str) -> str:
    """The sentence that asks the model for every object of ``category``, worded as the class-level training
    sentences are ("all the buildings")."""
    return "all the " + E.PLURALS.get(category, [category + "s"])[0]


def _phrases(words: dict[str, list[str]], extra: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(phrase, key) pairs, the longest phrase first, so that "in the top-left corner" wins over "in the top"."""
    pairs = [(w, k) for k, ws in words.items() for w in ws] + [(w, k) for k, ws in (extra or {}).items() for w in ws]
    return sorted(pairs, key=lambda p: -len(p[0]))


_NOUNS = _phrases(E.NOUNS)
_REGIONS = _phrases(E.REGION_WORDS, {k: [f"the {a}", *EXTRA_REGION_WORDS.get(k, [])] for k, a in E.REGION_ADJ.items()})
_EXTREMES = _phrases(E.EXTREME_WORDS, EXTRA_EXTREME_WORDS)
_SIZES = _phrases({"largest": ["largest"], "smallest": ["smallest"]}, EXTRA_SIZE_WORDS)
_ORDINALS = {w: r for r, w in E.ORDINALS.items()}
#: relation phrases, "next to" meaning "nearest" (the generators use it for "touching" too); "in" is left out: it
#: starts most region phrases
_RELATIONS = _phrases({k: [w for w in ws if w != "in"] for k, ws in E.RELATION_WORDS.items()})


def _take(text: str, phrases: list[tuple[str, str]]) -> tuple[str | None, str]:
    """The key of the first (longest) phrase found in ``text`` (padded with spaces) and the text without it."""
    for phrase, key in phrases:
        padded = f" {phrase} "
        if padded in text:
            return key, text.replace(padded, " ", 1)
    return None, text


def parse(text: str) -> SpatialSpec | None:
    """The category and spatial words of a sentence that says nothing else, or None: no known category noun, no
    spatial word, or a word left over that the choice cannot honour (a colour, a shape, an unknown word).
    "the leftmost building" → SpatialSpec("building", extreme="west"); "the second largest lake" →
    SpatialSpec("water", size="largest", rank=2); "the road nearest to the largest building" → SpatialSpec("road",
    relation="nearest", anchor=SpatialSpec("building", size="largest")); "the red building on the left" → None."""
    rest = " " + re.sub(r" +", " ", re.sub(r"[^a-z\- ]+", " ", text.lower())).strip() + " "
    # a region phrase first, over the whole sentence: "find the trees along the top edge" is a region, not a relation
    region, rest = _take(rest, _REGIONS)
    for phrase, relation in _RELATIONS:
        head, sep, tail = rest.partition(f" {phrase} ")
        if sep:
            target, anchor = _parse_part(head + " ", region), _parse_part(" " + tail, None)
            if target is None or anchor is None:
                return None
            return SpatialSpec(target.category, target.region, target.extreme, target.size, target.rank, relation,
                               anchor)
    spec = _parse_part(rest, region)
    if spec is None or (spec.region is None and spec.extreme is None and spec.size is None):
        return None  # "the building": which one is the model's (or the labeller's) call
    return spec


def _parse_part(text: str, region: str | None) -> SpatialSpec | None:
    """One noun phrase (padded with spaces, its region phrase already taken out): category, extreme, size and rank;
    None without a category noun or with any other word left."""
    category, rest = _take(text, _NOUNS)
    if category is None:
        return None
    extreme, rest = _take(rest, _EXTREMES)
    size, rest = _take(rest, _SIZES)
    rank = 1
    words = rest.split()
    if size is not None:
        ordinals = [w for w in words if w in _ORDINALS]
        if ordinals:
            rank = _ORDINALS[ordinals[0]]
            words.remove(ordinals[0])
    if [w for w in words if w not in FILLER_WORDS]:
        return None
    return SpatialSpec(category, region, extreme, size, rank)


def objects_in(mask: np.ndarray, category: str) -> list[E.SceneObject]:
    """The separate objects of a category's mask (H×W bool): its 8-connected regions, blobs of a group category
    (:data:`GROUP_CATEGORIES`) within :data:`GROUP_GAP_FRACTION` of the longer side joined into one, specks
    (:data:`MIN_OBJECT_SHARE`, :data:`MIN_OBJECT_PIXELS`) left out. Each object's mask is a subset of ``mask``."""
    labels, kept = _object_labels(mask, category)
    return [E.SceneObject(int(i), category, (labels == i) & mask) for i in kept]


def _object_labels(mask: np.ndarray, category: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`objects_in` as a label image (H×W int, 0 outside the joined mask) and the labels of the objects that are
    no specks."""
    joined = mask
    if category in GROUP_CATEGORIES:
        gap = max(1, int(round(GROUP_GAP_FRACTION * max(mask.shape))))
        joined = ndimage.binary_closing(np.pad(mask, gap), iterations=gap)[gap:-gap, gap:-gap] | mask
    labels, n = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return labels, np.zeros(0, dtype=int)
    areas = ndimage.sum(mask, labels, np.arange(1, n + 1))
    smallest = max(MIN_OBJECT_PIXELS, MIN_OBJECT_SHARE * float(areas.max()))
    return labels, np.flatnonzero(areas >= smallest) + 1


def choose(spec: SpatialSpec, objects: list[E.SceneObject], shape: tuple[int, int],
           anchors: list[E.SceneObject] = ()) -> E.SceneObject | None:
    """The object ``spec`` means among ``objects`` (all of its category) in an image of ``shape`` (H, W), or None
    when the words cannot pick one: no object, a region or relation that leaves none or several (with no extreme or
    size to decide), fewer objects than a size rank needs, an anchor that is not one object. Regions test the centroid
    with the generators' margin (an object on a border counts as inside); an extreme is the smallest or largest
    centroid coordinate, a size the area rank; "nearest" the smallest distance between the masks, the other relations
    the generators' rules (:func:`rrsis_engine.data.expressions.relation_tristate`, borderline counts). ``anchors``:
    the objects of the anchor's category (those of ``objects`` when it is the same)."""
    if spec.region is not None:
        objects = [o for o in objects if E.region_tristate(o, spec.region, shape) is not False]
    if spec.relation is not None:
        objects = _related(spec, objects, anchors, shape)
    if not objects:
        return None
    if spec.extreme is not None:
        return min(objects, key=E.EXTREME_KEYS[spec.extreme])
    if spec.size is not None:
        if len(objects) < spec.rank:
            return None
        return E.size_ranked(objects, spec.size)[spec.rank - 1]
    return objects[0] if len(objects) == 1 else None


def _related(spec: SpatialSpec, objects: list[E.SceneObject], anchors: list[E.SceneObject],
             shape: tuple[int, int]) -> list[E.SceneObject]:
    """Of ``objects``, those in ``spec.relation`` to its anchor (the one object of ``anchors`` it means): the nearest
    one, or all that the relation's rule does not rule out; [] when the anchor is not one object."""
    anchor = choose(spec.anchor, list(anchors), shape)
    if anchor is None:
        return []
    others = [o for o in objects if not (o.mask & anchor.mask).any()]
    cache: dict = {}
    if spec.relation == "nearest":
        return [min(others, key=lambda o: E.boundary_distance(anchor, o, cache))] if others else []
    return [o for o in others if E.relation_tristate(o, anchor, spec.relation, shape, cache) is not False]


def resolve(spec: SpatialSpec, category_masks: dict[str, np.ndarray]) -> np.ndarray | None:
    """The pixels of the object ``spec`` means, H×W bool (a subset of ``category_masks[spec.category]``), or None
    (:func:`choose`). category_masks: the model's mask of every object of each category in ``spec.categories``."""
    objects = objects_in(category_masks[spec.category], spec.category)
    anchors = [] if spec.anchor is None else objects_in(category_masks[spec.anchor.category], spec.anchor.category)
    found = choose(spec, objects, category_masks[spec.category].shape, anchors)
    return None if found is None else found.mask


def other_objects(mask: np.ndarray, category: str, chosen: np.ndarray, positive_clicks: np.ndarray) -> np.ndarray:
    """In a later turn on the object a spatial sentence chose, the pixels of ``mask`` (H×W bool, that turn's) that
    belong to the category's other objects (:func:`objects_in`, specks included): those touching neither ``chosen``
    (H×W bool, the previous turn's mask) nor a positive click (N×2 x, y pixels), H×W bool."""
    labels, kept = _object_labels(mask, category)
    rows, cols = point_pixels(positive_clicks, mask.shape)
    clicked = labels[rows, cols][mask[rows, cols]]
    touched = np.union1d(np.unique(labels[chosen & mask]), clicked)
    return mask & ~np.isin(labels, np.intersect1d(kept, touched))
