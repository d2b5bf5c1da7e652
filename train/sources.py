"""Training data sources, mixable with weights, and the augmentations applied to every sample.

Every source maps an integer index to the common record dict of :mod:`rrsis_engine.data`
(``image`` H×W×3 uint8, ``mask`` H×W bool, ``expression``, ``ambiguous``, ``followup``, ``followup_mask``,
``id``, ``kind``). :class:`MixedSource` picks, for global sample number ``n``, a source by weight and an item
with ``numpy.random.default_rng([seed, n])`` — a pure function of ``n``, so a resumed run (or another DDP
rank) sees exactly the samples the uninterrupted run would have seen.

Source specs on the command line (``--source``): ``synth:WEIGHT``, ``small:WEIGHT`` (synthetic scenes, expressions
about their ships, cars, pools and car parks only), ``easy:WEIGHT``, ``jsonl:PATH:WEIGHT``, ``refsegrs:PATH:WEIGHT``,
``rrsisd:PATH:WEIGHT``, ``risbench:PATH:WEIGHT``, ``db:PATH_OR_URL:WEIGHT`` (the session store's accepted
annotations). The weight may be omitted (1.0).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrsis_engine.errors import DataError

READER_KINDS = ("jsonl", "refsegrs", "rrsisd", "risbench")
SOURCE_KINDS = ("synth", "small", "easy", "db", *READER_KINDS)
#: synthetic kinds: scenes drawn on the fly, no location
SYNTHETIC_KINDS = ("synth", "small", "easy")


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    location: str | None
    weight: float

    def __str__(self) -> str:
        return ":".join(x for x in (self.kind, self.location, f"{self.weight:g}") if x)


def parse_source(spec: str) -> SourceSpec:
    """``kind[:location][:weight]`` → :class:`SourceSpec` (the location may itself contain ``:``, e.g. a URL)."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCE_KINDS:
        raise DataError(f"Unknown training source {spec!r}: the kind must be one of {', '.join(SOURCE_KINDS)} "
                        "(e.g. --source synth:1.0 --source jsonl:data/val.jsonl:0.5 --source db:sessions.db:2).")
    weight = 1.0
    location = rest
    head, sep, tail = rest.rpartition(":")
    if sep and re.fullmatch(r"[0-9]*\.?[0-9]+(e-?[0-9]+)?", tail):
        location, weight = head, float(tail)
    elif not sep and re.fullmatch(r"[0-9]*\.?[0-9]+(e-?[0-9]+)?", rest or "x"):
        location, weight = "", float(rest)
    if weight <= 0:
        raise DataError(f"Source {spec!r} has weight {weight}; weights must be positive.")
    if kind in SYNTHETIC_KINDS:
        if location:
            raise DataError(f"Source {spec!r}: {kind} takes only a weight ({kind}:1.0).")
        return SourceSpec(kind, None, weight)
    if not location:
        raise DataError(f"Source {spec!r} needs a path: {kind}:PATH[:WEIGHT].")
    return SourceSpec(kind, location, weight)


# ---- sources ------------------------------------------------------------------------------------
class SyntheticSource:
    """On-the-fly synthetic scenes (rrsis_engine.data.synthetic), ``reuse`` uses per scene.

    Scenes are drawn in blocks of ``block`` seeds; inside a block every scene is used ``reuse`` times in a
    seeded order (with different augmentation each time), so the CPU cost of drawing is divided by ``reuse``.
    Index → scene is a pure function; drawn blocks are memoised.

    ``expressions`` > 1: :meth:`get_group` gives that many expressions about different targets of the scene (a
    new set at each reuse), so one image-encoder pass trains several referring masks.

    ``focus`` (``--source small``): expressions about objects of these categories only
    (:data:`~rrsis_engine.data.synthetic.SMALL_CATEGORIES`). Each scene index then tries :attr:`FOCUS_TRIES` seeds
    and takes the one whose scene holds the most focus categories, the first on ties (ships lie only on water, in
    about a quarter of the scenes), so that the rarer categories come up more often.
    """

    #: seeds tried per scene index of a focused source, :attr:`FOCUS_SEED_STEP` apart (inside the train split)
    FOCUS_TRIES, FOCUS_SEED_STEP = 3, 300_000_000

    def __init__(self, split: str = "train", scene_size: int = 512, reuse: int = 1, block: int = 64,
                 followup_rate: float = 0.35, start: int = 0, expressions: int = 1,
                 focus: tuple[str, ...] | None = None):
        from rrsis_engine.data.synthetic import SyntheticReferringDataset

        # a focused source's every try stays inside the split: its seeds step by FOCUS_SEED_STEP
        size = self.FOCUS_SEED_STEP - start if focus else 1_000_000_000 - start - 1
        self.ds = SyntheticReferringDataset(split, size=size, image_size=scene_size, start=start,
                                            followup_rate=followup_rate)
        self.reuse, self.block = max(1, int(reuse)), max(1, int(block))
        self.expressions = max(1, int(expressions))
        self.focus = tuple(focus) if focus else None
        self._cache: OrderedDict[int, object] = OrderedDict()
        self.name = "small" if self.focus else "synth"

    def __len__(self) -> int:
        return len(self.ds)

    def scene_use(self, n: int) -> tuple[int, int]:
        """Sample number → (scene index, which of its ``reuse`` uses this is)."""
        per_block = self.block * self.reuse
        b, r = divmod(n, per_block)
        v = int(np.random.default_rng([91, b]).permutation(per_block)[r])
        return b * self.block + v % self.block, v // self.block

    def scene_index(self, n: int) -> int:
        return self.scene_use(n)[0]

    def _memo(self, i: int, make):
        value = self._cache.get(i)
        if value is None:
            value = make()
            self._cache[i] = value
            while len(self._cache) > 2 * self.block:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return value

    def get(self, n: int) -> dict:
        if self.focus:
            return self.get_group(n)[0]
        i = self.scene_index(n) % len(self.ds)
        return self._memo(i, lambda: self.ds[i])

    def get_group(self, n: int) -> list[dict]:
        """Records about one scene (sharing its image): ``[get(n)]``, or ``expressions`` of them."""
        if self.expressions == 1 and not self.focus:
            return [self.get(n)]
        from rrsis_engine.data.synthetic import scene_samples

        i, use = self.scene_use(n)
        i %= len(self.ds)
        seed, image, objects = self._memo(i, lambda: self._scene(i))
        k = self.expressions
        focus = self.focus if self.focus and any(o.category in self.focus for o in objects) else None
        samples = scene_samples(seed, image, objects, first=use * k, n=k, followup_rate=self.ds.followup_rate,
                                focus=focus)
        return [s.to_record(semantic=j == 0) for j, s in enumerate(samples)]

    def _scene(self, i: int) -> tuple[int, np.ndarray, list]:
        """Scene index ``i`` → (seed, image, objects); for a focused source the best of its seeds (class doc)."""
        from rrsis_engine.data.synthetic import draw_scene

        seed = self.ds.seed(i)
        if not self.focus:
            return (seed, *draw_scene(seed, self.ds.image_size))
        best, most = None, -1
        for t in range(self.FOCUS_TRIES):
            image, objects = draw_scene(seed + t * self.FOCUS_SEED_STEP, self.ds.image_size)
            present = len({o.category for o in objects} & set(self.focus))
            if present > most:
                best, most = (seed + t * self.FOCUS_SEED_STEP, image, objects), present
            if present == len(self.focus):
                break
        return best


class RecordSource:
    """A fixed list of records (JSONL / RefSegRS / RRSIS-D / RISBench readers, session DB).

    ``expressions`` > 1: :meth:`get_group` adds up to that many − 1 other records about the same image file
    (``image_path``), so one image-encoder pass trains several of its expressions.
    """

    def __init__(self, records: list, name: str, expressions: int = 1):
        if not records:
            raise DataError(f"Training source {name} holds no samples.")
        self.records = records
        self.name = name
        self.expressions = max(1, int(expressions))
        self._same_image: dict[int, list[int]] = {}
        if self.expressions > 1:
            by_path: dict[str, list[int]] = {}
            for i, rec in enumerate(records):
                path = None if callable(rec) else rec.get("image_path")
                if path:
                    by_path.setdefault(str(path), []).append(i)
            self._same_image = {i: idx for idx in by_path.values() for i in idx}

    def __len__(self) -> int:
        return len(self.records)

    def get(self, n: int) -> dict:
        rec = self.records[n % len(self.records)]
        return rec() if callable(rec) else rec

    def get_group(self, n: int, rng: np.random.Generator) -> list[dict]:
        """Record ``n`` and up to ``expressions`` − 1 others about the same image, picked with ``rng``."""
        i = n % len(self.records)
        others = [j for j in self._same_image.get(i, ()) if j != i]
        picked = [others[int(k)] for k in rng.permutation(len(others))[: self.expressions - 1]] if others else []
        first = self.get(i)
        return [first] + [dict(self.get(j), image=first["image"]) for j in picked]


def _load_image(path: str) -> np.ndarray:
    from rrsis_engine.imageio import read_image

    return read_image(path).pixels


def _lazy_record(load, rid: str, expression: str, mask_fn, extra: dict):
    """A zero-argument callable returning the record; images/masks are read on use (a small LRU of images)."""
    def make():
        rec = {"id": rid, "image": load(), "mask": mask_fn(), "expression": expression, "ambiguous": False,
               "followup": None, "followup_mask": None, "kind": "session"}
        rec.update(extra)
        return rec
    return make


class _ImageCache:
    def __init__(self, capacity: int = 16):
        self.capacity = capacity
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, path: str) -> np.ndarray:
        img = self._d.get(path)
        if img is None:
            img = _load_image(path)
            self._d[path] = img
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)
        else:
            self._d.move_to_end(path)
        return img


def is_holdout_session(session_id: str, holdout: float) -> bool:
    """Stable split of logged sessions: a session is held out (validation only) when the first 8 hex digits of
    sha1(session_id) fall below ``holdout``·16⁸ — the same sessions on every run, whatever else is in the DB."""
    import hashlib

    return int(hashlib.sha1(str(session_id).encode()).hexdigest()[:8], 16) < holdout * 16**8


def session_pairs(url_or_path: str, since=None, base_dir: str | Path | None = None, holdout: float = 0.0,
                  part: str = "train") -> list:
    """Training pairs from the session store: one per (accepted annotation, expression).

    holdout/part: sessions selected by :func:`is_holdout_session` are left out of ``part="train"`` and are
    the only ones in ``part="holdout"`` (for the comparison before promotion).

    Returns lazy records (callables). The image is read from the annotation's ``image_path`` (relative paths
    are resolved against ``base_dir``, default: the database's folder). Annotations whose image file is
    missing raise DataError naming them (the labelers' images must be reachable to train on them).
    """
    from rrsis_engine.store import open_store

    store = open_store(url_or_path)
    anns = store.list_annotations(status="accepted", since=since, with_turns=False)
    base = Path(base_dir) if base_dir else (Path(url_or_path).parent if "://" not in str(url_or_path) else Path("."))
    cache = _ImageCache()
    out = []
    missing = []
    if holdout > 0:
        anns = [a for a in anns if is_holdout_session(a.session_id, holdout) == (part == "holdout")]
    elif part == "holdout":
        anns = []
    for a in anns:
        if not a.image_path:
            missing.append(str(a.id))
            continue
        p = Path(a.image_path)
        if not p.is_absolute() and not p.exists():
            p = base / p
        if not p.exists():
            missing.append(f"{a.id} ({a.image_path})")
            continue
        exprs = [e for e in a.expressions if e and e.strip()] or [""]
        for j, e in enumerate(exprs):
            out.append(_lazy_record(lambda p=str(p): cache(p), f"db-{a.id}-{j}", e, lambda a=a: a.mask,
                                    {"annotation_id": a.id, "image_hash": a.image_hash}))
    if missing:
        raise DataError(
            f"{len(missing)} accepted annotation(s) in {url_or_path} point to images that cannot be read: "
            f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}. Make the image files reachable "
            "(run from the folder the app ran in) or pass --db-image-root."
        )
    return out


def build_source(spec: SourceSpec, scene_size: int, synth_reuse: int = 1, since=None,
                 db_image_root: str | None = None, db_holdout: float = 0.0, expressions: int = 1):
    if spec.kind in ("synth", "small"):
        from rrsis_engine.data.synthetic import SMALL_CATEGORIES

        return SyntheticSource("train", scene_size=scene_size, reuse=synth_reuse, expressions=expressions,
                               focus=SMALL_CATEGORIES if spec.kind == "small" else None)
    if spec.kind == "easy":
        from rrsis_train.easy import EasySource

        return EasySource(size=scene_size)
    if spec.kind == "db":
        return RecordSource(session_pairs(spec.location, since=since, base_dir=db_image_root, holdout=db_holdout),
                            str(spec), expressions)
    path = Path(spec.location)
    if not path.exists():
        raise DataError(f"Training source {spec}: {path} does not exist.")
    from rrsis_engine.data import load_records

    records = list(load_records(f"{spec.kind}:{path}"))
    return RecordSource(records, str(spec), expressions)


class MixedSource:
    """Weighted mixture; ``get(n)`` is a pure function of the global sample number ``n`` and ``seed``."""

    def __init__(self, sources: list, weights: list[float], seed: int = 0):
        if not sources:
            raise DataError("No training source given; use e.g. --source synth:1.0.")
        w = np.asarray(weights, dtype=np.float64)
        self.sources, self.p, self.seed = sources, w / w.sum(), seed

    def get(self, n: int) -> tuple[dict, np.random.Generator]:
        recs, rng = self.get_group(n, single=True)
        return recs[0], rng

    def get_group(self, n: int, single: bool = False) -> tuple[list[dict], np.random.Generator]:
        """Records sharing one image for sample ``n`` (several only from a source with ``expressions`` > 1, unless
        ``single``) and the sample's rng."""
        rng = np.random.default_rng([self.seed, 17, n])
        k = int(rng.choice(len(self.sources), p=self.p)) if len(self.sources) > 1 else 0
        src = self.sources[k]
        if isinstance(src, SyntheticSource):
            # blocks of consecutive n share scenes (see SyntheticSource.reuse)
            recs = [src.get(n)] if single else src.get_group(n)
        else:
            i = int(rng.integers(len(src)))
            recs = [src.get(i)] if single or not isinstance(src, RecordSource) else src.get_group(i, rng)
        return recs, rng


# ---- augmentation -------------------------------------------------------------------------------
_DIRECTIONAL = re.compile(
    r"\b(left|right|top|bottom|upper|lower|north\w*|south\w*|east\w*|west\w*|above|below|under|over|"
    r"leftmost|rightmost|topmost|bottommost|corner|edge|side|horizontal\w*|vertical\w*)\b",
    re.IGNORECASE,
)


def has_direction(text: str | None) -> bool:
    """True when a sentence names directions, so flips/rotations would change its meaning."""
    return bool(text) and bool(_DIRECTIONAL.search(text))


def augment(rec: dict, rng: np.random.Generator, geometric: bool = True, color: bool = True,
            black_rects: float = 0.5) -> dict:
    """Random flips / 90° rotations (only when no sentence of the sample names a direction), colour jitter
    and random black rectangles (paper §3.3.2; a rectangle never hides more than a third of the target).

    Returns a new record; arrays H×W(×3), the same transform applied to image and masks (and the category map
    ``semantic``, which is 255 = unknown under the black rectangles).
    """
    return augment_group([rec], rng, geometric, color, black_rects)[0]


MASK_KEYS = ("mask", "followup_mask", "candidates_mask", "distractors_mask", "semantic")


def augment_group(recs: list[dict], rng: np.random.Generator, geometric: bool = True, color: bool = True,
                  black_rects: float = 0.5) -> list[dict]:
    """:func:`augment` for records that share one image (several expressions about one scene): one transform
    for all — geometric only when none of their sentences names a direction, and no black rectangle hides more
    than a third of any record's target. Returns new records sharing the new image array."""
    img = recs[0]["image"]
    masks = {(i, k): r[k] for i, r in enumerate(recs) for k in MASK_KEYS if r.get(k) is not None}
    texts = [t for r in recs for t in (r.get("expression"), r.get("followup"))]
    if geometric and not any(has_direction(t) for t in texts):
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))
        def g(a):
            a = np.rot90(a, k)
            return a[:, ::-1] if flip else a
        img = g(img)
        masks = {n: g(m) for n, m in masks.items()}
    img = np.ascontiguousarray(img)
    if color:
        x = img.astype(np.float32)
        gain = rng.uniform(0.8, 1.2)
        bias = rng.uniform(-20, 20)
        per_channel = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
        mean = x.mean(axis=(0, 1), keepdims=True)
        sat = rng.uniform(0.8, 1.2)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * sat
        x = (x - mean) * gain + mean + bias
        x = x * per_channel
        img = np.clip(x, 0, 255).astype(np.uint8)
    else:
        img = img.copy()
    if black_rects > 0 and rng.random() < black_rects:
        h, w = img.shape[:2]
        targets = [(m, int(m.sum())) for (_, k), m in masks.items() if k == "mask"]
        for _ in range(int(rng.integers(1, 3))):
            rh, rw = int(rng.integers(h // 16, h // 4 + 1)), int(rng.integers(w // 16, w // 4 + 1))
            y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
            if any(area and m[y0:y0 + rh, x0:x0 + rw].sum() > area / 3 for m, area in targets):
                continue
            img[y0:y0 + rh, x0:x0 + rw] = 0
            for n in [n for n in masks if n[1] == "semantic"]:  # hidden: no category to learn there
                masks[n] = masks[n].copy()
                masks[n][y0:y0 + rh, x0:x0 + rw] = 255
    out = [dict(r, image=img) for r in recs]
    for (i, k), m in masks.items():
        out[i][k] = np.ascontiguousarray(m)
    return out
