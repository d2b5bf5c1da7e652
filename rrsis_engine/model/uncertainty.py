"""CroBIM-U uncertainty modules (seed 004 §III-C…E) for RSAM: RUS, UGF, UDLR.

- :class:`RUS` (Referring Uncertainty Scorer): the coarsest visual tokens V_d (B×d×h×w, h = S/16, taken
  *before* TWGM) attend to the text tokens; an MLP on [V; attended text] gives one logit per token →
  U B×1×h×w (logits; larger = the prediction is more likely wrong there). Trained online by
  :func:`rrsis_engine.model.loss.rus_loss` against the model's own error map.
- :class:`UGF` (Uncertainty-Gated Fusion): one post-fusion text→image cross-attention whose update is
  gated per token by g = σ(α·U + β): V' = LN(V + g ⊙ Proj(CA(V, T))). The paper applies it (shared) to
  each decoder input level; RSAM fuses text at one level only (V_d, the MMMD's image input; V1/V2 are
  image-only skip features), so UGF runs once, on the TWGM output at S/16.
- :class:`UDLR` (Uncertainty-Driven Local Refinement): soft mask M = σ((blur(σ(Ũ)) − τ)/t), Ũ = U resized
  (bilinear, on logits) to the S/4 mask-logit grid, gradient stopped; a residual Δ = conv1×1(ReLU(conv3×3(
  [P; M]))) with the last conv zero-initialised, P' = P + M ⊙ Δ. At initialisation P' == P exactly.
  (The paper's head also reads the decoder's high-res feature F and two 3×3 convs; this one is lighter.)

Frames: every map here is in the padded S×S model frame, (row, col) = (y, x), content top-left.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rrsis_engine.model.twgm import Attention


def _expand_batch(vd: torch.Tensor, b: int) -> torch.Tensor:
    return vd if vd.shape[0] == b else vd.expand(b, -1, -1, -1)


class RUS(nn.Module):
    """vd B×d×h×w (or 1×… shared by B texts), txt B×L×d, txt_mask B×L (True = real token) → U B×1×h×w.

    Paper eq. 3: V' = V·W_v, T' = T·W_t (both identity-initialised), A = softmax_L(γ·V'T'ᵀ) (γ learnable,
    initialised to 1/√d), T̃ = A·T', u = MLP(LN([V; T̃])). The last layer's bias starts at ``init_bias``
    (σ(−2) ≈ 0.12: most of a prediction is right)."""

    def __init__(self, dim: int, hidden: int | None = None, init_bias: float = -2.0):
        super().__init__()
        self.v_proj = nn.Linear(dim, dim)
        self.t_proj = nn.Linear(dim, dim)
        for lin in (self.v_proj, self.t_proj):
            nn.init.eye_(lin.weight)
            nn.init.zeros_(lin.bias)
        # γ = exp(log γ) > 0. Scalars are stored with shape (1,): model_hash views tensors as bytes (not 0-d)
        self.log_gamma = nn.Parameter(torch.full((1,), -0.5 * math.log(dim)))
        hidden = hidden or dim
        self.norm = nn.LayerNorm(2 * dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        nn.init.constant_(self.mlp[-1].bias, init_bias)

    def forward(self, vd: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor) -> torch.Tensor:
        b = txt.shape[0]
        vd = _expand_batch(vd, b)
        _, c, h, w = vd.shape
        v = vd.flatten(2).transpose(1, 2)  # B×N×d, N = h·w, row-major (y, x)
        vq, tk = self.v_proj(v), self.t_proj(txt)
        scores = torch.exp(self.log_gamma) * (vq @ tk.transpose(1, 2))  # B×N×L
        scores = scores.masked_fill(~txt_mask[:, None, :].bool(), float("-inf"))
        attended = scores.softmax(-1) @ tk  # B×N×d
        u = self.mlp(self.norm(torch.cat([v, attended], dim=-1)))  # B×N×1
        return u.transpose(1, 2).reshape(b, 1, h, w)


class UGF(nn.Module):
    """img B×N×d (fused tokens, N = h·w row-major), txt B×L×d, txt_mask B×L, u B×1×h'×w' logits → B×N×d.

    U is resized (bilinear, on logits) to h×w when its grid differs. α = 1, β = 0 at start (higher U →
    stronger language injection, paper eq. 11); Proj is zero-initialised so the first update is LN(V)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))
        nn.init.zeros_(self.proj[0].weight)
        nn.init.zeros_(self.proj[0].bias)
        self.alpha = nn.Parameter(torch.ones(1))  # shape (1,), not 0-d (see RUS.log_gamma)
        self.beta = nn.Parameter(torch.zeros(1))
        self.norm = nn.LayerNorm(dim)

    def gate(self, u: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """u B×1×h'×w' logits → g B×(h·w)×1 in (0, 1)."""
        if u.shape[-2:] != hw:
            u = F.interpolate(u, size=hw, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.alpha * u.flatten(2).transpose(1, 2) + self.beta)

    def forward(self, img, txt, txt_mask, u, hw: tuple[int, int]) -> torch.Tensor:
        delta = self.proj(self.attn(img, txt, txt, txt_mask))
        return self.norm(img + self.gate(u, hw) * delta)


class UDLR(nn.Module):
    """logits B×1×H×W (mask logits, S/4 grid), u B×1×h×w (RUS logits) → refined logits B×1×H×W."""

    def __init__(self, channels: int = 16, tau: float = 0.5, temperature: float = 0.1, blur: int = 3):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"udlr_temperature must be > 0, got {temperature}.")
        self.tau, self.temperature, self.blur = float(tau), float(temperature), int(blur)
        self.conv = nn.Conv2d(2, channels, 3, padding=1)
        self.out = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.out.weight)  # Δ ≡ 0 at init: predictions unchanged
        nn.init.zeros_(self.out.bias)

    @torch.no_grad()
    def soft_mask(self, u: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """M = σ((blur(σ(resize(U))) − τ)/t), B×1×H×W in (0, 1), no gradient (paper eq. 13–14)."""
        up = torch.sigmoid(F.interpolate(u.float(), size=size, mode="bilinear", align_corners=False))
        if self.blur > 1:
            up = F.avg_pool2d(up, self.blur, stride=1, padding=self.blur // 2, count_include_pad=False)
        return torch.sigmoid((up - self.tau) / self.temperature).to(u.dtype)

    def forward(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if u.shape[0] != logits.shape[0]:
            u = u.expand(logits.shape[0], -1, -1, -1)
        m = self.soft_mask(u, tuple(logits.shape[-2:]))
        delta = self.out(F.relu(self.conv(torch.cat([logits, m], dim=1))))
        return logits + m * delta
