"""RSAM loss (seed 003 §3.2.4): 20·focal + 1·dice + 1·object BCE + 1·IoU L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
