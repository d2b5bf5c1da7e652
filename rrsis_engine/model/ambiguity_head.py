"""Ambiguity head: does the expression pick out one object here, or several look-alikes?

A learned cue for the per-turn ambiguity score (:mod:`rrsis_engine.ambiguity`), trained by ``rrsis train
--ambiguity-head W`` with a BCE against the data's ``ambiguous`` labels (synthetic scenes and real referring
sets carry them). It reads the TWGM-fused image tokens gated by the text's global token T_G — a per-cell
"matches the expression" map — through two 3×3 convolutions, then mean and max pooling (how much of the image
matches, and how strongly) and an MLP. Runs once per (image, text), so click turns do not pay for it.
Config switch ``use_ambiguity_head``.
"""

from __future__ import annotations

import torch
from torch import nn


class AmbiguityHead(nn.Module):
    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        self.image_proj = nn.Conv2d(dim, hidden, 1)
        self.text_proj = nn.Linear(dim, hidden)
        self.convs = nn.Sequential(
            nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.GELU(),
        )
        self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, vd: torch.Tensor, t_global: torch.Tensor) -> torch.Tensor:
        """fused vd B×d×h×w (h = S/16), T_G B×d → ambiguity logit B×1 (high = several objects match)."""
        x = self.image_proj(vd) * self.text_proj(t_global)[:, :, None, None]
        x = self.convs(x)
        return self.out(torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1))
