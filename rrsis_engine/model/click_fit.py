"""Click fitting: after a click turn, every click lies on the side of the mask the labeller put it on.

The decoder does not always follow its clicks: on 100 synthetic validation scenes, 31 % of the click turns of the
standard protocol left at least one click on the wrong side, and a labeller who clicks the same spot again gets the
same mask (docs/training.md, "Clicks the mask ignored"). As f-BRS (Sofiiuk et al., CVPR 2020) does by optimising a few
feature scales at inference, the turn's logits get a correction fitted to the clicks, here without another decoder
pass:

    correction(x) = Σ_k w_k(x) · (δ_k · F(x) + β_k)

w_k a Gaussian of σ = :data:`SIGMA_CELLS` cells around click k, F the decoder's upscaled features (what its
hypernetwork reads, scaled to unit RMS), δ_k and β_k fitted by L-BFGS to

    HINGE_WEIGHT · Σ_i relu(MARGIN − s_i · v_i)² + PENALTY · Σ_x correction(x)² / (2πσ²) + RIDGE · Σ_k (|δ_k|² + β_k²)

v_i the corrected logit at click i's exact position (bilinear, as the mask is upsampled), s_i = +1 / −1 for a positive
/ negative click. So the pixels around a click that look like it in the decoder's features follow it, the rest of the
mask stays, and a click the mask already respects changes nothing (the fit runs only when one does not).

Grid: logits and features on the S/4 grid of the model frame; points (x, y) model-frame pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rrsis_engine.model.click_refiner import click_gaussians

#: σ of each click's window, in S/4 grid cells (3 and 4 measured alike on the synthetic validation scenes; 6, in an
#: earlier form of the fit, cost two-click IoU −0.024 there)
SIGMA_CELLS = 3.0
#: the logit each click's position should reach on its side
MARGIN = 1.0
#: weight of the squared hinge, against the correction's sum of squares over a window's area (keeps the mask away
#: from the clicks as it was)
HINGE_WEIGHT = 10.0
PENALTY = 1.0
#: weight of the parameters' squared norm: spreads the correction over the pixels that look like the click (without
#: it the cheapest fit can single out the clicked cell through feature noise)
RIDGE = 1.0
#: L-BFGS iterations (one call, strong-Wolfe line search)
ITERATIONS = 20


def click_values(logits: torch.Tensor, points: torch.Tensor, image_size: int) -> torch.Tensor:
    """Logits 1×1×g×g (model frame) at points N×2 (x, y model-frame pixels, S = ``image_size``), bilinear as
    :func:`rrsis_engine.model.transforms.logits_to_image` upsamples them → N."""
    grid = (2 * points.to(logits.dtype) / image_size - 1).reshape(1, 1, -1, 2)
    return F.grid_sample(logits, grid, mode="bilinear", align_corners=False).reshape(-1)


def fit_to_clicks(logits: torch.Tensor, features: torch.Tensor, points: torch.Tensor, labels: torch.Tensor,
                  image_size: int) -> torch.Tensor:
    """One turn's mask logits 1×1×g×g corrected so that its clicks lie on their side (module docstring).

    features 1×C×g×g: the decoder's upscaled features; points N×2 (x, y) model-frame pixels; labels N (1 positive,
    0 negative; other codes — box corners, padding — are ignored). Returns the logits unchanged (the same tensor) when
    every click already lies on its side."""
    keep = (labels == 0) | (labels == 1)
    if not bool(keep.any()):
        return logits
    points, sign = points[keep].float(), labels[keep].float() * 2 - 1
    logits32 = logits.float()
    values = click_values(logits32, points, image_size)
    if bool((values * sign > 0).all()):
        return logits
    g = logits.shape[-1]
    # inference-mode tensors cannot be recorded by autograd: fit on copies made outside it
    with torch.inference_mode(False), torch.enable_grad():
        base, points, sign, base_values = logits32.clone(), points.clone(), sign.clone(), values.clone()
        feats = features[0].float().clone()
        feats = feats / feats.pow(2).mean().sqrt().clamp(min=1e-6)  # C×g×g, unit RMS (conditions the fit)
        window = click_gaussians(points, g, image_size / g, SIGMA_CELLS)  # N×g×g
        delta = torch.zeros(len(points), feats.shape[0], device=logits.device, requires_grad=True)
        beta = torch.zeros(len(points), device=logits.device, requires_grad=True)
        area = 2 * math.pi * SIGMA_CELLS ** 2

        def correction() -> torch.Tensor:
            return (window * (torch.einsum("kc,chw->khw", delta, feats) + beta[:, None, None])).sum(0)

        optimizer = torch.optim.LBFGS([delta, beta], lr=1.0, max_iter=ITERATIONS, line_search_fn="strong_wolfe")

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            c = correction()
            values = base_values + click_values(c[None, None], points, image_size)
            loss = HINGE_WEIGHT * F.relu(MARGIN - sign * values).pow(2).sum() + PENALTY * c.pow(2).sum() / area \
                + RIDGE * (delta.pow(2).sum() + beta.pow(2).sum())
            loss.backward()
            return loss

        optimizer.step(objective)
        with torch.no_grad():
            fitted = base + correction()[None, None]
    return fitted.to(logits.dtype)
