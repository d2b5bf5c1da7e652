"""Turn-error head: where *this turn's* mask is likely wrong, given the turn's prompts.

RUS's U (rrsis_engine.model.uncertainty) sees only image and text, so it describes the text-only prediction and
does not move when the labeler clicks: after a click σ(U) still marks the old mistakes (its correlation with the
wrong pixels fell from 0.46 to 0.31 over three clicks on the synthetic test scenes, MODEL_CARD.md). This head reads
what the turn was given and what it produced — the final mask logits, the previous turn's logits (the prior), Gaussian
maps of the positive and negative clicks, σ(U) and the high-resolution image features V1 — and predicts the
error map of the turn's mask with the same dilated-convolution trunk as the click refiner
(:class:`rrsis_engine.model.click_refiner.LocalConvHead`, receptive field ≈ 31 cells).

Trained by ``rrsis train --error-head W`` on every simulated turn (text, dialogue and correction clicks) with
RUS's online error-consistency loss (:func:`rrsis_engine.model.loss.rus_loss`) against the detached
prediction's own error map; it changes no mask. The predictor reports σ(E) as the prediction's uncertainty map;
the ambiguity cues keep reading σ(U). Config switch ``use_error_head``.

:class:`ClickGainHead` reads the same inputs and predicts, per cell, the IoU gain one truthfully labelled click
there would bring; the suggested click goes to its best cell among those σ(E) marks as wrong. Placed on σ(E)
alone (best window, or looking one turn ahead with the decoder), the suggestion did no better than RUS's σ(U)
(MODEL_CARD.md, "Suggested clicks"). :class:`ClickPolicyHead` (stop 27) instead learns where the best correction
click goes; with it, the suggestion is its most probable cell.

Frames: every map is on the padded S/4 model grid, (row, col) = (y, x), content top-left.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rrsis_engine.model.click_refiner import LocalConvHead


class ErrorHead(LocalConvHead):
    """logits, prior B×1×g×g (logits; prior zeros when there is none), clicks B×2×g×g, u B×1×g×g (σ(U) resized,
    or zeros), v1 B×C×g×g → error logits E B×1×g×g (high = the turn's mask is likely wrong there).

    The output starts at a constant logit of −2 (σ ≈ 0.12: most of a mask is right)."""

    def __init__(self, v1_channels: int, channels: int = 32, dilations=(1, 2, 4, 8), out_bias: float = -2.0):
        super().__init__(5 + v1_channels, channels, dilations, out_bias=out_bias)

    def forward(self, logits, prior, clicks, u, v1):
        x = torch.cat([torch.tanh(logits / 8), torch.tanh(prior / 8), clicks, u, v1], dim=1)
        return self.head(x)


class ClickGainHead(ErrorHead):
    """The same inputs as :class:`ErrorHead` → G B×1×g×g: the IoU gain (in IoU points / 10, e.g. 1.0 = +0.1) that one
    correction click at each cell, labelled truthfully, would bring — where to suggest the next click. Trained by
    ``rrsis train --click-gain-head W`` against the gains of clicks actually decoded at sampled cells. Starts at 0."""

    def __init__(self, v1_channels: int, channels: int = 32, dilations=(1, 2, 4, 8)):
        super().__init__(v1_channels, channels, dilations, out_bias=0.0)


class ClickPolicyHead(ErrorHead):
    """The same inputs as :class:`ErrorHead` → P B×1×g×g: logits of a distribution over the cells (softmax over the
    valid ones) of where the best next correction click goes — of the centres of the largest error regions, the one
    whose truthfully labelled click gains the most IoU, found in training with the ground truth and the decoder
    (``rrsis train --click-policy-head W``: ``TrainStep.click_policy_loss``, cross-entropy at every state of the click
    rounds). The suggestion goes there without the ground truth. Starts uniform."""

    def __init__(self, v1_channels: int, channels: int = 32, dilations=(1, 2, 4, 8)):
        super().__init__(v1_channels, channels, dilations, out_bias=0.0)


def uncertainty_on_grid(u: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """σ(U) of RUS (B'×1×h×w logits, B' = B or 1) resized bilinearly to ``like``'s B×1×g×g grid; zeros without U."""
    if u is None:
        return torch.zeros_like(like)
    up = torch.sigmoid(F.interpolate(u.float(), size=like.shape[-2:], mode="bilinear", align_corners=False))
    return up.expand(like.shape[0], -1, -1, -1).to(like.dtype)
