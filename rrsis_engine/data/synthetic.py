"""Seeded synthetic overhead scenes with referring expressions and dialogue follow-ups.

Every scene is drawn with numpy/scikit-image from one integer seed: textured ground, fields, a lake or
a river, roads with lane markings, buildings with coloured roofs and cast shadows, pools, tree clumps,
cars, ships and small clutter, at a random ground scale and orientation. Each sample picks a target
and a referring expression of one kind (category, attribute, position, relation, ordinal, class,
ambiguous); the geometric uniqueness of every claim is checked by :mod:`rrsis_engine.data.expressions`.

Frames: images are H×W×3 uint8 and masks H×W bool, indexed [row, col]; positions are (x, y) = (col, row).
Splits come from disjoint seed ranges (:data:`SPLIT_OFFSETS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.draw import disk, polygon

from rrsis_engine.data.expressions import (
    DIRECTION_VECTORS,
    EXTREME_WORDS,
    NOUNS,
    REDIRECT_MARGIN,
    REGION_WORDS,
    SEMANTIC_CLASSES,
    Match,
    SceneObject,
    SpecError,
    distractors,
    realize,
    resolve,
    union_mask,
)
from rrsis_engine.errors import DataError

SPLIT_OFFSETS = {"train": 0, "val": 1_000_000_000, "test": 2_000_000_000}
KINDS = ("category", "attribute", "position", "relation", "ordinal", "class", "ambiguous")
KIND_WEIGHTS = np.array([0.10, 0.18, 0.16, 0.18, 0.10, 0.10, 0.18])
#: smallest referable target, as a fraction of the image area (≈ 315 px at 512², 80 px at 256²)
MIN_TARGET_FRAC = 0.0012
#: the small objects the model found least (``rrsis train --source small``): expressions about them only
SMALL_CATEGORIES = ("ship", "car", "pool", "parking")
#: expression kinds of a focused sampler (:class:`ExpressionSampler` ``focus``): class sentences first — the engine
#: reads every spatial sentence from the model's mask of the whole category (``spatial_language.class_query``)
FOCUS_KIND_WEIGHTS = np.array([0.15, 0.20, 0.10, 0.15, 0.0, 0.40, 0.0])

ROOF_COLORS = {
    "red": (172, 64, 52),
    "orange": (205, 128, 70),
    "grey": (138, 138, 134),
    "white": (226, 226, 220),
    "blue": (72, 104, 160),
    "brown": (128, 92, 62),
    "dark": (64, 64, 70),
    "green": (84, 122, 88),
}
CAR_COLORS = {
    "white": (232, 232, 228),
    "black": (30, 30, 34),
    "red": (180, 40, 40),
    "blue": (50, 80, 170),
    "silver": (170, 172, 176),
    "yellow": (220, 190, 50),
}
FIELD_COLORS = {"green": (96, 140, 62), "yellow": (198, 178, 96), "brown": (140, 108, 72)}
SHIP_COLORS = {"white": (236, 236, 232), "grey": (150, 150, 155), "red": (170, 60, 50)}
GROUNDS = [(196, 180, 132), (150, 148, 104), (116, 132, 84), (150, 150, 140), (176, 158, 120), (140, 128, 100)]


@dataclass
class SyntheticSample:
    """One scene + one referring expression (and maybe a follow-up turn).

    image: H×W×3 uint8. mask: H×W bool target. objects: all referable objects of the scene.
    spec: the structured meaning of ``expression``. followup_mask: H×W bool or None.
    extra["candidates_mask"]: for an ambiguous expression, H×W bool union of every object it matches.
    extra["distractors_mask"]: H×W bool, objects of the target's category the expression rules out.
    """

    id: str
    seed: int
    image: np.ndarray
    mask: np.ndarray
    expression: str
    kind: str
    ambiguous: bool
    objects: list[SceneObject]
    spec: dict
    target_ids: list[int]
    followup: str | None = None
    followup_mask: np.ndarray | None = None
    followup_kind: str | None = None
    extra: dict = field(default_factory=dict)

    def to_record(self, semantic: bool = True) -> dict:
        """The dict every data source yields (see rrsis_engine.data); ``semantic=False`` leaves out the category
        map (``None``), e.g. for the second and later expressions about one scene."""
        return {
            "id": self.id,
            "image": self.image,
            "mask": self.mask,
            "expression": self.expression,
            "ambiguous": self.ambiguous,
            "followup": self.followup,
            "followup_mask": self.followup_mask,
            "kind": self.kind,
            "semantic": self.semantic_map() if semantic else None,
            "candidates_mask": self.extra.get("candidates_mask"),
            "distractors_mask": self.extra.get("distractors_mask"),
        }

    def semantic_map(self) -> np.ndarray:
        """H×W uint8: the index in :data:`SEMANTIC_CLASSES` of the category of every object pixel, 0 elsewhere
        (dense supervision for training, ``rrsis train --aux-semantic``)."""
        out = np.zeros(self.image.shape[:2], dtype=np.uint8)
        for o in self.objects:
            out[o.mask] = SEMANTIC_CLASSES.index(o.category)
        return out


# ---- drawing helpers -----------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """size×size float32 value noise in [0, 1] with about ``cells`` features per side."""
    cells = max(2, cells)
    small = rng.random((cells + 1, cells + 1)).astype(np.float32)
    big = ndimage.zoom(small, size / cells, order=1, prefilter=False)
    return big[:size, :size]


def _rect_poly(cx, cy, w, h, angle):
    """Corners (rows, cols) of a w×h rectangle centred at (cx, cy), rotated by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    xs = [cx + px * c - py * s for px, py in pts]
    ys = [cy + px * s + py * c for px, py in pts]
    return np.array(ys), np.array(xs)


def _local_poly(cx, cy, pts, angle):
    """Rotate local (x, y) points by ``angle`` and translate to (cx, cy); returns (rows, cols)."""
    c, s = math.cos(angle), math.sin(angle)
    pts = np.asarray(pts, dtype=np.float64)
    xs = cx + pts[:, 0] * c - pts[:, 1] * s
    ys = cy + pts[:, 0] * s + pts[:, 1] * c
    return ys, xs


class _Canvas:
    """Float RGB image plus an owner map (object id per pixel, -1 = ground)."""

    def __init__(self, size: int):
        self.size = size
        self.img = np.zeros((size, size, 3), np.float32)
        self.owner = np.full((size, size), -1, np.int32)
        self.cat_of: dict[int, str] = {}

    def pixels(self, rows, cols):
        return polygon(rows, cols, shape=(self.size, self.size))

    def free(self, rr, cc, blocked: set[str] | None = None) -> bool:
        """True when none of the pixels belongs to an object (of a ``blocked`` category if given)."""
        own = self.owner[rr, cc]
        if blocked is None:
            return bool((own < 0).all())
        ids = np.unique(own[own >= 0])
        return not any(self.cat_of[int(i)] in blocked for i in ids)

    def paint(self, rr, cc, color, oid: int | None = None, jitter: float = 0.0, rng=None):
        col = np.asarray(color, np.float32)
        if jitter and rng is not None:
            self.img[rr, cc] = col + rng.normal(0, jitter, (len(rr), 3)).astype(np.float32)
        else:
            self.img[rr, cc] = col
        if oid is not None:
            self.owner[rr, cc] = oid

    def shade(self, rr, cc, factor: float, only_ground: bool = True):
        if only_ground:
            keep = self.owner[rr, cc] < 0
            keep |= np.isin(self.owner[rr, cc], [i for i, c in self.cat_of.items() if c in ("field", "road", "parking")])
            rr, cc = rr[keep], cc[keep]
        self.img[rr, cc] *= factor


# ---- the scene generator -------------------------------------------------------------------------
class SceneGenerator:
    """Draws one scene. ``size``: side in pixels; content scales with it (designed at 512)."""

    def __init__(self, size: int = 512):
        if size < 64:
            raise DataError(f"scene_size {size} is too small: use at least 64 pixels (default 512).")
        self.size = size

    def generate(self, seed: int) -> tuple[np.ndarray, list[SceneObject]]:
        rng = np.random.default_rng(seed)
        S = self.size
        k = S / 512.0 * rng.uniform(0.75, 1.3)  # pixels per "design pixel": scale varies per scene
        cv = _Canvas(S)
        objects_meta: list[dict] = []

        def new_id(cat: str, **meta) -> int:
            oid = len(objects_meta)
            objects_meta.append({"category": cat, **meta})
            cv.cat_of[oid] = cat
            return oid

        self._ground(cv, rng)
        urban = rng.random() < 0.7
        sun = rng.uniform(0, 2 * math.pi)
        shadow_dir = (math.cos(sun), math.sin(sun))
        if not urban or rng.random() < 0.4:
            self._fields(cv, rng, k, new_id, n=int(rng.integers(1, 5)))
        water_kind = rng.choice(["lake", "river", "none"], p=[0.45, 0.2, 0.35])
        if water_kind == "lake":
            for _ in range(int(rng.integers(1, 3))):
                self._lake(cv, rng, k, new_id)
        elif water_kind == "river":
            self._river(cv, rng, k, new_id)
        road_angles = self._roads(cv, rng, k, new_id, n=int(rng.integers(1 if urban else 0, 4)))
        if urban and road_angles and rng.random() < 0.5:
            self._parking(cv, rng, k, new_id, road_angles)
        nb = int(rng.integers(4, 13)) if urban else int(rng.integers(0, 4))
        self._buildings(cv, rng, k, new_id, nb, road_angles, shadow_dir)
        self._trees(cv, rng, k, new_id, n=int(rng.integers(1, 7)), shadow_dir=shadow_dir)
        self._cars(cv, rng, k, new_id, road_angles, shadow_dir)
        self._ships(cv, rng, k, new_id)
        self._clutter(cv, rng, k)
        image = self._finish(cv, rng)
        objects = []
        for oid, meta in enumerate(objects_meta):
            m = cv.owner == oid
            if not m.any():
                continue
            objects.append(
                SceneObject(oid, meta["category"], m, color=meta.get("color"), shape=meta.get("shape"))
            )
        return image, objects

    # -- layers --
    def _ground(self, cv, rng):
        S = cv.size
        base = np.asarray(GROUNDS[int(rng.integers(len(GROUNDS)))], np.float32) * rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3)
        low = _smooth_noise(rng, S, 4)
        mid = _smooth_noise(rng, S, 16)
        tone = 0.82 + 0.22 * low + 0.12 * mid
        cv.img[:] = base[None, None, :] * tone[..., None]
        # second soil colour in patches
        patch = _smooth_noise(rng, S, 6) > 0.62
        alt = np.asarray(GROUNDS[int(rng.integers(len(GROUNDS)))], np.float32)
        cv.img[patch] = 0.5 * cv.img[patch] + 0.5 * alt * tone[patch][:, None]
        cv.img += rng.normal(0, 7.0, cv.img.shape).astype(np.float32)

    def _fields(self, cv, rng, k, new_id, n):
        S = cv.size
        angle = rng.uniform(0, math.pi)
        for _ in range(n):
            for _try in range(10):
                w, h = rng.uniform(90, 220) * k, rng.uniform(70, 180) * k
                cx, cy = rng.uniform(0, S), rng.uniform(0, S)
                rr, cc = cv.pixels(*_rect_poly(cx, cy, w, h, angle + rng.normal(0, 0.05)))
                if len(rr) > 0.3 * w * h and cv.free(rr, cc):
                    break
            else:
                continue
            cname = str(rng.choice(list(FIELD_COLORS)))
            oid = new_id("field", color=cname)
            col = np.asarray(FIELD_COLORS[cname], np.float32) * rng.uniform(0.9, 1.1)
            period = rng.uniform(3, 7) * k
            stripe = 0.9 + 0.1 * np.sin((cc * math.cos(angle) + rr * math.sin(angle)) * 2 * math.pi / period)
            cv.img[rr, cc] = col[None, :] * stripe[:, None].astype(np.float32) + rng.normal(0, 4, (len(rr), 3))
            cv.owner[rr, cc] = oid

    def _lake(self, cv, rng, k, new_id):
        S = cv.size
        r0 = rng.uniform(35, 100) * k
        cx, cy = rng.uniform(0.1, 0.9) * S, rng.uniform(0.1, 0.9) * S
        n = 28
        ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
        wob = ndimage.gaussian_filter1d(rng.normal(0, 1, n), 2, mode="wrap")
        rad = r0 * (1 + 0.25 * wob / (np.abs(wob).max() + 1e-6)) * np.where(np.cos(ang) > 0, 1.0, rng.uniform(0.6, 1.3))
        rr, cc = cv.pixels(cy + rad * np.sin(ang), cx + rad * np.cos(ang))
        if len(rr) < 200 * k * k or not cv.free(rr, cc, {"water", "river"}):
            return
        oid = new_id("water", shape="lake")
        self._paint_water(cv, rng, rr, cc, oid)

    def _paint_water(self, cv, rng, rr, cc, oid):
        col = np.asarray([(38, 70, 98), (46, 88, 92), (30, 52, 62), (56, 96, 120)][int(rng.integers(4))], np.float32)
        m = np.zeros((cv.size, cv.size), bool)
        m[rr, cc] = True
        depth = ndimage.distance_transform_edt(m)[rr, cc]
        depth = np.clip(depth / (depth.max() + 1e-6), 0, 1)
        shade = (1.25 - 0.35 * depth)[:, None]
        cv.img[rr, cc] = col[None] * shade + rng.normal(0, 2.5, (len(rr), 3))
        cv.owner[rr, cc] = oid

    def _river(self, cv, rng, k, new_id):
        S = cv.size
        horizontal = rng.random() < 0.5
        t = np.linspace(-0.1, 1.1, 60)
        wander = ndimage.gaussian_filter1d(rng.normal(0, 1, 60), 6)
        wander = wander / (np.abs(wander).max() + 1e-6) * rng.uniform(0.05, 0.2)
        base = rng.uniform(0.25, 0.75)
        along, across = t * S, (base + wander) * S
        xs, ys = (along, across) if horizontal else (across, along)
        line = np.zeros((S, S), bool)
        for i in range(len(t) - 1):
            n = int(max(abs(xs[i + 1] - xs[i]), abs(ys[i + 1] - ys[i]))) + 2
            lx = np.clip(np.linspace(xs[i], xs[i + 1], n).round().astype(int), 0, S - 1)
            ly = np.clip(np.linspace(ys[i], ys[i + 1], n).round().astype(int), 0, S - 1)
            line[ly, lx] = True
        width = rng.uniform(18, 40) * k
        m = ndimage.distance_transform_edt(~line) < width / 2
        m &= cv.owner < 0
        rr, cc = np.nonzero(m)
        oid = new_id("river", shape="river")
        self._paint_water(cv, rng, rr, cc, oid)
        # sandy banks
        bank = (ndimage.distance_transform_edt(~m) < 4 * k) & ~m & (cv.owner < 0)
        cv.img[bank] = 0.6 * cv.img[bank] + 0.4 * np.array([205, 192, 150], np.float32)

    def _roads(self, cv, rng, k, new_id, n) -> list[float]:
        S = cv.size
        angles = []
        grid = rng.uniform(-0.3, 0.3) if rng.random() < 0.6 else 0.0
        for i in range(n):
            angle = grid + (0 if i % 2 == 0 else math.pi / 2) + rng.normal(0, 0.03)
            if rng.random() < 0.2:
                angle = rng.uniform(0, math.pi)
            w = rng.uniform(16, 30) * k
            cx, cy = rng.uniform(0.15, 0.85) * S, rng.uniform(0.15, 0.85) * S
            L = 3 * S
            rr, cc = cv.pixels(*_rect_poly(cx, cy, L, w, angle))
            keep = np.array([cv.cat_of.get(int(o), "") not in ("water", "river") for o in cv.owner[rr, cc]]) if len(rr) else np.zeros(0, bool)
            rr, cc = rr[keep], cc[keep]
            if len(rr) < 50:
                continue
            oid = new_id("road")
            tone = rng.uniform(70, 115)
            cv.img[rr, cc] = np.array([tone, tone, tone * 1.03], np.float32) + rng.normal(0, 4, (len(rr), 3))
            cv.owner[rr, cc] = oid
            # kerbs (lighter edges) and dashed centre line
            for off in (-w / 2 + 1.5 * k, w / 2 - 1.5 * k):
                er, ec = cv.pixels(*_rect_poly(cx - off * math.sin(angle), cy + off * math.cos(angle), L, max(1.2, 1.5 * k), angle))
                sel = cv.owner[er, ec] == oid
                cv.img[er[sel], ec[sel]] = cv.img[er[sel], ec[sel]] * 0.5 + 90
            color = (235, 235, 230) if rng.random() < 0.7 else (230, 200, 70)
            dash, gap = 10 * k, 8 * k
            for s in np.arange(-1.5 * S, 1.5 * S, dash + gap):
                px, py = cx + s * math.cos(angle), cy + s * math.sin(angle)
                if not (-dash <= px <= S + dash and -dash <= py <= S + dash):
                    continue
                dr, dc = cv.pixels(*_rect_poly(px, py, dash, max(1.2, 1.6 * k), angle))
                sel = cv.owner[dr, dc] == oid
                cv.img[dr[sel], dc[sel]] = color
            angles.append((angle, cx, cy, w, oid))
        return angles

    def _parking(self, cv, rng, k, new_id, roads):
        S = cv.size
        angle, rcx, rcy, rw, _ = roads[int(rng.integers(len(roads)))]
        w, h = rng.uniform(70, 130) * k, rng.uniform(45, 70) * k
        s = rng.uniform(-0.3, 0.3) * S
        side = rng.choice([-1, 1])
        off = side * (rw / 2 + h / 2 + 3 * k)
        cx = rcx + s * math.cos(angle) - off * math.sin(angle)
        cy = rcy + s * math.sin(angle) + off * math.cos(angle)
        rr, cc = cv.pixels(*_rect_poly(cx, cy, w, h, angle))
        if len(rr) < 0.8 * w * h or not cv.free(rr, cc):
            return
        oid = new_id("parking")
        tone = rng.uniform(105, 135)
        cv.img[rr, cc] = np.array([tone, tone, tone], np.float32) + rng.normal(0, 3, (len(rr), 3))
        cv.owner[rr, cc] = oid
        stall = 11 * k
        for row in (-1, 1):
            for j in range(int(w / stall) + 1):
                lx = -w / 2 + j * stall
                ys, xs = _local_poly(cx, cy, [(lx, row * h / 2), (lx + 1.2 * k, row * h / 2), (lx + 1.2 * k, row * h * 0.1), (lx, row * h * 0.1)], angle)
                lr, lc = cv.pixels(ys, xs)
                cv.img[lr, lc] = (225, 225, 220)
        cv.extra_parking = getattr(cv, "extra_parking", []) + [(cx, cy, w, h, angle, oid)]

    def _buildings(self, cv, rng, k, new_id, n, roads, shadow_dir):
        S = cv.size
        palette = list(ROOF_COLORS)
        # a scene uses a few roof colours, so colour is sometimes unique and sometimes not
        scene_colors = list(rng.choice(palette, size=int(rng.integers(2, 5)), replace=False))
        blocked = {"road", "water", "river", "building", "parking", "pool", "field"}
        for _ in range(n):
            for _try in range(25):
                w, h = rng.uniform(24, 78) * k, rng.uniform(22, 60) * k
                if roads and rng.random() < 0.8:
                    angle = roads[int(rng.integers(len(roads)))][0] + rng.normal(0, 0.02)
                else:
                    angle = rng.uniform(0, math.pi)
                cx, cy = rng.uniform(0.06, 0.94) * S, rng.uniform(0.06, 0.94) * S
                ys, xs = _rect_poly(cx, cy, w + 10 * k, h + 10 * k, angle)  # keep a yard around
                rr, cc = cv.pixels(ys, xs)
                if len(rr) > 0.5 * (w * h) and cv.free(rr, cc, blocked):
                    break
            else:
                continue
            shape = "rectangular"
            if abs(w - h) / max(w, h) < 0.12:
                shape = "square"
            pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
            if rng.random() < 0.25 and min(w, h) > 30 * k:
                shape = "L-shaped"
                pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, 0), (0, 0), (0, h / 2), (-w / 2, h / 2)]
            cname = str(rng.choice(scene_colors))
            oid = new_id("building", color=cname, shape=shape)
            # shadow first (on ground only)
            L = rng.uniform(5, 13) * k
            sy, sx = _local_poly(cx + shadow_dir[0] * L, cy + shadow_dir[1] * L, pts, angle)
            sr, sc = cv.pixels(sy, sx)
            cv.shade(sr, sc, 0.52)
            by, bx = _local_poly(cx, cy, pts, angle)
            rr, cc = cv.pixels(by, bx)
            col = np.asarray(ROOF_COLORS[cname], np.float32) * rng.uniform(0.92, 1.08)
            cv.paint(rr, cc, col, oid, jitter=7.0, rng=rng)
            # roof structure: gable (two tones + ridge) or flat roof with parapet and rooftop units
            c, s = math.cos(angle), math.sin(angle)
            lx = (cc - cx) * c + (rr - cy) * s
            ly = -(cc - cx) * s + (rr - cy) * c
            if rng.random() < 0.55 and shape != "L-shaped":
                half = ly > 0 if w >= h else lx > 0
                cv.img[rr[half], cc[half]] *= 0.78
                ridge = np.abs(ly if w >= h else lx) < 0.9 * k
                cv.img[rr[ridge], cc[ridge]] = np.minimum(cv.img[rr[ridge], cc[ridge]] * 1.25, 255)
            else:
                edge = (np.abs(lx) > w / 2 - 2.2 * k) | (np.abs(ly) > h / 2 - 2.2 * k)
                cv.img[rr[edge], cc[edge]] = np.minimum(cv.img[rr[edge], cc[edge]] * 1.18 + 8, 255)
                for _u in range(int(rng.integers(0, 4))):
                    ux, uy = rng.uniform(-0.3, 0.3) * w, rng.uniform(-0.3, 0.3) * h
                    ur, uc = cv.pixels(*_rect_poly(cx + ux * c - uy * s, cy + ux * s + uy * c, 5 * k, 4 * k, angle))
                    cv.img[ur, uc] = np.minimum(cv.img[ur, uc] * 0.7 + 60, 255)
            if rng.random() < 0.45:
                self._pool(cv, rng, k, new_id, cx, cy, w, h, angle)

    def _pool(self, cv, rng, k, new_id, bcx, bcy, bw, bh, angle):
        for _try in range(12):
            pw, ph = rng.uniform(14, 28) * k, rng.uniform(9, 16) * k
            d = 0.5 * max(bw, bh) + rng.uniform(8, 18) * k
            a = rng.uniform(0, 2 * math.pi)
            cx, cy = bcx + d * math.cos(a), bcy + d * math.sin(a)
            shape = "round" if rng.random() < 0.3 else "rectangular"
            if shape == "round":
                rr, cc = disk((cy, cx), 0.45 * (pw + ph) / 2 * 1.2, shape=(cv.size, cv.size))
            else:
                rr, cc = cv.pixels(*_rect_poly(cx, cy, pw, ph, angle))
            if len(rr) > 40 * k * k and cv.free(rr, cc):
                break
        else:
            return
        oid = new_id("pool", shape=shape)
        # white deck around, then the water (computed in a local window)
        pad = max(1, int(2.5 * k)) + 2
        r0, c0 = max(0, rr.min() - pad), max(0, cc.min() - pad)
        r1, c1 = min(cv.size, rr.max() + pad + 1), min(cv.size, cc.max() + pad + 1)
        m = np.zeros((r1 - r0, c1 - c0), bool)
        m[rr - r0, cc - c0] = True
        deck = ndimage.binary_dilation(m, iterations=max(1, int(2.5 * k))) & ~m & (cv.owner[r0:r1, c0:c1] < 0)
        cv.img[r0:r1, c0:c1][deck] = (214, 210, 200)
        inner = ndimage.distance_transform_edt(m)[rr - r0, cc - c0]
        col = np.array([52, 170, 206], np.float32) + (inner[:, None] * 3).clip(0, 25) * np.array([-1, 1, 1])
        cv.img[rr, cc] = col + rng.normal(0, 3, (len(rr), 3))
        cv.owner[rr, cc] = oid

    def _trees(self, cv, rng, k, new_id, n, shadow_dir):
        S = cv.size
        for _ in range(n):
            for _try in range(15):
                cx, cy = rng.uniform(0.05, 0.95) * S, rng.uniform(0.05, 0.95) * S
                spread = rng.uniform(10, 32) * k
                m = int(rng.integers(4, 14))
                crowns = [
                    (cy + rng.normal(0, spread / 2), cx + rng.normal(0, spread / 2), rng.uniform(4.5, 9) * k)
                    for _ in range(m)
                ]
                pix = [disk((r, c), rad, shape=(S, S)) for r, c, rad in crowns]
                allr = np.concatenate([p[0] for p in pix])
                allc = np.concatenate([p[1] for p in pix])
                if len(allr) and cv.free(allr, allc, {"road", "water", "river", "building", "pool", "parking", "trees", "field"}):
                    break
            else:
                continue
            oid = new_id("trees")
            base = np.array([(52, 88, 46), (62, 96, 52), (44, 74, 44)][int(rng.integers(3))], np.float32)
            for (r, c, rad), (_pr, _pc) in zip(crowns, pix, strict=False):
                sr, sc = disk((r + shadow_dir[1] * rad * 0.8, c + shadow_dir[0] * rad * 0.8), rad, shape=(S, S))
                cv.shade(sr, sc, 0.6)
            for (r, c, rad), (pr, pc) in zip(crowns, pix, strict=False):
                dist = np.hypot(pr - (r - rad * 0.3 * shadow_dir[1]), pc - (c - rad * 0.3 * shadow_dir[0])) / max(rad, 1)
                shade = (1.25 - 0.45 * dist)[:, None]
                cv.img[pr, pc] = base[None] * shade + rng.normal(0, 6, (len(pr), 3))
                cv.owner[pr, pc] = oid

    def _car(self, cv, rng, k, new_id, cx, cy, angle, shadow_dir):
        L, W = rng.uniform(15, 19) * k, rng.uniform(7.5, 9) * k
        rr, cc = cv.pixels(*_rect_poly(cx, cy, L, W, angle))
        if len(rr) == 0 or not cv.free(rr, cc, {"car", "building", "trees", "pool", "water", "river"}):
            return False
        cname = str(rng.choice(list(CAR_COLORS)))
        oid = new_id("car", color=cname)
        sr, sc = cv.pixels(*_rect_poly(cx + 2 * k * shadow_dir[0], cy + 2 * k * shadow_dir[1], L, W, angle))
        cv.img[sr, sc] *= 0.6
        cv.paint(rr, cc, CAR_COLORS[cname], oid, jitter=3.0, rng=rng)
        wr, wc = cv.pixels(*_rect_poly(cx + 0.18 * L * math.cos(angle), cy + 0.18 * L * math.sin(angle), 0.18 * L, 0.8 * W, angle))
        cv.img[wr, wc] = (40, 46, 56)
        return True

    def _cars(self, cv, rng, k, new_id, roads, shadow_dir):
        S = cv.size
        for angle, rcx, rcy, rw, _oid in roads:
            for _ in range(int(rng.integers(0, 6))):
                s = rng.uniform(-0.7, 0.7) * S
                lane = rng.choice([-1, 1]) * rw / 4
                cx = rcx + s * math.cos(angle) - lane * math.sin(angle)
                cy = rcy + s * math.sin(angle) + lane * math.cos(angle)
                if 8 < cx < S - 8 and 8 < cy < S - 8:
                    self._car(cv, rng, k, new_id, cx, cy, angle, shadow_dir)
        for cx, cy, w, h, angle, _oid in getattr(cv, "extra_parking", []):
            stall = 11 * k
            for row in (-1, 1):
                for j in range(int(w / stall)):
                    if rng.random() < 0.45:
                        lx, ly = -w / 2 + (j + 0.5) * stall, row * h * 0.3
                        px = cx + lx * math.cos(angle) - ly * math.sin(angle)
                        py = cy + lx * math.sin(angle) + ly * math.cos(angle)
                        self._car(cv, rng, k, new_id, px, py, angle + math.pi / 2, shadow_dir)

    def _ships(self, cv, rng, k, new_id):
        S = cv.size
        water_ids = [i for i, c in cv.cat_of.items() if c in ("water", "river")]
        if not water_ids:
            return
        for _ in range(int(rng.integers(0, 4))):
            for _try in range(20):
                L, W = rng.uniform(24, 50) * k, rng.uniform(7, 12) * k
                angle = rng.uniform(0, math.pi)
                cx, cy = rng.uniform(0, S), rng.uniform(0, S)
                pts = [(-L / 2, -W / 2), (L * 0.25, -W / 2), (L / 2, 0), (L * 0.25, W / 2), (-L / 2, W / 2)]
                rr, cc = cv.pixels(*_local_poly(cx, cy, pts, angle))
                if len(rr) > 20 and np.isin(cv.owner[rr, cc], water_ids).all():
                    # no other ship nearby
                    wy, wx = _rect_poly(cx, cy, L * 1.6, W * 3, angle)
                    wr, wc = cv.pixels(wy, wx)
                    if cv.free(wr, wc, {"ship"}):
                        break
            else:
                continue
            cname = str(rng.choice(list(SHIP_COLORS)))
            oid = new_id("ship", color=cname)
            # wake behind the stern
            wy, wx = _local_poly(cx, cy, [(-L / 2, -W / 3), (-L / 2 - L, -W), (-L / 2 - L, W), (-L / 2, W / 3)], angle)
            wr, wc = cv.pixels(wy, wx)
            sel = np.isin(cv.owner[wr, wc], water_ids)
            cv.img[wr[sel], wc[sel]] = cv.img[wr[sel], wc[sel]] * 0.7 + 60
            cv.paint(rr, cc, SHIP_COLORS[cname], oid, jitter=3.0, rng=rng)
            dr, dc = cv.pixels(*_rect_poly(cx - 0.1 * L * math.cos(angle), cy - 0.1 * L * math.sin(angle), 0.3 * L, 0.5 * W, angle))
            cv.img[dr, dc] *= 0.8

    def _clutter(self, cv, rng, k):
        S = cv.size
        # shrubs and rocks on open ground: visual distractors, not referable objects
        n = int(rng.integers(20, 90))
        ys, xs = rng.uniform(0, S, n), rng.uniform(0, S, n)
        for y, x in zip(ys, xs, strict=False):
            rad = rng.uniform(1.2, 3.2) * k
            rr, cc = disk((y, x), rad, shape=(S, S))
            sel = cv.owner[rr, cc] < 0
            tone = np.array([70, 84, 52], np.float32) if rng.random() < 0.7 else np.array([150, 140, 125], np.float32)
            cv.img[rr[sel], cc[sel]] = tone

    def _finish(self, cv, rng) -> np.ndarray:
        img = cv.img
        img = ndimage.gaussian_filter(img, sigma=(0.6, 0.6, 0))
        img *= rng.uniform(0.96, 1.04, 3).astype(np.float32)[None, None]
        img = (img - 128) * rng.uniform(0.85, 1.1) + 128 + rng.uniform(-12, 12)
        img += rng.normal(0, 3.0, img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)


# ---- expressions for one scene -------------------------------------------------------------------
class ExpressionSampler:
    """Picks a target and a referring spec whose claim (unique / class / ambiguous) holds geometrically.

    ``focus``: only objects of these categories are targets (each category present equally likely), down to half the
    usual smallest area (anchors' limit), and a class sentence may be about objects of any size ("all the cars").
    """

    def __init__(self, objects: list[SceneObject], hw: tuple[int, int], rng: np.random.Generator,
                 focus: tuple[str, ...] | None = None):
        self.objects = objects
        self.hw = hw
        self.rng = rng
        self.cache: dict = {}
        self.min_area = MIN_TARGET_FRAC * hw[0] * hw[1]
        self.focus = focus
        if focus:
            self.targets = [o for o in objects if o.category in focus and o.area >= self.min_area / 2]
            self.class_targets = [o for o in objects if o.category in focus]
        else:
            self.targets = [o for o in objects if o.area >= self.min_area]
            self.class_targets = self.targets

    def _resolve(self, spec) -> Match:
        try:
            return resolve(spec, self.objects, self.hw, self.cache)
        except SpecError:
            return Match([], [])

    def _same_cat(self, t):
        return [o for o in self.objects if o.category == t.category]

    def _target(self, any_size: bool = False):
        targets = self.class_targets if any_size else self.targets
        if not targets:
            return None
        if self.focus:  # each category present equally often, however many objects it has
            categories = sorted({o.category for o in targets})
            category = categories[int(self.rng.integers(len(categories)))]
            targets = [o for o in targets if o.category == category]
            return targets[int(self.rng.integers(len(targets)))]
        w = np.array([0.4 if o.category == "car" else 0.5 if o.category == "land" else 1.0 for o in targets])
        return targets[int(self.rng.choice(len(targets), p=w / w.sum()))]

    def _unique_simple_spec(self, o):
        """A spec that names ``o`` uniquely without relations (used for anchors)."""
        options = [{"category": o.category}]
        if o.color:
            options.append({"category": o.category, "color": o.color})
        options.append({"category": o.category, "size": "largest"})
        for sp in options:
            m = self._resolve(sp)
            if m.unique and m.definite[0].id == o.id:
                return sp
        return None

    def propose(self, kind: str) -> tuple[dict, list[SceneObject]] | None:
        rng = self.rng
        t = self._target(any_size=kind == "class")
        if t is None:
            return None
        cat = t.category
        if kind == "category":
            specs = [{"category": cat}]
        elif kind == "attribute":
            specs = []
            if t.color:
                specs.append({"category": cat, "color": t.color})
            if t.shape and cat not in ("water", "river"):
                specs.append({"category": cat, "shape": t.shape})
            specs += [{"category": cat, "size": "largest"}, {"category": cat, "size": "smallest"}]
            if t.color:
                specs.append({"category": cat, "color": t.color, "size": "largest"})
        elif kind == "position":
            specs = [{"category": cat, "region": r} for r in REGION_WORDS]
            specs += [{"category": cat, "extreme": e} for e in EXTREME_WORDS]
            if t.color:
                specs += [{"category": cat, "color": t.color, "region": r} for r in REGION_WORDS]
        elif kind == "relation":
            specs = []
            anchors = [a for a in self.objects if a.id != t.id and a.area >= self.min_area / 2]
            rng.shuffle(anchors)
            for a in anchors[:6]:
                asp = self._unique_simple_spec(a)
                if asp is None:
                    continue
                rels = ["nearest", "left_of", "right_of", "above", "below"]
                if a.category in ("road", "water", "river", "parking"):
                    rels += ["on", "touching"]
                for rel in rels:
                    specs.append({"category": cat, "relation": rel, "anchor": asp})
                    if t.color:
                        specs.append({"category": cat, "color": t.color, "relation": rel, "anchor": asp})
        elif kind == "ordinal":
            specs = [{"category": cat, "size": "largest", "rank": r} for r in (2, 3)]
            specs += [{"category": cat, "size": "smallest", "rank": 2}]
        elif kind == "class":
            objs = self._same_cat(t)
            if len(objs) < 2 and rng.random() < 0.7:
                return None
            return {"category": cat, "all": True}, objs
        elif kind == "ambiguous":
            specs = [{"category": cat}]
            if t.color:
                specs.append({"category": cat, "color": t.color})
            specs += [{"category": cat, "region": r} for r in ("top", "bottom", "left", "right")]
        else:
            raise DataError(f"unknown expression kind {kind!r}")
        order = rng.permutation(len(specs))
        for i in order:
            sp = specs[int(i)]
            m = self._resolve(sp)
            if kind == "ambiguous":
                if m.ambiguous and t in m.definite and all(o.area >= self.min_area for o in m.definite):
                    return sp, m.definite
            elif m.unique and m.definite[0].id == t.id:
                if kind in ("relation",) or kind not in ("attribute", "position", "ordinal") or not self._resolve({"category": cat}).unique or rng.random() < 0.15:
                    return sp, [t]
        return None

    # -- follow-ups --
    def disambiguate(self, candidates: list[SceneObject], target: SceneObject) -> str | None:
        """A follow-up that picks ``target`` out of the ambiguous ``candidates``."""
        rng = self.rng
        hw = self.hw
        sub = [SceneObject(o.id, "x", o.mask, o.color, o.shape) for o in candidates]
        opts = []
        for e in ("north", "south", "west", "east"):
            m = resolve({"category": "x", "extreme": e}, sub, hw)
            if m.unique and m.definite[0].id == target.id:
                word = {"north": ["further north", "higher up", "at the top"], "south": ["further south", "lower down", "at the bottom"],
                        "west": ["further left", "on the left", "further west"], "east": ["further right", "on the right", "further east"]}[e]
                opts.append(f"the one {rng.choice(word)}")
        for size in ("largest", "smallest"):
            m = resolve({"category": "x", "size": size}, sub, hw)
            if m.unique and m.definite[0].id == target.id:
                if len(candidates) == 2:
                    opts.append(f"the {'larger' if size == 'largest' else 'smaller'} of the two")
                else:
                    opts.append(f"the {'biggest' if size == 'largest' else 'smallest'} one")
        if target.color:
            m = resolve({"category": "x", "color": target.color}, sub, hw)
            if m.unique:
                opts.append(f"the {target.color} one")
        if not opts:
            return None
        lead = rng.choice(["", "no, ", "I mean ", "not that one, "])
        return (lead + str(rng.choice(opts))).strip()

    def correction(self, target: SceneObject) -> tuple[str, list[SceneObject], str] | None:
        """A wrong-target follow-up relative to ``target``: (text, new target objects, followup kind)."""
        rng = self.rng
        h, w = self.hw
        others = [o for o in self._same_cat(target) if o.id != target.id and o.area >= self.min_area]
        if not others:
            return None
        choice = rng.random()
        tx, ty = target.centroid
        if choice < 0.6:
            d = str(rng.choice(list(DIRECTION_VECTORS)))
            ux, uy = DIRECTION_VECTORS[d]
            margin = REDIRECT_MARGIN * max(h, w)
            ahead = [o for o in others if (o.centroid[0] - tx) * ux + (o.centroid[1] - ty) * uy > margin]
            if not ahead:
                return None
            dist = sorted(ahead, key=lambda o: math.hypot(o.centroid[0] - tx, o.centroid[1] - ty))
            d0 = math.hypot(dist[0].centroid[0] - tx, dist[0].centroid[1] - ty)
            if len(dist) > 1 and math.hypot(dist[1].centroid[0] - tx, dist[1].centroid[1] - ty) < 1.5 * d0:
                return None
            word = {"north": ["further north", "above it", "further up"], "south": ["further south", "below it", "further down"],
                    "west": ["further left", "to its left", "further west"], "east": ["further right", "to its right", "further east"]}[d]
            noun = rng.choice(["one", NOUNS.get(target.category, [target.category])[0]])
            return f"{rng.choice(['no, ', 'wrong one, ', 'not this one, '])}the {noun} {rng.choice(word)}", [dist[0]], "redirect"
        # "also the one next to it"
        m = self._resolve({"category": target.category, "relation": "nearest", "anchor": {"category": target.category, "exclude": [o.id for o in others]}})
        if not m.unique:
            return None
        noun = NOUNS.get(target.category, [target.category])[0]
        text = str(rng.choice(["also the one next to it", f"and the {noun} next to it too", f"add the closest {noun} as well"]))
        return text, [target, m.definite[0]], "add"


def generate_sample(seed: int, scene_size: int = 512, kind: str | None = None, followup_rate: float = 0.35,
                    sample_id: str | None = None) -> SyntheticSample:
    """Draw scene ``seed`` and sample one referring expression (of ``kind`` if given, else random).

    Ambiguous samples always get a disambiguating follow-up whose mask is the intended target (also the
    first-turn mask); other samples get a wrong-target correction with probability ``followup_rate``.
    """
    if kind is not None and kind not in KINDS:
        raise DataError(f"Unknown expression kind {kind!r}; choose one of {', '.join(KINDS)}.")
    image, objects = SceneGenerator(scene_size).generate(seed)
    if not objects:  # an extremely empty scene: nothing is referable, draw another
        return generate_sample(seed + 7919 * 3, scene_size, kind, followup_rate, sample_id)
    return sample_expression(seed, image, objects, np.random.default_rng([seed, 7]), kind, followup_rate,
                             sample_id or f"synth-{seed}")


def draw_scene(seed: int, scene_size: int = 512) -> tuple[np.ndarray, list[SceneObject]]:
    """Scene ``seed``: image H×W×3 uint8 and its referable objects (an empty scene is replaced by another)."""
    image, objects = SceneGenerator(scene_size).generate(seed)
    if not objects:
        return draw_scene(seed + 7919 * 3, scene_size)
    return image, objects


def scene_samples(seed: int, image: np.ndarray, objects: list[SceneObject], first: int = 0, n: int = 4,
                  followup_rate: float = 0.35, focus: tuple[str, ...] | None = None) -> list[SyntheticSample]:
    """Expressions ``first … first+n-1`` about one drawn scene (:func:`draw_scene`): expression 0 is the one
    :func:`generate_sample` gives, expression j > 0 uses its own seeded rng. An expression whose target set (and
    ambiguity) repeats an earlier one's is dropped, so a sparse scene may give fewer than ``n``. For training: one
    image-encoder pass serves several expressions about different targets. ``focus``: expressions about objects of
    these categories only (:class:`ExpressionSampler`); none when the scene has none of them."""
    if focus and not any(o.category in focus for o in objects):
        return []
    out: list[SyntheticSample] = []
    seen = set()
    for j in range(first, first + n):
        rng = np.random.default_rng([seed, 7] if j == 0 else [seed, 7, j])
        s = sample_expression(seed, image, objects, rng, None, followup_rate, f"synth-{seed}-{j}", focus)
        key = (tuple(sorted(s.target_ids)), s.ambiguous)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def sample_expression(seed: int, image: np.ndarray, objects: list[SceneObject], rng: np.random.Generator,
                      kind: str | None = None, followup_rate: float = 0.35,
                      sample_id: str | None = None, focus: tuple[str, ...] | None = None) -> SyntheticSample:
    """One referring expression (and maybe a follow-up) about a drawn scene; ``objects`` must not be empty. ``focus``:
    about objects of these categories (:class:`ExpressionSampler`), drawn with :data:`FOCUS_KIND_WEIGHTS`; the scene
    must hold one."""
    hw = image.shape[:2]
    sampler = ExpressionSampler(objects, hw, rng, focus)
    weights = FOCUS_KIND_WEIGHTS if focus else KIND_WEIGHTS
    result = None
    candidates = None  # for an ambiguous expression: every object it matches
    for attempt in range(40):
        k = kind if (kind is not None and attempt < 30) else str(rng.choice(KINDS, p=weights / weights.sum()))
        if attempt >= 30:
            k = "class" if attempt % 2 else "category"
        prop = sampler.propose(k)
        if prop is None:
            continue
        spec, objs = prop
        if k == "ambiguous":
            target = objs[int(rng.integers(len(objs)))]
            follow = sampler.disambiguate(objs, target)
            if follow is None:
                continue
            result = (k, spec, [target], True, follow, [target], "disambiguate")
            candidates = objs
        else:
            fol = sampler.correction(objs[0]) if (k != "class" and rng.random() < followup_rate) else None
            if fol:
                result = (k, spec, objs, False, fol[0], fol[1], fol[2])
            else:
                result = (k, spec, objs, False, None, None, None)
        break
    if result is None:  # no proposal held: the class of the largest (focus) object always does
        o = max((o for o in objects if not focus or o.category in focus), key=lambda o: o.area)
        result = ("class", {"category": o.category, "all": True},
                  [x for x in objects if x.category == o.category], False, None, None, None)
    k, spec, objs, amb, follow, fobjs, fkind = result
    text = realize(spec, rng)
    prefix = str(rng.choice(["", "", "", "", "segment ", "find ", "select ", "show me "]))
    if spec.get("all") and text.startswith("segment"):
        prefix = ""
    text = prefix + text
    return SyntheticSample(
        id=sample_id or f"synth-{seed}",
        seed=seed,
        image=image,
        mask=union_mask(objs, hw),
        expression=text,
        kind=k,
        ambiguous=amb,
        objects=objects,
        spec=spec,
        target_ids=[o.id for o in objs],
        followup=follow,
        followup_mask=union_mask(fobjs, hw) if fobjs else None,
        followup_kind=fkind,
        extra={"distractors_mask": union_mask(distractors(objects, candidates or objs), hw),
               **({"candidates_mask": union_mask(candidates, hw)} if candidates else {})},
    )


class SyntheticReferringDataset:
    """Map-style data set of synthetic samples; item ``i`` of a split is scene seed
    ``SPLIT_OFFSETS[split] + start + i``, so splits never overlap and every item is reproducible.

    ``__getitem__`` returns the common record dict: image H×W×3 uint8, mask H×W bool, expression,
    ambiguous, followup (str|None), followup_mask (H×W bool|None), id, kind.
    """

    def __init__(self, split: str = "train", size: int = 1000, image_size: int = 512, start: int = 0,
                 kind: str | None = None, followup_rate: float = 0.35):
        if split not in SPLIT_OFFSETS:
            raise DataError(f"Unknown split {split!r}; choose one of {', '.join(SPLIT_OFFSETS)}.")
        if size < 0 or start < 0 or start + size > 1_000_000_000:
            raise DataError("size and start must be non-negative and stay inside the split's seed range (1e9).")
        self.split, self.size, self.image_size, self.start = split, size, image_size, start
        self.kind, self.followup_rate = kind, followup_rate

    def __len__(self) -> int:
        return self.size

    def seed(self, index: int) -> int:
        return SPLIT_OFFSETS[self.split] + self.start + index

    def sample(self, index: int) -> SyntheticSample:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return generate_sample(self.seed(index), self.image_size, self.kind, self.followup_rate,
                               sample_id=f"synth-{self.split}-{self.start + index:06d}")

    def __getitem__(self, index: int) -> dict:
        return self.sample(index).to_record()

    def __iter__(self):
        for i in range(self.size):
            yield self[i]
