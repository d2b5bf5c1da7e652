"""Multimodal Mask Decoder (RSAM §3.2.3), built on SAM 2's mask decoder.

Decoding tokens E = concat(t_obj, t_iou, t_mask + T_G, P_s); V_d + P_d and E go through SAM 2's two-way
transformer; the result is upsampled by transposed convolutions fused with V2 (LN, GELU) and V1 (GELU);
a hypernetwork on t_mask gives the mask; MLP heads give the object score and IoU.

Module names match SAM 2's ``sam_mask_decoder`` so official checkpoints import into the shared parts.
Shapes: vd B×d×h×w (h = S/16), v1 B×d/8×4h×4w, v2 B×d/4×2h×2w (after conv_s0/conv_s1), t_global B×d,
sparse B×N×d, dense B×d×h×w → mask logits B×1×4h×4w, iou B×1, object logits B×1.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer


class MMMD(MaskDecoder):
    def __init__(self, dim: int, depth: int = 2, heads: int = 8, mlp_dim: int = 2048, text_as_mask_token: bool = True):
        super().__init__(
            transformer_dim=dim,
            transformer=TwoWayTransformer(depth=depth, embedding_dim=dim, mlp_dim=mlp_dim, num_heads=heads),
            num_multimask_outputs=0,
            iou_head_depth=3,
            iou_head_hidden_dim=256 if dim >= 256 else dim,
            use_high_res_features=True,
            iou_prediction_use_sigmoid=True,
            pred_obj_scores=True,
            pred_obj_scores_mlp=True,
        )
        # False = ablation baseline: T_G goes in as one more sparse prompt token (SAM 2 decoder + text token).
        self.text_as_mask_token = text_as_mask_token

    def project_high_res(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel-reduce the FPN's V1 (stride 4) and V2 (stride 8) once per image, as SAM 2 does."""
        return self.conv_s0(v1), self.conv_s1(v2)

    def decode(self, vd, image_pe, t_global, sparse, dense, v1, v2):
        masks, iou, obj, _ = self.decode_with_features(vd, image_pe, t_global, sparse, dense, v1, v2)
        return masks, iou, obj

    def decode_with_features(self, vd, image_pe, t_global, sparse, dense, v1, v2):
        """:meth:`decode`, and the upscaled features B×c'×4h×4w the hypernetwork's vector reads (mask logit = their
        inner product)."""
        b = sparse.shape[0]
        out = [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight]
        tokens = torch.cat(out, dim=0).unsqueeze(0).expand(b, -1, -1)
        if self.text_as_mask_token:
            tokens = torch.cat([tokens[:, :2], tokens[:, 2:3] + t_global[:, None], tokens[:, 3:]], dim=1)
            tokens = torch.cat([tokens, sparse], dim=1)
        else:
            tokens = torch.cat([tokens, t_global[:, None], sparse], dim=1)
        if vd.shape[0] != b:
            vd = vd.expand(b, -1, -1, -1)
            v1 = v1.expand(b, -1, -1, -1)
            v2 = v2.expand(b, -1, -1, -1)
        src = vd + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        obj_out, iou_out, mask_out = hs[:, 0], hs[:, 1], hs[:, 2]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        up = act1(ln1(dc1(src) + v2))
        up = act2(dc2(up) + v1)
        hyper = self.output_hypernetworks_mlps[0](mask_out)  # B×c'
        _, c2, H, W = up.shape
        masks = (hyper[:, None, :] @ up.reshape(b, c2, H * W)).reshape(b, 1, H, W)
        iou = self.iou_prediction_head(iou_out)
        obj = self.pred_obj_score_head(obj_out)
        return masks, iou, obj, up
