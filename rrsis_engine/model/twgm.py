"""Two-Way Guidance Module (RSAM §3.2.2).

N two-way guidance transformer (TWGT) layers update image and text tokens together: self-attention in
each modality, cross-attention both ways, MLPs; each followed by residual + LayerNorm. Learnable
positional embeddings are added to queries and keys only (DETR style). A final text→image
cross-attention yields T; T_G = T[:, 0] (the [GT] token).

``pre_norm=True`` puts each LayerNorm on the sub-layer's input instead (x + f(LN(x)), the residual stream never
normalised away). Trained from scratch, the post-norm layers' sub-layer outputs grew 5–30× larger than their
inputs, and after the first layer every text token — [GT] included — was the same vector for every sentence:
the text→image cross-attention's output (norm ≈ 165 against 16) replaced the text (docs/training.md).

``kv_grid=g > 0`` lets attention *to* the image (image self-attention, text→image) use keys and values averaged
down to a g×g grid (adaptive average pooling; PVT's spatial-reduction attention); image queries keep full
resolution. The projections commute with the averaging, so weights trained with full-resolution keys load
unchanged; image self-attention costs h·w·g² instead of (h·w)². Config ``twgm_kv_grid`` (0 = full resolution, the
paper's). In the shipped rsam-lite (trained with full-resolution keys, and keeping them) the attention to the image
is peaked but adds little to the residual stream: an 8×8 grid moved its fused tokens by 1.6 % (T_G by 6 %) and its
validation IoU by less than 0.005 (docs/training.md, "TWGM through averaged keys").

Shapes: image tokens B×(h·w)×d (h = w = image_size/16), text tokens B×L×d with key mask B×L.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v inputs and an optional key mask (True = attend)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, q, k, v, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, nq, d = q.shape
        h = self.heads

        def split(x):
            return x.view(b, -1, h, d // h).transpose(1, 2)

        q, k, v = split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, d))


def pool_tokens(x: torch.Tensor, grid: int, out_grid: int) -> torch.Tensor:
    """B×(grid²)×d row-major tokens → B×(out_grid²)×d block means (adaptive average pooling); out_grid 0 or ≥ grid:
    x itself."""
    if out_grid <= 0 or out_grid >= grid:
        return x
    b, _, d = x.shape
    x = F.adaptive_avg_pool2d(x.transpose(1, 2).reshape(b, d, grid, grid), out_grid)
    return x.flatten(2).transpose(1, 2)


class TWGTLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, pre_norm: bool = False, grid: int = 0, kv_grid: int = 0):
        super().__init__()
        self.pre_norm = pre_norm
        self.grid, self.kv_grid = grid, kv_grid
        self.img_self = Attention(dim, heads)
        self.txt_self = Attention(dim, heads)
        self.txt_to_img = Attention(dim, heads)  # text queries attend to image
        self.img_to_txt = Attention(dim, heads)  # image queries attend to text
        self.img_mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.txt_mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(6))

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return pool_tokens(x, self.grid, self.kv_grid)

    def forward(self, img, txt, img_pe, txt_pe, txt_mask):
        if self.pre_norm:
            return self._forward_pre_norm(img, txt, img_pe, txt_pe, txt_mask)
        n, pool = self.norms, self._pool
        q = img + img_pe
        img = n[0](img + self.img_self(q, pool(q), pool(img)))
        q = txt + txt_pe
        txt = n[1](txt + self.txt_self(q, q, txt, txt_mask))
        # Cross-attention both ways from the same inputs ("synchronous update").
        img_q, txt_q = img + img_pe, txt + txt_pe
        img_new = n[2](img + self.img_to_txt(img_q, txt_q, txt, txt_mask))
        txt_new = n[3](txt + self.txt_to_img(txt_q, pool(img_q), pool(img)))
        img = n[4](img_new + self.img_mlp(img_new))
        txt = n[5](txt_new + self.txt_mlp(txt_new))
        return img, txt

    def _forward_pre_norm(self, img, txt, img_pe, txt_pe, txt_mask):
        n, pool = self.norms, self._pool
        x = n[0](img)
        img = img + self.img_self(x + img_pe, pool(x + img_pe), pool(x))
        t = n[1](txt)
        txt = txt + self.txt_self(t + txt_pe, t + txt_pe, t, txt_mask)
        x, t = n[2](img), n[3](txt)  # cross-attention both ways from the same inputs
        img_new = img + self.img_to_txt(x + img_pe, t + txt_pe, t, txt_mask)
        txt_new = txt + self.txt_to_img(t + txt_pe, pool(x + img_pe), pool(x))
        img = img_new + self.img_mlp(n[4](img_new))
        txt = txt_new + self.txt_mlp(n[5](txt_new))
        return img, txt


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid²)×dim 2-D sine/cosine position table (row-major tokens): dim/4 frequencies each of sin x, cos x, sin y,
    cos y, periods from 2 cells to about 2·grid cells; every entry in [-1, 1], each row has norm √(dim/2)."""
    quarter = dim // 4
    freqs = torch.exp(-torch.arange(quarter, dtype=torch.float32) / max(1, quarter - 1) * torch.log(torch.tensor(grid)))
    pos = torch.arange(grid, dtype=torch.float32)
    angle = torch.pi * pos[:, None] * freqs[None, :]  # grid × quarter
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    ax, ay = angle[xs.reshape(-1)], angle[ys.reshape(-1)]
    table = torch.cat([ax.sin(), ax.cos(), ay.sin(), ay.cos()], dim=1)
    return torch.nn.functional.pad(table, (0, dim - table.shape[1]))


class TWGMInput(nn.Module):
    """Where each image token is, at a scale TWGM and the decoder can use: a LayerNorm on the tokens entering
    TWGM and a learnable 2-D position embedding initialised with :func:`sincos_2d`, added to the tokens on the way
    in, to TWGM's queries and keys at every layer (beside its own embedding) and to the fused tokens on the way
    out (:meth:`rrsis_engine.model.RSAM.fuse`), so the decoder's masks can select "the leftmost" of several
    look-alikes. Without it, V_d of the encoder trained from scratch had token norms ≈ 800 and no linearly
    decodable position, TWGM's embedding (norm 0.4) could not steer attention, and TWGM's post-norm sub-layers
    (outputs 5–8× their inputs) wash position out of the tokens within one layer (docs/training.md).
    Config ``use_twgm_input``."""

    def __init__(self, dim: int, grid: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pos = nn.Parameter(sincos_2d(grid, dim)[None])  # 1×(grid²)×d

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img B×(h·w)×d → normalised tokens with their position added."""
        return self.norm(img) + self.pos


class TextPosition(nn.Module):
    """Where the sentence points, added to the fused image tokens: token p gets W_o·GELU(W_p·pos(p) + W_t·t), with
    t the sentence's [GT] token from the text encoder (before fusion) and pos the :func:`sincos_2d` table. A direct
    text × position path for "in the upper left", "the westernmost …": trained models fused without it made the same
    mask for "the westernmost building" and "the easternmost building" (docs/training.md). W_o starts at zero (the
    fusion is unchanged at initialisation). Config ``use_text_position``."""

    def __init__(self, dim: int, grid: int, pos_dim: int = 64, hidden: int = 128):
        super().__init__()
        self.register_buffer("table", sincos_2d(grid, pos_dim)[None], persistent=False)  # 1×(grid²)×pos_dim
        self.pos_proj = nn.Linear(pos_dim, hidden)
        self.text_proj = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, t_text: torch.Tensor) -> torch.Tensor:
        """t_text B×d → B×(grid²)×d, to add to the fused image tokens."""
        h = self.pos_proj(self.table) + self.text_proj(t_text)[:, None, :]
        return self.out(torch.nn.functional.gelu(h))


class TWGM(nn.Module):
    """Returns fused image tokens B×(h·w)×d and T_G B×d."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, layers: int, grid: int, max_text_tokens: int,
                 pre_norm: bool = False, kv_grid: int = 0):
        super().__init__()
        self.grid = grid
        self.pre_norm = pre_norm
        self.kv_grid = kv_grid
        self.img_pe = nn.Parameter(torch.zeros(1, grid * grid, dim))
        self.txt_pe = nn.Parameter(torch.zeros(1, max_text_tokens, dim))
        nn.init.normal_(self.img_pe, std=0.02)
        nn.init.normal_(self.txt_pe, std=0.02)
        self.layers = nn.ModuleList(TWGTLayer(dim, heads, mlp_dim, pre_norm, grid, kv_grid) for _ in range(layers))
        self.final_txt_to_img = Attention(dim, heads)
        self.final_norm = nn.LayerNorm(dim)
        # pre-norm: the image stream's closing norm (the fused tokens) and the text's before the final attention
        self.img_out_norm = nn.LayerNorm(dim) if pre_norm else None
        self.txt_out_norm = nn.LayerNorm(dim) if pre_norm else None

    def forward(self, img: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor,
                extra_img_pe: torch.Tensor | None = None):
        """extra_img_pe: 1×(h·w)×d added to the image position embedding of queries and keys (:class:`TWGMInput`)."""
        if img.shape[1] != self.img_pe.shape[1]:
            raise ValueError(f"TWGM expects {self.img_pe.shape[1]} image tokens, got {img.shape[1]}")
        img_pe = self.img_pe if extra_img_pe is None else self.img_pe + extra_img_pe
        txt_pe = self.txt_pe[:, : txt.shape[1]]
        for layer in self.layers:
            img, txt = layer(img, txt, img_pe, txt_pe, txt_mask)
        t = txt
        if self.pre_norm:
            img, t = self.img_out_norm(img), self.txt_out_norm(txt)
        keys, values = (pool_tokens(x, self.grid, self.kv_grid) for x in (img + img_pe, img))
        t = self.final_norm(txt + self.final_txt_to_img(t + txt_pe, keys, values))
        return img, t[:, 0]
