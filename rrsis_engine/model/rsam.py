"""RSAM: SAM 2 image encoder + BERT-family text encoder, TWGM fusion and the MMMD (seed 003).

Composed by injection (SAM style): :class:`RSAM` receives its parts; :func:`rrsis_engine.model.build_rsam`
builds them from a named config. Inference is split so each stage can be cached:

1. ``encode_image``  (image only)        → V_d, V1, V2
2. ``text_embed`` + ``encode_text`` (text only) → text tokens with [GT]
3. ``uncertainty``   (image and text)    → U or None             (RUS, when ``config.use_rus``)
   ``fuse``          (image and text)    → fused V_d, T_G        (TWGM, then UGF gated by U)
4. ``decode``        (+ clicks/box/prior, U) → mask logits, IoU, object logit   (prompt encoder + MMMD,
   then UDLR refined by U, then the click refiner around the clicks when ``config.use_click_refiner``)
5. ``turn_error`` (the turn's logits, prior, clicks, U) → where that mask is likely wrong (``config.use_error_head``)

A click turn runs only step 4 (U is cached with the fused features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rrsis_engine.model.click_fit import fit_to_clicks
from rrsis_engine.model.click_refiner import CLICK_MAP_SIGMA, click_maps
from rrsis_engine.model.component_ranker import find_components, select_components, stack_components
from rrsis_engine.model.config import RSAMConfig
from rrsis_engine.model.error_head import uncertainty_on_grid


@dataclass
class ImageFeatures:
    """vd B×d×h×w (h = S/16), v1 B×d/8×4h×4w, v2 B×d/4×2h×2w."""

    vd: torch.Tensor
    v1: torch.Tensor
    v2: torch.Tensor


class RSAM(nn.Module):
    def __init__(self, config: RSAMConfig, image_encoder, text_encoder, twgm, prompt_encoder, mask_decoder,
                 rus=None, ugf=None, udlr=None, click_refiner=None, semantic_head=None, ambiguity_head=None,
                 twgm_input=None, text_position=None, error_head=None, click_gain_head=None, component_ranker=None,
                 click_policy_head=None, boundary_refiner=None):
        super().__init__()
        self.config = config
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.twgm = twgm
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        # CroBIM-U modules (rrsis_engine.model.uncertainty); None when switched off, so their keys are
        # absent from the state dict and older checkpoints load strictly.
        for name, module in (("rus", rus), ("ugf", ugf), ("udlr", udlr), ("click_refiner", click_refiner),
                             ("semantic_head", semantic_head), ("ambiguity_head", ambiguity_head),
                             ("twgm_input", twgm_input), ("text_position", text_position),
                             ("error_head", error_head), ("click_gain_head", click_gain_head),
                             ("click_policy_head", click_policy_head),
                             ("component_ranker", component_ranker), ("boundary_refiner", boundary_refiner)):
            if (module is not None) != getattr(config, f"use_{name}"):
                raise ValueError(f"{name} module given={module is not None} but config.use_{name}="
                                 f"{getattr(config, f'use_{name}')}; build with rrsis_engine.model.build_rsam.")
        self.rus = rus
        self.ugf = ugf
        self.udlr = udlr
        self.click_refiner = click_refiner  # rrsis_engine.model.click_refiner, when config.use_click_refiner
        self.semantic_head = semantic_head  # V_d B×d×h×w → category logits B×K×h×w (training only)
        self.ambiguity_head = ambiguity_head  # fused V_d, T_G → ambiguity logit B×1 (rrsis_engine.model.ambiguity_head)
        self.twgm_input = twgm_input  # LayerNorm + 2-D position of the tokens entering TWGM (rrsis_engine.model.twgm)
        self.text_position = text_position  # text × position term on the fused tokens (rrsis_engine.model.twgm)
        self.error_head = error_head  # the turn's error map (rrsis_engine.model.error_head)
        self.click_gain_head = click_gain_head  # the gain of a click at each place (rrsis_engine.model.error_head)
        self.click_policy_head = click_policy_head  # where the best next click goes (.error_head)
        self.component_ranker = component_ranker  # which text-turn regions the sentence means (.component_ranker)
        self.boundary_refiner = boundary_refiner  # the mask shown near its outline, image frame (.boundary_refiner)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return self.prompt_encoder.no_mask_embed.weight.device

    def encode_image(self, images: torch.Tensor, backbone_grad: bool = True) -> ImageFeatures:
        """images B×3×S×S (normalised) → :class:`ImageFeatures`.

        backbone_grad=False runs Hiera+FPN without autograd (a frozen image encoder); the decoder's
        V1/V2 projections still get gradients."""
        with torch.set_grad_enabled(backbone_grad and torch.is_grad_enabled()):
            out = self.image_encoder(images)
        v1, v2, vd = out["backbone_fpn"][:3]
        v1, v2 = self.mask_decoder.project_high_res(v1, v2)
        return ImageFeatures(vd=vd, v1=v1, v2=v2)

    def text_embed(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen BERT features: hidden B×L×H, mask B×L."""
        return self.text_encoder.embed(texts)

    def encode_text(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_encoder(hidden, mask)

    def uncertainty(self, vd: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor) -> torch.Tensor | None:
        """RUS on the *unfused* V_d: vd B×d×h×w (or 1×… shared), txt B×L×d, txt_mask B×L →
        U B×1×h×w logits (h = S/16; high = likely wrong), or None when ``config.use_rus`` is off."""
        if self.rus is None:
            return None
        return self.rus(vd, txt, txt_mask)

    def fuse(self, vd: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor,
             uncertainty: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """TWGM (+ UGF): vd B×d×h×w (B may be 1 for a shared image), txt B×L×d → fused vd B×d×h×w, T_G B×d.

        uncertainty: U from :meth:`uncertainty` for UGF's gate (computed here when UGF is on and it is
        not given; pass it to avoid running RUS twice)."""
        b = txt.shape[0]
        if vd.shape[0] != b:
            vd = vd.expand(b, -1, -1, -1)
        if self.ugf is not None and uncertainty is None:
            uncertainty = self.uncertainty(vd, txt, txt_mask)
        _, c, h, w = vd.shape
        if not self.config.use_twgm:
            img, t_global = vd.flatten(2).transpose(1, 2), txt[:, 0]
        else:
            img = vd.flatten(2).transpose(1, 2)
            if self.twgm_input is None:
                img, t_global = self.twgm(img, txt, txt_mask)
            else:  # position in: content, every layer's queries/keys, and the fused tokens out
                pos = self.twgm_input.pos
                img, t_global = self.twgm(self.twgm_input(img), txt, txt_mask, extra_img_pe=pos)
                img = img + pos
        if self.text_position is not None:
            img = img + self.text_position(txt[:, 0])
        if self.ugf is not None:
            img = self.ugf(img, txt, txt_mask, uncertainty, (h, w))
        elif not self.config.use_twgm and self.text_position is None:
            return vd, t_global
        return img.transpose(1, 2).reshape(b, c, h, w), t_global

    def ambiguity(self, vd: torch.Tensor, t_global: torch.Tensor) -> torch.Tensor | None:
        """Ambiguity logit B×1 from the *fused* vd B×d×h×w and T_G B×d (:meth:`fuse`), or None without the head."""
        if self.ambiguity_head is None:
            return None
        return self.ambiguity_head(vd, t_global)

    def fuse_with_uncertainty(self, vd: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor):
        """RUS, then TWGM (+ UGF gated by it): → (fused vd B×d×h×w, T_G B×d, U B×1×h×w or None)."""
        u = self.uncertainty(vd, txt, txt_mask)
        fused, t_global = self.fuse(vd, txt, txt_mask, uncertainty=u)
        return fused, t_global, u

    def decode(
        self,
        vd: torch.Tensor,
        t_global: torch.Tensor,
        feats: ImageFeatures,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        has_mask: torch.Tensor | None = None,
        uncertainty: torch.Tensor | None = None,
        fit_clicks: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prompt encoder + MMMD (+ UDLR, + click refiner, + click fitting).

        points B×N×2 model-frame (x, y); labels B×N; mask_input B×1×(S/4)×(S/4) logits; uncertainty U
        B×1×(S/16)×(S/16) from :meth:`uncertainty` (required when ``config.use_udlr``, ignored otherwise).
        fit_clicks: correct each row's logits so that its clicks lie on their side (:mod:`.click_fit`, inference
        only: the correction is fitted, not learned, and carries no gradient).
        Returns mask logits B×1×(S/4)×(S/4), IoU B×1 (in [0, 1]), object logits B×1.
        """
        sparse, dense = self.prompt_encoder.encode(points, labels, mask_input, has_mask, batch_size=vd.shape[0])
        masks, iou, obj, features = self.mask_decoder.decode_with_features(
            vd, self.prompt_encoder.get_dense_pe(), t_global, sparse, dense, feats.v1, feats.v2
        )
        if self.udlr is not None:
            if uncertainty is None:
                raise ValueError(
                    "This model refines masks with UDLR (use_udlr): pass decode(..., uncertainty=U) with "
                    "U = model.uncertainty(V_d, text tokens, text mask) of the same image and text."
                )
            masks = self.udlr(masks, uncertainty)
        if self.click_refiner is not None and points is not None and points.shape[1] > 0:
            masks = self._refine_at_clicks(masks, points, labels, mask_input, has_mask, feats.v1)
        if fit_clicks and points is not None and points.shape[1] > 0:
            masks = torch.cat([fit_to_clicks(masks[i:i + 1], features[i:i + 1], points[i], labels[i], self.image_size)
                               for i in range(len(masks))])
        return masks, iou, obj

    def turn_error(self, masks: torch.Tensor, v1: torch.Tensor, points: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None, prior: torch.Tensor | None = None,
                   has_prior: torch.Tensor | None = None, uncertainty: torch.Tensor | None = None) -> torch.Tensor | None:
        """Error logits E B×1×(S/4)×(S/4) of this turn's mask logits ``masks`` (B×1×(S/4)×(S/4), gradient stopped),
        given the turn's prompts as for :meth:`decode` (points B×N×2 model frame, labels B×N, prior logits, U) and
        V1 (B or 1 ×d/8×S/4×S/4); None without the head (``config.use_error_head``)."""
        return self._turn_head(self.error_head, masks, v1, points, labels, prior, has_prior, uncertainty)

    def click_gain(self, masks: torch.Tensor, v1: torch.Tensor, points: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None, prior: torch.Tensor | None = None,
                   has_prior: torch.Tensor | None = None, uncertainty: torch.Tensor | None = None) -> torch.Tensor | None:
        """Predicted IoU gain /10 of one more click at each cell, B×1×(S/4)×(S/4), for the turn that produced
        ``masks`` (arguments as :meth:`turn_error`); None without the head (``config.use_click_gain_head``)."""
        return self._turn_head(self.click_gain_head, masks, v1, points, labels, prior, has_prior, uncertainty)

    def click_policy(self, masks: torch.Tensor, v1: torch.Tensor, points: torch.Tensor | None = None,
                     labels: torch.Tensor | None = None, prior: torch.Tensor | None = None,
                     has_prior: torch.Tensor | None = None, uncertainty: torch.Tensor | None = None) -> torch.Tensor | None:
        """Logits B×1×(S/4)×(S/4) of where the best correction click goes after the turn that produced ``masks``
        (softmax over the valid cells; arguments as :meth:`turn_error`); None without the head
        (``config.use_click_policy_head``)."""
        return self._turn_head(self.click_policy_head, masks, v1, points, labels, prior, has_prior, uncertainty)

    def rank_components(self, logits: torch.Tensor, regions: torch.Tensor, region_valid: torch.Tensor,
                        vd: torch.Tensor, v1: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor,
                        extent: torch.Tensor) -> torch.Tensor:
        """Ranker logits B×K of the candidate regions (B×K×S/4×S/4, :func:`component_ranker.stack_components`) of a
        text turn's mask logits B×1×(S/4)×(S/4), given the fused tokens vd (B or 1×d×S/16×S/16), V1, the text tokens
        B×L×d with their mask and the valid extent B×2 (rows, cols of the S/4 grid). Every input is gradient-stopped:
        the ranker's loss trains the ranker alone, even without ``--train-only``."""
        if self.component_ranker is None:
            raise ValueError("This model has no component ranker (config.use_component_ranker).")
        b = regions.shape[0]
        dtype = self.component_ranker.match.weight.dtype  # features from a bf16 image encoder → the ranker's
        prob = torch.sigmoid(logits.detach().float())
        return self.component_ranker(regions, region_valid, prob, vd.detach().to(dtype).expand(b, -1, -1, -1),
                                     v1.detach().to(dtype).expand(b, -1, -1, -1), txt.detach().to(dtype), txt_mask,
                                     extent)

    @torch.no_grad()
    def select_text_regions(self, logits: torch.Tensor, vd: torch.Tensor, v1: torch.Tensor, txt: torch.Tensor,
                            txt_mask: torch.Tensor, valid: np.ndarray) -> torch.Tensor:
        """The component ranker's choice on text turns: logits B×1×(S/4)×(S/4) (model frame), vd, v1, txt, txt_mask
        as :meth:`rank_components` (B first), valid B×(S/4)×(S/4) bool (unpadded cells, top-left) → the same logits
        raised inside the candidate regions the sentence refers to and lowered everywhere else
        (:func:`component_ranker.select_components`); a row without candidate regions is unchanged."""
        logits = logits.detach()
        prob = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
        comps, rows, extents = [], [], []
        for j in range(len(prob)):
            c = find_components(prob[j], valid[j])
            if len(c):
                comps.append(c)
                rows.append(j)
                extents.append((int(valid[j].any(1).sum()), int(valid[j].any(0).sum())))
        out = logits.clone()
        if not rows:
            return out
        regions, region_valid = stack_components(comps, logits.device)
        idx = torch.tensor(rows, device=logits.device)
        scores = self.rank_components(logits[idx], regions, region_valid, vd[idx], v1[idx], txt[idx], txt_mask[idx],
                                      torch.tensor(extents, device=logits.device))
        for i, j in enumerate(rows):
            k = len(comps[i])
            out[j:j + 1] = select_components(logits[j:j + 1], regions[i, :k] > 0.5, scores[i, :k])
        return out

    def _turn_head(self, head, masks, v1, points, labels, prior, has_prior, uncertainty):
        """``head`` (one of the heads reading a turn: error, click gain, click policy) on the turn's inputs; None
        without it."""
        return None if head is None else head(*self._turn_inputs(masks, v1, points, labels, prior, has_prior,
                                                                 uncertainty))

    def _turn_inputs(self, masks, v1, points, labels, prior, has_prior, uncertainty):
        """A turn's logits, prior, click maps, σ(U) and V1, each B×·×(S/4)×(S/4), gradients stopped."""
        masks = masks.detach()
        b, _, g, _ = masks.shape
        prior = torch.zeros_like(masks) if prior is None else prior.detach().to(masks.dtype)
        if has_prior is not None:
            prior = torch.where(has_prior[:, None, None, None], prior, torch.zeros_like(prior))
        if points is None or points.shape[1] == 0:
            clicks = masks.new_zeros(b, 2, g, g)
        else:
            clicks = click_maps(points, labels, g, self.image_size // g, CLICK_MAP_SIGMA).to(masks.dtype)
        return masks, prior, clicks, uncertainty_on_grid(uncertainty, masks), v1.expand(b, -1, -1, -1)

    def _refine_at_clicks(self, masks, points, labels, prior, has_prior, v1):
        """Click refiner on the samples with a positive or negative click (others unchanged)."""
        clicked = ((labels == 0) | (labels == 1)).any(1)  # B
        if not clicked.any():
            return masks
        b, _, g, _ = masks.shape
        if prior is None:
            prior = torch.zeros_like(masks)
        elif has_prior is not None:
            prior = torch.where(has_prior[:, None, None, None], prior, torch.zeros_like(prior))
        maps = click_maps(points, labels, g, self.image_size // g, self.click_refiner.sigma)
        refined = self.click_refiner(masks, prior.to(masks.dtype), maps.to(masks.dtype), v1.expand(b, -1, -1, -1))
        return torch.where(clicked[:, None, None, None], refined, masks)

    def forward(self, images, hidden, text_mask, points=None, labels=None, mask_input=None, has_mask=None):
        """Full forward for training: images B×3×S×S, hidden/text_mask from ``text_embed``."""
        feats = self.encode_image(images)
        txt, txt_mask = self.encode_text(hidden, text_mask)
        vd, t_global, u = self.fuse_with_uncertainty(feats.vd, txt, txt_mask)
        return self.decode(vd, t_global, feats, points, labels, mask_input, has_mask, uncertainty=u)
