"""Click refiner: a small local convolutional head that corrects the decoder's mask logits around clicks.

SAM's decoder reaches the mask from a click only through attention, whose locality (point PE ↔ image PE)
a decoder trained from scratch on a few thousand CPU samples does not learn: its clicks changed the whole
mask a little instead of the clicked region (docs/training.md). This head gives clicks a local path, in the
spirit of FocalClick/RITM refiners: on the S/4 grid it sees the decoder's logits, the previous turn's logits,
Gaussian maps of the positive and negative clicks and the high-resolution image features V1, runs dilated
3×3 convolutions (receptive field ≈ 31 cells = 124 model pixels) and adds a residual to the logits.
Its output layer starts at zero (masks unchanged at initialisation); it runs only for samples with clicks,
so text-only turns are exactly the decoder's. Config switch ``use_click_refiner``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def click_gaussians(points: torch.Tensor, grid: int, stride: float, sigma: float) -> torch.Tensor:
    """points (…)×N×2 model-frame (x, y) pixels → (…)×N×grid×grid: exp(−d²/2σ²) per click, d in grid cells from each
    cell centre (cells ``stride`` pixels wide)."""
    centres = (torch.arange(grid, device=points.device, dtype=points.dtype) + 0.5) * stride
    dy = ((centres - points[..., 1:2]) / stride) ** 2  # (…)×N×grid (rows)
    dx = ((centres - points[..., 0:1]) / stride) ** 2  # (…)×N×grid (cols)
    return torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2 * sigma**2))


def click_maps(points: torch.Tensor, labels: torch.Tensor, grid: int, stride: int, sigma: float) -> torch.Tensor:
    """points B×N×2 model-frame (x, y) pixels, labels B×N (1 positive, 0 negative, others ignored) →
    B×2×grid×grid: max over clicks of :func:`click_gaussians`; channel 0 positive."""
    g = click_gaussians(points, grid, stride, sigma)  # B×N×grid×grid
    maps = [(g * (labels == lab)[..., None, None]).amax(1, keepdim=True) for lab in (1, 0)]
    return torch.cat(maps, dim=1)


#: σ of the Gaussian click maps, in S/4 grid cells
CLICK_MAP_SIGMA = 2.0


class LocalConvHead(nn.Module):
    """Dilated 3×3 convolutions on the S/4 grid: x B×C×g×g → B×1×g×g (a 1×1 input projection, residual GELU
    blocks, a 1×1 output starting at weight 0 and bias ``out_bias``). Shared by the click refiner and the
    turn-error head."""

    def __init__(self, in_channels: int, channels: int = 32, dilations=(1, 2, 4, 8), out_bias: float = 0.0):
        super().__init__()
        self.inp = nn.Conv2d(in_channels, channels, 1)
        self.blocks = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in dilations)
        self.out = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, out_bias)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(x))
        for conv in self.blocks:
            h = h + F.gelu(conv(h))
        return self.out(h)


class ClickRefiner(LocalConvHead):
    """logits B×1×g×g, prior B×1×g×g (logits or zeros), clicks B×2×g×g, v1 B×C×g×g → refined logits."""

    def __init__(self, v1_channels: int, channels: int = 32, dilations=(1, 2, 4, 8), sigma: float = CLICK_MAP_SIGMA):
        super().__init__(4 + v1_channels, channels, dilations)  # Δ ≡ 0 at init
        self.sigma = float(sigma)

    def forward(self, logits, prior, clicks, v1):
        # logits can be large; the head sees them squashed to (−1, 1)
        x = torch.cat([torch.tanh(logits / 8), torch.tanh(prior / 8), clicks, v1], dim=1)
        return logits + self.head(x)
