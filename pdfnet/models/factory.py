"""``build_model(ModelConfig) -> PDFNet``: the one place that maps the config to constructor args."""

from __future__ import annotations

from ..config.schema import ModelConfig
from .backbone_weights import load_timm_backbone_file
from .backbones import build_backbone
from .decoder import MaskDecoder
from .depth_decoder import DepthDecoder
from .encoder import FeatureProjector, ThreeStreamEncoder
from .head import UpConvHead
from .init import init_decoder_convs
from .pdfnet import PDFNet

__all__ = ["build_model"]


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
        bis_variant=cfg.bis_variant,
        patch_weight_variant=cfg.patch_weight_variant,
        coa_norm_variant=cfg.coa_norm_variant,
    )
    head = UpConvHead(cfg.emb)
    depth_decoder = DepthDecoder(cfg.emb, variant=cfg.depth_decoder_variant) if with_depth_decoder else None
    model = PDFNet(encoder=encoder, decoder=decoder, head=head, depth_decoder=depth_decoder)
    for part in (encoder.projector, decoder, head, depth_decoder):
        if part is not None:
            init_decoder_convs(part)
    if cfg.backbone.startswith("timm:") and cfg.backbone_weights and cfg.backbone_weights != "timm":
        load_timm_backbone_file(backbone, cfg.backbone_weights)
    return model
