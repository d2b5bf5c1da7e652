"""SAM 2 Hiera + FPN image encoder, built from the ``sam2`` package's Hydra configs.

Output of :func:`encode` for an input batch B×3×S×S (S = image_size, ImageNet-normalised):
``{"vd": B×d×S/16×S/16, "v2": B×d×S/8×S/8, "v1": B×d×S/4×S/4}`` — V_d is the FPN fusion of Hiera
stages 3–4, V1/V2 are the shallow stage-1/2 features the MMMD fuses while upsampling.
"""

from __future__ import annotations

from importlib import resources

from rrsis_engine.model.config import RSAMConfig


def build_image_encoder(cfg: RSAMConfig):
    """Instantiate ``sam2.modeling.backbones.image_encoder.ImageEncoder`` from the sam2.1 config named by
    ``cfg.hiera.base`` with the trunk overrides of ``cfg.hiera`` (width, depth, heads, windows)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = resources.files("sam2") / "configs" / "sam2.1" / f"{cfg.hiera.base}.yaml"
    node = OmegaConf.load(str(path)).model.image_encoder
    trunk = node.trunk
    h = cfg.hiera
    for key in ("embed_dim", "num_heads", "stages", "global_att_blocks", "window_spec"):
        value = getattr(h, key)
        if value is not None:
            trunk[key] = list(value) if isinstance(value, tuple) else value
    embed_dim = int(trunk.get("embed_dim", 96))
    n_stages = len(trunk.get("stages", [2, 3, 16, 3]))
    node.neck.backbone_channel_list = [embed_dim * 2**i for i in reversed(range(n_stages))]
    node.neck.d_model = cfg.d_model
    node.neck.position_encoding.num_pos_feats = cfg.d_model
    return instantiate(node, _convert_="all")
