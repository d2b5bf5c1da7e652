"""Component ranker: which of the text turn's candidate regions the sentence refers to (MAttNet-style ranking of
region proposals, here the model's own).

Text-only masks of the shipped models mostly fail on look-alikes: for "the westernmost building" the probability
map covers several buildings, and 52 of 100 validation scenes put most of the mask on objects the sentence rules
out (``scripts/diagnose_lookalikes.py``; docs/training.md, "Choosing among look-alikes"). The ranker takes the
connected regions of the text turn's probability map at a low threshold (:func:`find_components`) and scores each
against the sentence, the regions seeing each other (a transformer over regions with cross-attention to the text tokens), so "westernmost",
"the red one" and "next to the pool" become comparisons between regions. The selected regions become the turn's
mask (:func:`select_components`).

Grid: everything here is on the model's low-res logit grid, g = S/4 cells a side, model frame (row, col); the
valid (unpadded) part of an image is its top-left ``extent`` = (rows, cols) cells.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

#: A candidate region is a connected part of p > COMPONENT_THRESHOLD (p = σ(text-turn logits)); low, so that the
#: target is a region even where the model gave it to a look-alike (the best single region, chosen with the ground
#: truth, scores mIoU 0.555 at 0.1 and 0.336 at 0.5 on 100 validation scenes, against 0.351 for the mask itself).
COMPONENT_THRESHOLD = 0.1
#: At most this many regions (the largest probability mass first); smaller than MIN_COMPONENT_CELLS are noise.
MAX_COMPONENTS = 12
MIN_COMPONENT_CELLS = 3
#: Region features besides the pooled tokens: centroid x, y (in [−1, 1]), log area, bbox width, height, mean and max
#: probability, share of the probability mass, 4 × (centroid x, y and log area minus their mass-weighted mean
#: over the regions) (MAttNet's relative location) and the region's rank among the image's regions by centroid x, y
#: and area, scaled to [−1, 1] ("the westernmost" is rank −1 in x whatever the other regions' spread; docs/training.md,
#: "Stop 28").
N_GEOMETRY = 14
#: Rankers trained before the rank features read the first 11; :func:`upgrade_state` loads them unchanged.
N_GEOMETRY_BEFORE_RANKS = 11
#: Context around each region (config ``ranker_context``; "the building left of the pool" is about what lies beside
#: it, which the region's own features cannot tell): the fused tokens and V1 averaged over the cells around the region
#: in four sectors — west, east, north, south of its centroid (a cell's dominant direction), in the model frame — each
#: cell weighted by exp(−(its distance from the region's edge) / τ), τ = max(2, the region's radius) S/16 cells, and the
#: log of each sector's total weight (empty sector: 0). MAttNet's relationship module, with sectors for objects.
CONTEXT_SECTORS = ("west", "east", "north", "south")
#: A selected region's logits are shifted up until its peak is at least this; outside every selected region they are
#: lowered to at most its negative.
SELECTED_LOGIT = 1.0


def find_components(prob: np.ndarray, valid: np.ndarray | None = None, threshold: float = COMPONENT_THRESHOLD,
                    max_components: int = MAX_COMPONENTS, min_cells: int = MIN_COMPONENT_CELLS) -> np.ndarray:
    """Candidate regions of one probability map: prob g×g float (model frame), valid g×g bool (unpadded cells) →
    K×g×g bool, 4-connected regions of prob > threshold, the largest probability mass first (K may be 0)."""
    above = prob > threshold
    if valid is not None:
        above &= valid
    labels, n = ndimage.label(above)
    if n == 0:
        return np.zeros((0, *prob.shape), dtype=bool)
    idx = np.arange(1, n + 1)
    cells = ndimage.sum(np.ones_like(prob), labels, idx)
    mass = ndimage.sum(prob, labels, idx)
    keep = [i for i in np.argsort(-mass) if cells[i] >= min_cells][:max_components]
    return np.stack([labels == idx[i] for i in keep]) if keep else np.zeros((0, *prob.shape), dtype=bool)


def selected_cells(logits: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """What each region would add to the mask if :func:`select_components` chose it: logits g×g, regions K×g×g bool
    (disjoint) → K×g×g bool, the region's cells above 0 once all of them are selected."""
    if not len(regions):
        return regions.astype(bool)
    k = len(regions)
    out = select_components(torch.from_numpy(np.asarray(logits, np.float32))[None, None],
                            torch.from_numpy(regions), torch.ones(k))
    return regions & (out[0, 0] > 0).numpy()


def best_selection(cells: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ranker's training labels: which regions to select so that the mask has the highest IoU with the target.
    cells K×g×g bool (disjoint: :func:`selected_cells`), target g×g bool → K bool. Adding a region with a cells in
    the target out of n raises the IoU exactly when a / n > IoU / (1 + IoU), so the best set is the regions with the
    largest inside shares, taken in that order while the IoU rises (empty when no region touches the target)."""
    inside = (cells & target).sum((1, 2)).astype(np.float64)
    size = cells.sum((1, 2)).astype(np.float64)
    chosen = np.zeros(len(cells), dtype=bool)
    inter, union, best = 0.0, float(target.sum()), 0.0
    for k in np.argsort(-(inside / np.maximum(size, 1)), kind="stable"):
        if inside[k] == 0:
            break
        iou = (inter + inside[k]) / (union + size[k] - inside[k])
        if iou <= best:
            break
        chosen[k], inter, union, best = True, inter + inside[k], union + size[k] - inside[k], iou
    return chosen


def stack_components(components: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample K_i×g×g bool arrays → padded B×K×g×g float and B×K bool (True = a real region), K = max K_i ≥ 1."""
    k = max(1, max(len(c) for c in components))
    g = components[0].shape[-2:]
    out = torch.zeros(len(components), k, *g, device=device)
    valid = torch.zeros(len(components), k, dtype=torch.bool, device=device)
    for i, c in enumerate(components):
        if len(c):
            out[i, :len(c)] = torch.from_numpy(c).to(device=device, dtype=out.dtype)
            valid[i, :len(c)] = True
    return out, valid


def context_width(dim: int, v1_dim: int) -> int:
    """Numbers per region of :meth:`ComponentRanker.context`, flattened: each sector's vd mean, V1 mean and weight."""
    return len(CONTEXT_SECTORS) * (dim + v1_dim + 1)


class ComponentRanker(nn.Module):
    """Scores candidate regions against the sentence.

    Each region: the fused S/16 tokens and the stride-4 features V1 averaged over it, its geometry
    (:data:`N_GEOMETRY` numbers) and, with ``context``, the same features around it (:meth:`context`); the regions
    attend to each other and to the text tokens (pre-norm transformer decoder layers); a logit per region (> 0: the
    sentence refers to it): the inner product of the region's embedding with the sentence's (its first text token),
    plus a per-region bias (MAttNet-style matching)."""

    def __init__(self, dim: int, v1_dim: int, hidden: int = 128, heads: int = 4, layers: int = 2,
                 context: bool = False):
        super().__init__()
        self.context_on = context
        self.vd_norm = nn.LayerNorm(dim)
        self.v1_norm = nn.LayerNorm(v1_dim)
        width = dim + v1_dim + N_GEOMETRY + (context_width(dim, v1_dim) if context else 0)
        self.region_in = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.text_in = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden))
        self.sentence = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden))
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True, norm_first=True)
            for _ in range(layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.match = nn.Linear(hidden, hidden)
        self.bias = nn.Linear(hidden, 1)

    @staticmethod
    def geometry(regions: torch.Tensor, region_valid: torch.Tensor, prob: torch.Tensor,
                 extent: torch.Tensor) -> torch.Tensor:
        """regions B×K×g×g (0/1), region_valid B×K, prob B×1×g×g, extent B×2 (valid rows, cols) → B×K×N_GEOMETRY
        (padding regions: rank 0, their other features meaningless)."""
        b, k, g, _ = regions.shape
        rows = torch.arange(g, device=regions.device, dtype=regions.dtype) + 0.5
        area = regions.sum((-1, -2)).clamp(min=1.0)  # B×K
        h, w = extent[:, 0:1].to(regions.dtype), extent[:, 1:2].to(regions.dtype)  # B×1
        cy = (regions.sum(-1) * rows).sum(-1) / area / h
        cx = (regions.sum(-2) * rows).sum(-1) / area / w
        any_row, any_col = regions.amax(-1), regions.amax(-2)  # B×K×g
        height = any_row.sum(-1) / h
        width = any_col.sum(-1) / w
        log_area = torch.log(area / (h * w))
        p = prob.expand(-1, k, -1, -1) * regions
        mass = p.sum((-1, -2))
        mean_p = mass / area
        max_p = p.amax((-1, -2))
        share = mass / mass.sum(1, keepdim=True).clamp(min=1e-6)
        rel = [4 * (v - (v * share).sum(1, keepdim=True)) for v in (cx, cy, log_area)]  # ×4: about unit scale
        n = region_valid.sum(1, keepdim=True).to(regions.dtype)
        ranks = [(2 * _rank(v, region_valid) / (n - 1).clamp(min=1) - 1).masked_fill(~region_valid | (n < 2), 0.0)
                 for v in (cx, cy, log_area)]
        return torch.stack([2 * cx - 1, 2 * cy - 1, log_area, width, height, mean_p, max_p, share, *rel, *ranks],
                           dim=-1)

    @staticmethod
    def context(coarse: torch.Tensor, vd: torch.Tensor, v1: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
        """What lies around each region (:data:`CONTEXT_SECTORS`): coarse B×K×c×c (each region's cover of the S/16
        cells, c = g/4), vd B×d×c×c, v1 B×d/8×g×g, extent B×2 (valid rows, cols of the g grid) → B×K×4×(d + d/8 + 1):
        per sector the weighted means of vd and of V1 (pooled to the c grid) and log(1 + total weight). Padding cells
        and the region's own cells weigh nothing."""
        c, g = coarse.shape[-1], v1.shape[-1]
        centers = torch.arange(c, device=coarse.device, dtype=coarse.dtype) + 0.5
        area = coarse.sum((-1, -2)).clamp(min=1e-6)  # B×K, in S/16 cells
        cy = (coarse.sum(-1) * centers).sum(-1) / area
        cx = (coarse.sum(-2) * centers).sum(-1) / area
        radius = torch.sqrt(area / torch.pi)
        dy = centers.view(1, 1, c, 1) - cy[..., None, None]  # B×K×c×1
        dx = centers.view(1, 1, 1, c) - cx[..., None, None]  # B×K×1×c
        edge = (torch.sqrt(dy ** 2 + dx ** 2) - radius[..., None, None]).clamp(min=0)
        tau = radius.clamp(min=2.0)[..., None, None]
        limit = torch.ceil(extent.to(coarse.dtype) * c / g)  # valid S/16 rows, cols
        valid = (centers.view(1, c, 1) < limit[:, 0, None, None]) & (centers.view(1, 1, c) < limit[:, 1, None, None])
        weight = torch.exp(-edge / tau) * (1 - coarse) * valid[:, None].to(coarse.dtype)  # B×K×c×c
        across = dx.abs() >= dy.abs()  # east–west is the dominant direction
        sectors = torch.stack([across & (dx < 0), across & (dx > 0), ~across & (dy < 0), ~across & (dy > 0)], dim=2)
        w = weight[:, :, None] * sectors.to(coarse.dtype)  # B×K×4×c×c
        mass = w.sum((-1, -2))  # B×K×4
        v1c = F.adaptive_avg_pool2d(v1, (c, c))
        scale = mass.clamp(min=1e-6)[..., None]
        return torch.cat([torch.einsum("bksyx,bdyx->bksd", w, vd) / scale,
                          torch.einsum("bksyx,bdyx->bksd", w, v1c) / scale, torch.log1p(mass)[..., None]], dim=-1)

    @classmethod
    def region_features(cls, regions: torch.Tensor, region_valid: torch.Tensor, prob: torch.Tensor, vd: torch.Tensor,
                        v1: torch.Tensor, extent: torch.Tensor, context: bool = False) -> tuple[torch.Tensor, ...]:
        """What the ranker reads of each region, without parameters (so it can be computed once and cached:
        ``rrsis train --ranker-cache``): regions B×K×g×g (0/1, from :func:`stack_components`), region_valid B×K,
        prob B×1×g×g (σ of the turn's logits), vd B×d×(g/4)×(g/4) fused tokens, v1 B×d/8×g×g, extent B×2 →
        (vd averaged over each region B×K×d, V1 averaged B×K×d/8, geometry B×K×N_GEOMETRY, and with ``context``
        :meth:`context` B×K×4×(d + d/8 + 1), else None), in vd's dtype."""
        regions = regions.to(vd.dtype)
        area = regions.sum((-1, -2)).clamp(min=1.0)[..., None]
        pooled_v1 = torch.einsum("bkhw,bchw->bkc", regions, v1) / area
        coarse = F.adaptive_avg_pool2d(regions, vd.shape[-2:])
        pooled_vd = torch.einsum("bkhw,bchw->bkc", coarse, vd) / coarse.sum((-1, -2)).clamp(min=1e-6)[..., None]
        geo = cls.geometry(regions.float(), region_valid, prob.float(), extent).to(vd.dtype)
        around = cls.context(coarse, vd, v1, extent) if context else None
        return pooled_vd, pooled_v1, geo, around

    def score(self, pooled_vd: torch.Tensor, pooled_v1: torch.Tensor, geo: torch.Tensor, around: torch.Tensor | None,
              region_valid: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor) -> torch.Tensor:
        """Region features (:meth:`region_features`; ``around`` None unless the ranker reads the context) and the text
        tokens B×L×d with txt_mask B×L (True = a token) → logits B×K (padding regions: −inf)."""
        parts = [self.vd_norm(pooled_vd), self.v1_norm(pooled_v1), geo]
        if self.context_on:
            dim = pooled_vd.shape[-1]
            parts += [self.vd_norm(around[..., :dim]).flatten(2), self.v1_norm(around[..., dim:-1]).flatten(2),
                      around[..., -1]]
        x = self.region_in(torch.cat(parts, dim=-1))
        memory = self.text_in(txt)
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask=~region_valid, memory_key_padding_mask=~txt_mask)
        x = self.out_norm(x)
        score = (self.match(x) * self.sentence(txt[:, :1])).sum(-1) / x.shape[-1] ** 0.5 + self.bias(x)[..., 0]
        return score.masked_fill(~region_valid, float("-inf"))

    def forward(self, regions: torch.Tensor, region_valid: torch.Tensor, prob: torch.Tensor, vd: torch.Tensor,
                v1: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
        """regions, region_valid, prob, vd, v1, extent as :meth:`region_features`; txt, txt_mask as :meth:`score` →
        logits B×K (padding regions: −inf)."""
        return self.score(*self.region_features(regions, region_valid, prob, vd, v1, extent, self.context_on),
                          region_valid, txt, txt_mask)


def _rank(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """B×K values → each valid entry's rank among its row's valid entries (0 = smallest), as float; ties by index."""
    order = values.masked_fill(~valid, float("inf")).argsort(dim=1, stable=True)
    return order.argsort(dim=1).to(values.dtype)


def upgrade_state(state: dict[str, torch.Tensor], context: bool = False) -> dict[str, torch.Tensor]:
    """A checkpoint's weights with a component ranker saved before the rank features (first layer reading
    :data:`N_GEOMETRY_BEFORE_RANKS` geometry numbers), or without the context (:meth:`ComponentRanker.context`) when
    ``context`` asks for it, widened with zero weights for the new inputs (both are appended after the old ones): the
    ranker's scores stay exactly what they were. Other states are returned unchanged."""
    key = "component_ranker.region_in.0.weight"
    weight = state.get(key)
    if weight is None:
        return state
    old_in = weight.shape[1]
    dim, v1_dim = (state[f"component_ranker.{n}_norm.weight"].shape[0] for n in ("vd", "v1"))
    if old_in not in (dim + v1_dim + N_GEOMETRY_BEFORE_RANKS, dim + v1_dim + N_GEOMETRY):
        return state  # already with the context, or not a ranker this function knows
    new_in = dim + v1_dim + N_GEOMETRY + (context_width(dim, v1_dim) if context else 0)
    extra = weight.new_zeros(weight.shape[0], new_in - old_in)
    return {**state, key: torch.cat([weight, extra], dim=1)}


def select_components(logits: torch.Tensor, regions: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The turn's mask made of the regions the sentence refers to: logits 1×1×g×g, regions K×g×g bool (K ≥ 1,
    disjoint), scores K (ranker logits) → logits 1×1×g×g. Each selected region (every one scoring > 0, or the best one
    when none does) keeps its logits' shape, shifted up until its peak is ≥ :data:`SELECTED_LOGIT`; everything else is
    lowered to ≤ −SELECTED_LOGIT. (Raising a region to a flat ≥ 1 instead made a prior unlike any the decoder was trained
    with: one-click mIoU on real validation images fell by 0.077; docs/training.md.)"""
    chosen = scores > 0
    if not chosen.any():
        chosen = scores == scores.max()
    out = logits.clamp(max=-SELECTED_LOGIT)
    plane, out_plane = logits[0, 0], out[0, 0]
    for region in regions[chosen]:
        out_plane[region] = plane[region] + (SELECTED_LOGIT - plane[region].max()).clamp(min=0)
    return out
