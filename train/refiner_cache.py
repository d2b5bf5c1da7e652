"""``rrsis train --train-only boundary_refiner --refiner-cache N``: the boundary refiner trained on the engine's turns.

The refiner redraws the outline of the mask the engine shows (:mod:`rrsis_engine.model.boundary_refiner`), so it
learns from those masks, not from the decoder's: the run first plays the first N records of ``--source`` (as the
sources give them, unaugmented) through the engine with the run's frozen model — the text turn and up to
:data:`CLICKS` standard simulated clicks (:func:`rrsis_engine.metrics.next_click`), the refiner off — and stores every
non-empty turn's mask with its image and ground truth in ``OUT/refiner-cache.pt`` (kept for ``--resume``). On two
CPU cores about 0.5 s per synthetic record. Each training step then draws ``--batch`` crops of :data:`CROP` px
centred on outline-band pixels of random turns (flipped and rotated), and minimises the binary cross-entropy over
the band's pixels (:func:`cached_refiner_loss`).

Storage: each distinct image once (uint8 H×W×3); each turn's mask and ground truth as packed bits.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rrsis_train.ranker_cache import matching_cache, save_fields

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model.boundary_refiner import outline_band, refiner_input
from rrsis_engine.model.checkpoint import weights_hash

log = logging.getLogger("rrsis.train")

#: standard simulated clicks played after each record's text turn
CLICKS = 2
#: side of the training crops, px
CROP = 64
#: what must match for a cache file to be reused (else the run refuses it and says how to rebuild)
CACHE_KEYS = ("records", "sources", "seed", "scene_size", "parent_hash")


@dataclass
class RefinerCache:
    """The engine's turns: ``images`` (distinct, uint8 H×W×3 tensors), and per turn the index of its image, its mask
    and its ground truth (packed bits of the H×W bool arrays, row-major)."""

    images: list[torch.Tensor]
    image_index: torch.Tensor  # T int64
    masks: list[torch.Tensor]  # T × packed uint8
    targets: list[torch.Tensor]  # T × packed uint8
    meta: dict

    def __len__(self) -> int:
        return len(self.masks)

    def turn(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Turn ``t`` → (image H×W×3 uint8, mask H×W bool, ground truth H×W bool)."""
        image = self.images[int(self.image_index[t])].numpy()
        h, w = image.shape[:2]

        def unpack(bits: torch.Tensor) -> np.ndarray:
            return np.unpackbits(bits.numpy(), count=h * w).reshape(h, w).astype(bool)

        return image, unpack(self.masks[t]), unpack(self.targets[t])

    def save(self, path: Path) -> None:
        save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> RefinerCache:
        return cls(**torch.load(path, weights_only=True))


def cache_meta(trainer) -> dict:
    """What the cache of ``trainer``'s run depends on (:data:`CACHE_KEYS`)."""
    o = trainer.opts
    return {"records": int(o.refiner_cache), "sources": list(o.sources), "seed": o.seed, "scene_size": o.scene_size,
            "parent_hash": weights_hash(trainer.model, skip=("boundary_refiner.",))}


def build_cache(trainer, records: int) -> RefinerCache:
    """The engine's turns on the first ``records`` records (with a non-empty mask) of ``trainer``'s sources, played
    with its frozen model and the boundary refiner off."""
    from tqdm.auto import tqdm

    from rrsis_engine import metrics as M
    from rrsis_engine.predictor import Predictor
    from rrsis_engine.session import RefinementSession

    model = trainer.model
    was_training = model.training
    predictor = Predictor(model, device=str(trainer.device), disk_cache=False, zoom_in=True, boundary_refine=False)
    images: list[torch.Tensor] = []
    seen: dict[str, int] = {}  # image digest -> index in images
    index, masks, targets = [], [], []
    bar = tqdm(total=records, disable=not trainer.opts.progress, unit="record", dynamic_ncols=True,
               desc="refiner cache")
    n = done = 0
    try:
        while done < records:
            rec, _ = trainer.data.get(n)
            n += 1
            gt = np.asarray(rec["mask"], dtype=bool)
            if not gt.any():
                continue
            pixels = np.ascontiguousarray(np.asarray(rec["image"])[..., :3], dtype=np.uint8)
            digest = hashlib.sha1(pixels.tobytes()).hexdigest()
            if digest not in seen:
                seen[digest] = len(images)
                images.append(torch.from_numpy(pixels.copy()))
            session = RefinementSession(predictor)
            session.set_image(pixels)
            mask = session.text(rec["expression"]).mask
            for k in range(CLICKS + 1):
                if k:
                    click = M.next_click(mask, gt)
                    if click is None:
                        break
                    mask = session.click(click[0], click[1], positive=bool(click[2])).mask
                if mask.any():
                    index.append(seen[digest])
                    masks.append(torch.from_numpy(np.packbits(mask)))
                    targets.append(torch.from_numpy(np.packbits(gt)))
            done += 1
            bar.update(1)
    finally:
        bar.close()
        model.train(was_training)
    return RefinerCache(images, torch.tensor(index, dtype=torch.int64), masks, targets, meta=cache_meta(trainer))


def load_or_build(trainer) -> RefinerCache:
    """``OUT/refiner-cache.pt`` when it was built for this run's settings (:data:`CACHE_KEYS`), else a new cache, saved
    there. A cache built for other settings is refused (it would silently train on other turns)."""
    path = Path(trainer.opts.out) / "refiner-cache.pt"
    cache = matching_cache(path, RefinerCache.load, cache_meta(trainer), CACHE_KEYS)
    if cache is not None:
        log.info("refiner cache: %d turns from %s", len(cache), path)
    else:
        cache = build_cache(trainer, int(trainer.opts.refiner_cache))
        if not len(cache):
            raise CheckpointError("The refiner cache holds no turn with a mask: the model segmented nothing on the "
                                  "sources' records; train the mask model first.")
        cache.save(path)
        log.info("refiner cache: %d turns of %d images written to %s", len(cache), len(cache.images), path)
    return cache


def crop_batch(cache: RefinerCache, rng: np.random.Generator, batch: int,
               crop: int = CROP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch`` crops of ``crop`` px, each centred (as far as the image allows) on a random outline-band pixel of a
    random turn (one with an outline), randomly flipped and rotated → (input B×4×crop×crop, target B×1×crop×crop, band B×1×crop×crop,
    float32). An image smaller than the crop is padded (mask −1, target and band 0 there)."""
    xs, ys, bands = [], [], []
    while len(xs) < batch:
        image, mask, gt = cache.turn(int(rng.integers(len(cache))))
        band = outline_band(mask)
        rows, cols = np.nonzero(band)
        if not len(rows):  # a mask over the whole image has no outline to redraw
            continue
        k = int(rng.integers(len(rows)))
        h, w = mask.shape
        r0 = int(np.clip(rows[k] - crop // 2, 0, max(h - crop, 0)))
        c0 = int(np.clip(cols[k] - crop // 2, 0, max(w - crop, 0)))
        window = (slice(r0, r0 + crop), slice(c0, c0 + crop))
        x = refiner_input(image[window], mask[window])[0]
        y = torch.from_numpy(gt[window].astype(np.float32))[None]
        b = torch.from_numpy(band[window].astype(np.float32))[None]
        pad = (0, crop - x.shape[2], 0, crop - x.shape[1])
        if any(pad):
            x = torch.cat([F.pad(x[:3], pad), F.pad(x[3:], pad, value=-1.0)])
            y, b = F.pad(y, pad), F.pad(b, pad)
        turns = int(rng.integers(4))
        flip = bool(rng.integers(2))
        x, y, b = (torch.rot90(t.flip(-1) if flip else t, turns, (1, 2)) for t in (x, y, b))
        xs.append(x)
        ys.append(y)
        bands.append(b)
    return torch.stack(xs), torch.stack(ys), torch.stack(bands)


def cached_refiner_loss(model, cache: RefinerCache, rng: np.random.Generator, batch: int, device) -> torch.Tensor:
    """Binary cross-entropy of the refiner's logits against the ground truth over the outline band of ``batch``
    crops (:func:`crop_batch`)."""
    x, y, band = (t.to(device) for t in crop_batch(cache, rng, batch))
    refiner = model.boundary_refiner
    logits = refiner(x.to(next(refiner.parameters()).dtype)).float()
    return (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * band).sum() / band.sum().clamp(min=1.0)
