"""Spatial words in a referring expression, resolved by geometry over the model's mask of the whole category.

The mask model finds a category well ("all the buildings": 0.93 mIoU on the synthetic validation scenes) but often not
which of them a sentence means ("the leftmost building" and the other position sentences: 0.32 there). For a sentence
that says nothing but a category and where, how large or next to what the object is — an extreme ("leftmost",
"northernmost"), a size rank ("the largest", "the second smallest"), a part of the image ("in the top-left corner",
"the lower …"), a relation to an anchor ("the road nearest to the largest building"), a colour ("the grey house",
"the building with a white roof") or a building's shape ("the L-shaped structure") — the predictor asks the model for
every object of the category ("all the buildings") and picks one here, by colour, shape, centroid, area or the
relation's rule (:func:`choose`). Any other word (a word the parser does not know) leaves the sentence to the model:
:func:`parse` returns None. So do words that pick no object, or several ("the house at the top" when two are there:
ambiguous).

The vocabulary is the one the data generators word their specs with (:mod:`rrsis_engine.data.expressions`: the
category nouns, extremes, region phrases, "largest"/"smallest" with ordinals, relation phrases) and a few common
synonyms (:data:`EXTRA_EXTREME_WORDS`, :data:`EXTRA_SIZE_WORDS`, :data:`EXTRA_REGION_WORDS`, :data:`EXTRA_COLOR_WORDS`).
The geometry follows those specs too: extremes and regions read an object's centroid, sizes its area, relations the
generators' rules. Colours are named by the generators' palettes (:data:`COLOR_PALETTES`: the nearest colour of the
object's category to the object's lit pixels, :func:`color_name`), shapes by the object's outline (:func:`shape_name`).

Frames: masks are H×W bool [row, col]; centroids are (x, y) = (col, row) pixels; north is row 0.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, cKDTree
from skimage.morphology import skeletonize
from skimage.transform import hough_line, hough_line_peaks

from rrsis_engine.data import expressions as E
from rrsis_engine.data.synthetic import CAR_COLORS, FIELD_COLORS, ROOF_COLORS, SHIP_COLORS
from rrsis_engine.postprocess import (
    distance_step,
    holes,
    interior_point,
    point_pixels,
    resample_nearest,
    sigmoid,
)

#: synonyms beyond the generators' wording
EXTRA_EXTREME_WORDS = {"north": ["top-most", "upper-most", "highest"], "south": ["lowest", "bottom-most"],
                       "west": ["left-most", "furthest left"], "east": ["right-most", "furthest right"]}
EXTRA_SIZE_WORDS = {"largest": ["biggest"], "smallest": ["tiniest"]}
EXTRA_REGION_WORDS = {"top-left": ["in the top left"], "top-right": ["in the top right"],
                      "bottom-left": ["in the bottom left"], "bottom-right": ["in the bottom right"],
                      "top": ["at the top"], "bottom": ["at the bottom"], "center": ["in the centre", "in the middle"]}
#: the colour words of each category and their RGB (a building's colour is its roof's); another category's colour word
#: means the category's colour nearest to it ("black" roof: "dark"), a category without a palette uses them all
COLOR_PALETTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "building": ROOF_COLORS, "car": CAR_COLORS, "field": FIELD_COLORS, "ship": SHIP_COLORS}
#: the colour of a roof or field is compared with each palette colour lit or shaded by the factor within this range
#: that brings it nearest: the generators vary a roof's colour by ±8 % and shade one side of it, and a mask that covers
#: part of an object sees part of its light. On 300 scenes (seeds 1000–1149, 5000–5149) this names 2276 of 2276 true
#: masks of roofs and fields as painted (plain nearest RGB: 2251) and 2260 of the same objects cut in half (2180).
#: Cars are named by plain nearest RGB: the grey kerb pieces that cars_on takes for cars were named blue, shaded
#: (synthetic test 114, "the street nearest to the blue car": 0.91 → 0.01)
SHADED_CATEGORIES, SHADE_RANGE = frozenset({"building", "field"}), (0.8, 1.2)
#: colour words beyond the generators' and the generators' word they mean
EXTRA_COLOR_WORDS = {"gray": "grey"}
#: the shape words read from an outline (:func:`shape_name`), and the categories they are read for: the generators also
#: call pools round or rectangular, but a pool is a few pixels across and its outline does not tell (on the
#: validation scenes' true masks round and rectangular pools overlap in every measure tried)
SHAPE_WORDS = ("square", "rectangular", "L-shaped")
SHAPE_CATEGORIES = frozenset({"building"})
#: an outline filling less than this share of its smallest enclosing rectangle, and less than SOLIDITY of its convex
#: hull, is L-shaped; one whose rectangle's sides differ by less than SQUARE_ASPECT of the longer is square (the
#: generators' rule). True masks of the synthetic validation scenes: L-shaped fill 0.66–0.75 and solidity 0.79–0.86,
#: other buildings 0.85–1.0 and 0.89–1.0 (5th–95th percentiles)
L_SHAPE_FILL, L_SHAPE_SOLIDITY, SQUARE_ASPECT = 0.78, 0.87, 0.12
#: a shape is not read from an object under this share of the category's median area: a piece of a building the model
#: found only in part has any outline (validation: a 54-pixel piece read as a second L-shaped building)
SHAPE_MIN_SHARE = 0.25
#: words that carry nothing for the choice ("segment the …", "show me the …")
FILLER_WORDS = frozenset({"the", "a", "an", "segment", "select", "find", "show", "me", "mask", "please", "one"})
#: categories whose objects are groups of separate blobs ("group of trees"): blobs at most this far apart (a share of
#: the image's longer side, Euclidean; 12 px on the synthetic 256² scenes) are one object. The generators' groves
#: (400 training scenes, scripts/grove_gaps.py): 98 % have no gap over 12 px between their crowns, and 4 % of the pairs of
#: groves in a scene lie within 12 px of each other; the 3-iteration closing used before joined gaps of about 3–6 px,
#: 64–84 % of the groves (docs/training.md, "Groves read whole")
GROUP_GAPS = {"trees": 12 / 256}
#: categories of one object however many pieces the model's mask has: the generators draw one river a scene, and the
#: model's mask of it breaks where roads cross it
SINGLE_OBJECT_CATEGORIES = frozenset({"river"})
#: categories whose objects are straight strips that cross and are cut (the generators' roads): their mask is split
#: along lines (:func:`_split_into_lines`) where lines explain all but LINE_MAX_UNEXPLAINED of it. Lines are at least
#: LINE_MIN_LENGTH of the image's longer side long and LINE_MIN_ANGLE degrees apart; a pixel within half the strip's
#: width and LINE_BAND_PIXELS of a line is on it. On the model's road masks of the first 120 synthetic validation
#: scenes each road's best object matched it at 0.85 IoU (mean; 0.48 as connected regions, 0.78 with lines of a
#: quarter of the side explaining 90 %)
STRAIGHT_CATEGORIES = frozenset({"road"})
LINE_MIN_LENGTH, LINE_MIN_ANGLE, LINE_BAND_PIXELS, LINE_MAX_UNEXPLAINED = 0.15, 10, 2.0, 0.3
#: a line with more than this share of its strip's pixels in stronger lines' strips is one of them (:func:`_distinct_lines`)
LINE_SAME_SHARE = 0.5
#: at most this many lines (the strongest): a noisy mask's skeleton has hundreds of peaks, each a pass over the mask
#: (an untrained rsam-t's road mask on a 1 024² image took minutes before this cap)
LINE_MAX_COUNT = 8
#: crossing roads share their crossing: in a later turn a road of a STRAIGHT category stays when at least this share of
#: it lies on the chosen one (synthetic validation, one click: 0.809 → 0.835; any pixel: 0.816)
ROAD_TOUCH_SHARE = 0.5
#: two pieces of a category's mask filling this share of their joint convex hull are one object a road crosses (fields
#: cut in two on the synthetic validation scenes: 0.73–0.86; two fields: up to 0.62)
SAME_OBJECT_FILL = 0.7
#: ... and lie at most this share of the image's longer side apart (a road's width: 8–12 px on the 256² scenes); pieces
#: are joined only where a mask has at most MAX_JOINED_PIECES objects (an untrained model's speckle has hundreds)
MAX_CUT_WIDTH, MAX_JOINED_PIECES = 0.06, 16
#: ... and whose median colours (RGB) differ by at most this much: a green field beside a brown one fills 0.73 of their
#: hull on synthetic test scene 86 (median colours 48 apart), the pieces of one field a road cuts differ by 1–10
SAME_OBJECT_COLOR = 24.0
#: categories whose objects lie on another category's (a car on a road or a car park, a ship on water): their pixels are
#: that category's too, so :func:`one_category_a_pixel` leaves them as they are; the predictor reads them off that
#: category's mask (:func:`ships_on`, :func:`cars_on`)
ON_TOP_CATEGORIES = frozenset({"car", "ship"})
#: a pixel of an :data:`ON_TOP_CATEGORIES` object is of a colour when it is at most this far (RGB) from it: the synthetic
#: cars' pixels lie 10–40 from their colour, the roads under them 40 or more from any car colour
PART_COLOR_DISTANCE = 40.0
#: ... in the category's mask widened by this share of the image's longer side (3 pixels at 256²)
PART_MARGIN = 0.012
#: the categories ships lie on (:func:`ships_on`); a ship's pixels differ from its water's median colour by more than
#: SHIP_WATER_CONTRAST (RGB), and it covers at most SHIP_MAX_SHARE of the image (an island is no ship)
SHIP_WATERS, SHIP_WATER_CONTRAST, SHIP_MAX_SHARE = ("water", "river"), 80.0, 0.01
#: ... and lies in the model's water closed by a disk of SHIP_CLOSING of the image's longer side (5 pixels at 256²;
#: :func:`closed_water`): the model's water leaves a notch or a gap where a ship is, and the ship was no hole in it.
#: Over the 74 synthetic validation scenes with ships, "all the ships" scored IoU 0.597 without the closing and
#: 0.750 / 0.781 / 0.780 / 0.782 with 0.015 / 0.02 / 0.025 / 0.03 (the model's own mask: 0.000)
SHIP_CLOSING = 0.02
#: the categories cars stand on (:func:`cars_on`): the model's mask of "all the cars" is the roads (synthetic validation:
#: not one of 289 cars in it, widened by PART_MARGIN), but a car is a patch of another colour on its road or car park,
#: more than CAR_GROUND_CONTRAST (RGB) from the ground's median colour, at most CAR_MAX_SHARE of the image and
#: CAR_MAX_LENGTH of its longer side long (the strips of verge along a road's edge are longer), with at least
#: CAR_ON_GROUND_SHARE of its pixels on the ground closed by a disk of CAR_CLOSING of the side (the model's road mask has
#: a notch where a car stands). On every 4th of the 300 synthetic validation scenes (the 64 with cars): 231 of 289 cars
#: found (half of each covered), 255 of 296 regions on a car, 237 of those named the car's colour; with a contrast of 50
#: or 45, 241 / 244 found but 402 / 418 regions (``out/s59/carlib.py``, a scratch script)
CAR_GROUNDS, CAR_GROUND_CONTRAST, CAR_MAX_SHARE, CAR_MAX_LENGTH = ("road", "parking"), 60.0, 0.004, 0.08
CAR_CLOSING, CAR_ON_GROUND_SHARE = 0.03, 0.5
#: car parks lie beside the roads (:func:`car_parks_on`): the model's mask of "all car parks" is the roads with a part of
#: each car park, its road mask holds most of them; what the roads' straight strips do not explain in the two masks
#: together (closed by CAR_CLOSING, holes filled) is a car park when it covers at least PARK_MIN_SHARE of the image,
#: PARK_SOLIDITY of its convex hull and at most PARK_MAX_LENGTH of the image's longer side along either axis. On every
#: 3rd of the 300 synthetic validation scenes, the 14 with a car park: IoU with the true car parks 0.729 (the model's
#: mask 0.123; with the strips' rule that the lines explain most of the mask, 0.462: five car parks joined a road)
PARK_MIN_SHARE, PARK_SOLIDITY, PARK_MAX_LENGTH = 0.003, 0.8, 0.4
#: the categories the predictor reads off the masks of others (:func:`ships_on`, :func:`cars_on`, :func:`car_parks_on`),
#: each with those categories
READ_OFF_GROUNDS = {"ship": SHIP_WATERS, "car": CAR_GROUNDS, "parking": CAR_GROUNDS}
#: ... of which these are part of their ground's mask, not objects on top of it (:data:`ON_TOP_CATEGORIES`): read off,
#: they leave that mask, and a click trims them rather than picking or rejecting them whole
READ_OFF_REGIONS = frozenset(READ_OFF_GROUNDS) - ON_TOP_CATEGORIES
#: the categories whose objects the model's mask may cover only in part and whose objects are one colour: each
#: object of their masks is completed to the colour region it lies on (:func:`completed_objects`) before spatial words
#: choose
COMPLETED_CATEGORIES = frozenset({"building"})
#: the colour region is looked for within the object's box widened by its own extent, and by at least this share of
#: the image's longer side, then by twice that where the region reaches the window's border
COMPLETION_WINDOW = 0.2
#: the object's colour: the median of its pixels two in from its outline after :func:`click_regions.smoothed`; an
#: object whose colours spread more than this (RGB rms) is texture or two objects, and is left as it is
COMPLETION_MAX_SPREAD = 12.0
#: a pixel shares the colour within this many times the spread, within [min, max] RGB units (the magic wand's 3× and
#: 40 took a dark roof's shadow on the grass with it)
COMPLETION_TOLERANCE, COMPLETION_TOLERANCE_MIN, COMPLETION_TOLERANCE_MAX = 2.0, 10.0, 20.0
#: the region replaces the object only where it is at least this much larger (a mask that missed a third of a roof
#: or more: on a smaller gap the snap to the colour edges does better, and a region a few pixels larger is mostly the
#: shadow), closed (it reaches the window's border nowhere but on the image's), set off from the pixels around it by
#: this median colour distance (RGB) and at least this solid (area / convex hull): a patch of ground of a shade
#: between its neighbours' is neither
COMPLETION_MIN_GROWTH, COMPLETION_MIN_CONTRAST, COMPLETION_MIN_SOLIDITY = 1.5, 15.0, 0.7
#: ... and at most this many times the mask's largest object: a brown roof beside a brown field of the same colour
#: grew into the field (synthetic validation 282)
COMPLETION_MAX_SIZE = 2.0
#: categories whose objects in the model's mask are split into the parts of each of their colours before spatial words
#: choose among them: two fields of different colours side by side are one region of the mask (synthetic validation
#: 107, "the largest yellow field": a yellow field joined to a brown one, 42 % yellow, was named yellow by its brighter
#: half and was larger than the yellow field meant; 147, "the leftmost farm plot", a green field with a quarter brown)
COLOUR_SPLIT_CATEGORIES = frozenset({"field"})
#: ... each colour that names at least this share of the object's pixels, averaged over a square of this many pixels
#: first (a field's stripes), is a part (on the true masks of the validation fields the second colour held at most 6 %)
COLOUR_SPLIT_MIN_SHARE, COLOUR_SPLIT_WINDOW = 0.2, 5
#: a region of the category's mask smaller than this share of the largest one is a speck, not an object
MIN_OBJECT_SHARE = 0.1
#: ... and never smaller than this many pixels
MIN_OBJECT_PIXELS = 12
#: The share of a look-alike's pixels the negative clicks on it must remove for it to count as rejected, not trimmed
#: (:func:`ranked_objects`).
REJECTED_SHARE = 0.5


@dataclass(frozen=True)
class SpatialSpec:
    """What :func:`parse` read: the category (a key of :data:`rrsis_engine.data.expressions.NOUNS`), at most one
    region (:data:`rrsis_engine.data.expressions.REGIONS`), one extreme (north/south/west/east), one size
    ("largest"/"smallest" with ``rank`` 1 = the largest itself, 2 = the second largest), one relation
    (:data:`rrsis_engine.data.expressions.RELATIONS`) to an ``anchor``, itself a spec (that may have no spatial word:
    "the canal" when there is one canal), a colour (a word of :data:`COLOR_PALETTES`) and a shape
    (:data:`SHAPE_WORDS`)."""

    category: str
    region: str | None = None
    extreme: str | None = None
    size: str | None = None
    rank: int = 1
    relation: str | None = None
    anchor: SpatialSpec | None = None
    color: str | None = None
    shape: str | None = None

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


#: words that make a sentence ask for every object of its category ("all the buildings", "every road")
_CLASS_WORDS = re.compile(r"\b(?:all|every|each)\b")


def is_class_sentence(text: str) -> bool:
    """Whether ``text`` asks for every object of a category ("segment all pools", "every road"), as the class-level
    sentences of the generators do, rather than for one object."""
    return bool(_CLASS_WORDS.search(text.lower()))


def _phrases(words: dict[str, list[str]], extra: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(phrase, key) pairs, the longest phrase first, so that "in the top-left corner" wins over "in the top"."""
    pairs = [(w, k) for k, ws in words.items() for w in ws] + [(w, k) for k, ws in (extra or {}).items() for w in ws]
    return sorted(pairs, key=lambda p: -len(p[0]))


_NOUNS = _phrases(E.NOUNS)
_REGIONS = _phrases(E.REGION_WORDS, {k: [f"the {a}", *EXTRA_REGION_WORDS.get(k, [])] for k, a in E.REGION_ADJ.items()})
_EXTREMES = _phrases(E.EXTREME_WORDS, EXTRA_EXTREME_WORDS)
_SIZES = _phrases({"largest": ["largest"], "smallest": ["smallest"]}, EXTRA_SIZE_WORDS)
_COLORS = _phrases({w: [w] for palette in COLOR_PALETTES.values() for w in palette},
                   {w: [extra] for extra, w in EXTRA_COLOR_WORDS.items()})
_SHAPES = _phrases({w: [w.lower()] for w in SHAPE_WORDS})
#: "the building with a white roof": the roof's colour is the building's
_ROOF_COLOR = re.compile(r" with (?:a|an|the) ([a-z]+) roof ")
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
    """The category, spatial words, colour and shape of a sentence that says nothing else, or None: no known category
    noun, none of those words, or a word left over that the choice cannot honour (an unknown word, a shape of a
    category whose outline does not tell it). "the leftmost building" → SpatialSpec("building", extreme="west"); "the
    second largest lake" → SpatialSpec("water", size="largest", rank=2); "the road nearest to the largest building" →
    SpatialSpec("road", relation="nearest", anchor=SpatialSpec("building", size="largest")); "the house with a grey
    roof on the left" → SpatialSpec("building", region="left", color="grey"); "the building with a chimney" → None."""
    spec = parse_object(text)
    if spec is None or spec == SpatialSpec(spec.category):
        return None  # "the building": which one is the model's (or the labeller's) call
    return spec


def _padded_words(text: str) -> str:
    """``text`` in lower case, letters, hyphens and single spaces only, padded with a space at each end."""
    return " " + re.sub(r" +", " ", re.sub(r"[^a-z\- ]+", " ", text.lower())).strip() + " "


def parse_object(text: str) -> SpatialSpec | None:
    """:func:`parse`, also for a sentence that names one object of a category and nothing else ("the farm plot" →
    SpatialSpec("field")): a sentence about one object, whichever the words pick; None for a class ("all the
    buildings") or a sentence with other words."""
    rest = _padded_words(text)
    # a region phrase first, over the whole sentence: "find the trees along the top edge" is a region, not a relation
    region, rest = _take(rest, _REGIONS)
    for phrase, relation in _RELATIONS:
        head, sep, tail = rest.partition(f" {phrase} ")
        if sep:
            target, anchor = _parse_part(head + " ", region), _parse_part(" " + tail, None)
            if target is None or anchor is None:
                return None
            return dataclasses.replace(target, relation=relation, anchor=anchor)
    return _parse_part(rest, region)


#: the leads of a follow-up sentence ("no, the one further left", "I mean the larger of the two")
_FOLLOWUP_LEADS = ("no ", "i mean ", "not that one ", "not this one ", "wrong one ", "actually ")
#: a follow-up's direction phrases ("the one further left"), besides the extreme words ("the leftmost one"); phrases
#: relative to the object shown ("the one to its left", "above it") are :func:`parse_correction`'s
FOLLOWUP_DIRECTIONS = {"north": ["further north", "higher up", "at the top", "further up"],
                       "south": ["further south", "lower down", "at the bottom", "further down"],
                       "west": ["further left", "on the left", "further west"],
                       "east": ["further right", "on the right", "further east"]}
#: a follow-up's side words ("the left one", "the upper one"), besides the extreme words
FOLLOWUP_SIDES = {"north": ["top", "upper"], "south": ["bottom", "lower"], "west": ["left"], "east": ["right"]}
#: "one further left" / "leftmost one" / "left one" (after "the ") → the extreme
_FOLLOWUP_EXTREMES = {f"one {phrase}": e for e, phrases in FOLLOWUP_DIRECTIONS.items() for phrase in phrases} | {
    f"{word} one": e for e, words in [*E.EXTREME_WORDS.items(), *EXTRA_EXTREME_WORDS.items(), *FOLLOWUP_SIDES.items()]
    for word in words}
_FOLLOWUP_SIZES = {"larger of the two": "largest", "bigger of the two": "largest", "smaller of the two": "smallest",
                   "biggest one": "largest", "largest one": "largest", "bigger one": "largest", "larger one": "largest",
                   "smallest one": "smallest", "smaller one": "smallest"}


def _without_lead(text: str) -> str:
    """``text``'s words (:func:`_padded_words`, unpadded) without a follow-up's leads ("no, …", "I mean …")."""
    rest = _padded_words(text).strip()
    for lead in _FOLLOWUP_LEADS:
        rest = rest.removeprefix(lead)
    return rest


def parse_followup(text: str, category: str) -> SpatialSpec | None:
    """A follow-up sentence that picks one of the look-alikes the sentence before it left ("the building" → "no, the
    one further left", "I mean the larger of the two", "the red one", "the leftmost one") as a spec of ``category``
    (the sentence before's): an extreme, a size or a colour; None for any other sentence (one with a noun of its own,
    or relative to the object shown: "the one to its right")."""
    rest = _without_lead(text)
    if not rest.startswith("the "):
        return None
    rest = rest.removeprefix("the ")
    if rest in _FOLLOWUP_SIZES:
        return SpatialSpec(category, size=_FOLLOWUP_SIZES[rest])
    if rest in _FOLLOWUP_EXTREMES:
        return SpatialSpec(category, extreme=_FOLLOWUP_EXTREMES[rest])
    color, left = _take(f" {rest} ", _COLORS)
    if color is not None and left.strip() == "one":
        return SpatialSpec(category, color=color)
    return None


#: a correction's direction phrases, relative to the object shown ("no, the road further right", "the one above it")
CORRECTION_DIRECTIONS = {"north": ["further north", "above it", "further up", "higher up"],
                         "south": ["further south", "below it", "further down", "lower down"],
                         "west": ["further left", "to its left", "further west", "on its left"],
                         "east": ["further right", "to its right", "further east", "on its right"]}


def parse_correction(text: str, category: str) -> tuple[str, str | None] | None:
    """A follow-up relative to the object shown, about another object of ``category`` (the sentence before's):
    ("redirect", direction) for "no, the road further right", "wrong one, the one to its left", "the one above it";
    ("add", None) for "also the one next to it", "and the house next to it too", "add the closest road as well"; None
    for any other sentence."""
    rest = _without_lead(text)
    nouns = "|".join(re.escape(n) for n in ["one", *E.NOUNS[category]]) if category in E.NOUNS else "one"
    if re.fullmatch(rf"(?:also |and )?the (?:{nouns}) next to it(?: too| as well)?|add the (?:closest|nearest) "
                    rf"(?:{nouns})(?: too| as well)?", rest):
        return "add", None
    for direction, phrases in CORRECTION_DIRECTIONS.items():
        if re.fullmatch(rf"the (?:{nouns}) (?:{'|'.join(phrases)})", rest):
            return "redirect", direction
    return None


def corrected(correction: tuple[str, str | None], category: str, category_mask: np.ndarray, shown: np.ndarray,
              pixels: np.ndarray, smooth: np.ndarray | None = None) -> np.ndarray | None:
    """The pixels (H×W bool) a correction (:func:`parse_correction`) of the object ``shown`` (H×W bool, not empty)
    means among the objects of ``category`` in ``category_mask`` (the model's mask of all of them; ``pixels`` and
    ``smooth`` as :func:`resolve`'s): "redirect" — the object nearest to the shown one (by centroid) whose centroid
    lies :data:`rrsis_engine.data.expressions.REDIRECT_MARGIN` further in the direction (the generators' rule);
    "add" — the objects the shown mask covers (more than half of each; the shown mask itself where it covers none)
    and the other object nearest to it (by the distance between the masks). None when no other object fits."""
    height, width = shown.shape
    covered, objects = [], []  # the objects shown (more than half of each under ``shown``), the others
    for o in _joined_objects(category_mask, category, pixels, smooth):
        (covered if (o.mask & shown).sum() > 0.5 * o.area else objects).append(o)
    rows, cols = np.nonzero(shown)
    x, y = cols.mean(), rows.mean()
    kind, direction = correction
    if kind == "redirect":
        dx, dy = E.DIRECTION_VECTORS[direction]
        margin = E.REDIRECT_MARGIN * max(height, width)
        ahead = [o for o in objects if (o.centroid[0] - x) * dx + (o.centroid[1] - y) * dy > margin]
        if not ahead:
            return None
        return min(ahead, key=lambda o: np.hypot(o.centroid[0] - x, o.centroid[1] - y)).mask
    if not objects:
        return None
    distance = ndimage.distance_transform_edt(~shown)
    nearest = min(objects, key=lambda o: distance[o.mask].min())
    # the objects shown as the category's mask draws them: a mask shown through the previous turn's coarse logits
    # spills over their outlines
    return np.logical_or.reduce([o.mask for o in [*covered, nearest]]) if covered else shown | nearest.mask


_NUMBER_WORDS = {w: i for i, w in enumerate("one two three four five six seven eight nine".split(), start=1)}
#: "2", "#2", "number 2", "candidate two", "it's 3", "pick no. 4 please": a candidate's number and nothing else
_CANDIDATE_NUMBER = re.compile(
    r"(?:(?:it'?s|it is|pick|choose|select|take|show me|show|i mean|the)\s+)*"
    r"(?P<prefix>(?:number|candidate|region|outline|no\.?|nr\.?)\s*|#\s*)?"
    r"(?P<number>\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")(?:\s+please)?")


def parse_candidate_number(text: str) -> int | None:
    """The number of an outlined candidate region that ``text`` names and nothing else ("2", "#2", "number 2",
    "candidate two", "it's 3", "pick no. 4 please"), or None. A number word needs a prefix or to stand alone ("one"
    is 1, "the one" is no number). The front ends number the candidates 1, 2, … in their order."""
    words = " ".join(text.lower().replace("’", "'").strip().rstrip(".!?").split())
    m = _CANDIDATE_NUMBER.fullmatch(words)
    if m is None:
        return None
    number = m.group("number")
    if not number.isdigit():
        if not m.group("prefix") and words != number:
            return None
        return _NUMBER_WORDS[number]
    return int(number)


def is_follow_up(text: str) -> bool:
    """Whether ``text`` is a follow-up :func:`parse_followup` or :func:`parse_correction` reads (of any category)."""
    return parse_followup(text, "") is not None or any(parse_correction(text, c) is not None for c in E.NOUNS)


#: the words besides the noun of a sentence about every object of a category ("find all of the ships", "every boat")
_CLASS_SENTENCE_WORDS = FILLER_WORDS | {"all", "every", "each", "of"}


def read_off_sentence(text: str) -> tuple[str, str] | None:
    """Whether ``text`` names ships, cars or car parks (:data:`READ_OFF_GROUNDS`) and nothing else: (the category,
    "one") for one ("the ship", "find the boat", "the vehicle", "show me the car park"), (the category, "all") for every
    one ("find all of the ships", "every vessel", "the cars", "all parking lots"), None for any other sentence (one with
    spatial words or a colour is :func:`parse`'s). The model finds almost no ships, and draws the roads for cars and
    car parks, so the predictor reads these off the water and the roads, as it does for the spatial sentences about
    them."""
    rest = " ".join(w for w in _padded_words(text).split() if w not in _CLASS_SENTENCE_WORDS)
    for category in sorted(READ_OFF_GROUNDS):
        if rest in E.PLURALS[category] or rest in [noun + "s" for noun in E.NOUNS[category]]:  # "car parks"
            return category, "all"
        if rest in E.NOUNS[category]:
            return category, "all" if is_class_sentence(text) else "one"
    return None


def class_sentence_category(text: str) -> str | None:
    """The category ``text`` asks every object of and nothing else ("all the buildings", "segment every house",
    "structures"), or None."""
    rest = " ".join(w for w in _padded_words(text).split() if w not in _CLASS_SENTENCE_WORDS)
    for category, nouns in E.NOUNS.items():
        if rest in E.PLURALS.get(category, ()) or (rest in nouns and is_class_sentence(text)):
            return category
    return None


def _parse_part(text: str, region: str | None) -> SpatialSpec | None:
    """One noun phrase (padded with spaces, its region phrase already taken out): category, extreme, size and rank,
    colour, shape; None without a category noun or with any other word left."""
    roof_color = None
    roof = _ROOF_COLOR.search(text)
    if roof is not None:  # "the building with a white roof"
        roof_color, _ = _take(f" {roof.group(1)} ", _COLORS)
        if roof_color is None:
            return None  # "with a flat roof"
        text = text[:roof.start()] + " " + text[roof.end():]
    category, rest = _take(text, _NOUNS)
    if category is None or (roof_color is not None and category != "building"):
        return None
    color, rest = _take(rest, _COLORS)
    if roof_color is not None and color is not None:
        return None  # "the red house with a white roof"
    color = color or roof_color
    shape, rest = _take(rest, _SHAPES)
    if shape is not None and category not in SHAPE_CATEGORIES:
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
    return SpatialSpec(category, region, extreme, size, rank, color=color, shape=shape)


def objects_in(mask: np.ndarray, category: str) -> list[E.SceneObject]:
    """The separate objects of a category's mask (H×W bool): its 8-connected regions, blobs of a group category
    (:data:`GROUP_GAPS`) within its gap joined into one, all of a :data:`SINGLE_OBJECT_CATEGORIES` mask one object,
    a :data:`STRAIGHT_CATEGORIES` mask split along its lines, specks (:data:`MIN_OBJECT_SHARE`,
    :data:`MIN_OBJECT_PIXELS`) left out. Each object's mask is a subset of ``mask``."""
    labels, kept, _ = _object_labels(mask, category)
    return _labelled_objects(labels, kept, category, mask.shape, within=mask)


def _labelled_objects(labels: np.ndarray, ids, category: str, shape: tuple[int, int], origin: tuple[int, int] = (0, 0),
                      within: np.ndarray | None = None) -> list[E.SceneObject]:
    """One object of ``category`` per label of ``ids`` in ``labels`` (h×w int, its top-left pixel at ``origin`` (row,
    col) of an image of ``shape`` H×W), its pixels those of the label (and of ``within``, H×W bool, when given), as an
    H×W mask. Each label is read in its box (``ndimage.find_objects``) on a calloc'd mask, whose pages outside the box
    are never written: a speckled mask of a large image has a thousand labels."""
    boxes = ndimage.find_objects(labels)
    objects = []
    for i in ids:
        rows, cols = boxes[i - 1]
        box = (slice(rows.start + origin[0], rows.stop + origin[0]), slice(cols.start + origin[1], cols.stop + origin[1]))
        part = np.zeros(shape, dtype=bool)
        part[box] = labels[rows, cols] == i
        if within is not None:
            part[box] &= within[box]
        objects.append(E.SceneObject(int(i), category, part, within=box))
    return objects


def _object_labels(mask: np.ndarray, category: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`objects_in` as a label image (H×W int, 0 outside the joined mask), the labels of the objects that are
    no specks, and a second label image (H×W int, 0 where none): the other line of a crossing of two straight strips
    (:func:`_split_into_lines`)."""
    joined = mask
    if category in SINGLE_OBJECT_CATEGORIES:
        joined = np.ones_like(mask)
    elif category in GROUP_GAPS:
        # every pixel within half the gap of a blob: two blobs at most the gap apart (Euclidean) touch
        joined = ndimage.distance_transform_edt(~mask) <= GROUP_GAPS[category] * max(mask.shape) / 2
    labels, n = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    second = np.zeros_like(labels)
    if n == 0:
        return labels, np.zeros(0, dtype=int), second
    if category in STRAIGHT_CATEGORIES:
        labels, n, second = _split_into_lines(mask, labels, n)
    areas = ndimage.sum(mask, labels, np.arange(1, n + 1))
    smallest = max(MIN_OBJECT_PIXELS, MIN_OBJECT_SHARE * float(areas.max()))
    return labels, np.flatnonzero(areas >= smallest) + 1, second


def _split_into_lines(mask: np.ndarray, labels: np.ndarray, n: int,
                      max_unexplained: float = LINE_MAX_UNEXPLAINED) -> tuple[np.ndarray, int, np.ndarray]:
    """A mask of straight strips (crossing roads, a road cut by a river) as one label per strip: the strips' centre
    lines are the Hough transform's peaks on the mask's skeleton (lines of at least :data:`LINE_MIN_LENGTH` of the
    longer side, :data:`LINE_MIN_ANGLE` degrees or a strip's width apart, the :data:`LINE_MAX_COUNT` strongest), each
    pixel goes to the nearest line within half the strip's width (the median width along the skeleton) and
    :data:`LINE_BAND_PIXELS`. Returns (labels, count, second) with the lines first and the pixels no line explains
    keeping their connected region's label after them, and in ``second`` (H×W int, 0 where none) the second-nearest
    line of a pixel within two strips, a crossing (:func:`other_objects`); the input ``labels`` (``n``
    connected regions) unchanged when more than ``max_unexplained`` of the mask is unexplained (curved roads, a road
    network of real imagery: its regions stay the objects)."""
    unchanged = labels, n, np.zeros_like(labels)
    skeleton = skeletonize(mask)
    if skeleton.sum() < 10:
        return unchanged
    beside = ~mask & ndimage.binary_dilation(mask)  # the background pixels beside the mask hold each pixel's nearest
    if not beside.any():
        return unchanged  # the mask is the whole image
    # the distance transform's values on the skeleton, from a k-d tree (1 024² roads: 75 → 15 ms)
    width = 2.0 * float(np.median(cKDTree(np.argwhere(beside)).query(np.argwhere(skeleton))[0]))
    side = max(mask.shape)
    votes, angles, offsets = hough_line(skeleton, theta=np.deg2rad(np.arange(-90.0, 90.0)))
    _, angles, offsets = hough_line_peaks(votes, angles, offsets, min_distance=int(max(3.0, width)),
                                          min_angle=LINE_MIN_ANGLE, threshold=LINE_MIN_LENGTH * side,
                                          num_peaks=LINE_MAX_COUNT)
    if len(angles) == 0:
        return unchanged
    rows, cols = np.nonzero(mask)
    # distance of each pixel to each line x·cos θ + y·sin θ = ρ (x = col, y = row)
    distance = np.abs(np.outer(cols, np.cos(angles)) + np.outer(rows, np.sin(angles)) - offsets)
    band = distance <= width / 2 + LINE_BAND_PIXELS
    distinct = _distinct_lines(band)
    angles, offsets, distance, band = angles[distinct], offsets[distinct], distance[:, distinct], band[:, distinct]
    explained = band.any(axis=1)
    if 1.0 - explained.mean() > max_unexplained:
        return unchanged
    split, second = np.zeros_like(labels), np.zeros_like(labels)
    order = np.argsort(distance, axis=1)
    split[rows[explained], cols[explained]] = order[explained, 0] + 1
    if len(angles) > 1:  # within the second line's strip itself (no margin: the other road's pixels beside it stay)
        on_two = distance[np.arange(len(rows)), order[:, 1]] <= width / 2 + 0.5
        second[rows[on_two], cols[on_two]] = order[on_two, 1] + 1
    rest, n_rest = ndimage.label(mask & (split == 0), structure=np.ones((3, 3), dtype=bool))
    split[rest > 0] = rest[rest > 0] + len(angles)
    return split, len(angles) + n_rest, second


def _distinct_lines(band: np.ndarray) -> np.ndarray:
    """Of the Hough lines whose strips hold the mask pixels ``band`` (N pixels × K lines bool, the strongest line
    first), those that are not the same strip as a stronger one: a line is dropped when more than
    :data:`LINE_SAME_SHARE` of its pixels lie in the strips kept before it. K bools. A slanted road is one strip though
    lines a few degrees apart both run inside it end to end (their offsets differ by about a strip's width, so the
    peaks' suppression window keeps both: synthetic validation "the road to the left of the dark house" saw its road
    as two lines side by side, so two roads matched and the sentence chose none)."""
    distinct = np.zeros(band.shape[1], dtype=bool)
    covered = np.zeros(band.shape[0], dtype=bool)
    for k in range(band.shape[1]):
        own = band[:, k]
        if np.count_nonzero(own & covered) <= LINE_SAME_SHARE * np.count_nonzero(own):
            distinct[k] = True
            covered |= own
    return distinct


def color_name(pixels: np.ndarray, mask: np.ndarray, category: str) -> str:
    """The colour word of the object ``mask`` (H×W bool) of ``category`` in ``pixels`` (H×W×3 uint8 RGB): the colour of
    the category's palette (:data:`COLOR_PALETTES`) nearest to the median of its lit pixels (the brighter half, one
    pixel in from the outline: a gable roof's shaded side, a car's windscreen and the border with the ground left out).
    On the true masks of the first 200 synthetic validation scenes this names 2114 of 2129 roofs, cars, fields and
    ships as the generator painted them (their median colour: 2023)."""
    box = _box(mask)
    mask, pixels = mask[box], pixels[box]
    inner = ndimage.binary_erosion(mask)
    rgb = pixels[inner if inner.sum() >= 10 else mask].astype(np.float32)
    brightness = rgb.sum(axis=1)
    return _nearest_color(_palette(category), np.median(rgb[brightness >= np.median(brightness)], axis=0),
                          SHADE_RANGE if category in SHADED_CATEGORIES else (1.0, 1.0))


def _box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice]:
    """The rows and columns of ``mask``'s (H×W bool, not empty) bounding box with ``margin`` pixels around it (inside
    the image): with one, an erosion there gives what it gives on the whole mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def _palette(category: str) -> dict[str, tuple[int, int, int]]:
    """The colour words of ``category`` and their RGB; all the palettes' for a category without one."""
    return COLOR_PALETTES.get(category) or {w: rgb for palette in COLOR_PALETTES.values() for w, rgb in palette.items()}


def _category_color(word: str, category: str) -> str:
    """The word of ``category``'s palette that a sentence's colour ``word`` means: itself, or the nearest colour
    ("black" for a roof: "dark")."""
    palette = _palette(category)
    return word if word in palette else _nearest_color(palette, np.asarray(_palette("")[word], np.float32))


def _nearest_color(palette: dict[str, tuple[int, int, int]], rgb: np.ndarray,
                   shades: tuple[float, float] = (1.0, 1.0)) -> str:
    """The word of ``palette`` whose RGB, lit or shaded by the factor within ``shades`` that brings it nearest, is
    nearest to ``rgb`` (3 floats)."""
    return list(palette)[int(_nearest_colors(palette, np.asarray(rgb, np.float32)[None], shades)[0])]


def _nearest_colors(palette: dict[str, tuple[int, int, int]], rgb: np.ndarray,
                    shades: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The index in ``palette``'s words of the colour nearest to each colour of ``rgb`` (…×3 float32), as
    :func:`_nearest_color` names one (… int)."""
    colours = np.asarray(list(palette.values()), np.float32)  # K×3
    shade = np.clip(rgb @ colours.T / (colours ** 2).sum(axis=1), *shades)  # …×K
    return ((shade[..., None] * colours - rgb[..., None, :]) ** 2).sum(axis=-1).argmin(axis=-1)


def colour_split(objects: list[E.SceneObject], pixels: np.ndarray, category: str) -> list[E.SceneObject]:
    """``objects`` with each one whose pixels (``pixels``: H×W×3 uint8 RGB, averaged over
    :data:`COLOUR_SPLIT_WINDOW`² and each named by the palette colour nearest to it, lit or shaded as in
    :func:`color_name`) are of two or more colours, each of :data:`COLOUR_SPLIT_MIN_SHARE` of them or more, split into
    the regions of those colours (opened by a 3×3 square; those of :data:`MIN_OBJECT_PIXELS` or more): two fields side
    by side that the model's mask joins."""
    palette, shades = _palette(category), SHADE_RANGE if category in SHADED_CATEGORIES else (1.0, 1.0)
    out = []
    for o in objects:
        box = _box(o.mask)
        inside = o.mask[box]
        rgb = ndimage.uniform_filter(pixels[box].astype(np.float32), size=(COLOUR_SPLIT_WINDOW, COLOUR_SPLIT_WINDOW, 1))
        names = _nearest_colors(palette, rgb, shades)
        shares = np.bincount(names[inside], minlength=len(palette)) / inside.sum()
        colours = np.flatnonzero(shares >= COLOUR_SPLIT_MIN_SHARE)
        if len(colours) < 2:
            out.append(o)
            continue
        labels, count = np.zeros(inside.shape, np.int32), 0
        for k in colours:
            part = ndimage.binary_opening(inside & (names == k), structure=np.ones((3, 3), dtype=bool))
            part_labels, n = ndimage.label(part, structure=np.ones((3, 3), dtype=bool))
            labels[part_labels > 0] = part_labels[part_labels > 0] + count
            count += n
        sizes = np.bincount(labels.ravel())
        out += _labelled_objects(labels, np.flatnonzero(sizes[1:] >= MIN_OBJECT_PIXELS) + 1, category, o.mask.shape,
                                 origin=(box[0].start, box[1].start))
    return out


def shape_name(mask: np.ndarray) -> str:
    """The shape word of an outline (H×W bool): "L-shaped" when it fills less than :data:`L_SHAPE_FILL` of its
    smallest enclosing rectangle (any rotation, 2° steps) and less than :data:`L_SHAPE_SOLIDITY` of its convex hull,
    else "square" when that rectangle's sides differ by less than :data:`SQUARE_ASPECT` of the longer, else
    "rectangular"."""
    mask = mask[_box(mask)]
    area = int(mask.sum())
    hull = _convex_hull(mask)
    corners = hull.points[hull.vertices]  # a rectangle enclosing the hull's vertices encloses the outline
    best = None
    for angle in np.deg2rad(np.arange(0, 90, 2)):
        c, s = np.cos(angle), np.sin(angle)
        u, v = corners @ (c, s), corners @ (-s, c)
        sides = (u.max() - u.min(), v.max() - v.min())
        if best is None or sides[0] * sides[1] < best[0] * best[1]:
            best = sides
    fill = area / (best[0] * best[1])
    if fill < L_SHAPE_FILL and area / hull.volume < L_SHAPE_SOLIDITY:
        return "L-shaped"
    return "square" if abs(best[0] - best[1]) < SQUARE_ASPECT * max(best) else "rectangular"


def _convex_hull(mask: np.ndarray) -> ConvexHull:
    """The convex hull of ``mask``'s pixels (H×W bool, not empty) as squares: of their corners, (x, y) = (col, row)."""
    # each row's first and last pixel hold the hull's corners
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    rows, cols = np.concatenate([rows, rows]), np.concatenate([first, last])
    corners = (np.stack([cols, rows], axis=1)[:, None, :] + np.array([[0, 0], [1, 0], [0, 1], [1, 1]])).reshape(-1, 2)
    return ConvexHull(corners.astype(np.float64))


def choose(spec: SpatialSpec, objects: list[E.SceneObject], shape: tuple[int, int],
           anchors: list[E.SceneObject] = (), pixels: np.ndarray | None = None,
           whole: frozenset[str] = frozenset()) -> E.SceneObject | None:
    """The object ``spec`` means among ``objects`` (all of its category) in an image of ``shape`` (H, W), or None
    when the words cannot pick one: no object, a region or relation that leaves none or several (with no extreme or
    size to decide), fewer objects than a size rank needs, an anchor that is not one object (unless the target's own
    words leave one object: the relation then rules nothing out). Regions test the centroid
    with the generators' margin (an object on a border counts as inside); an extreme is the smallest or largest
    centroid coordinate, a size the area rank; "nearest" the smallest distance between the masks, the other relations
    the generators' rules (:func:`rrsis_engine.data.expressions.relation_tristate`, borderline counts). ``anchors``:
    the objects of the anchor's category (those of ``objects`` when it is the same). A colour keeps the objects of
    that colour in ``pixels`` (H×W×3 uint8 RGB, needed then; :func:`color_name`), a shape those of that outline
    (:func:`shape_name`; pieces under :data:`SHAPE_MIN_SHARE` of the median area left out). ``whole``: the
    :data:`ON_TOP_CATEGORIES` whose objects are whole objects (:func:`ships_on`), not the regions they lie in: their
    colour is read per object, as other categories' are."""
    objects = matching(spec, objects, shape, anchors, pixels, whole)
    if not objects:
        return None
    if spec.extreme is not None:
        return min(objects, key=E.EXTREME_KEYS[spec.extreme])
    if spec.size is not None:
        if len(objects) < spec.rank:
            return None
        return E.size_ranked(objects, spec.size)[spec.rank - 1]
    return objects[0] if len(objects) == 1 else None


def picked_candidate(pick: SpatialSpec, candidates: Sequence[np.ndarray], pixels: np.ndarray) -> np.ndarray | None:
    """The candidate region (H×W bool) a follow-up's words pick (:func:`parse_followup`: an extreme, a size or a colour
    of ``pick.category``) among ``candidates`` (H×W bool each: the regions outlined with the turn before), or None when
    they pick none of them (no candidate of that colour). pixels: H×W×3 uint8 RGB."""
    objects = [E.SceneObject(i, pick.category, np.asarray(m, bool)) for i, m in enumerate(candidates, start=1)]
    chosen = choose(pick, [o for o in objects if o.area], pixels.shape[:2], pixels=pixels)
    return None if chosen is None else chosen.mask


def matching(spec: SpatialSpec, objects: list[E.SceneObject], shape: tuple[int, int],
             anchors: list[E.SceneObject] = (), pixels: np.ndarray | None = None,
             whole: frozenset[str] = frozenset()) -> list[E.SceneObject]:
    """The objects of ``objects`` that ``spec``'s colour, shape, region and relation fit (:func:`choose`, before an
    extreme or size word picks one of them); none when a relation's anchor is not one object and the target's own
    words leave several."""
    if spec.category in COLOUR_SPLIT_CATEGORIES and pixels is not None:
        objects = colour_split(objects, pixels, spec.category)
    if spec.color is not None:
        if pixels is None:
            raise ValueError(f"choosing {spec.color!r} objects needs the image's pixels")
        color = _category_color(spec.color, spec.category)
        if spec.category in ON_TOP_CATEGORIES and spec.category not in whole:
            objects = colored_parts(objects, pixels, spec.category, color)
        else:
            objects = [o for o in objects if color_name(pixels, o.mask, spec.category) == color]
    if spec.shape is not None:
        smallest = SHAPE_MIN_SHARE * float(np.median([o.area for o in objects])) if objects else 0.0
        objects = [o for o in objects if o.area >= smallest and shape_name(o.mask) == spec.shape]
    if spec.region is not None:
        objects = [o for o in objects if E.region_tristate(o, spec.region, shape) is not False]
    if spec.relation is not None:
        related = _related(spec, objects, anchors, shape, pixels, whole)
        # an anchor the model's mask does not show as one object rules nothing out: the words about the target still
        # pick it when they leave one object (synthetic validation 135, "the cluster of trees next to the yellow crop
        # field", where the model's mask shows no one yellow field: 0.01 → 0.89)
        if related is not None:
            objects = related
        elif len(objects) != 1:
            return []
    return objects


def colored_parts(objects: list[E.SceneObject], pixels: np.ndarray, category: str,
                  color: str) -> list[E.SceneObject]:
    """The ``color`` objects of an :data:`ON_TOP_CATEGORIES` category, read pixel by pixel: the model's mask of "all the
    cars" is mostly the roads they stand on (synthetic test scene 114: one region, the roads), so a car's colour is not
    its region's. Within ``objects``' masks, the pixels of ``pixels`` (H×W×3 uint8 RGB) whose nearest colour of the
    category's palette is ``color``, at most :data:`PART_COLOR_DISTANCE` from it, opened by a 3×3 square (a lane's
    painted line is 1–2 pixels wide); their 8-connected regions of :data:`MIN_OBJECT_PIXELS` or more. The masks are
    widened by :data:`PART_MARGIN` of the image's longer side first: a car at a road's edge lies half outside."""
    if not objects:
        return []
    margin = max(1, int(round(PART_MARGIN * max(pixels.shape[:2]))))
    within = ndimage.binary_dilation(np.logical_or.reduce([o.mask for o in objects]), iterations=margin)
    box = _box(within)
    palette = _palette(category)
    words = list(palette)
    rgb = pixels[box].astype(np.float32)
    distance = np.linalg.norm(rgb[:, :, None, :] - np.asarray([palette[w] for w in words], np.float32), axis=-1)
    named = within[box] & (distance.argmin(axis=-1) == words.index(color)) & \
        (distance.min(axis=-1) <= PART_COLOR_DISTANCE)
    named = ndimage.binary_opening(named, structure=np.ones((3, 3), dtype=bool))
    labels, _ = ndimage.label(named, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())
    return _labelled_objects(labels, np.flatnonzero(sizes[1:] >= MIN_OBJECT_PIXELS) + 1,  # label 0: the background
                             category, within.shape, origin=(box[0].start, box[1].start))


def _related(spec: SpatialSpec, objects: list[E.SceneObject], anchors: list[E.SceneObject],
             shape: tuple[int, int], pixels: np.ndarray | None,
             whole: frozenset[str] = frozenset()) -> list[E.SceneObject] | None:
    """Of ``objects``, those in ``spec.relation`` to its anchor (the one object of ``anchors`` it means, :func:`choose`
    with ``whole``): the nearest one, or all that the relation's rule does not rule out; None when the anchor is not
    one object."""
    anchor = choose(spec.anchor, list(anchors), shape, pixels=pixels, whole=whole)
    if anchor is None:
        return None
    # not the anchor itself; another category's object may lie under it (the road a car stands on is the nearest)
    others = [o for o in objects if spec.anchor.category != spec.category or not (o.mask & anchor.mask).any()]
    cache: dict = {}
    if spec.relation == "nearest":
        return [min(others, key=lambda o: E.boundary_distance(anchor, o, cache))] if others else []
    return [o for o in others if E.relation_tristate(o, anchor, spec.relation, shape, cache) is not False]


def closed_water(water: np.ndarray, radius: float) -> np.ndarray:
    """``water`` (H×W bool) closed by a disk of ``radius`` pixels, H×W bool: a gap narrower than about the radius
    between a ship near the bank and the shore joins the water again, so that filling holes brings the ship inside.
    The array's border is replicated outward first, so the border itself opens nothing. Distances run on every
    step-th pixel (:func:`postprocess.distance_step`): a 1 024² closing by a disk of 20 pixels took 1.0 s with
    scipy's binary_closing, this 30 ms."""
    step = distance_step(water.shape)
    sub, r = water[::step, ::step], radius / step
    pad = int(np.ceil(r)) + 1
    grown = ndimage.distance_transform_edt(~np.pad(sub, pad, mode="edge")) <= r
    closed = (ndimage.distance_transform_edt(grown) > r)[pad:-pad, pad:-pad]
    return water | resample_nearest(closed, *water.shape)


def _region_medians(rgb: np.ndarray, regions: np.ndarray, n_regions: int, sampled: np.ndarray) -> np.ndarray:
    """(n_regions + 1)×3 float32: the median colour of ``rgb`` (h×w×3) over each region's ``sampled`` pixels (h×w
    bool), from every 4th pixel (a 1 024² lake: 86 ms from all of them); row 0 (no region) and empty regions are 0."""
    labels = (regions * sampled)[::4, ::4]
    medians = np.stack([ndimage.median(rgb[::4, ::4, c], labels, np.arange(1, n_regions + 1)) for c in range(3)],
                       axis=-1).reshape(-1, 3)
    return np.vstack([np.zeros((1, 3)), np.nan_to_num(medians)]).astype(np.float32)


def _contrast(rgb: np.ndarray, regions: np.ndarray, medians: np.ndarray, threshold: float) -> np.ndarray:
    """h×w bool: the pixels of ``rgb`` more than ``threshold`` (RGB distance) from their region's median colour."""
    difference = rgb - medians[regions]
    return np.einsum("ijk,ijk->ij", difference, difference) > threshold ** 2


def ships_on(water: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The ships on ``water`` (H×W bool, the model's mask of the :data:`SHIP_WATERS`), H×W bool. The model's mask of
    "all the ships" holds no ship on most scenes (0 of 16 on 40 validation scenes, ``scripts/diagnose_class_masks.py``),
    but a ship is a patch of another colour in the water. In each region of the water closed (:data:`SHIP_CLOSING`)
    with its holes filled, the pixels of ``pixels`` (H×W×3 uint8 RGB) more than :data:`SHIP_WATER_CONTRAST` from the
    region's median colour (the scenes' lighting shifts a white ship 50 from the palette's white; a wake is 60 from
    its water) and more than :data:`PART_MARGIN` of the image's side from the region's edge, closed by a 3×3 square
    (a shaded deck), holes filled; their 8-connected regions of :data:`MIN_OBJECT_PIXELS` to :data:`SHIP_MAX_SHARE`
    of the image."""
    ships = np.zeros(water.shape, dtype=bool)
    if not water.any():
        return ships
    filled = ndimage.binary_fill_holes(closed_water(water, SHIP_CLOSING * max(water.shape)))
    box = _box(filled)
    rgb = pixels[box].astype(np.float32)
    regions, n_regions = ndimage.label(filled[box])
    medians = _region_medians(rgb, regions, n_regions, water[box])
    square = np.ones((3, 3), dtype=bool)
    # not within PART_MARGIN of the filled water's edge: the model's water overshoots the shore by up to a cell there,
    # and that band of ground would join a ship near the shore into one large region
    margin = max(1, int(round(PART_MARGIN * max(pixels.shape[:2]))))
    offshore = ndimage.binary_erosion(regions > 0, iterations=margin)
    contrast = offshore & _contrast(rgb, regions, medians, SHIP_WATER_CONTRAST)
    near = ndimage.binary_fill_holes(ndimage.binary_closing(contrast, square)) & offshore
    labels, n = ndimage.label(near, structure=square)
    if n == 0:
        return ships
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = (sizes >= MIN_OBJECT_PIXELS) & (sizes <= SHIP_MAX_SHARE * water.size)
    keep[0] = False
    ships[box] = keep[labels]
    return ships


def cars_on(ground: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The cars on ``ground`` (H×W bool, the model's mask of the :data:`CAR_GROUNDS`), H×W bool: within the ground
    closed by :data:`CAR_CLOSING` with its holes filled and widened by :data:`PART_MARGIN` (a car at a road's edge lies
    half outside), the pixels of ``pixels`` (H×W×3 uint8 RGB) more than :data:`CAR_GROUND_CONTRAST` from their region's
    median ground colour (off the closed ground, also from the median colour there: not the verge), opened by a 3×3
    square (a painted lane line or parking bay is 1–2 pixels wide); their
    8-connected regions of :data:`MIN_OBJECT_PIXELS` to :data:`CAR_MAX_SHARE` of the image, at most
    :data:`CAR_MAX_LENGTH` of its longer side along either axis and with :data:`CAR_ON_GROUND_SHARE` of their pixels on
    the closed ground."""
    cars = np.zeros(ground.shape, dtype=bool)
    if not ground.any():
        return cars
    side = max(ground.shape)
    closed = ndimage.binary_fill_holes(closed_water(ground, CAR_CLOSING * side))
    margin = max(1, int(round(PART_MARGIN * side)))
    within = ndimage.binary_dilation(closed, iterations=margin)
    box = _box(within)
    rgb = pixels[box].astype(np.float32)
    regions, n_regions = ndimage.label(within[box])
    on = closed[box]
    # off the closed ground (the verge a car at the road's edge half stands on) a car differs from the verge too
    contrast = (regions > 0) & _contrast(rgb, regions, _region_medians(rgb, regions, n_regions, on), CAR_GROUND_CONTRAST)
    contrast &= on | _contrast(rgb, regions, _region_medians(rgb, regions, n_regions, ~on), CAR_GROUND_CONTRAST)
    square = np.ones((3, 3), dtype=bool)
    contrast = ndimage.binary_opening(contrast, square)
    labels, n = ndimage.label(contrast, structure=square)
    if n == 0:
        return cars
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    on_ground = np.bincount(labels[on], minlength=n + 1)
    keep = (sizes >= MIN_OBJECT_PIXELS) & (sizes <= CAR_MAX_SHARE * ground.size) & \
        (on_ground >= CAR_ON_GROUND_SHARE * sizes)
    for i, where in enumerate(ndimage.find_objects(labels), start=1):
        if keep[i] and max(s.stop - s.start for s in where) > CAR_MAX_LENGTH * side:
            keep[i] = False
    keep[0] = False
    cars[box] = keep[labels]
    return cars


def car_parks_on(ground: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The car parks beside the roads in ``ground`` (H×W bool, the model's mask of the :data:`CAR_GROUNDS`), H×W bool:
    the ground closed by :data:`CAR_CLOSING` with its holes filled (the cars), less the roads' straight strips
    (:func:`_split_into_lines`, whatever share they explain); of what is left, the 8-connected regions of at least
    :data:`PARK_MIN_SHARE` of the image, :data:`PARK_SOLIDITY` of their convex hull and at most
    :data:`PARK_MAX_LENGTH` of the image's longer side along either axis (a curved road's unexplained stretch is longer
    or hollow), less the cars parked on them (:func:`cars_on` on ``pixels``, H×W×3 uint8 RGB: a car is its own
    object, not the car park's; they were 15–25 % of the car parks' pixels shown on synthetic test 092 and 103)."""
    parks = np.zeros(ground.shape, dtype=bool)
    if not ground.any():
        return parks
    side = max(ground.shape)
    closed = ndimage.binary_fill_holes(closed_water(ground, CAR_CLOSING * side))
    labels, n = ndimage.label(closed, structure=np.ones((3, 3), dtype=bool))
    split, _, _ = _split_into_lines(closed, labels, n, max_unexplained=1.0)
    for i, where in enumerate(ndimage.find_objects(split), start=1):
        if where is None:
            continue
        region = split[where] == i
        area = int(region.sum())
        if area < PARK_MIN_SHARE * ground.size or max(region.shape) > PARK_MAX_LENGTH * side or \
                area < PARK_SOLIDITY * _convex_hull(region).volume:
            continue
        parks[where] |= region
    if not parks.any():
        return parks
    # the strips' margin beyond the road's edge (LINE_BAND_PIXELS) is the car park's where it meets the road
    parks = ndimage.binary_dilation(parks, iterations=int(np.ceil(LINE_BAND_PIXELS))) & closed
    return parks & ~cars_on(ground, pixels)


def completed_objects(objects: list[E.SceneObject], smooth: np.ndarray,
                      regions: MutableMapping | None = None) -> list[E.SceneObject]:
    """``objects`` (those of a :data:`COMPLETED_CATEGORIES` category's mask, :func:`objects_in`) each grown to the
    colour region it lies on in ``smooth`` (H×W×3, :func:`click_regions.smoothed` of the image;
    :func:`_colour_region_of`) where that region is much larger than the object but not than the largest object, set
    off from its surroundings and solid (:data:`COMPLETION_MIN_GROWTH`, :data:`COMPLETION_MAX_SIZE`,
    :data:`COMPLETION_MIN_CONTRAST`, :data:`COMPLETION_MIN_SOLIDITY`); objects grown into one another are one. A roof
    the model covers in one corner is one whole roof for its size, centroid and colour (synthetic validation 140, "the
    westernmost structure": the model's mask held a tenth of it, and a speck further west). Objects, not the mask, are
    grown: the specks are left out before (a roof grown to twice the largest the model saw made a small roof a
    speck). ``regions``: where each object's colour region in this ``smooth`` is kept for the next call (by its box and
    pixels), or None."""
    if not objects:
        return objects
    largest = max(o.area for o in objects)
    masks = []
    for o in sorted(objects, key=lambda o: -o.area):
        if regions is None:
            found = _colour_region_of(o, smooth)
        else:
            cache_key = (o.bbox, np.packbits(o.mask[_box(o.mask, margin=0)]).tobytes())
            if cache_key not in regions:
                regions[cache_key] = _colour_region_of(o, smooth)
            found = regions[cache_key]
        grown = o.mask
        if found is not None:
            window, region, contrast = found
            size = int(region.sum())
            solid = size >= COMPLETION_MIN_SOLIDITY * _convex_hull(region).volume
            if COMPLETION_MIN_GROWTH * o.area <= size <= COMPLETION_MAX_SIZE * largest and \
                    contrast >= COMPLETION_MIN_CONTRAST and solid:
                grown = o.mask.copy()
                grown[window] |= region
        for k, other in enumerate(masks):
            if (other & grown).any():
                masks[k] = other | grown
                break
        else:
            masks.append(grown)
    category = objects[0].category
    return [E.SceneObject(i, category, mask) for i, mask in enumerate(masks, start=1)]


def _colour_region_of(thing: E.SceneObject, smooth: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray, float] | None:
    """The colour region in ``smooth`` (H×W×3) of the object ``thing``: the pixels within a tolerance of its colour
    (:data:`COMPLETION_MAX_SPREAD`, :data:`COMPLETION_TOLERANCE`), 4-connected to most of its core, with the object
    and the region's holes. It is looked for in a window around the object (:data:`COMPLETION_WINDOW`), and in one
    twice as wide where it reaches the window's border inside the image. Returns the window's rows and columns, the
    region there (h×w bool) and the median colour distance of the two pixels around it from the object's colour; or
    None: the object's colours spread too much, or the region reaches the wider window's border too (the ground, not
    a roof)."""
    height, width = thing.mask.shape
    x0, y0, x1, y1 = thing.bbox
    reach = max(x1 - x0, y1 - y0, COMPLETION_WINDOW * max(height, width))
    for margin in (int(round(reach)), int(round(2 * reach))):
        window = (slice(max(y0 - margin, 0), min(y1 + margin, height)),
                  slice(max(x0 - margin, 0), min(x1 + margin, width)))
        piece = thing.mask[window]
        colours = smooth[window].astype(np.float32)
        core = ndimage.binary_erosion(piece, iterations=2)
        if core.sum() < MIN_OBJECT_PIXELS:
            core = piece
        colour = np.median(colours[core], axis=0)
        spread = float(np.sqrt(((colours[core] - colour) ** 2).sum(axis=1).mean()))
        if spread > COMPLETION_MAX_SPREAD:
            return None
        tolerance = float(np.clip(COMPLETION_TOLERANCE * spread, COMPLETION_TOLERANCE_MIN, COMPLETION_TOLERANCE_MAX))
        parts, _ = ndimage.label(((colours - colour) ** 2).sum(axis=2) <= tolerance ** 2)
        on_core = parts[core]
        if not on_core.any():
            return None
        region = parts == np.bincount(on_core[on_core > 0]).argmax()
        inner_border = np.zeros_like(region)  # the window's border where it lies inside the image
        inner_border[0, :], inner_border[-1, :] = window[0].start > 0, window[0].stop < height
        inner_border[:, 0] |= window[1].start > 0
        inner_border[:, -1] |= window[1].stop < width
        if not (region & inner_border).any():
            hole_labels, _ = holes(region)
            region |= (hole_labels > 0) | piece
            ring = ndimage.binary_dilation(region, iterations=2) & ~region
            contrast = float(np.median(np.linalg.norm(colours[ring] - colour, axis=1))) if ring.any() else 0.0
            return window, region, contrast
    return None


def read_off(category: str, ground: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The objects of ``category`` (a key of :data:`READ_OFF_GROUNDS`) read off ``ground`` (H×W bool, the model's mask
    of that category's grounds) in ``pixels`` (H×W×3 uint8 RGB), H×W bool: :func:`ships_on`, :func:`cars_on` or
    :func:`car_parks_on`."""
    return {"ship": ships_on, "car": cars_on, "parking": car_parks_on}[category](ground, pixels)


def resolve(spec: SpatialSpec, category_masks: dict[str, np.ndarray], pixels: np.ndarray,
            whole: frozenset[str] = frozenset(), smooth: np.ndarray | None = None) -> np.ndarray | None:
    """The pixels of the object ``spec`` means, H×W bool (within ``category_masks[spec.category]``, but for a roof
    completed beyond it), or None (:func:`choose`). category_masks: the model's mask of every object of each category
    in ``spec.categories`` (for ships, those :func:`ships_on` read off the water); pixels: the image, H×W×3 uint8 RGB;
    whole: as :func:`choose`; smooth: the image through :func:`click_regions.smoothed` (H×W×3), to complete the
    objects of :data:`COMPLETED_CATEGORIES` (:func:`completed_objects`), or None."""
    objects, anchors = _objects_and_anchors(spec, category_masks, pixels, smooth)
    found = choose(spec, objects, category_masks[spec.category].shape, anchors, pixels, whole)
    return None if found is None else found.mask


def look_alikes(spec: SpatialSpec, category_masks: dict[str, np.ndarray], pixels: np.ndarray,
                whole: frozenset[str] = frozenset(), smooth: np.ndarray | None = None) -> list[np.ndarray]:
    """The objects (H×W bool each) that ``spec``'s words fit when they leave several and have no extreme or size word
    to pick one (:func:`matching`; the arguments as :func:`resolve`'s); [] otherwise."""
    if spec.extreme is not None or spec.size is not None:
        return []
    objects, anchors = _objects_and_anchors(spec, category_masks, pixels, smooth)
    found = matching(spec, objects, category_masks[spec.category].shape, anchors, pixels, whole)
    return [o.mask for o in found] if len(found) > 1 else []


def _objects_and_anchors(spec: SpatialSpec, category_masks: dict[str, np.ndarray], pixels: np.ndarray,
                         smooth: np.ndarray | None) -> tuple[list[E.SceneObject], list[E.SceneObject]]:
    """The objects of ``spec``'s category and of its anchor's (none without an anchor) in their masks
    (:func:`_joined_objects`)."""
    objects = _joined_objects(category_masks[spec.category], spec.category, pixels, smooth)
    anchors = [] if spec.anchor is None else \
        _joined_objects(category_masks[spec.anchor.category], spec.anchor.category, pixels, smooth)
    return objects, anchors


def _joined_objects(mask: np.ndarray, category: str, pixels: np.ndarray,
                    smooth: np.ndarray | None = None) -> list[E.SceneObject]:
    """The objects of a category's mask (H×W bool) with the pieces a road cuts joined (:func:`object_groups`; pixels:
    H×W×3 uint8 RGB): a field a road crosses is one field for its size, centroid and distance, not two smaller ones.
    The objects are built once and joined there (:func:`_joined_pieces`), not rebuilt from ``object_groups``' masks: a
    mask of more than :data:`MAX_JOINED_PIECES` objects (an untrained model's speckle) joins nothing, and rebuilding
    1 000 pieces of a 1 024² mask took 3 s. With ``smooth`` (H×W×3, :func:`click_regions.smoothed`), the objects of
    :data:`COMPLETED_CATEGORIES` are completed first (:func:`completed_objects`)."""
    objects = objects_in(mask, category)
    if len(objects) > MAX_JOINED_PIECES:
        return objects
    if smooth is not None and category in COMPLETED_CATEGORIES:
        objects = completed_objects(objects, smooth)
    return [E.SceneObject(i, category, group)
            for i, group in enumerate(_joined_pieces(objects, pixels, mask.shape), start=1)]


def one_category_a_pixel(masks: dict[str, np.ndarray], logits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's masks of several categories (H×W bool each) with each pixel left in one: the category whose
    ``logits`` (H×W each, the model's for the category's sentence) are highest there. A brown roof the field query also
    found is a building, not a second brown field (synthetic test scene 81: "the grey roof nearest to the brown field"
    had two brown fields). :data:`ON_TOP_CATEGORIES` keep their masks and take no pixel from the others."""
    ground = [category for category in masks if category not in ON_TOP_CATEGORIES]
    if len(ground) < 2:
        return masks
    winner = np.argmax(np.stack([logits[category] for category in ground]), axis=0)
    return {**masks, **{category: masks[category] & (winner == i) for i, category in enumerate(ground)}}


def other_objects(mask: np.ndarray, category: str, chosen: np.ndarray, positive_clicks: np.ndarray) -> np.ndarray:
    """In a later turn on the object a spatial sentence chose, the pixels of ``mask`` (H×W bool, that turn's) that
    belong to the category's other objects (:func:`objects_in`, specks included): those touching neither ``chosen``
    (H×W bool, the previous turn's mask; a road: with :data:`ROAD_TOUCH_SHARE` of it) nor a positive click (N×2 x, y
    pixels), less the pixels of ``chosen`` (a crossing stays with the chosen road), H×W bool. A positive click on a
    crossing of the chosen road (within its strip and another's, :func:`_split_into_lines`) adds the crossing, not the
    other road (synthetic validation scene 158 and test scene 57: the chosen road without its crossing, the
    standard click there brought in the crossing road, 0.80 → 0.62 and 0.87 → 0.41)."""
    labels, kept, second = _object_labels(mask, category)
    rows, cols = point_pixels(positive_clicks, mask.shape)
    on_mask = mask[rows, cols]
    touched = np.unique(labels[chosen & mask])
    if category in STRAIGHT_CATEGORIES:
        on_chosen = ndimage.sum(chosen & mask, labels, touched) / np.maximum(ndimage.sum(mask, labels, touched), 1)
        touched = touched[on_chosen >= ROAD_TOUCH_SHARE]
    on_crossing = np.isin(second[rows, cols], touched)
    clicked = labels[rows, cols][on_mask & ~on_crossing]
    keep = np.intersect1d(kept, np.union1d(touched, clicked))
    return mask & ~chosen & ~np.isin(labels, keep) & ~np.isin(second, keep)


def picks_another_object(mask: np.ndarray, category: str, chosen: np.ndarray, click: np.ndarray,
                         pixels: np.ndarray) -> bool:
    """Whether a positive click at ``click`` ((x, y) image pixels) lies on an object of ``category`` in ``mask`` (H×W
    bool, the click turn's; :func:`object_groups` in ``pixels``, H×W×3 uint8 RGB) more than :data:`MAX_CUT_WIDTH` of
    the image's longer side from ``chosen`` (H×W bool, the object shown before it): for a sentence about one object,
    the labeller picked another look-alike ("the largest yellow field": not that one, this one). Nearer, it may be
    more of the object shown: a field cut twice whose pieces object_groups did not join (synthetic test "find the
    leftmost farm plot", 14 pixels apart: one click 0.70 → 0.47 when swapped; the validation swaps were 24–158
    pixels apart). So is a clump of trees beside the grove shown (validation "the largest cluster of trees": 0.91 →
    0.07 had it been read as another grove); one farther off is another grove (validation 110 "the smallest grove":
    one click 0.62 → 0.97, when groves were never swapped). Never for roads and rivers, whose pieces the model's mask
    does not tell from separate objects: a road's lines are the Hough split's guess (:func:`_split_into_lines`)."""
    if category in STRAIGHT_CATEGORIES or category in SINGLE_OBJECT_CATEGORIES:
        return False
    rows, cols = point_pixels(np.reshape(click, (1, 2)), mask.shape)
    if not mask[rows[0], cols[0]]:
        return False
    for group in object_groups(mask, category, pixels):
        if group[rows[0], cols[0]]:
            # the pixels between the two, read in the clicked object's box grown by the limit (a 1 024² EDT: 80 ms)
            limit = MAX_CUT_WIDTH * max(mask.shape)
            box = _box(group, margin=int(np.ceil(limit)) + 1)
            near = chosen[box]
            return not near.any() or float(ndimage.distance_transform_edt(~near)[group[box]].min()) > limit
    return False


def object_groups(mask: np.ndarray, category: str, pixels: np.ndarray) -> list[np.ndarray]:
    """The objects of a category's mask (H×W bool) as :func:`objects_in` finds them, with the pieces of one object a
    road cuts joined: two within :data:`MAX_CUT_WIDTH` of each other that fill :data:`SAME_OBJECT_FILL` of their joint
    convex hull and whose colours in ``pixels`` (H×W×3 uint8 RGB) are within :data:`SAME_OBJECT_COLOR` (a field cut
    by two roads joins piece by piece). A list of H×W bool masks, the largest object's first piece first."""
    objects = objects_in(mask, category)
    if len(objects) > MAX_JOINED_PIECES:
        return [o.mask for o in sorted(objects, key=lambda o: -o.area)]
    return _joined_pieces(objects, pixels, mask.shape)


def _joined_pieces(objects: list[E.SceneObject], pixels: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """:func:`object_groups` for the objects of one category's mask in an image of ``shape`` (H, W)."""
    objects = sorted(objects, key=lambda o: -o.area)
    if len(objects) < 2:  # nothing to join (a lake over half the image: its median colour alone took 30 ms)
        return [o.mask for o in objects]
    gap = MAX_CUT_WIDTH * max(shape)
    # (mask, box, area, hull corners (x, y)): the joint hull of two pieces is the hull of their hulls' corners
    pieces = []
    for o in objects:  # read in the object's box (as _box: one pixel around it), not the whole image
        x0, y0, x1, y1 = o.bbox
        box = (slice(max(y0 - 1, 0), y1 + 1), slice(max(x0 - 1, 0), x1 + 1))
        pieces.append((o.mask, o.bbox, o.area, _hull_corners(o.mask, box),
                       np.median(pixels[box][o.mask[box]], axis=0)))
    groups = []
    while pieces:
        group, box, area, corners, color = pieces.pop(0)
        joined = True
        while joined:  # the pieces joined in the last round may join more
            joined, rest = False, []
            for piece in pieces:
                piece_mask, piece_box, piece_area, piece_corners, piece_color = piece
                near = _boxes_within(box, piece_box, gap) and \
                    float(np.linalg.norm(piece_color - color)) <= SAME_OBJECT_COLOR
                hull = ConvexHull(np.concatenate([corners, piece_corners])) if near else None
                if hull is not None and area + piece_area >= SAME_OBJECT_FILL * hull.volume:
                    group, area, corners = group | piece_mask, area + piece_area, hull.points[hull.vertices]
                    box = (min(box[0], piece_box[0]), min(box[1], piece_box[1]), max(box[2], piece_box[2]),
                           max(box[3], piece_box[3]))
                    joined = True
                else:
                    rest.append(piece)
            pieces = rest
        groups.append(group)
    return groups


def _hull_corners(mask: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """The corners (x, y) = (col, row) image pixels of the convex hull of ``mask`` (H×W bool, not empty; its pixels
    within ``box``, rows and columns), K×2 float."""
    hull = _convex_hull(mask[box])
    return hull.points[hull.vertices] + (box[1].start, box[0].start)


def _boxes_within(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: float) -> bool:
    """Whether boxes ``a`` and ``b`` ((x0, y0, x1, y1) pixels) are at most ``gap`` pixels apart along x and along y."""
    return max(a[0] - b[2], b[0] - a[2]) <= gap and max(a[1] - b[3], b[1] - a[3]) <= gap


def unclicked_objects(mask: np.ndarray, category: str, positive_clicks: np.ndarray, pixels: np.ndarray,
                      previous: np.ndarray | None = None) -> np.ndarray:
    """For a sentence about one object of ``category`` whose words did not pick it, in a turn with positive clicks
    (N×2 x, y pixels): the pixels of ``mask`` (H×W bool, that turn's) outside the objects (:func:`object_groups` in
    ``pixels``, H×W×3 uint8 RGB) the clicks lie on — the look-alikes the labeller did not pick, and specks — H×W bool;
    nothing when no click lies on an object (the model's mask missed the clicked place: nothing tells which object is
    meant). A click on the crossing of two roads (:func:`_split_into_lines`) lies on both; given the mask shown before
    the turn (``previous``, H×W bool), on the one of them it showed (:data:`ROAD_TOUCH_SHARE`), if it showed one: a
    click on the crossing the road shown left out adds the crossing, not the other road (synthetic validation 248,
    "the road": one click 0.90 → 0.01 when the crossing road replaced it)."""
    rows, cols = point_pixels(positive_clicks, mask.shape)
    groups = object_groups(mask, category, pixels)
    picked, second = [], None
    for row, col in zip(rows, cols, strict=True):
        on = [g for g in groups if g[row, col]]
        if not on and mask[row, col] and groups:
            on = _piece_beside(mask, groups, row, col)
        if on and category in STRAIGHT_CATEGORIES:
            if second is None:
                labels, _, second = _object_labels(mask, category)
            if second[row, col]:  # a crossing: both lines, or the one shown before
                on = [g for g in groups if g[labels == labels[row, col]].any() or g[labels == second[row, col]].any()]
                if previous is not None:
                    on = [g for g in on if np.count_nonzero(g & previous) >= ROAD_TOUCH_SHARE * np.count_nonzero(g)] or on
        picked += on
    if not picked:
        return np.zeros_like(mask)
    kept = np.logical_or.reduce(picked)
    if second is not None:  # the crossings of the roads kept stay with them
        lines = np.unique(labels[kept])
        kept |= np.isin(second, lines[lines > 0])
    return mask & ~kept


def _piece_beside(mask: np.ndarray, groups: list[np.ndarray], row: int, col: int) -> list[np.ndarray]:
    """For a click at pixel (row, col) on a piece of ``mask`` (H×W bool) too small to be an object of its own (a
    field's sliver across a road), that piece (8-connected) and the nearest of ``groups`` (H×W bool objects) when it
    lies within :data:`MAX_CUT_WIDTH` of the image's longer side of the piece: the piece is more of it (synthetic
    validation 272 "the crop field": a click on its sliver across a road had left every field in the mask, 0.96 →
    0.51); none when no object is that near (nothing then tells which object the click means)."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    piece = labels == labels[row, col]
    limit = MAX_CUT_WIDTH * max(mask.shape)
    box = _box(piece, margin=int(np.ceil(limit)) + 1)
    gap = ndimage.distance_transform_edt(~piece[box])
    gaps = [float(gap[g[box]].min()) if g[box].any() else np.inf for g in groups]
    nearest = int(np.argmin(gaps))
    return [piece, groups[nearest]] if gaps[nearest] <= limit else []


def ranked_objects(mask: np.ndarray, category: str, logits: np.ndarray, negative_clicks: np.ndarray,
                   pixels: np.ndarray, removed: np.ndarray | None = None) -> list[np.ndarray]:
    """The objects of ``category`` that ``mask`` (H×W bool, a turn's shown mask) holds (:func:`object_groups` in
    ``pixels``, H×W×3 uint8 RGB), none of which a negative click (N×2 x, y pixels) lies on, likeliest first: highest
    mean probability σ(``logits``) (H×W), then area — their pixels, H×W bool each; none when the mask holds fewer than
    two objects (besides what is left of rejected ones) or every one is negated. removed: the pixels (H×W bool) the negative
    clicks took out of the turn's mask; an object of ``mask | removed`` a negative click lies on that lost more than
    :data:`REJECTED_SHARE` of its pixels that way was rejected, and what is left of it (a grove's other clumps, a
    field's piece across a road) is no object of its own; one that lost less was trimmed and stays."""
    rows, cols = point_pixels(negative_clicks, mask.shape)
    rejected = []
    if removed is not None and removed.any() and len(rows):
        rejected = [g for g in object_groups(mask | removed, category, pixels)
                    if g[rows, cols].any() and np.count_nonzero(g & removed) > REJECTED_SHARE * np.count_nonzero(g)]
        if rejected:
            mask = mask & ~np.logical_or.reduce(rejected)
    groups = object_groups(mask, category, pixels)
    if len(groups) < (1 if rejected else 2):  # one object and what is left of a rejected one: that object alone
        return []
    open_groups = [g for g in groups if not g[rows, cols].any()]
    return sorted(open_groups, key=lambda g: (float(sigmoid(logits[g]).mean()), int(g.sum())), reverse=True)


def confirmation_click(look_alike: np.ndarray) -> tuple[float, float, int]:
    """"Is it this one?" about the look-alike (H×W bool, not empty; :func:`ranked_objects`' first) a sentence about
    one object shows alone after negative clicks: a positive click (x, y, 1) at its interior point, which keeps it alone
    (:func:`unclicked_objects`)."""
    box = _box(look_alike)
    x, y = interior_point(look_alike[box])
    return float(x + box[1].start), float(y + box[0].start), 1
