"""``build_model(ModelConfig) -> PDFNet``: the one place that maps the config to constructor args."""

from __future__ import annotations

from ..config.schema import ModelConfig
from .backbone_weights import load_timm_backbone_file
from .backbones import build_backbone
from .decoder import MaskDecoder
from .depth_decoder import DepthDecoder
from .encoder import FeatureProjector, ThreeStreamEncoder
from .fse import BinaryPatchWeight, LinearPatchWeight, SoftBoundary, ThresholdBoundary
from .head import UpConvHead
from .init import init_decoder_convs
from .pdfnet import PDFNet

__all__ = ["build_model"]

# The config names each release behaviour after the release that introduced it; the model's parts are
# named after what they do. These tables are the only place the two vocabularies meet.
_BOUNDARY = {"march2025": SoftBoundary, "oct2025": ThresholdBoundary}
_PATCH_WEIGHT = {"march2025": LinearPatchWeight, "oct2025": BinaryPatchWeight}
_COA_DROPOUT_BEFORE_NORM = {"march2025": True, "oct2025": False}
_DEPTH_DECODER = {"march2025": {"level_fusion": "sum", "stem_sees_depth": False},
                  "oct2025": {"level_fusion": "concat", "stem_sees_depth": True}}


def build_model(cfg: ModelConfig | None = None, *, with_depth_decoder: bool = True) -> PDFNet:
    """Build PDFNet from a :class:`ModelConfig` (defaults = the paper/release configuration).

    Random init follows the release: trunc_normal(0.02) on every non-backbone conv with zero bias;
    Linear/attention layers keep PyTorch defaults; the backbone keeps its own init.

    ``cfg.backbone_weights`` here only concerns ``timm:<name>`` backbones (``timm`` = timm's own
    pretrained weights, needs network; a path = a local timm state dict). ImageNet weights for the
    built-in Swin are loaded by the caller with :func:`pdfnet.models.backbone_weights.load_swin_imagenet`
    (the training engine does), so building stays free of file/network side effects.

    Args:
        cfg: model config.
        with_depth_decoder: build the train-only depth decoder (needed for training and Q outputs).

    Raises:
        ValueError: unsupported backbone name or sizes (e.g. ``input_size`` not a valid multiple).
    """
    cfg = cfg or ModelConfig()
    backbone = build_backbone(
        cfg.backbone,
        drop_path_rate=cfg.drop_path,
        timm_pretrained=cfg.backbone.startswith("timm:") and cfg.backbone_weights == "timm",
    )
    encoder = ThreeStreamEncoder(
        backbone,
        FeatureProjector(backbone.out_channels, cfg.emb),
        patch_ratio=cfg.patch_ratio,
        down_ratio=cfg.down_ratio,
    )
    encoder.check_size(cfg.input_size, cfg.input_size)
    decoder = MaskDecoder(
        cfg.emb,
        pool_ratios=cfg.fse_pool_ratios,
        patch_ratio=cfg.patch_ratio,
        dropout=cfg.attn_dropout,
        boundary=_BOUNDARY[cfg.bis_variant](),
        patch_weight=_PATCH_WEIGHT[cfg.patch_weight_variant](),
        dropout_before_norm=_COA_DROPOUT_BEFORE_NORM[cfg.coa_norm_variant],
    )
    head = UpConvHead(cfg.emb)
    depth_decoder = (DepthDecoder(cfg.emb, **_DEPTH_DECODER[cfg.depth_decoder_variant])
                     if with_depth_decoder else None)
    model = PDFNet(encoder=encoder, decoder=decoder, head=head, depth_decoder=depth_decoder)
    for part in (encoder.projector, decoder, head, depth_decoder):
        if part is not None:
            init_decoder_convs(part)
    if cfg.backbone.startswith("timm:") and cfg.backbone_weights and cfg.backbone_weights != "timm":
        load_timm_backbone_file(backbone, cfg.backbone_weights)
    return model
