"""``rrsis train --train-only component_ranker --ranker-cache N``: the component ranker trained on cached inputs.

Trained alone, the ranker reads only what a frozen model computes: the text turn's candidate regions, the fused
tokens and V1 averaged over each region, their geometry and the text tokens
(:meth:`rrsis_engine.model.component_ranker.ComponentRanker.region_features`). Computing them takes the image
encoder, TWGM and the decoder (≈ 0.1–0.3 s per text turn on a CPU core); scoring them takes the ranker alone (well
under a millisecond). So the run first computes the inputs and labels of N text turns drawn from ``--source`` exactly
as training draws them (same samples, augmentation and labels as :meth:`rrsis_train.trainer.TrainStep.component_ranker_loss`),
stores them in ``OUT/ranker-cache.pt`` (kept for ``--resume``), and then trains for ``--steps`` steps on batches of
``--batch`` turns drawn from the cache. On two CPU cores (stage 11 of the shipped model): 20 000 turns cached in
56 min — about what one online pass over them takes — then 16 epochs over them in 6 min.

Storage: every region's features in flat tensors (``region_*``, regions of turn i at ``region_start[i]`` …
``region_start[i + 1]``), every turn's text tokens likewise (``token_*``); features in float16.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model.checkpoint import weights_hash
from rrsis_engine.model.component_ranker import ComponentRanker

log = logging.getLogger("rrsis.train")

#: what must match for a cache file to be reused (else the run refuses it and says how to rebuild)
CACHE_KEYS = ("turns", "sources", "seed", "image_size", "scene_size", "expressions", "init", "parent_hash", "context")
#: what must match for another run's cache to be appended (``--ranker-cache-also``): the same frozen model and
#: data; its seed must differ (the same seed draws the same turns)
APPEND_KEYS = ("sources", "image_size", "scene_size", "expressions", "parent_hash", "context")


@dataclass
class RankerCache:
    """Cached ranker inputs of ``len(self)`` text turns (see the module docstring for the layout)."""

    region_vd: torch.Tensor  # R×d float16: fused tokens averaged over each region
    region_v1: torch.Tensor  # R×d/8 float16: V1 averaged over each region
    region_geometry: torch.Tensor  # R×N_GEOMETRY float32
    region_label: torch.Tensor  # R bool: in the selection with the best IoU
    region_start: torch.Tensor  # T+1 int64
    token: torch.Tensor  # L_total×d float16: each turn's text tokens (its mask's True part)
    token_start: torch.Tensor  # T+1 int64
    meta: dict
    region_context: torch.Tensor | None = None  # R×4×(d + d/8 + 1) float16: around each region (ranker_context)

    def __len__(self) -> int:
        return len(self.region_start) - 1

    def batch(self, turns, device) -> tuple[torch.Tensor, ...]:
        """Turns (indices) → padded (pooled vd B×K×d, pooled V1 B×K×d/8, geometry B×K×N_GEOMETRY, context
        B×K×4×(d + d/8 + 1) or None, region_valid B×K, text tokens B×L×d, text mask B×L, labels B×K), float32 on
        ``device``."""
        turns = [int(t) for t in turns]
        ks = [int(self.region_start[t + 1] - self.region_start[t]) for t in turns]
        ls = [int(self.token_start[t + 1] - self.token_start[t]) for t in turns]
        b, k, n_tok = len(turns), max(ks), max(ls)
        vd = torch.zeros(b, k, self.region_vd.shape[1])
        v1 = torch.zeros(b, k, self.region_v1.shape[1])
        geo = torch.zeros(b, k, self.region_geometry.shape[1])
        around = None if self.region_context is None else torch.zeros(b, k, *self.region_context.shape[1:])
        valid = torch.zeros(b, k, dtype=torch.bool)
        labels = torch.zeros(b, k)
        tok = torch.zeros(b, n_tok, self.token.shape[1])
        tmask = torch.zeros(b, n_tok, dtype=torch.bool)
        for i, t in enumerate(turns):
            r0, t0 = int(self.region_start[t]), int(self.token_start[t])
            vd[i, :ks[i]] = self.region_vd[r0:r0 + ks[i]].float()
            v1[i, :ks[i]] = self.region_v1[r0:r0 + ks[i]].float()
            geo[i, :ks[i]] = self.region_geometry[r0:r0 + ks[i]]
            if around is not None:
                around[i, :ks[i]] = self.region_context[r0:r0 + ks[i]].float()
            labels[i, :ks[i]] = self.region_label[r0:r0 + ks[i]].float()
            valid[i, :ks[i]] = True
            tok[i, :ls[i]] = self.token[t0:t0 + ls[i]].float()
            tmask[i, :ls[i]] = True
        return tuple(x if x is None else x.to(device) for x in (vd, v1, geo, around, valid, tok, tmask, labels))

    def save(self, path: Path) -> None:
        save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> RankerCache:
        return cls(**torch.load(path, weights_only=False))

    @classmethod
    def concat(cls, caches: list[RankerCache]) -> RankerCache:
        """The turns of ``caches`` one after the other (meta: the first one's, with the total number of turns and
        every part's seed under ``seeds``)."""
        meta = {**caches[0].meta, "turns": sum(len(c) for c in caches), "seeds": [c.meta["seed"] for c in caches]}
        around = None if caches[0].region_context is None else torch.cat([c.region_context for c in caches])
        return cls(**{k: torch.cat([getattr(c, k) for c in caches]) for k in
                      ("region_vd", "region_v1", "region_geometry", "region_label", "token")}, region_context=around,
                   **{k: starts(torch.cat([getattr(c, k).diff() for c in caches])) for k in
                      ("region_start", "token_start")}, meta=meta)


def starts(counts) -> torch.Tensor:
    """Per-turn counts (T) → offsets T+1 int64: 0, c0, c0 + c1, …"""
    return torch.tensor(np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]), dtype=torch.int64)


def cache_meta(trainer) -> dict:
    """What the cache of ``trainer``'s run depends on (:data:`CACHE_KEYS`)."""
    o = trainer.opts
    return {"turns": int(o.ranker_cache), "sources": list(o.sources), "seed": o.seed, "image_size": trainer.size,
            "scene_size": o.scene_size, "expressions": o.expressions, "init": o.init,
            "parent_hash": weights_hash(trainer.model, skip=("component_ranker.",)),  # what the inputs came from
            "context": bool(trainer.model.config.ranker_context)}


def build_cache(trainer, turns: int) -> RankerCache:
    """The ranker inputs and labels of the first ``turns`` definite text turns of ``trainer``'s sample stream
    (micro-batch after micro-batch, as training draws them), computed by its frozen model."""
    from rrsis_train.trainer import definite_rows, ranker_examples
    from tqdm.auto import tqdm

    model, step_module = trainer.model, trainer.step_module
    parts = {k: [] for k in ("vd", "v1", "geo", "around", "label", "k", "tok", "l")}
    context = bool(model.config.ranker_context)
    n, batch_no = 0, 0
    was_training = model.training
    model.eval()
    bar = tqdm(total=turns, disable=not trainer.opts.progress, unit="turn", dynamic_ncols=True,
               desc="ranker cache")
    try:
        with torch.inference_mode(), trainer.autocast:
            while n < turns:
                samples = trainer.micro_batch(batch_no, 0)
                batch_no += 1
                text, _ = trainer._texts(samples)
                _, target, feats, tok, tmask, vd, _, _, low, _, _ = step_module.text_turn(samples, text)
                ex = ranker_examples(low, target, samples, definite_rows(samples))
                if ex is None:
                    continue
                idx = torch.tensor(ex.rows, device=low.device)
                prob = torch.sigmoid(low[idx].float())
                pooled_vd, pooled_v1, geo, around = ComponentRanker.region_features(
                    ex.regions, ex.region_valid, prob, vd[idx].float(), feats.v1[idx].float(), ex.extents, context)
                for i, j in enumerate(ex.rows[:turns - n]):
                    k = int(ex.region_valid[i].sum())
                    parts["vd"].append(pooled_vd[i, :k].half().cpu())
                    parts["v1"].append(pooled_v1[i, :k].half().cpu())
                    parts["geo"].append(geo[i, :k].float().cpu())
                    if context:
                        parts["around"].append(around[i, :k].half().cpu())
                    parts["label"].append(ex.labels[i, :k].bool().cpu())
                    parts["k"].append(k)
                    parts["tok"].append(tok[j][tmask[j]].half().cpu())
                    parts["l"].append(int(tmask[j].sum()))
                    n += 1
                    bar.update(1)
    finally:
        bar.close()
        model.train(was_training)

    return RankerCache(region_vd=torch.cat(parts["vd"]), region_v1=torch.cat(parts["v1"]),
                       region_geometry=torch.cat(parts["geo"]), region_label=torch.cat(parts["label"]),
                       region_start=starts(parts["k"]), token=torch.cat(parts["tok"]), token_start=starts(parts["l"]),
                       meta=cache_meta(trainer), region_context=torch.cat(parts["around"]) if context else None)


def save_fields(cache, path: Path) -> None:
    """``cache``'s dataclass fields saved to ``path`` by ``torch.save``, through a temporary file so that a killed run
    never leaves half a cache there."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({k: getattr(cache, k) for k in cache.__dataclass_fields__}, tmp)
    tmp.replace(path)


def matching_cache(path: Path, load, meta: dict, keys):
    """The cache saved at ``path`` (read by ``load``) when its ``meta`` matches this run's on ``keys``; None when there
    is none. One built with other settings is refused: training on it would silently use other data."""
    if not path.is_file():
        return None
    cache = load(path)
    stale = [k for k in keys if cache.meta.get(k) != meta[k]]
    if stale:
        raise CheckpointError(f"{path} was built with other settings ({', '.join(stale)} differ); delete it to "
                              "rebuild the cache, or give another --out.")
    return cache


def load_or_build(trainer) -> RankerCache:
    """``OUT/ranker-cache.pt`` when it was built for this run's settings (:data:`CACHE_KEYS`), else a new cache, saved
    there; then the caches of ``--ranker-cache-also`` appended (:func:`append_caches`). A cache built for other
    settings is refused (it would silently train on other data)."""
    path = Path(trainer.opts.out) / "ranker-cache.pt"
    cache = matching_cache(path, RankerCache.load, cache_meta(trainer), CACHE_KEYS)
    if cache is not None:
        log.info("ranker cache: %d text turns from %s", len(cache), path)
    else:
        cache = build_cache(trainer, int(trainer.opts.ranker_cache))
        cache.save(path)
        log.info("ranker cache: %d text turns (%d regions) written to %s", len(cache), len(cache.region_label), path)
    return append_caches(cache, trainer.opts.ranker_cache_also)


def append_caches(cache: RankerCache, paths) -> RankerCache:
    """``cache`` followed by the caches at ``paths`` (``--ranker-cache-also``: built by runs of the same frozen model
    and data with other seeds, :data:`APPEND_KEYS`); one built from another model or data, or with a seed already
    used, is refused."""
    parts = [cache]
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"--ranker-cache-also {path}: no such file (a run's OUT/ranker-cache.pt).")
        other = RankerCache.load(path)
        differ = [k for k in APPEND_KEYS if other.meta.get(k) != cache.meta.get(k)]
        if differ:
            raise CheckpointError(f"--ranker-cache-also {path} was built with other settings ({', '.join(differ)} "
                                  "differ): only caches of the same model and sources can be appended.")
        if other.meta["seed"] in [p.meta["seed"] for p in parts]:
            raise CheckpointError(f"--ranker-cache-also {path} was built with seed {other.meta['seed']}, as another "
                                  "part of this cache: it holds the same text turns; build it with another --seed.")
        parts.append(other)
        log.info("ranker cache: %d text turns appended from %s", len(other), path)
    return RankerCache.concat(parts) if len(parts) > 1 else cache


def cached_ranker_loss(model, cache: RankerCache, turns, device) -> torch.Tensor:
    """BCE of the ranker's logits on cached ``turns`` (indices) against their labels, as the online loss."""
    vd, v1, geo, around, valid, tok, tmask, labels = cache.batch(turns, device)
    ranker = model.component_ranker
    dtype = ranker.match.weight.dtype
    logits = ranker.score(vd.to(dtype), v1.to(dtype), geo.to(dtype), None if around is None else around.to(dtype),
                          valid, tok.to(dtype), tmask)
    return F.binary_cross_entropy_with_logits(logits[valid].float(), labels[valid])
