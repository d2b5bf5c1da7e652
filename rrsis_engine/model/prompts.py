"""SAM 2 prompt encoder with RSAM's learnable *empty* sparse and *null* dense embeddings.

Inputs are in the model frame (square S×S input): points B×N×2 (x, y) pixels with labels B×N
(1 positive, 0 negative, 2/3 box corners, -1 padding); masks B×1×(S/4)×(S/4) logits or None.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from torch import nn


class RSAMPromptEncoder(PromptEncoder):
    def __init__(self, embed_dim: int, image_size: int, mask_in_chans: int = 16):
        grid = image_size // 16
        super().__init__(
            embed_dim=embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=mask_in_chans,
        )
        # v_se: stands for "no point or box" (SAM 2's own no_mask_embed is the null dense embedding v_de).
        self.empty_sparse_embed = nn.Embedding(1, embed_dim)

    def encode(
        self,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        masks: torch.Tensor | None,
        has_mask: torch.Tensor | None = None,
        batch_size: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse B×(1+N)×d (the empty token first when a sample has no valid point) and dense B×d×h×w.

        has_mask (B bool) selects per sample whether ``masks`` holds a prior (else the null embedding)."""
        device = self.empty_sparse_embed.weight.device
        if points is not None and points.shape[1] > 0:
            b = points.shape[0]
            sparse = self._embed_points(points, labels, pad=False)
            valid = (labels >= 0).any(dim=1)  # B
        else:
            b = masks.shape[0] if masks is not None else batch_size
            sparse = torch.empty(b, 0, self.embed_dim, device=device)
            valid = torch.zeros(b, dtype=torch.bool, device=device)
        empty = self.empty_sparse_embed.weight.expand(b, 1, -1)
        # Samples with prompts get a padding token in that slot, so every sample has the same length.
        first = torch.where(valid[:, None, None], self.not_a_point_embed.weight.expand(b, 1, -1), empty)
        sparse = torch.cat([first, sparse], dim=1)
        h, w = self.image_embedding_size
        null = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
        if masks is None:
            dense = null
        else:
            dense = self._embed_masks(masks)
            if has_mask is not None:
                dense = torch.where(has_mask[:, None, None, None], dense, null)
        return sparse, dense

