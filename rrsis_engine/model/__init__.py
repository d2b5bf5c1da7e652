"""RSAM model: registry of named configs, builder, checkpoints."""

from __future__ import annotations

from rrsis_engine.model.checkpoint import (
    import_sam2_checkpoint,
    load_checkpoint,
    model_hash,
    save_checkpoint,
)
from rrsis_engine.model.config import DEFAULT_MODEL, REGISTRY, HieraSpec, RSAMConfig, get_config
from rrsis_engine.model.rsam import RSAM, ImageFeatures


def build_rsam(config: str | RSAMConfig = DEFAULT_MODEL, text_encoder=None) -> RSAM:
    """Build an RSAM with freshly initialised trainable parts (random weights; frozen text encoder).

    config: a registry name (``rsam-lite``, ``rsam-t``, ``rsam-b+``, ``rsam-tiny``) or an :class:`RSAMConfig`.
    text_encoder: an existing :class:`TextEncoder` to share (saves loading BERT twice), else built.
    """
    from torch import nn

    from rrsis_engine.data.expressions import SEMANTIC_CLASSES
    from rrsis_engine.model.ambiguity_head import AmbiguityHead
    from rrsis_engine.model.boundary_refiner import BoundaryRefiner
    from rrsis_engine.model.click_refiner import ClickRefiner
    from rrsis_engine.model.component_ranker import ComponentRanker
    from rrsis_engine.model.error_head import ClickGainHead, ClickPolicyHead, ErrorHead
    from rrsis_engine.model.image_encoder import build_image_encoder
    from rrsis_engine.model.mmmd import MMMD
    from rrsis_engine.model.prompts import RSAMPromptEncoder
    from rrsis_engine.model.text_encoder import TextEncoder
    from rrsis_engine.model.twgm import TWGM, TextPosition, TWGMInput
    from rrsis_engine.model.uncertainty import RUS, UDLR, UGF

    cfg = get_config(config) if isinstance(config, str) else config
    d = cfg.d_model
    if text_encoder is None:
        text_encoder = TextEncoder(cfg.text_encoder, dim=d, max_tokens=cfg.max_text_tokens)
    return RSAM(
        cfg,
        image_encoder=build_image_encoder(cfg),
        text_encoder=text_encoder,
        twgm=TWGM(d, cfg.twgm_heads, cfg.twgm_mlp_dim, cfg.twgm_layers, cfg.image_size // 16, cfg.max_text_tokens + 1,
                  pre_norm=cfg.twgm_pre_norm, kv_grid=cfg.twgm_kv_grid),
        prompt_encoder=RSAMPromptEncoder(d, cfg.image_size, cfg.mask_in_chans),
        mask_decoder=MMMD(d, cfg.decoder_depth, cfg.decoder_heads, cfg.decoder_mlp_dim, text_as_mask_token=cfg.use_mmmd),
        rus=RUS(d) if cfg.use_rus else None,
        ugf=UGF(d, cfg.twgm_heads) if cfg.use_ugf else None,
        udlr=UDLR(cfg.udlr_channels, cfg.udlr_tau, cfg.udlr_temperature) if cfg.use_udlr else None,
        click_refiner=ClickRefiner(d // 8) if cfg.use_click_refiner else None,
        semantic_head=nn.Conv2d(d, len(SEMANTIC_CLASSES), 1) if cfg.use_semantic_head else None,
        ambiguity_head=AmbiguityHead(d) if cfg.use_ambiguity_head else None,
        twgm_input=TWGMInput(d, cfg.image_size // 16) if cfg.use_twgm_input else None,
        text_position=TextPosition(d, cfg.image_size // 16) if cfg.use_text_position else None,
        error_head=ErrorHead(d // 8) if cfg.use_error_head else None,
        click_gain_head=ClickGainHead(d // 8) if cfg.use_click_gain_head else None,
        click_policy_head=ClickPolicyHead(d // 8) if cfg.use_click_policy_head else None,
        component_ranker=ComponentRanker(d, d // 8, context=cfg.ranker_context) if cfg.use_component_ranker else None,
        boundary_refiner=BoundaryRefiner() if cfg.use_boundary_refiner else None,
    )


__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "RSAM",
    "HieraSpec",
    "ImageFeatures",
    "RSAMConfig",
    "build_rsam",
    "get_config",
    "import_sam2_checkpoint",
    "load_checkpoint",
    "model_hash",
    "save_checkpoint",
]
