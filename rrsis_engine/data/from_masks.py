"""Referring expressions from real class-index masks (e.g. the Dubai aerial tiles).

Connected components of each class become referable objects; targets get expressions whose claims
(unique / class-level / ambiguous) are checked geometrically by :mod:`rrsis_engine.data.expressions`,
as RefSegRS and RISBench built theirs from existing annotations. Masks are H×W class indices
[row, col]; records use the common dict format of :mod:`rrsis_engine.data`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from rrsis_engine.data.expressions import SceneObject, distractors, realize, union_mask
from rrsis_engine.data.synthetic import KIND_WEIGHTS, KINDS, ExpressionSampler
from rrsis_engine.errors import DataError

#: Dubai aerial class indices (0 = unlabeled is never a target)
DUBAI_CLASSES = {1: "building", 2: "land", 3: "road", 4: "vegetation", 5: "water"}
#: components smaller than this fraction of the image are annotation fragments, ignored entirely
MIN_OBJECT_FRAC = 0.0003
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def components(class_mask: np.ndarray, classes: dict[int, str] = DUBAI_CLASSES,
               min_frac: float = MIN_OBJECT_FRAC) -> list[SceneObject]:
    """Connected components (8-connected) of every class in ``classes`` as SceneObjects."""
    cm = np.asarray(class_mask)
    if cm.ndim != 2:
        raise DataError(f"A class mask must be H×W class indices, got shape {cm.shape}.")
    min_px = max(30, int(min_frac * cm.size))
    objs: list[SceneObject] = []
    struct = np.ones((3, 3), bool)
    for idx, name in classes.items():
        lab, n = ndimage.label(cm == idx, structure=struct)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        for comp in np.flatnonzero(sizes >= min_px):
            if comp == 0:
                continue
            objs.append(SceneObject(len(objs), name, lab == comp))
    return objs


def expressions_for_image(image: np.ndarray, class_mask: np.ndarray, seed: int, n: int = 12,
                          classes: dict[int, str] = DUBAI_CLASSES, id_prefix: str = "img",
                          image_path: str | None = None, followup_rate: float = 0.35) -> list[dict]:
    """Up to ``n`` distinct referring records (common dict format) for one image and its class mask."""
    if image.shape[:2] != class_mask.shape[:2]:
        raise DataError(f"{id_prefix}: image {image.shape[:2]} and mask {class_mask.shape[:2]} sizes differ.")
    objs = components(class_mask, classes)
    hw = class_mask.shape[:2]
    rng = np.random.default_rng(seed)
    sampler = ExpressionSampler(objs, hw, rng)
    out: list[dict] = []
    seen: set[tuple] = set()
    p = KIND_WEIGHTS / KIND_WEIGHTS.sum()
    for _attempt in range(n * 8):
        if len(out) >= n:
            break
        kind = str(rng.choice(KINDS, p=p))
        prop = sampler.propose(kind)
        if prop is None:
            continue
        spec, targets = prop
        referred = list(targets)  # for an ambiguous expression: every object it matches
        amb = kind == "ambiguous"
        follow = fmask = candidates = None
        if amb:
            candidates = union_mask(targets, hw)
            target = targets[int(rng.integers(len(targets)))]
            follow = sampler.disambiguate(targets, target)
            if follow is None:
                continue
            targets = [target]
            fmask = target.mask
        elif kind != "class" and rng.random() < followup_rate:
            fol = sampler.correction(targets[0])
            if fol:
                follow = fol[0]
                fmask = union_mask(fol[1], hw)
        key = (kind, tuple(sorted(o.id for o in targets)), repr(sorted(spec.items())))
        if key in seen:
            continue
        seen.add(key)
        mask = union_mask(targets, hw)
        rec = {
            "id": f"{id_prefix}-{len(out):03d}",
            "image": image,
            "mask": mask,
            "expression": realize(spec, rng),
            "ambiguous": amb,
            "followup": follow,
            "followup_mask": fmask,
            "kind": kind,
        }
        if candidates is not None:
            rec["candidates_mask"] = candidates
        rec["distractors_mask"] = union_mask(distractors(objs, referred), hw)
        if image_path is not None:
            rec["image_path"] = image_path
        out.append(rec)
    return out


def _match(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def iter_image_mask_pairs(images_dir: str | Path, masks_dir: str | Path) -> Iterator[tuple[Path, Path]]:
    """(image, mask) pairs matched by file stem; DataError naming what is missing."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not d.is_dir():
            raise DataError(f"The {what} folder {d} does not exist: pass --{what} pointing at a folder of files.")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}.")
    for img in images:
        m = masks.get(img.stem)
        if m is None:
            raise DataError(f"No class mask for {img.name}: expected {masks_dir / (img.stem + '.png')}.")
        yield img, m


def records_from_folders(images_dir: str | Path, masks_dir: str | Path, per_image: int = 12, seed: int = 0,
                         classes: dict[int, str] = DUBAI_CLASSES, include: Sequence[str] | None = None,
                         exclude: Sequence[str] = ()) -> Iterator[dict]:
    """Records for every image whose file name matches ``include`` (default all) and not ``exclude``."""
    for i, (img_path, mask_path) in enumerate(iter_image_mask_pairs(images_dir, masks_dir)):
        if include is not None and not _match(img_path.name, include):
            continue
        if _match(img_path.name, exclude):
            continue
        image = np.asarray(Image.open(img_path).convert("RGB"))
        cm = np.asarray(Image.open(mask_path))
        if cm.ndim == 3:
            raise DataError(f"{mask_path} is an RGB image; class masks must be single-channel class indices.")
        yield from expressions_for_image(image, cm, seed=seed * 100_003 + i, n=per_image, classes=classes,
                                         id_prefix=img_path.stem, image_path=str(img_path))
