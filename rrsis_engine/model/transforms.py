"""Image ↔ model-frame transforms: resize the longest side to S, pad bottom/right to S×S.

A pixel (x, y) of the H×W image maps to (x·s, y·s) in the S×S model frame, s = S / max(H, W).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PIXEL_MEAN = (123.675, 116.28, 103.53)  # ImageNet, as SAM 2
PIXEL_STD = (58.395, 57.12, 57.375)


def resize_scale(height: int, width: int, size: int) -> float:
    return size / max(height, width)


def valid_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) of the image content inside the padded S×S frame."""
    s = resize_scale(height, width, size)
    return max(1, min(size, round(height * s))), max(1, min(size, round(width * s)))


def image_to_tensor(pixels: np.ndarray, size: int) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×S×S float, normalised, content top-left, zero (mean) padding."""
    h, w = valid_shape(pixels.shape[0], pixels.shape[1], size)
    x = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1)[None]  # a writable copy
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return F.pad(x, (0, size - w, 0, size - h))


def mask_to_tensor(mask: np.ndarray, size: int, out_size: int | None = None) -> torch.Tensor:
    """H×W bool → 1×1×S'×S' float in {0,1}-ish (S' = out_size or S), same framing as the image."""
    out = out_size or size
    h, w = valid_shape(mask.shape[0], mask.shape[1], out)
    m = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return F.pad(m, (0, out - w, 0, out - h))


def logits_to_image(low_res: torch.Tensor, height: int, width: int, size: int) -> torch.Tensor:
    """Model-frame logits B×1×s×s (any s) → B×1×H×W in the image frame (crop padding, upsample)."""
    s = low_res.shape[-1]
    h, w = valid_shape(height, width, s)
    cropped = low_res[..., :h, :w]
    return F.interpolate(cropped, size=(height, width), mode="bilinear", align_corners=False)


def image_logits_to_model(logits: np.ndarray, size: int, pad_logit: float = -20.0) -> torch.Tensor:
    """H×W logits in the image frame → 1×1×s×s in the model frame (s = ``size``: bilinear resize of the longest side
    to s, padding = ``pad_logit``, i.e. background), clamped to ±|pad_logit| — a prior for ``mask_input``. The inverse
    of :func:`logits_to_image`."""
    h, w = valid_shape(logits.shape[0], logits.shape[1], size)
    x = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))[None, None]
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    bound = abs(pad_logit)
    return F.pad(x, (0, size - w, 0, size - h), value=pad_logit).clamp(-bound, bound)


def points_to_model(points: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """N×2 (x, y) image pixels → model-frame pixels."""
    return np.asarray(points, dtype=np.float32) * resize_scale(height, width, size)
