"""RSAM loss (seed 003 §3.2.4): 20·focal + 1·dice + 1·object BCE + 1·IoU L1.

The training losses run in float32 even inside a bfloat16 autocast region (``rrsis train --precision bf16``):
their tensor arguments are cast up and autocast is off inside them (:func:`float32_loss`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def float32_loss(fn):
    """Decorator: call ``fn`` with floating tensor arguments cast to float32 and autocast disabled."""

    def up(x):
        return x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper


def sigmoid_focal_loss(logits, target, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Per-sample mean over pixels. logits/target B×1×H×W."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(1).mean(1)


def dice_loss(logits, target, eps: float = 1.0) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def mask_iou(logits, target) -> torch.Tensor:
    """IoU of the thresholded prediction with the target, per sample (no gradient); logits smaller than the
    target are upsampled bilinearly to it first."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    pred = (logits > 0).flatten(1).float()
    t = (target > 0.5).flatten(1).float()
    inter = (pred * t).sum(1)
    union = pred.sum(1) + t.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@float32_loss
def rsam_loss(mask_logits, iou_pred, obj_logits, target, weights=(20.0, 1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """mask_logits B×1×h×w, target B×1×H×W in [0, 1], iou_pred B×1, obj_logits B×1.

    When the target is larger than the logits (e.g. the S×S input frame vs the S/4 logits), the logits are
    upsampled bilinearly to it, as SAM 2's training does, so small objects keep their pixels.
    Mask losses only count for samples whose target is non-empty (as SAM 2 does for absent objects); any
    covered pixel makes an object present (a car downsampled to a fraction of a pixel is still there).
    """
    if mask_logits.shape[-2:] != target.shape[-2:]:
        mask_logits = F.interpolate(mask_logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    present = (target.flatten(1).amax(1) > 0).float()
    n_present = present.sum().clamp(min=1)
    focal = (sigmoid_focal_loss(mask_logits, target) * present).sum() / n_present
    dice = (dice_loss(mask_logits, target) * present).sum() / n_present
    obj = F.binary_cross_entropy_with_logits(obj_logits[:, 0], present)
    iou_l1 = ((iou_pred[:, 0] - mask_iou(mask_logits.detach(), target)).abs() * present).sum() / n_present
    w = weights
    total = w[0] * focal + w[1] * dice + w[2] * obj + w[3] * iou_l1
    return {"loss": total, "focal": focal.detach(), "dice": dice.detach(), "obj": obj.detach(), "iou": iou_l1.detach()}


# ---- CroBIM-U RUS: online error-consistency loss (seed 004 §III-C b, eq. 4–8) -------------------------
def rus_error_target(mask_logits: torch.Tensor, target: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The model's own error map on U's grid (no gradient).

    mask_logits B×1×h×w (any grid), target B×1×H×W in [0, 1]. The logits are upsampled bilinearly to the
    target's grid (as :func:`rsam_loss` does), e = |(σ(logits) > 0.5) − (target > 0.5)|, then area-averaged
    to ``grid`` (U's h×w): z B×1×grid in [0, 1] = share of wrong pixels in each U cell.
    """
    with torch.no_grad():
        logits = mask_logits.detach()
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        err = ((logits > 0) != (target > 0.5)).to(mask_logits.dtype)  # σ(x) > 0.5 ⇔ x > 0
        if err.shape[-2:] != tuple(grid):
            err = F.adaptive_avg_pool2d(err, grid)
        return err


@float32_loss
def rus_loss(u_logits: torch.Tensor, mask_logits: torch.Tensor, target: torch.Tensor, max_pos_weight: float = 20.0,
             hard_weight: float = 1.0, hard_iou: float = 0.5, eps: float = 1.0) -> dict[str, torch.Tensor]:
    """Weighted BCE of RUS's U (B×1×h×w logits) against :func:`rus_error_target` of the prediction.

    Pixel weight (eq. 8): error cells weigh (n0 + eps)/(n1 + eps) per sample, clamped to ``max_pos_weight``
    (n1 = Σz, n0 = Σ(1 − z) over the soft target). Sample weight (eq. 7): 1 + ``hard_weight`` when the
    prediction's IoU with the target is below ``hard_iou``. Mean over B·h·w (eq. 6). The warm-up ramp and
    λ_unc are the caller's (the trainer's). Returns {"loss", "target" (z), "pos_weight" B}.
    """
    z = rus_error_target(mask_logits, target, tuple(u_logits.shape[-2:]))
    n1 = z.flatten(1).sum(1)
    n0 = (1 - z).flatten(1).sum(1)
    pos_weight = ((n0 + eps) / (n1 + eps)).clamp(max=max_pos_weight)
    bce = F.binary_cross_entropy_with_logits(u_logits, z, pos_weight=pos_weight.view(-1, 1, 1, 1), reduction="none")
    hard = (mask_iou(mask_logits.detach(), target) < hard_iou).to(bce.dtype)
    w_sample = 1 + hard_weight * hard
    loss = (bce.flatten(1).mean(1) * w_sample).mean()
    return {"loss": loss, "target": z, "pos_weight": pos_weight}


@float32_loss
def semantic_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft-target cross-entropy of category logits B×K×g×g against area fractions B×K×g×g, each cell
    weighted by its known share (padding and hidden pixels count nothing): the semantic head's loss."""
    weight = target.sum(1)
    p = target / weight.clamp_min(1e-6)[:, None]
    ce = -(p * F.log_softmax(logits.float(), 1)).sum(1)
    return (ce * weight).sum() / weight.sum().clamp_min(1e-6)


@float32_loss
def distractor_loss(logits: torch.Tensor, distractors: torch.Tensor) -> torch.Tensor:
    """Mean BCE towards background over the look-alikes an expression rules out: logits B×1×h×w, distractors
    B×1×h×w share of each cell they cover (same grid). Each sample is the distractor-weighted mean of
    softplus(logit) — a mask that also covers the other houses of "the westernmost house" pays here in full,
    however small they are next to the image."""
    weight = distractors.flatten(1)
    per_sample = (F.softplus(logits.float()).flatten(1) * weight).sum(1) / weight.sum(1).clamp_min(1e-6)
    return per_sample.mean()
