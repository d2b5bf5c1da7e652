"""The RSAM training loop (seed 003 §3.3): AdamW, frozen text encoder, the paper's loss, simulated
correction clicks and dialogue turns, gradient accumulation, deterministic seeds, bit-exact resume.

One optimisation step = ``accum`` micro-batches of ``batch`` samples on each of ``world`` ranks. Global
sample number ``n = ((step·accum + micro)·world + rank)·batch + j`` fully determines the sample (source,
item, augmentation, click/dialogue plan, click positions) — see :class:`rrsis_train.sources.MixedSource`.

Per sample, the forward pass is a short refinement session (all in the model frame, S×S input,
S/4×S/4 logits):
1. text turn: expression → mask (loss, except for ambiguous expressions, whose target is not definite);
2. dialogue turn (samples with a follow-up, ``dialogue_share``): the follow-up sentence with the first
   turn's low-res logits as the mask prior → the follow-up target;
3. click rounds (``click_share`` of samples, 1…``click_rounds`` rounds): a click sampled from the error
   region of the current prediction, all clicks so far plus the previous logits (detached) as prior.
   ``click_only_share`` of the click samples have no text at all (empty expression, no text-turn loss) and
   start from a positive click inside the target with no prior, as SAM 2 trains. (Alone they did not make a
   from-scratch decoder use clicks at CPU budgets; the click refiner, ``--click-refiner``, did: docs/training.md.)
Every turn's loss counts, weighted by the number of samples in it. With ``aux_semantic`` > 0, records that carry
a category map (synthetic scenes) add a dense category loss on the image features V_d (the semantic head).

Run directory layout (``--out``)::

    model.safetensors / model.json        latest weights (loadable by rrsis predict / load_predictor)
    checkpoints/step-0000500/             model.safetensors+json, optimizer.safetensors, trainer.json
    latest                                name of the newest complete checkpoint folder
    log.csv                               one row per logged step
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import signal
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rrsis_train.clicks import grid_to_model, sample_correction_click
from rrsis_train.ranker_cache import cached_ranker_loss, load_or_build
from rrsis_train.refiner_cache import cached_refiner_loss
from rrsis_train.refiner_cache import load_or_build as load_or_build_refiner_cache
from rrsis_train.sources import MixedSource, augment_group, build_source, parse_source
from torch import nn

from rrsis_engine import metrics as M
from rrsis_engine.data.expressions import SEMANTIC_CLASSES
from rrsis_engine.errors import CheckpointError, RRSISError
from rrsis_engine.model import ImageFeatures, build_rsam, get_config, load_checkpoint, save_checkpoint
from rrsis_engine.model import transforms as T
from rrsis_engine.model.component_ranker import (
    best_selection,
    find_components,
    selected_cells,
    stack_components,
)
from rrsis_engine.model.loss import distractor_loss, mask_iou, rsam_loss, rus_loss, semantic_loss
from rrsis_engine.model.text_encoder import CPUTextBackbone
from rrsis_engine.predictor import PRECISIONS, native_bf16

log = logging.getLogger("rrsis.train")

CSV_FIELDS = ["step", "samples", "loss", "loss_text", "loss_click", "loss_distill", "focal", "dice", "obj", "iou_l1",
              "rus", "semantic", "ambiguity", "distractor", "error", "click_gain", "click_policy", "ranker", "miou_text",
              "miou_click", "lr", "grad_norm", "samples_per_s", "elapsed_s"]
# row keys averaged over DDP ranks (a rank may lack some: (sum, count) pairs are reduced)
REDUCED_KEYS = ["loss", "loss_text", "loss_click", "loss_distill", "miou_text", "miou_click", "focal", "dice", "obj",
                "iou_l1", "rus", "semantic", "ambiguity", "distractor", "error", "click_gain", "click_policy",
                "ranker"]


@dataclass
class TrainOptions:
    """Everything that defines a run (saved in every checkpoint; ``--resume`` restores it)."""

    out: str
    config: str = "rsam-lite"
    steps: int = 1000
    batch: int = 2
    accum: int = 1
    image_size: int | None = None
    init: str | None = None  # start from this rrsis checkpoint (fine-tuning) instead of random weights
    sam2_checkpoint: str | None = None  # or initialise the image encoder etc. from an official SAM 2 .pt
    teacher: str | None = None  # distil from this (larger) rrsis checkpoint's text-turn masks
    distill_weight: float = 1.0
    # focal, dice, object BCE, IoU L1: the paper's (20, 1, 1, 1) suits fine-tuning from SAM 2; from scratch the
    # mask logits stay below zero for long with it (docs/training.md), a larger dice weight helps
    loss_weights: tuple[float, float, float, float] = (20.0, 1.0, 1.0, 1.0)
    sources: list[str] = field(default_factory=lambda: ["synth:1.0"])
    synth_reuse: int = 2
    # referring expressions per synthetic scene in a step: the image is encoded once for all of them
    expressions: int = 1
    scene_size: int | None = None  # synthetic scenes are drawn at this size (default: image_size)
    lr: float = 3e-4
    min_lr_ratio: float = 0.05
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    click_share: float = 0.5
    click_rounds: int = 3
    click_only_share: float = 0.0  # of the click samples: no text, the first click starts the session
    reset: tuple[str, ...] = ()  # with init: re-initialise these submodules (e.g. "mask_decoder")
    click_refiner: bool = False  # the local click-refinement head (added fresh to an --init checkpoint)
    boundary_refiner: bool = False  # the full-resolution outline head (added fresh to an --init checkpoint)
    twgm_input: bool = False  # LayerNorm + 2-D position for the tokens entering TWGM (added fresh to an --init one)
    twgm_pre_norm: bool = False  # pre-norm TWGM layers (an --init checkpoint without them gets a fresh TWGM)
    text_position: bool = False  # text × position term on the fused tokens (added fresh to an --init checkpoint)
    # TWGM attends to image keys/values averaged to this grid side (None: the config's or --init checkpoint's; 0: full)
    twgm_kv_grid: int | None = None
    # the component ranker also reads what lies around each region (config ranker_context; an --init ranker without it
    # gets the new inputs with zero weights)
    ranker_context: bool = False
    fresh_lr_mult: float = 10.0  # learning-rate factor of parts added or reset on top of an --init checkpoint
    dialogue_share: float = 0.6
    freeze_image_encoder: bool = False
    # RSAM's fusion parts, off only for the ablation (a fresh model): TWGM, and MMMD's T_G in the mask token
    # (off: T_G is one more sparse prompt token of the plain SAM 2 decoder)
    twgm: bool = True
    mmmd: bool = True
    # CroBIM-U uncertainty modules (ugf/udlr imply rus); with --init they are added to a checkpoint without them
    rus: bool = False
    ugf: bool = False
    udlr: bool = False
    # weight of the dense category loss on V_d (the semantic head; records with a ``semantic`` map, i.e. synthetic)
    aux_semantic: float = 0.0
    # weight of the ambiguity head's BCE against the records' ``ambiguous`` labels (> 0 adds the head)
    ambiguity_head: float = 0.0
    # text turn of an ambiguous expression: "skip" (no loss: its target is one look-alike at random) or "union"
    # (scored against every look-alike it matches, the records' ``candidates_mask``, when they carry one)
    ambiguous_target: str = "skip"
    # weight of a loss on the text turn's logits over the look-alikes the expression rules out (the records'
    # ``distractors_mask``: objects of the target's category that are not meant), on top of the mask loss
    distractor_loss: float = 0.0
    # weight of the turn-error head's loss on every simulated turn (> 0 adds the head: rrsis_engine.model.error_head)
    error_head: float = 0.0
    # weight of the click-gain head's loss (> 0 adds the head: rrsis_engine.model.error_head.ClickGainHead)
    click_gain_head: float = 0.0
    # clicks decoded per click-round state for the click-gain head's loss: the standard click, then random error
    # pixels and random cells the turn-error head marks as likely wrong (:meth:`TrainStep.click_gain_loss`)
    gain_candidates: int = 4
    # weight of the click-policy head's loss (> 0 adds the head: rrsis_engine.model.error_head.ClickPolicyHead):
    # which error region's centre a click gains the most at, at each state of the click rounds
    click_policy_head: float = 0.0
    # weight of the component ranker's loss (> 0 adds it: rrsis_engine.model.component_ranker): which of the text
    # turn's candidate regions the sentence refers to
    component_ranker: float = 0.0
    # train only these top-level parts (e.g. "error_head"); every other weight keeps its --init value
    train_only: tuple[str, ...] = ()
    # with train_only ("component_ranker",): compute the ranker's inputs for this many text turns once and train on
    # batches drawn from them (rrsis_train.ranker_cache); 0 = online, every step through the frozen model
    ranker_cache: int = 0
    # more cached turns for that: the ranker-cache.pt files of runs of the same model and sources with other seeds
    ranker_cache_also: tuple[str, ...] = ()
    # with train_only ("boundary_refiner",): play this many source records through the engine once and train on crops
    # of their turns' outlines (rrsis_train.refiner_cache)
    refiner_cache: int = 0
    augment: bool = True
    black_rects: float = 0.5
    ckpt_every: int = 500
    ckpt_minutes: float = 0.0
    keep_checkpoints: int = 2
    log_every: int = 10
    threads: int | None = None
    # processes preparing micro-batches ahead of the training step (0: in the training process; None: resolve_workers)
    workers: int | None = None
    detect_anomaly: bool = False  # autograd anomaly mode: the first NaN in a backward pass raises, naming its op
    # > 0: torch.profiler over this many steps after two unprofiled ones → profile.txt in the run folder (rank 0)
    profile: int = 0
    text_cache: int = 50_000
    max_minutes: float | None = None
    since: str | None = None
    db_image_root: str | None = None
    db_holdout: float = 0.1  # share of logged sessions kept out of training (validation before promotion)
    progress: bool = True
    # "bf16": forward passes under bfloat16 autocast (weights, gradients and optimizer state stay float32);
    # "fp32"; "auto": fp32 (bf16 only when asked for: docs/training.md, "Precision" and "On a lent GPU")
    precision: str = "auto"
    # exponential moving average of the weights (timm's ModelEmaV3 with its warm-up: the decay grows as
    # 1 − (1 + step)^(−2/3) up to this value); 0: off. With it OUT/model.safetensors holds the average (what evaluation,
    # promotion and export read) and OUT/model-live.safetensors the optimizer's weights
    ema: float = 0.0
    # torch.compile the image encoder, TWGM and mask decoder with this backend ("inductor": generated kernels; "" off);
    # nn.Module.compile, so the weights keep their names
    compile: str = ""

    def to_json(self) -> dict:
        return asdict(self)


# ---- text feature cache ---------------------------------------------------------------------------
class TextFeatureCache:
    """Frozen-BERT features per sentence (hidden L×H on CPU), LRU-bounded.

    Each sentence is embedded alone (batch of one, no padding), exactly as the predictor does, so the
    cached values do not depend on which other sentences shared a batch: training stays bit-reproducible.
    """

    def __init__(self, model, capacity: int = 50_000):
        self.model, self.capacity = model, capacity
        self._d: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, text: str) -> torch.Tensor:
        h = self._d.get(text)
        if h is not None:
            self.hits += 1
            self._d.move_to_end(text)
            return h
        self.misses += 1
        hidden, mask = self.model.text_embed([text])
        h = hidden[0, : int(mask[0].sum())].cpu()
        self._d[text] = h
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)
        return h

    def batch(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """→ hidden B×L×H (zero padded), mask B×L bool."""
        return pad_features([self.get(t) for t in texts], device)


def pad_features(hs: list[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sentence features L_i×H → hidden B×L×H (zero padded), mask B×L bool, on ``device``."""
    L = max(h.shape[0] for h in hs)
    hidden = torch.zeros(len(hs), L, hs[0].shape[1])
    mask = torch.zeros(len(hs), L, dtype=torch.bool)
    for i, h in enumerate(hs):
        hidden[i, : h.shape[0]] = h
        mask[i, : h.shape[0]] = True
    return hidden.to(device), mask.to(device)


# ---- samples → tensors ----------------------------------------------------------------------------
@dataclass
class Sample:
    image: torch.Tensor  # 3×S×S normalised (the same tensor object for every sample of one group)
    # 1×s×s first-turn target on the S/4 logit grid. (S×S targets, with the logits upsampled in the loss, made
    # rsam-tiny ignore correction clicks on the easy task: tests/train/test_easy_task.py, docs/training.md.)
    target: torch.Tensor
    valid: np.ndarray  # s×s bool content area
    expression: str
    ambiguous: bool
    followup: str | None
    followup_target: torch.Tensor | None
    dialogue: bool
    clicks: bool
    click_only: bool  # no text: the session starts with a positive click (``expression`` is "")
    semantic: torch.Tensor | None  # K×g×g category area fractions on the S/16 grid (see semantic_target), or None
    ambiguous_label: bool  # the record's ``ambiguous`` (the ambiguity head's target)
    distractors: torch.Tensor | None  # 1×s×s share of each S/4 cell covered by ruled-out look-alikes, or None
    rng: np.random.Generator
    id: str
    group: int = 0  # samples of one group share the image (several expressions about one scene)
    # the frozen text features (L×H) of the expression and, in dialogue samples, the follow-up, when a data worker
    # computed them; None: the training process embeds the sentences (TextFeatureCache)
    text_hidden: torch.Tensor | None = None
    followup_hidden: torch.Tensor | None = None


def prepare_group(recs: list[dict], rngs: list[np.random.Generator], size: int, opts: TrainOptions,
                  group: int = 0) -> list[Sample]:
    """Records about one image → samples sharing one augmentation and one image tensor. ``rngs[j]`` draws record
    j's turn plan and clicks; ``rngs[0]`` also draws the augmentation."""
    if opts.augment:
        recs = augment_group(recs, rngs[0], black_rects=opts.black_rects)
    image = T.image_to_tensor(recs[0]["image"], size)[0]
    return [prepare_sample(rec, rng, size, opts, image=image, group=group) for rec, rng in zip(recs, rngs, strict=True)]


def prepare_sample(rec: dict, rng: np.random.Generator, size: int, opts: TrainOptions, image: torch.Tensor | None = None,
                   group: int = 0) -> Sample:
    """One (already augmented) record → :class:`Sample`; ``image``: its model-frame tensor when already made."""
    h, w = rec["image"].shape[:2]
    s = size // 4
    vh, vw = T.valid_shape(h, w, s)
    valid = np.zeros((s, s), dtype=bool)
    valid[:vh, :vw] = True
    fol = rec.get("followup")
    fmask = rec.get("followup_mask")
    has_fol = bool(fol) and fmask is not None
    ambiguous = bool(rec.get("ambiguous", False))
    label = ambiguous
    dialogue = has_fol and (ambiguous or rng.random() < opts.dialogue_share)
    target = rec["mask"]
    if ambiguous and opts.ambiguous_target == "union" and rec.get("candidates_mask") is not None:
        target, ambiguous = rec["candidates_mask"], False  # every look-alike: a definite target for the text turn
    clicks = rng.random() < opts.click_share
    click_only = clicks and opts.click_only_share > 0 and rng.random() < opts.click_only_share
    if click_only:
        ambiguous, dialogue = False, False
    return Sample(
        image=T.image_to_tensor(rec["image"], size)[0] if image is None else image,
        target=T.mask_to_tensor(np.asarray(target, dtype=bool), size, s)[0],
        valid=valid,
        expression="" if click_only else str(rec.get("expression") or ""),
        ambiguous=ambiguous and has_fol,  # an ambiguous first turn is only skipped when a follow-up resolves it
        followup=fol if has_fol else None,
        followup_target=T.mask_to_tensor(np.asarray(fmask, dtype=bool), size, s)[0] if has_fol else None,
        dialogue=dialogue,
        clicks=clicks,
        click_only=click_only,
        semantic=semantic_target(rec["semantic"], size) if opts.aux_semantic > 0 and rec.get("semantic") is not None
        else None,
        ambiguous_label=label and not click_only,
        distractors=T.mask_to_tensor(np.asarray(rec["distractors_mask"], dtype=bool), size, s)[0]
        if opts.distractor_loss > 0 and not click_only and rec.get("distractors_mask") is not None
        and rec["distractors_mask"].any() else None,
        rng=rng,
        id=str(rec.get("id", "")),
        group=group,
    )


def semantic_target(semantic: np.ndarray, size: int) -> torch.Tensor:
    """H×W category indices (:data:`SEMANTIC_CLASSES`; other values, e.g. 255 under a black rectangle, are
    unknown) → K×g×g area fraction of each category in each cell of the S/16 grid (g = S/16), same framing as
    the image. A cell's fractions sum to its known share: 0 in the padding."""
    k, g = len(SEMANTIC_CLASSES), size // 16
    labels = torch.from_numpy(np.ascontiguousarray(semantic)).long()
    known = labels < k
    onehot = F.one_hot(labels.clamp(max=k - 1), k).permute(2, 0, 1).float() * known[None]
    h, w = T.valid_shape(semantic.shape[0], semantic.shape[1], g)
    pooled = F.interpolate(onehot[None], size=(h, w), mode="area")[0]
    return F.pad(pooled, (0, g - w, 0, g - h))


def gain_candidate_split(n: int) -> tuple[int, int]:
    """How many of a state's ``n`` click-gain candidates besides the standard click go to random error pixels and how
    many to random likely-wrong cells (:meth:`TrainStep.click_gain_loss`): 4 → (2, 1), 8 → (4, 3)."""
    if n < 2:
        raise ValueError(f"the click-gain loss needs at least 2 candidate clicks per state, got {n}")
    likely_wrong = max(1, (n - 1) // 2)
    return n - 1 - likely_wrong, likely_wrong


def state_clicks(pts: list[list], lbl: list[list[int]], device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A click-round state's clicks as tensors: B×K×2 model-frame (x, y) and B×K labels (-1 = padding); (None, None)
    before the first click (K = 0)."""
    if not pts[0]:
        return None, None
    return (torch.tensor(pts, dtype=torch.float32, device=device),
            torch.tensor(lbl, dtype=torch.long, device=device))


# ---- one forward pass: a simulated refinement session ---------------------------------------------
@dataclass
class RankerExamples:
    """The component ranker's training examples of one text turn: ``rows`` (sample indices with at least one candidate
    region), their regions B×K×s×s and region_valid B×K (:func:`stack_components`), valid extents B×2 (rows, cols of
    the s×s grid) and labels B×K (1 = in the selection with the best IoU)."""
    rows: list[int]
    regions: torch.Tensor
    region_valid: torch.Tensor
    extents: torch.Tensor
    labels: torch.Tensor


def ranker_examples(low: torch.Tensor, target: torch.Tensor, samples: list, rows: list[int]) -> RankerExamples | None:
    """The candidate regions (:func:`find_components`) of the detached text-turn logits ``low`` B×1×s×s of the samples
    in ``rows``, each labelled 1 when it belongs to the selection with the best IoU against ``target`` B×1×s×s
    (:func:`best_selection`; soft labels learned far slower on the easy task; "at least half of the region inside the
    target", stop 24's rule, taught the ranker to drop the sprawling, partly right regions of "every street" — real
    validation IoU 0.27 → 0.01). None when no sample has a region."""
    logits_np = low.detach().float()[:, 0].cpu().numpy()
    prob = torch.sigmoid(low.detach().float())[:, 0].cpu().numpy()
    gt = (target[:, 0] > 0.5).cpu().numpy()
    comps, used, chosen, extents = [], [], [], []
    for j in rows:
        c = find_components(prob[j], samples[j].valid)
        if len(c):
            comps.append(c)
            used.append(j)
            chosen.append(best_selection(selected_cells(logits_np[j], c), gt[j]))
            valid = samples[j].valid
            extents.append((int(valid.any(1).sum()), int(valid.any(0).sum())))
    if not used:
        return None
    device = low.device
    regions, region_valid = stack_components(comps, device)
    labels = torch.zeros(region_valid.shape, device=device)
    for i, sel in enumerate(chosen):
        labels[i, :len(sel)] = torch.from_numpy(sel).float()
    return RankerExamples(used, regions, region_valid, torch.tensor(extents, device=device), labels)


def definite_rows(samples: list) -> list[int]:
    """Samples whose expression alone defines the target (not ambiguous, not click-only): the text turn is scored
    (and the component ranker trained) on them only."""
    return [i for i, s in enumerate(samples) if not (s.ambiguous or s.click_only)]


class TrainStep(nn.Module):
    """Wraps the RSAM so DDP sees one ``forward``: returns the summed loss and its parts."""

    def __init__(self, model, freeze_image_encoder: bool = False, click_rounds: int = 3, teacher=None,
                 distill_weight: float = 1.0, loss_weights=(20.0, 1.0, 1.0, 1.0), aux_semantic: float = 0.0,
                 ambiguity_weight: float = 0.0, distractor_weight: float = 0.0, error_weight: float = 0.0,
                 gain_weight: float = 0.0, gain_candidates: int = 4, ranker_weight: float = 0.0,
                 policy_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.ranker_weight = ranker_weight
        self.policy_weight = policy_weight
        self.error_weight = error_weight
        self.gain_weight = gain_weight
        self.gain_candidates = gain_candidates
        self.aux_semantic = aux_semantic
        self.ambiguity_weight = ambiguity_weight
        self.distractor_weight = distractor_weight
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.freeze_image_encoder = freeze_image_encoder
        self.click_rounds = click_rounds
        # Optional frozen teacher (e.g. rsam-b+ → rsam-lite): its text-turn mask probabilities are a soft target.
        # Kept outside the module tree: not trained, not in DDP buckets, not in checkpoints.
        object.__setattr__(self, "teacher", teacher)
        self.distill_weight = distill_weight
        # the optimisation step about to run (set by the Trainer before each call): ramps the RUS loss in
        self.step = 0

    def rus_weight(self) -> float:
        """λ_unc · linear warm-up over the first ``rus_warmup_steps`` steps (0 at step 0)."""
        cfg = self.model.config
        ramp = 1.0 if cfg.rus_warmup_steps <= 0 else min(1.0, self.step / cfg.rus_warmup_steps)
        return cfg.rus_loss_weight * ramp

    def component_ranker_loss(self, low, vd, v1, tok, tmask, target, samples, rows):
        """The component ranker's loss on the text turn: for each sample in ``rows`` (indices), the candidate regions of
        its detached logits ``low`` B×1×s×s, labelled by :func:`ranker_examples` (BCE). vd, v1, tok, tmask: the turn's
        fused tokens, V1 and text tokens (B first). None when no sample has a region."""
        ex = ranker_examples(low, target, samples, rows)
        if ex is None:
            return None
        idx = torch.tensor(ex.rows, device=low.device)
        logits = self.model.rank_components(low[idx], ex.regions, ex.region_valid, vd[idx], v1[idx], tok[idx],
                                            tmask[idx], ex.extents)
        return F.binary_cross_entropy_with_logits(logits[ex.region_valid].float(), ex.labels[ex.region_valid])

    def click_gain_loss(self, vd, t_global, feats: ImageFeatures, u, logits, prior, has_prior, pts, lbl, target, rows,
                        samples):
        """The click-gain head's loss at one state of the click rounds: for each sample in ``rows``, one click at
        each of ``gain_candidates`` cells (the standard click, then :func:`gain_candidate_split` random error pixels and
        random cells among those the turn-error head marks as likely wrong — the cells the predictor's suggestion
        chooses among, right and wrong ones; any cell without that head), labelled truthfully, is decoded on top of
        the state's clicks ``pts``/``lbl`` with ``logits`` as the prior; the head, reading the state, regresses
        10 × each click's IoU gain at its cell (Huber) — 0 where the state's mask is already right, as a suggestion
        there is no correction (the labeler clicks elsewhere). None when no sample has a candidate. Shapes as in
        :meth:`forward` (B = click samples)."""
        m = self.model
        device = logits.device
        pred = (logits[:, 0] > 0).cpu().numpy()
        gt = (target[:, 0] > 0.5).cpu().numpy()
        state_pts, state_lbl = state_clicks(pts, lbl, device)
        likely_wrong = None  # the cells a suggestion chooses among (the predictor's rule): σ(E) > 0.5
        if m.error_head is not None:
            with torch.no_grad():
                likely_wrong = (m.turn_error(logits, feats.v1, state_pts, state_lbl, prior, has_prior, u)[:, 0] > 0)
            likely_wrong = likely_wrong.cpu().numpy()
        n_error, n_likely_wrong = gain_candidate_split(self.gain_candidates)
        owner, cells, labels, corrects = [], [], [], []
        for j, s in enumerate(samples):
            if not rows[j]:
                continue
            cands = [M.next_click(pred[j] & s.valid, gt[j])]
            cands += [sample_correction_click(pred[j], gt[j], s.rng, s.valid, center_prob=0.0)
                      for _ in range(n_error)]
            pool = s.valid if likely_wrong is None else likely_wrong[j] & s.valid
            rr, cc = np.nonzero(pool if pool.any() else s.valid)
            for k in s.rng.integers(len(rr), size=n_likely_wrong if len(rr) else 0):
                cands.append((cc[k], rr[k], int(gt[j][rr[k], cc[k]])))
            for c in cands:
                if c is not None:
                    row, col = int(c[1]), int(c[0])
                    owner.append(j)
                    cells.append((row, col))
                    labels.append(int(c[2]))
                    corrects.append(bool(pred[j][row, col] == gt[j][row, col]))
        if not owner:
            return None
        gain = self.candidate_click_gain(vd, t_global, feats, u, logits, state_pts, state_lbl, target, owner, cells,
                                         labels)
        # a suggestion on a pixel the mask already has right is no correction: the labeler clicks elsewhere
        gain = gain.masked_fill(torch.tensor(corrects, device=device), 0.0)
        idx = torch.tensor(owner, device=device)
        g_map = m.click_gain(logits, feats.v1, state_pts, state_lbl, prior, has_prior, u)
        rows_t = torch.tensor([r for r, _ in cells], device=device)
        cols_t = torch.tensor([c for _, c in cells], device=device)
        return F.smooth_l1_loss(g_map[idx, 0, rows_t, cols_t].float(), 10 * gain.float())

    @torch.no_grad()
    def candidate_click_gain(self, vd, t_global, feats: ImageFeatures, u, logits, state_pts, state_lbl, target,
                             owner: list[int], cells: list[tuple[int, int]], labels: list[int]) -> torch.Tensor:
        """IoU gain (N,) of N candidate clicks, each decoded alone on top of its sample's state: candidate n is a click
        with label ``labels[n]`` at grid cell ``cells[n]`` = (row, col) of sample ``owner[n]``, added to the state's
        clicks ``state_pts``/``state_lbl`` (B×K model-frame (x, y) / labels, or None) with the state's ``logits``
        (B×1×g×g) as the prior; the gain is its IoU with ``target`` minus the state's. Shapes as in :meth:`forward`."""
        m = self.model
        device = logits.device
        stride = m.image_size // logits.shape[-1]
        idx = torch.tensor(owner, device=device)
        cand = torch.tensor([grid_to_model(c, r, stride) for r, c in cells], dtype=torch.float32, device=device)
        points, point_labels = cand[:, None], torch.tensor(labels, device=device)[:, None]
        if state_pts is not None:
            points = torch.cat([state_pts[idx], points], 1)
            point_labels = torch.cat([state_lbl[idx], point_labels], 1)
        sub = ImageFeatures(vd=feats.vd[idx], v1=feats.v1[idx], v2=feats.v2[idx])
        after, _, _ = m.decode(vd[idx], t_global[idx], sub, points, point_labels, logits[idx],
                               torch.ones(len(owner), dtype=torch.bool, device=device),
                               uncertainty=None if u is None else u[idx])
        return mask_iou(after, target[idx]) - mask_iou(logits[idx], target[idx])

    def click_policy_loss(self, vd, t_global, feats: ImageFeatures, u, logits, prior, has_prior, pts, lbl, target,
                          rows, samples):
        """The click-policy head's loss at one state of the click rounds: cross-entropy of its map, a softmax over each
        sample's valid cells, against the cell of the best of the candidate correction clicks — the centres of the
        three largest false-negative and the three largest false-positive regions
        (:func:`rrsis_engine.metrics.error_region_clicks`, the standard click among them), each labelled truthfully
        and decoded on top of the state (:meth:`candidate_click_gain`); the one with the largest IoU gain is the
        target. The head so learns a greedy one-step-lookahead click, which needs the ground truth, without it.
        Samples in ``rows`` only, and only those whose mask is wrong somewhere; None when none is. Shapes as in
        :meth:`click_gain_loss`."""
        m = self.model
        device = logits.device
        g = logits.shape[-1]
        pred = (logits[:, 0] > 0).cpu().numpy()
        gt = (target[:, 0] > 0.5).cpu().numpy()
        state_pts, state_lbl = state_clicks(pts, lbl, device)
        owner, cells, labels = [], [], []
        for j, s in enumerate(samples):
            for x, y, label in M.error_region_clicks(pred[j] & s.valid, gt[j]) if rows[j] else ():
                owner.append(j)
                cells.append((int(y), int(x)))
                labels.append(label)
        if not owner:
            return None
        gain = self.candidate_click_gain(vd, t_global, feats, u, logits, state_pts, state_lbl, target, owner, cells,
                                         labels).tolist()
        best: dict[int, tuple[float, int]] = {}  # sample → (gain, cell index) of its best candidate
        for n, (j, gain_n) in enumerate(zip(owner, gain, strict=True)):
            if j not in best or gain_n > best[j][0]:
                best[j] = (gain_n, cells[n][0] * g + cells[n][1])
        used = sorted(best)
        idx = torch.tensor(used, device=device)
        valid = torch.from_numpy(np.stack([samples[j].valid for j in used])).to(device)
        scores = m.click_policy(logits, feats.v1, state_pts, state_lbl, prior, has_prior, u)[idx, 0].float()
        scores = scores.masked_fill(~valid, float("-inf")).flatten(1)
        return F.cross_entropy(scores, torch.tensor([best[j][1] for j in used], device=device))

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor, texts: list[str], out_size: int) -> torch.Tensor:
        """Teacher's text-turn low-res logits B×1×s×s, s = ``out_size``. The student's padded S×S frame is
        resized to the teacher's input side, so both see the same framing (content top-left)."""
        t = self.teacher
        x = images if images.shape[-1] == t.image_size else F.interpolate(
            images, size=(t.image_size, t.image_size), mode="bilinear", align_corners=False)
        hidden, mask = t.text_embed(texts)
        feats = t.encode_image(x)
        vd, tg, u = t.fuse_with_uncertainty(feats.vd, *t.encode_text(hidden, mask))
        low, _, _ = t.decode(vd, tg, feats, uncertainty=u)
        return F.interpolate(low, size=(out_size, out_size), mode="bilinear", align_corners=False)

    def encode(self, images: torch.Tensor) -> ImageFeatures:
        return self.model.encode_image(images, backbone_grad=not self.freeze_image_encoder)

    def text_turn(self, samples: list[Sample], text: tuple):
        """The text turn of ``samples`` (each group's image encoded once) → (images B×3×S×S, targets B×1×s×s, image
        features, text tokens, text mask, fused tokens vd, T_G, RUS logits u or None, logits B×1×s×s, IoU, object
        score), B = len(samples)."""
        m = self.model
        device = text[0].device
        groups = list(dict.fromkeys(s.group for s in samples))
        first = {g: next(s for s in samples if s.group == g) for g in groups}
        images = torch.stack([first[g].image for g in groups]).to(device)
        target = torch.stack([s.target for s in samples]).to(device)
        feats = self.encode(images)
        if len(groups) < len(samples):
            img_of = torch.tensor([groups.index(s.group) for s in samples], device=device)
            feats = ImageFeatures(vd=feats.vd[img_of], v1=feats.v1[img_of], v2=feats.v2[img_of])
            images = images[img_of]
        tok, tmask = m.encode_text(*text)
        vd, tg, u = m.fuse_with_uncertainty(feats.vd, tok, tmask)  # u: RUS B×1×h×w or None
        low, iou, obj = m.decode(vd, tg, feats, uncertainty=u)
        return images, target, feats, tok, tmask, vd, tg, u, low, iou, obj

    def forward(self, samples: list[Sample], text: tuple, followup_text: tuple | None, rounds: int):
        m = self.model
        device = text[0].device
        images, target, feats, tok, tmask, vd, tg, u, low, iou, obj = self.text_turn(samples, text)
        turns = []  # (name, logits, iou, obj, target)
        errors = []  # the turn-error head's loss on each turn it saw
        use_error = m.error_head is not None and self.error_weight > 0
        gains = []  # the click-gain head's loss on each state of the click rounds
        use_gain = m.click_gain_head is not None and self.gain_weight > 0
        policies = []  # the click-policy head's loss on each state of the click rounds
        use_policy = m.click_policy_head is not None and self.policy_weight > 0

        def turn_error(lo, tg_, v1, points=None, labels=None, prior=None, has_prior=None, u_=None):
            e = m.turn_error(lo, v1, points, labels, prior, has_prior, u_)
            errors.append(rus_loss(e, lo, tg_, max_pos_weight=m.config.rus_max_pos_weight)["loss"])
        # text-turn loss only where the expression defines the target (not ambiguous, not click-only)
        definite = torch.zeros(len(samples), dtype=torch.bool, device=device)
        definite[definite_rows(samples)] = True
        rus = None
        if definite.any():
            idx = definite.nonzero()[:, 0]
            turns.append(("text", low[idx], iou[idx], obj[idx], target[idx]))
            if u is not None:
                # online error-consistency target from the text turn's own (final) prediction
                rus = rus_loss(u[idx], low[idx], target[idx], max_pos_weight=m.config.rus_max_pos_weight)["loss"]
        ranker = None
        if m.component_ranker is not None and self.ranker_weight > 0 and definite.any():
            ranker = self.component_ranker_loss(low, vd, feats.v1, tok, tmask, target, samples,
                                                definite.nonzero()[:, 0].tolist())
        ambiguity = None
        texted = [i for i, s in enumerate(samples) if not s.click_only]
        # what the text turn hands on, as in the predictor: with a component ranker, its choice among the regions
        # (the mask the labeler sees, the prior of the next turn, what the heads read); gradient-stopped
        shown = low.detach()
        if m.component_ranker is not None and texted:
            ti = torch.tensor(texted, device=device)
            shown = shown.index_copy(0, ti, m.select_text_regions(
                shown[ti], vd[ti], feats.v1[ti], tok[ti], tmask[ti], np.stack([samples[i].valid for i in texted])))
        if use_error and texted:
            # every text turn, ambiguous ones too: there the error is against one of the look-alikes, which the
            # head should learn to mark as uncertain
            ti = torch.tensor(texted, device=device)
            turn_error(shown[ti], target[ti], feats.v1[ti], u_=None if u is None else u[ti])
        if m.ambiguity_head is not None and self.ambiguity_weight > 0 and texted:
            ti = torch.tensor(texted, device=device)
            labels = torch.tensor([float(samples[i].ambiguous_label) for i in texted], device=device)
            ambiguity = F.binary_cross_entropy_with_logits(m.ambiguity(vd[ti], tg[ti])[:, 0].float(), labels)
        distractor = None
        d_rows = [i for i, s in enumerate(samples) if s.distractors is not None]
        if self.distractor_weight > 0 and d_rows:
            di = torch.tensor(d_rows, device=device)
            distractor = distractor_loss(low[di], torch.stack([samples[i].distractors for i in d_rows]).to(device))
        semantic = None
        s_idx = [i for i, s in enumerate(samples) if s.semantic is not None]
        if m.semantic_head is not None and self.aux_semantic > 0 and s_idx:
            si = torch.tensor(s_idx, device=device)
            sem_target = torch.stack([samples[i].semantic for i in s_idx]).to(device)
            semantic = semantic_loss(m.semantic_head(feats.vd[si]), sem_target)
        distill = None
        if self.teacher is not None:
            soft = torch.sigmoid(self.teacher_logits(images, [s.expression for s in samples], low.shape[-1]))
            distill = F.binary_cross_entropy_with_logits(low.float(), soft.float())
        cur_vd, cur_tg, cur_low, cur_tgt, cur_u = vd, tg, shown, target, u
        d_idx = [i for i, s in enumerate(samples) if s.dialogue]
        if d_idx and followup_text is not None:
            di = torch.tensor(d_idx, device=device)
            tok2, tmask2 = m.encode_text(*followup_text)
            sub = ImageFeatures(vd=feats.vd[di], v1=feats.v1[di], v2=feats.v2[di])
            vd2, tg2, u2 = m.fuse_with_uncertainty(sub.vd, tok2, tmask2)
            ones = torch.ones(len(d_idx), dtype=torch.bool, device=device)
            low2, iou2, obj2 = m.decode(vd2, tg2, sub, mask_input=shown[di], has_mask=ones, uncertainty=u2)
            tgt2 = torch.stack([samples[i].followup_target for i in d_idx]).to(device)
            turns.append(("dialogue", low2, iou2, obj2, tgt2))
            if m.component_ranker is not None and self.ranker_weight > 0:
                # the predictor ranks follow-up sentences too: the ranker learns them beside the first turns
                ranker2 = self.component_ranker_loss(low2, vd2, sub.v1, tok2, tmask2, tgt2,
                                                     [samples[i] for i in d_idx], list(range(len(d_idx))))
                if ranker2 is not None:
                    ranker = ranker2 if ranker is None else (ranker + ranker2) / 2
            # the follow-up hands on the ranker's choice among its regions, as the predictor's follow-up turns do
            shown2 = low2.detach()
            if m.component_ranker is not None:
                shown2 = m.select_text_regions(shown2, vd2, sub.v1, tok2, tmask2,
                                               np.stack([samples[i].valid for i in d_idx]))
            if use_error:
                turn_error(shown2, tgt2, sub.v1, prior=shown[di], u_=u2)
            cur_vd = vd.index_copy(0, di, vd2)
            cur_tg = tg.index_copy(0, di, tg2)
            cur_low = shown.index_copy(0, di, shown2)
            cur_tgt = target.index_copy(0, di, tgt2)
            if u is not None:
                cur_u = u.index_copy(0, di, u2)
        c_idx = [i for i, s in enumerate(samples) if s.clicks]
        if c_idx and rounds > 0:
            ci = torch.tensor(c_idx, device=device)
            sub = ImageFeatures(vd=feats.vd[ci], v1=feats.v1[ci], v2=feats.v2[ci])
            vdc, tgc = cur_vd[ci], cur_tg[ci]
            uc = None if cur_u is None else cur_u[ci]
            prev = cur_low[ci].detach()
            # click-only samples: no prior, and an all-background "prediction" → the first click is positive
            only = torch.tensor([samples[i].click_only for i in c_idx], device=device)
            prev = torch.where(only[:, None, None, None], torch.full_like(prev, -20.0), prev)
            has_prior = ~only
            tgtc = cur_tgt[ci]
            gt = (tgtc[:, 0] > 0.5).cpu().numpy()
            pts: list[list[tuple[float, float]]] = [[] for _ in c_idx]
            lbl: list[list[int]] = [[] for _ in c_idx]
            state_prior, state_has_prior = None, None  # the prior of the turn that produced ``prev``
            for rnd in range(rounds):
                # click-only samples have no state to suggest from before their first click
                rows = [rnd > 0 or not samples[i].click_only for i in c_idx]
                if use_gain:
                    gain_loss = self.click_gain_loss(vdc, tgc, sub, uc, prev, state_prior, state_has_prior, pts, lbl,
                                                     tgtc, rows, [samples[i] for i in c_idx])
                    if gain_loss is not None:
                        gains.append(gain_loss)
                if use_policy:
                    policy_loss = self.click_policy_loss(vdc, tgc, sub, uc, prev, state_prior, state_has_prior, pts,
                                                         lbl, tgtc, rows, [samples[i] for i in c_idx])
                    if policy_loss is not None:
                        policies.append(policy_loss)
                pred = (prev[:, 0] > 0).cpu().numpy()
                for j, i in enumerate(c_idx):
                    c = sample_correction_click(pred[j], gt[j], samples[i].rng, samples[i].valid)
                    if c is None:
                        pts[j].append((0.0, 0.0))
                        lbl[j].append(-1)
                    else:
                        pts[j].append(grid_to_model(c[0], c[1], stride=m.image_size // prev.shape[-1]))
                        lbl[j].append(c[2])
                p, lb = state_clicks(pts, lbl, device)
                lowc, iouc, objc = m.decode(vdc, tgc, sub, points=p, labels=lb, mask_input=prev, has_mask=has_prior,
                                            uncertainty=uc)
                turns.append(("click", lowc, iouc, objc, tgtc))
                if use_error:
                    turn_error(lowc, tgtc, sub.v1, p, lb, prev, has_prior, uc)
                state_prior, state_has_prior = prev, has_prior
                prev = lowc.detach()
                has_prior = torch.ones_like(has_prior)
        total_n = sum(t[1].shape[0] for t in turns)
        loss = torch.zeros((), device=device)
        parts = {k: 0.0 for k in ("focal", "dice", "obj", "iou_l1")}
        text_loss = click_loss = None
        iou_text = iou_click = None
        for name, lo, io, ob, tg_ in turns:
            ld = rsam_loss(lo, io, ob, tg_, weights=self.loss_weights)
            w = lo.shape[0] / total_n
            loss = loss + ld["loss"] * w
            for k_src, k_dst in (("focal", "focal"), ("dice", "dice"), ("obj", "obj"), ("iou", "iou_l1")):
                parts[k_dst] += float(ld[k_src]) * w
            if name == "text":
                text_loss = float(ld["loss"].detach())
                iou_text = mask_iou(lo.detach(), tg_).mean().item()
            elif name == "click":
                click_loss = float(ld["loss"].detach())
                iou_click = mask_iou(lo.detach(), tg_).mean().item()
        if distill is not None:
            loss = loss + self.distill_weight * distill
        if semantic is not None:
            loss = loss + self.aux_semantic * semantic
        if ambiguity is not None:
            loss = loss + self.ambiguity_weight * ambiguity
        if distractor is not None:
            loss = loss + self.distractor_weight * distractor
        gain = torch.stack(gains).mean() if gains else None
        if gain is not None:
            loss = loss + self.gain_weight * gain
        policy = torch.stack(policies).mean() if policies else None
        if policy is not None:
            loss = loss + self.policy_weight * policy
        if ranker is not None:
            loss = loss + self.ranker_weight * ranker
        error = torch.stack(errors).mean() if errors else None
        if error is not None:
            loss = loss + self.error_weight * error
        if rus is not None:
            # added once per batch (not by turn share); loss_text stays the segmentation loss alone
            loss = loss + self.rus_weight() * rus
        stats = dict(parts, loss_distill=None if distill is None else float(distill.detach()), loss_text=text_loss,
                     loss_click=click_loss, miou_text=iou_text, miou_click=iou_click,
                     rus=None if rus is None else float(rus.detach()),
                     semantic=None if semantic is None else float(semantic.detach()),
                     ambiguity=None if ambiguity is None else float(ambiguity.detach()),
                     distractor=None if distractor is None else float(distractor.detach()),
                     error=None if error is None else float(error.detach()),
                     click_gain=None if gain is None else float(gain.detach()),
                     click_policy=None if policy is None else float(policy.detach()),
                     ranker=None if ranker is None else float(ranker.detach()))
        return loss, stats


# ---- optimizer state as safetensors (no pickle) ---------------------------------------------------
def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors.torch import save_file

    sd = opt.state_dict()
    tensors = {}
    scalars = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().contiguous().cpu().reshape(-1) if v.dim() == 0 else v.detach().contiguous().cpu()
                if v.dim() == 0:
                    scalars[f"{pid}.{k}"] = True
            else:
                scalars[f"{pid}.{k}"] = {"value": v}
    groups = json.dumps(sd["param_groups"])
    save_file(tensors, str(path), metadata={"param_groups": groups, "scalars": json.dumps(scalars)})


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    groups = json.loads(meta["param_groups"])
    scalars = json.loads(meta["scalars"])
    state: dict = {}
    for key in set(tensors) | set(scalars):
        pid, _, name = key.partition(".")
        entry = state.setdefault(int(pid), {})
        if key in tensors:
            t = tensors[key]
            entry[name] = t.reshape(()) if scalars.get(key) is True else t
        else:
            entry[name] = scalars[key]["value"]
    opt.load_state_dict({"state": state, "param_groups": groups})


# ---- the trainer ----------------------------------------------------------------------------------
def freeze_all_but(model, names) -> None:
    """Stop gradients to every parameter outside the top-level submodules ``names`` (``--train-only``)."""
    missing = [n for n in names if getattr(model, n, None) is None]
    if missing:
        raise RRSISError(f"--train-only {','.join(missing)}: the model has no such part (parts with weights: "
                         f"{', '.join(sorted({k.split('.')[0] for k, _ in model.named_parameters()}))}).")
    prefixes = tuple(f"{n}." for n in names)
    for name, p in model.named_parameters():
        if not name.startswith(prefixes):
            p.requires_grad_(False)


def reset_submodules(model, names) -> None:
    """Re-initialise the named submodules (e.g. ``mask_decoder``, ``prompt_encoder``) of a loaded model with
    the weights a fresh build of its config would have (under the current torch seed)."""
    fresh = build_rsam(model.config)
    for name in names:
        try:
            target = model.get_submodule(name)
        except AttributeError:
            top = ", ".join(n for n, _ in model.named_children())
            raise RRSISError(f"--reset {name}: the model has no such part (top-level parts: {top}).") from None
        target.load_state_dict(fresh.get_submodule(name).state_dict())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``--precision`` (auto / bf16 / fp32) → "bf16" or "fp32" on ``device``."""
    if precision not in PRECISIONS:
        raise RRSISError(f"--precision {precision!r}: choose auto, bf16 or fp32.")
    if precision == "auto":
        # fp32 (TF32 matrix products on a GPU): the one GPU run under bf16 autocast (stop 34, H200) had non-finite
        # gradients from its first step; on CPU bf16's gain depends on the input size (docs/training.md)
        return "fp32"
    if precision == "bf16" and not native_bf16(device):
        # measured on an AMD EPYC VM without AVX512-BF16 / AMX: the click refiner's convolutions 8.3 s vs 0.24 s
        log.warning("--precision bf16 on a %s without native bfloat16: emulated, convolutions run up to 35x slower "
                    "than fp32; use --precision auto or fp32.", device.type.upper())
    return precision


def avoid_cudnn_attention() -> None:
    """Train without cuDNN's fused attention (``F.scaled_dot_product_attention`` then takes the flash, memory-efficient
    or math kernel). Its Hopper backward returns NaN gradients for masked attention rows whose logsumexp is below
    about −88.7 (pytorch/pytorch#196678, NVIDIA/cudnn-frontend#1072), and rsam-lite's UGF and TWGM attention have
    masked rows down to −1 128 (``scripts/attention_logsumexp.py``): the suspected cause of the NaN from the first
    bf16 step on an H200 (docs/training.md, "On a lent GPU"). A process-wide switch; fp32 attention never uses cuDNN."""
    torch.backends.cuda.enable_cudnn_sdp(False)


#: the parts `--compile` compiles: nearly all of a step's arithmetic, each called with few distinct shapes
COMPILED_PARTS = ("image_encoder", "twgm", "mask_decoder")


def lr_at(step: int, opts: TrainOptions) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio``·lr at ``steps``."""
    if opts.warmup and step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    t = min(1.0, (step - opts.warmup) / max(1, opts.steps - opts.warmup))
    return opts.lr * (opts.min_lr_ratio + (1 - opts.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        # on GPUs NCCL for the gradients and gloo for the CPU tensors of the log's and the stop's all-reduces
        backend = "cuda:nccl,cpu:gloo" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    _, rank, world = _dist()
    return rank, world


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag True on every rank when it is True on any (one all-reduce under torchrun; the flags as they are in a
    single process): the ranks must leave the training loop after the same step, or the others wait forever in the
    next step's gradient all-reduce."""
    dist, _, world = _dist()
    if dist is None or world < 2:
        return tuple(bool(f) for f in flags)
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


def resolve_workers(workers: int | None, device: torch.device) -> int:
    """``--workers``: as given, else 0 on CPU (the step's arithmetic is the bottleneck there: docs/training.md) and on
    a GPU all but two of the machine's cores, shared by the processes on it, at most 16."""
    if workers is not None:
        return max(0, int(workers))
    if device.type != "cuda":
        return 0
    per_process = ((os.cpu_count() or 4) - 2) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(16, per_process))


class MicroBatches(torch.utils.data.Dataset):
    """Micro-batch number ``i`` = step·accum + micro → (i, its samples), for the ``--workers`` processes."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        encoder = trainer.model.text_encoder
        self.text_encoder = (encoder.name_or_path, encoder.max_tokens)
        self.text_cache = None  # each worker's own, over a CPU copy of the frozen text backbone

    def __len__(self) -> int:
        return self.trainer.opts.steps * self.trainer.opts.accum

    def __getitem__(self, i: int) -> tuple[int, list[Sample]]:
        samples = self.trainer.micro_batch(*divmod(i, self.trainer.opts.accum))
        # the sentences are embedded here too, one at a time as in the training process (on CPU the same values
        # when it runs one thread too; workers must stay at one: OpenMP in a forked process hangs): one GPU pass per
        # new sentence held the training process up (docs/training.md, "On a lent GPU")
        if self.text_cache is None:
            self.text_cache = TextFeatureCache(CPUTextBackbone(*self.text_encoder), self.trainer.opts.text_cache)
        samples = [replace(s, text_hidden=self.text_cache.get(s.expression),
                           followup_hidden=self.text_cache.get(s.followup) if s.dialogue else None) for s in samples]
        # tensors travel as numpy arrays, pickled through the worker's pipe: torch would pass them through shared
        # memory, which a container's small /dev/shm (64 MB in Docker's default) cannot hold
        return i, convert_tensors(samples, torch.Tensor.numpy)


# Sample's torch.Tensor fields
TENSOR_FIELDS = ("image", "target", "followup_target", "semantic", "distractors", "text_hidden", "followup_hidden")


def convert_tensors(samples: list[Sample], convert) -> list[Sample]:
    """The samples with ``convert`` applied to their tensor fields (torch ↔ numpy); a value shared by several
    samples (a group's image) stays one shared object, so it is pickled once."""
    done: dict[int, object] = {}

    def one(value):
        if id(value) not in done:
            done[id(value)] = convert(value)
        return done[id(value)]

    return [replace(s, **{k: one(getattr(s, k)) for k in TENSOR_FIELDS if getattr(s, k) is not None}) for s in samples]


def _as_is(x):
    return x


class Trainer:
    def __init__(self, opts: TrainOptions, device: str | None = None, on_step=None):
        self.opts = opts
        self.on_step = on_step
        self.out = Path(opts.out)
        self.rank, self.world = init_distributed()
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if opts.threads:
            torch.set_num_threads(int(opts.threads))
        torch.manual_seed(opts.seed)
        modules = {"use_rus": opts.rus or opts.ugf or opts.udlr, "use_ugf": opts.ugf, "use_udlr": opts.udlr,
                   "use_click_refiner": opts.click_refiner, "use_semantic_head": opts.aux_semantic > 0,
                   "use_ambiguity_head": opts.ambiguity_head > 0, "use_twgm_input": opts.twgm_input,
                   "use_text_position": opts.text_position, "use_error_head": opts.error_head > 0,
                   "use_click_gain_head": opts.click_gain_head > 0,
                   "use_click_policy_head": opts.click_policy_head > 0,
                   "use_component_ranker": opts.component_ranker > 0,
                   "use_boundary_refiner": opts.boundary_refiner}
        if opts.init and not (opts.twgm and opts.mmmd):
            raise RRSISError("--no-twgm / --no-mmmd build a fresh model for the ablation; they cannot change an "
                             "--init checkpoint's architecture.")
        if opts.init:
            rebuild = {"twgm": {"twgm_pre_norm": True}} if opts.twgm_pre_norm else None
            model = load_checkpoint(opts.init, add_modules=[k[4:] for k, on in modules.items() if on], rebuild=rebuild,
                                    image_size=opts.image_size, twgm_kv_grid=opts.twgm_kv_grid,
                                    ranker_context=True if opts.ranker_context else None)
            if model.resized_from:
                log.info("--init %s: trained at %d², now %d² (token-grid position parameters interpolated)",
                         opts.init, model.resized_from, model.config.image_size)
            if model.added_modules:
                log.info("--init %s: added freshly initialised %s", opts.init, ", ".join(model.added_modules))
            if model.rebuilt_modules:
                log.info("--init %s: rebuilt freshly initialised %s", opts.init, ", ".join(model.rebuilt_modules))
            self.parent = getattr(model, "checkpoint_path", opts.init)
            if opts.reset:
                reset_submodules(model, opts.reset)
                log.info("--init %s: re-initialised %s", opts.init, ", ".join(opts.reset))
        else:
            if opts.reset:
                raise RRSISError("--reset re-initialises parts of an --init checkpoint; without --init every "
                                 "module starts freshly initialised anyway.")
            cfg = get_config(opts.config)
            if opts.image_size:
                if opts.image_size % 32:
                    raise RRSISError(f"--image-size {opts.image_size} must be a multiple of 32 (e.g. 256, 384, 512).")
                cfg = cfg.with_overrides(image_size=int(opts.image_size))
            if any(modules.values()):
                cfg = cfg.with_overrides(**modules)
            if opts.twgm_pre_norm:
                cfg = cfg.with_overrides(twgm_pre_norm=True)
            if opts.twgm_kv_grid is not None:
                cfg = cfg.with_overrides(twgm_kv_grid=int(opts.twgm_kv_grid))
            if opts.ranker_context:
                cfg = cfg.with_overrides(ranker_context=True)
            if not (opts.twgm and opts.mmmd):
                cfg = cfg.with_overrides(use_twgm=opts.twgm, use_mmmd=opts.mmmd)
            model = build_rsam(cfg)
            if opts.sam2_checkpoint:
                from rrsis_engine.model import import_sam2_checkpoint

                import_sam2_checkpoint(model, opts.sam2_checkpoint)
            self.parent = None
        if opts.ranker_context and model.component_ranker is None:
            raise RRSISError("--ranker-context gives the component ranker more inputs: add --component-ranker W "
                             "(or --init a checkpoint with a ranker).")
        self.model = model.to(self.device)
        self.size = model.config.image_size
        if opts.freeze_image_encoder:
            for p in self.model.image_encoder.parameters():
                p.requires_grad_(False)
        if opts.train_only:
            freeze_all_but(self.model, opts.train_only)
        if opts.ranker_cache:
            if tuple(opts.train_only) != ("component_ranker",) or self.model.component_ranker is None:
                raise RRSISError("--ranker-cache trains the component ranker alone on cached inputs: give it with "
                                 "--component-ranker W --train-only component_ranker.")
            if self.world > 1:
                raise RRSISError("--ranker-cache runs in one process (the cached steps take milliseconds); start it "
                                 "without torchrun.")
        if opts.ranker_cache_also and not opts.ranker_cache:
            raise RRSISError("--ranker-cache-also adds cached turns to a --ranker-cache run: give --ranker-cache N too.")
        self.ranker_cache = None  # rrsis_train.ranker_cache.RankerCache, built or loaded by fit()
        if opts.refiner_cache:
            if tuple(opts.train_only) != ("boundary_refiner",) or self.model.boundary_refiner is None:
                raise RRSISError("--refiner-cache trains the boundary refiner alone on the engine's turns: give it with "
                                 "--boundary-refiner --train-only boundary_refiner (or --init a model that has one).")
            if self.world > 1:
                raise RRSISError("--refiner-cache runs in one process; start it without torchrun.")
        elif opts.train_only == ("boundary_refiner",):
            raise RRSISError("The boundary refiner learns from the engine's turns, not the decoder's: train it with "
                             "--refiner-cache N (records played through the engine).")
        self.refiner_cache = None  # rrsis_train.refiner_cache.RefinerCache, built or loaded by fit()
        if self.model.error_head is not None and opts.error_head <= 0 and not opts.train_only:
            log.warning("The model has a turn-error head but --error-head is 0: the head is not trained and its map "
                        "goes stale as the masks change; pass --error-head 1.")
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.ema = None  # timm.utils.ModelEmaV3 over self.model, or None
        if opts.ema:
            if not 0.0 < opts.ema < 1.0:
                raise RRSISError(f"--ema {opts.ema}: give a decay between 0 and 1 (e.g. 0.999), or 0 for no average.")
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=opts.ema, use_warmup=True)
        if opts.compile:  # after the average's copy (a compiled module's wrapper is not copied)
            for name in COMPILED_PARTS:
                getattr(self.model, name).compile(backend=opts.compile)
        # parts that start fresh on top of an --init checkpoint (added modules, --reset parts) learn faster
        fresh = tuple(f"{n}." for n in (*getattr(model, "added_modules", ()), *getattr(model, "rebuilt_modules", ()),
                                        *opts.reset)) if opts.init else ()
        groups = []
        for is_fresh in (False, True):
            named = [(n, p) for n, p in self.model.named_parameters()
                     if p.requires_grad and n.startswith(fresh) == is_fresh]
            mult = opts.fresh_lr_mult if is_fresh else 1.0
            groups += [{"params": [p for _, p in named if p.dim() > 1], "weight_decay": opts.weight_decay, "lr_mult": mult},
                       {"params": [p for _, p in named if p.dim() <= 1], "weight_decay": 0.0, "lr_mult": mult}]
        # the fused kernel: one pass over all parameters (CPU: 8 ms instead of 26 ms per step for rsam-lite)
        self.opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=opts.lr, betas=(0.9, 0.999),
                                     fused=self.device.type in ("cpu", "cuda"))
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16,
                                       enabled=resolve_precision(opts.precision, self.device) == "bf16")
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # fp32 matrix products on TF32 tensor cores
            avoid_cudnn_attention()
        teacher = None
        if opts.teacher:
            teacher = load_checkpoint(opts.teacher).to(self.device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.step_module = TrainStep(self.model, opts.freeze_image_encoder, opts.click_rounds, teacher,
                                     opts.distill_weight, opts.loss_weights, opts.aux_semantic, opts.ambiguity_head,
                                     opts.distractor_loss, opts.error_head, opts.click_gain_head,
                                     opts.gain_candidates, opts.component_ranker, opts.click_policy_head)
        self.wrapped = self.step_module
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.wrapped = DDP(self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                               find_unused_parameters=True)
        self.text_cache = TextFeatureCache(self.model, opts.text_cache)
        specs = [parse_source(s) for s in opts.sources]
        scene = opts.scene_size or self.size
        if opts.ambiguous_target not in ("skip", "union"):
            raise RRSISError(f"--ambiguous-target {opts.ambiguous_target!r}: choose skip or union.")
        if opts.expressions < 1:
            raise RRSISError(f"--expressions {opts.expressions}: give at least 1 expression per scene.")
        if opts.profile < 0:
            raise RRSISError(f"--profile {opts.profile}: give the number of steps to profile (0: none).")
        self.sources = [build_source(sp, scene, opts.synth_reuse, opts.since, opts.db_image_root,
                                     opts.db_holdout, opts.expressions) for sp in specs]
        self.data = MixedSource(self.sources, [sp.weight for sp in specs], seed=opts.seed)
        self.step = 0
        self.samples = 0
        self.elapsed = 0.0
        self.data_seconds = 0.0
        self.skipped_steps = 0  # updates skipped for a non-finite gradient
        self.history: list[dict] = []
        self.prefetch = None  # iterator over (index, samples) from the --workers processes, set by fit()

    # -- data -----------------------------------------------------------------------------------
    def micro_batch(self, step: int, micro: int) -> list[Sample]:
        """The ``batch`` samples (images) of one micro-batch; with ``--expressions K`` a synthetic sample is a group
        of up to K expressions about one scene (the first drawn with the sample's rng, the others with their own)."""
        o = self.opts
        base = ((step * o.accum + micro) * self.world + self.rank) * o.batch
        out = []
        for j in range(o.batch):
            n = base + j
            recs, rng = self.data.get_group(n)
            rngs = [rng] + [np.random.default_rng([o.seed, 31, n, e]) for e in range(1, len(recs))]
            out += prepare_group(recs, rngs, self.size, o, group=j)
        return out

    def next_micro_batch(self, step: int, micro: int) -> list[Sample]:
        """:meth:`micro_batch` (step, micro), from the ``--workers`` processes when they run (the same samples)."""
        if self.prefetch is None:
            return self.micro_batch(step, micro)
        index, samples = next(self.prefetch)
        if index != step * self.opts.accum + micro:
            raise RuntimeError(f"data workers delivered micro-batch {index}, expected {step * self.opts.accum + micro}")
        return convert_tensors(samples, torch.from_numpy)

    def start_workers(self) -> None:
        """Fork the ``--workers`` processes (:func:`resolve_workers`) that prepare the micro-batches from the current
        step on (scenes drawn, augmented, turned into tensors, sentences embedded) while the training step runs.
        Forked, not spawned: the workers share the sources without pickling and never touch the model or the GPU."""
        o = self.opts
        workers = resolve_workers(o.workers, self.device)
        if workers == 0 or self.ranker_cache is not None or self.refiner_cache is not None:
            return
        log.info("%d data workers", workers)
        loader = torch.utils.data.DataLoader(
            MicroBatches(self), batch_size=None, sampler=range(self.step * o.accum, o.steps * o.accum),
            num_workers=workers, collate_fn=_as_is, prefetch_factor=4, multiprocessing_context="fork")
        self.prefetch = iter(loader)

    def _texts(self, samples: list[Sample]):
        if samples[0].text_hidden is not None:  # embedded by the data workers
            fol = [s.followup_hidden for s in samples if s.dialogue]
            return pad_features([s.text_hidden for s in samples], self.device), \
                (pad_features(fol, self.device) if fol else None)
        text = self.text_cache.batch([s.expression for s in samples], self.device)
        fol = [s.followup for s in samples if s.dialogue]
        fol_t = self.text_cache.batch(fol, self.device) if fol else None
        return text, fol_t

    # -- one optimisation step --------------------------------------------------------------------
    def train_step(self) -> dict:
        o = self.opts
        step = self.step
        lr = lr_at(step, o)
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        torch.manual_seed(o.seed * 1_000_003 + step)
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        acc: dict[str, list] = {}
        t_data = 0.0
        for micro in range(o.accum):
            if self.ranker_cache is not None:
                turns = np.random.default_rng([o.seed, 37, step, micro]).integers(0, len(self.ranker_cache), o.batch)
                with self.autocast:
                    loss = cached_ranker_loss(self.model, self.ranker_cache, turns, self.device)
                (loss / o.accum).backward()
                for key in ("loss", "ranker"):
                    acc.setdefault(key, []).append(float(loss.detach()))
                continue
            if self.refiner_cache is not None:
                rng = np.random.default_rng([o.seed, 41, step, micro])
                with self.autocast:
                    loss = cached_refiner_loss(self.model, self.refiner_cache, rng, o.batch, self.device)
                (loss / o.accum).backward()
                for key in ("loss", "refiner"):
                    acc.setdefault(key, []).append(float(loss.detach()))
                continue
            t0 = time.perf_counter()
            samples = self.next_micro_batch(step, micro)
            text, fol = self._texts(samples)
            t_data += time.perf_counter() - t0
            rounds = int(np.random.default_rng([o.seed, 29, step, micro]).integers(1, o.click_rounds + 1)) \
                if o.click_rounds > 0 else 0
            self.step_module.step = step  # the RUS warm-up ramp reads it (DDP forwards to this module)
            with self.autocast:
                loss, stats = self.wrapped(samples, text, fol, rounds)
            if loss.requires_grad:  # with --train-only, a micro-batch may have no turn the trained parts see
                (loss / o.accum).backward()
            acc.setdefault("loss", []).append(float(loss.detach()))
            for k, v in stats.items():
                if v is not None:
                    acc.setdefault(k, []).append(float(v))
        norm = torch.nn.utils.clip_grad_norm_(self.params, o.grad_clip if o.grad_clip else float("inf"))
        if torch.isfinite(norm):
            self.opt.step()
            if self.ema is not None:
                self.ema.update(self.model, step=self.step + 1)
        else:  # one bad batch must not turn every weight into NaN: skip its update
            self.skipped_steps += 1
            bad = [n for n, p in self.model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()]
            log.warning("step %d: gradient norm %s, update skipped (%d so far); non-finite in %d tensors, e.g. %s",
                        step, float(norm), self.skipped_steps, len(bad), ", ".join(bad[:4]))
        self.step += 1
        self.samples += o.batch * o.accum * self.world
        self.data_seconds += t_data
        row = {k: float(np.mean(v)) for k, v in acc.items()}
        dist, _, world = _dist()
        if dist is not None and world > 1:
            # the same keys on every rank (a rank may have had no click turn): reduce (sum, count) pairs
            keys = REDUCED_KEYS
            t = torch.tensor([[row.get(k, 0.0), float(k in row)] for k in keys], dtype=torch.float64)
            dist.all_reduce(t)
            for k, (total, count) in zip(keys, t.tolist(), strict=False):
                if count:
                    row[k] = total / count
        row["lr"] = lr
        row["grad_norm"] = float(norm)
        return row

    # -- checkpoints --------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {
            "trained_by": "rrsis train",
            "step": self.step,
            "samples": self.samples,
            "sources": list(self.opts.sources),
            "parent": self.parent,
            "elapsed_s": round(self.elapsed, 1),
            "image_size": self.size,
        }

    def save(self) -> Path:
        """Write a complete checkpoint folder, then point ``latest`` at it (atomic), prune old ones."""
        if self.rank != 0:
            return self.out
        ck_root = self.out / "checkpoints"
        name = f"step-{self.step:07d}"
        tmp = ck_root / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save_checkpoint(self.model, tmp / "model.safetensors", self.meta())
        if self.ema is not None:
            save_checkpoint(self.ema.module, tmp / "model-ema.safetensors", {**self.meta(), "ema_decay": self.opts.ema})
        save_optimizer(self.opt, tmp / "optimizer.safetensors")
        from safetensors.torch import save_file

        save_file({"torch_cpu": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        state = {"step": self.step, "samples": self.samples, "elapsed_s": self.elapsed,
                 "data_seconds": self.data_seconds, "options": self.opts.to_json(), "parent": self.parent,
                 "numpy_rng": "derived per sample from (seed, sample number); nothing to save"}
        (tmp / "trainer.json").write_text(json.dumps(state, indent=2))
        final = ck_root / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        latest_tmp = self.out / ".latest.tmp"
        latest_tmp.write_text(name + "\n")
        latest_tmp.replace(self.out / "latest")
        # OUT/model.* is what evaluation, promotion and export read: the average when there is one
        exported = {"model": "model-ema", "model-live": "model"} if self.ema is not None else {"model": "model"}
        for name_out, name_in in exported.items():
            for suffix in (".safetensors", ".json"):
                shutil.copyfile(final / f"{name_in}{suffix}", self.out / f".{name_out}{suffix}.tmp")
                (self.out / f".{name_out}{suffix}.tmp").replace(self.out / f"{name_out}{suffix}")
        kept = sorted(p for p in ck_root.glob("step-*") if p.is_dir())
        for old in kept[: max(0, len(kept) - max(1, self.opts.keep_checkpoints))]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self) -> bool:
        """Restore the newest checkpoint of ``out``; False when there is none."""
        latest = self.out / "latest"
        if not latest.is_file():
            return False
        folder = self.out / "checkpoints" / latest.read_text().strip()
        if not (folder / "trainer.json").is_file():
            raise CheckpointError(f"{latest} points to {folder}, which is incomplete; delete {latest} to start over.")
        from safetensors.torch import load_file

        from rrsis_engine.model.checkpoint import load_state_strict

        state = json.loads((folder / "trainer.json").read_text())
        saved = state["options"]
        for key in ("config", "batch", "accum", "image_size", "seed", "sources", "expressions", "ema"):
            if saved.get(key, TrainOptions.__dataclass_fields__[key].default) != getattr(self.opts, key):
                raise CheckpointError(
                    f"--resume: the run in {self.out} used {key}={saved.get(key)!r}, now {getattr(self.opts, key)!r}. "
                    "Resume with the same settings (or start a new --out)."
                )
        load_state_strict(self.model, load_file(str(folder / "model.safetensors")), str(folder))
        load_optimizer(self.opt, folder / "optimizer.safetensors")
        if self.ema is not None:
            load_state_strict(self.ema.module, load_file(str(folder / "model-ema.safetensors")), str(folder))
        torch.set_rng_state(load_file(str(folder / "rng.safetensors"))["torch_cpu"])
        self.step, self.samples = int(state["step"]), int(state["samples"])
        self.elapsed = float(state["elapsed_s"])
        self.data_seconds = float(state.get("data_seconds", 0.0))
        self.parent = state.get("parent")
        self._truncate_log()
        return True

    def _truncate_log(self) -> None:
        path = self.out / "log.csv"
        if self.rank != 0 or not path.is_file():
            return
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def _log_row(self, row: dict) -> None:
        if self.rank != 0:
            return
        path = self.out / "log.csv"
        new = not path.is_file()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        o = self.opts
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.load():
            log.info("resumed %s at step %d (%d samples)", self.out, self.step, self.samples)
        elif self.rank == 0:
            (self.out / "log.csv").unlink(missing_ok=True)
        if self.rank == 0:
            (self.out / "options.json").write_text(json.dumps(o.to_json(), indent=2))
        if self.step >= o.steps:
            log.info("%s already reached step %d", self.out, self.step)
            return {"step": self.step, "samples": self.samples}
        if o.ranker_cache and self.ranker_cache is None:
            self.ranker_cache = load_or_build(self)
        if o.refiner_cache and self.refiner_cache is None:
            self.refiner_cache = load_or_build_refiner_cache(self)
        from tqdm.auto import tqdm

        self.start_workers()
        bar = tqdm(total=o.steps, initial=self.step, disable=not o.progress or self.rank != 0,
                   unit="step", dynamic_ncols=True, desc=f"train {self.model.config.name}")
        stop = {"flag": False}
        old_handler = None
        if hasattr(signal, "SIGTERM"):  # every rank: torchrun passes the signal on to all of them
            try:
                old_handler = signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__("flag", True))
            except ValueError:  # not in the main thread
                old_handler = None
        if o.detect_anomaly:  # slow: for finding where a NaN comes from (docs/training.md, "On a lent GPU")
            torch.autograd.set_detect_anomaly(True, check_nan=True)
        profiler = self._start_profiler() if o.profile > 0 and self.rank == 0 else None
        t_start = time.perf_counter()
        run_start_elapsed = self.elapsed
        last_ckpt = time.perf_counter()
        window: list[tuple[float, int]] = []
        last: dict = {}
        try:
            while self.step < o.steps:  # leaves by the agreed stop below, never on a flag one rank alone has seen
                t0 = time.perf_counter()
                row = self.train_step()
                if profiler is not None:
                    profiler.step()
                dt = time.perf_counter() - t0
                self.elapsed = run_start_elapsed + (time.perf_counter() - t_start)
                window = (window + [(dt, o.batch * o.accum * self.world)])[-20:]
                sps = sum(n for _, n in window) / max(1e-9, sum(t for t, _ in window))
                row.update(step=self.step, samples=self.samples, samples_per_s=sps, elapsed_s=self.elapsed)
                last = row
                self.history.append(row)
                bar.update(1)
                shown = {"loss": f"{row['loss']:.3f}", "sps": f"{sps:.2f}"}
                if "miou_text" in row:  # not in steps on cached ranker inputs
                    shown["iou"] = f"{row['miou_text']:.2f}"
                bar.set_postfix(shown, refresh=False)
                if self.step % max(1, o.log_every) == 0 or self.step == o.steps:
                    self._log_row(row)
                if self.on_step:
                    self.on_step(row)
                due = (o.ckpt_every and self.step % o.ckpt_every == 0) or (
                    o.ckpt_minutes and time.perf_counter() - last_ckpt >= o.ckpt_minutes * 60)
                if due:
                    self.save()
                    last_ckpt = time.perf_counter()
                # each rank has its own clock and signal: they agree to stop after the same step
                signalled, time_up = any_rank(
                    stop["flag"], bool(o.max_minutes) and (time.perf_counter() - t_start) >= o.max_minutes * 60)
                if signalled:
                    stop["flag"] = True
                    break
                if time_up:
                    log.info("stopping after --max-minutes %.1f", o.max_minutes)
                    break
        except KeyboardInterrupt:
            log.warning("interrupted at step %d: writing a checkpoint before exiting", self.step)
            self.save()
            raise
        finally:
            bar.close()
            if profiler is not None:
                profiler.stop()  # writes profile.txt if the profiled steps ran before the run ended
            self.prefetch = None  # ends the worker processes
            torch.autograd.set_detect_anomaly(False)
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
        self.save()
        if stop["flag"] and self.rank == 0:
            log.info("SIGTERM: stopped at step %d with a checkpoint; `--resume` continues", self.step)
        return {"step": self.step, "samples": self.samples, "elapsed_s": self.elapsed, "last": last,
                "text_cache_hits": self.text_cache.hits, "text_cache_misses": self.text_cache.misses,
                "data_seconds": self.data_seconds, "skipped_steps": self.skipped_steps,
                "stopped_by_signal": stop["flag"]}

    def _start_profiler(self):
        """torch.profiler over ``--profile`` steps after two unprofiled ones (warm-up: the first step's allocations and
        kernel choices); when they end, their operators by self time (CUDA time on a GPU) → ``profile.txt``."""
        from torch.profiler import ProfilerActivity, profile, schedule

        cuda = self.device.type == "cuda"
        path = self.out / "profile.txt"
        steps = self.opts.profile

        def write(prof) -> None:
            sort = "self_device_time_total" if cuda else "self_cpu_time_total"
            table = prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=60)
            path.write_text(f"torch.profiler over {steps} training steps (after 2 unprofiled), by {sort}:\n{table}\n")
            log.info("wrote %s", path)

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        prof = profile(activities=activities, schedule=schedule(wait=1, warmup=1, active=steps, repeat=1),
                       on_trace_ready=write)
        prof.start()
        return prof


def train(opts: TrainOptions, resume: bool = False, device: str | None = None, on_step=None) -> dict:
    """Run (or resume) a training run; returns a summary dict."""
    return Trainer(opts, device=device, on_step=on_step).fit(resume=resume)
