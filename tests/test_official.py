"""Official-weight plumbing: parameter counts, key conversion, strict loading, Swin ImageNet/timm loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import official_fixture, official_keys_path

from pdfnet.config.schema import ModelConfig
from pdfnet.errors import CheckpointError, UserError
from pdfnet.models import backbone_weights, build_model
from pdfnet.models.backbone_weights import load_swin_imagenet
from pdfnet.models.official import (
    convert_official_state_dict,
    from_official_state_dict,
    load_official_checkpoint,
)
from pdfnet.models.swin import SwinTransformer, relative_position_index

INFERENCE_PARAMS = 97_846_526
DEPTH_DECODER_PARAMS = 3_846_789


def _read_keys():
    """Rows of the fixture's keys.tsv as (key, shape, dtype, kind)."""
    return official_fixture().read_keys(official_keys_path())


def _fake_official_sd(with_buffers: bool = True, with_sobel: bool = True) -> dict[str, torch.Tensor]:
    """Every official key with its shape; values are a cheap deterministic fill."""
    sd = {}
    for i, (key, shape, _dtype, kind) in enumerate(_read_keys()):
        if kind == "buffer":
            if with_buffers:
                sd[key] = relative_position_index(12)
            continue
        if kind == "fixed":
            if with_sobel:
                x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
                sd[key] = (x if key.endswith("sobel_x.weight") else x.t()).reshape(shape).clone()
            continue
        sd[key] = torch.full(shape, float(i % 7) * 0.01)
    return sd


@pytest.fixture(scope="module")
def official_sd():
    return _fake_official_sd()


@pytest.fixture(scope="module")
def paper_model(official_sd):
    return from_official_state_dict(official_sd)


def test_parameter_counts_equal_release():
    with torch.device("meta"):  # counts only: skip the 100M-value random init
        model = build_model(ModelConfig(backbone_weights=None))
    assert model.inference_parameters() == INFERENCE_PARAMS
    assert sum(p.numel() for p in model.depth_decoder.parameters()) == DEPTH_DECODER_PARAMS


def test_every_official_key_maps_and_loads(official_sd, paper_model):
    assert not paper_model.training
    converted = convert_official_state_dict(official_sd)
    assert len(converted) == 577  # every learnable tensor; 24 index buffers + 2 Sobel consts dropped
    own = paper_model.state_dict()
    assert set(converted) == set(own)
    for k, v in converted.items():
        assert torch.equal(own[k], v), k
    total = sum(v.numel() for v in converted.values())
    assert total == INFERENCE_PARAMS + DEPTH_DECODER_PARAMS


def test_buffers_and_sobel_optional():
    sd = _fake_official_sd(with_buffers=False, with_sobel=False)
    conv = convert_official_state_dict(sd)
    assert len(conv) == 577


def test_missing_key_raises_naming_it(official_sd):
    sd = dict(official_sd)
    del sd["decoder.FSE_mix.2.ID.Norm2.weight"]
    with pytest.raises(CheckpointError, match=r"decoder\.fse\.2\.coa_id\.norm2\.weight"):
        from_official_state_dict(sd)


def test_extra_key_raises_naming_it(official_sd):
    sd = dict(official_sd)
    sd["decoder.FSE_mix.0.bogus.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"decoder\.FSE_mix\.0\.bogus\.weight"):
        convert_official_state_dict(sd)


def test_shape_mismatch_raises(official_sd):
    sd = dict(official_sd)
    sd["decoder.Bside.3.weight"] = torch.zeros(1, 64, 3, 3)
    with pytest.raises(CheckpointError, match=r"decoder\.side\.2\.weight"):
        from_official_state_dict(sd)


def test_wrong_sobel_or_index_raises(official_sd):
    sd = dict(official_sd)
    sd["IntegrityPriorLoss.sobel_x.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(CheckpointError, match="Sobel"):
        convert_official_state_dict(sd)
    sd = dict(official_sd)
    sd["encoder.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(144, 144, dtype=torch.long)
    with pytest.raises(CheckpointError, match="relative-position"):
        convert_official_state_dict(sd)
    assert issubclass(CheckpointError, UserError) and issubclass(CheckpointError, ValueError)


def test_inference_only_state_dict_gives_model_without_depth_decoder(official_sd):
    sd = {k: v for k, v in official_sd.items() if not k.startswith("depth_decoder.")}
    model = from_official_state_dict(sd)
    assert model.depth_decoder is None
    assert model.inference_parameters() == INFERENCE_PARAMS


def test_load_official_checkpoint_file(tmp_path, official_sd):
    path = tmp_path / "PDFNet_Best.pth"
    torch.save(official_sd, path)
    model = load_official_checkpoint(path)
    assert torch.equal(model.head.out.weight, official_sd["decoder.Bside.0.weight"])
    with pytest.raises(CheckpointError, match="not found"):
        load_official_checkpoint(tmp_path / "missing.pth")


def _small_swin(window: int = 7) -> SwinTransformer:
    return SwinTransformer(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window=window,
                           drop_path_rate=0.0, ape=False)


def test_swin_release_layout_loading_reports_unloaded(tmp_path):
    """An original-release (MS) Swin file: head / attn_mask / index buffers are filtered out;
    the APE and norm0–3 (absent from ImageNet files) are reported as left at init."""
    torch.manual_seed(0)
    src = SwinTransformer(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window=12, ape=True)
    ms = {k: torch.randn_like(v) for k, v in src.state_dict().items()
          if not k.startswith("norm") and k != "absolute_pos_embed"}
    ms["norm.weight"] = torch.ones(256)
    ms["head.weight"] = torch.zeros(1000, 256)
    ms["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 144, 144)
    ms["layers.0.blocks.0.attn.relative_position_index"] = relative_position_index(12)
    dst = SwinTransformer(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window=12, ape=True)
    path = tmp_path / "swin_base_patch4_window12_384_22kto1k.pth"
    torch.save({"model": ms}, path)  # the release file wraps the weights in "model"
    report = load_swin_imagenet(dst, path)
    assert report.layout == "release"
    norms = {f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    assert set(report.not_loaded) == {"absolute_pos_embed"} | norms
    assert {"head.weight", "norm.weight", "layers.0.blocks.1.attn_mask"} <= set(report.ignored)
    own = dst.state_dict()
    for k in report.loaded:
        assert torch.equal(own[k], ms[k]), k


def test_swin_timm_layout_conversion_matches_timm_features():
    """timm's Swin layout (patch merging at the start of the next stage) converted to ours reproduces
    timm's stage features for stages 1–3 (timm drops the shift in stage 4, where the map equals the
    window, so that stage legitimately differs)."""
    from timm.models.swin_transformer import SwinTransformer as TimmSwin

    torch.manual_seed(0)
    ref = TimmSwin(img_size=224, embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7,
                   num_classes=10).eval()
    for p in ref.parameters():  # non-trivial LayerNorm/bias values
        p.data.add_(0.05 * torch.randn_like(p))
    ours = _small_swin().eval()
    report = load_swin_imagenet(ours, ref.state_dict())
    assert report.layout == "timm"
    assert set(report.not_loaded) == {f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    assert {"head.fc.weight", "norm.weight"} <= set(report.ignored)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        theirs = ref.forward_intermediates(x, indices=4, norm=False, intermediates_only=True)
        mine = ours(x)
    for i in range(3):
        t = theirs[i]
        t = F.layer_norm(t.permute(0, 2, 3, 1), (t.shape[1],)).permute(0, 3, 1, 2)  # our norm{i} at init
        torch.testing.assert_close(mine[i], t, rtol=1e-4, atol=1e-4)


def test_swin_b_timm_hub_layout_maps_every_backbone_key(monkeypatch):
    """timm's swin_base_patch4_window12_384 key layout (what the hub id delivers) covers every Swin-B
    tensor except the APE and norm0–3; ``load_swin_imagenet(backbone, "timm")`` goes through that
    path (the download is replaced by a meta-device timm model: shapes and names only)."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model("swin_base_patch4_window12_384", pretrained=False)
    calls = []

    def fake_fetch():
        calls.append(backbone_weights.TIMM_SWIN_B_HUB_ID)
        return ref.state_dict()

    monkeypatch.setattr(backbone_weights, "_fetch_timm_swin_b", fake_fetch)
    with torch.device("meta"):
        model = build_model(ModelConfig(backbone_weights="timm"))
    report = load_swin_imagenet(model.encoder.backbone, "timm")
    assert calls == ["swin_base_patch4_window12_384.ms_in22k_ft_in1k"]
    norms = {f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    assert set(report.not_loaded) == {"absolute_pos_embed"} | norms
    assert set(report.ignored) == {"norm.weight", "norm.bias", "head.fc.weight", "head.fc.bias"}
    assert len(report.loaded) == 325


def test_timm_backbone_weights_offline_is_one_clear_error(monkeypatch):
    """``backbone_weights: timm`` without network (or cache) names the fix instead of a traceback."""
    timm = pytest.importorskip("timm")

    def offline(*a, **kw):
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(CheckpointError, match=r"backbone_weights=timm: cannot fetch .*couldn't connect.*"
                                              r"backbone_weights=PATH, or null") as e:
        load_swin_imagenet(build_model(ModelConfig(backbone="swin_tiny_test", emb=16, input_size=64,
                                                   backbone_weights=None)).encoder.backbone, "timm")
    assert "\n" not in str(e.value)


def test_timm_backbone_weights_file_is_loaded_by_build_model(tmp_path):
    """``timm:<name>`` + a local file: build_model loads the timm state dict (name/shape match)."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    sd = timm.create_model("resnet10t", pretrained=False).state_dict()  # classification layout
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in sd.items()}
    path = tmp_path / "resnet10t.pth"
    torch.save(sd, path)
    cfg = ModelConfig(backbone="timm:resnet10t", backbone_weights=str(path), emb=16, input_size=256)
    own = build_model(cfg, with_depth_decoder=False).encoder.backbone.model.state_dict()
    assert torch.equal(own["conv1.0.weight"], sd["conv1.0.weight"])
    assert torch.equal(own["layer4.0.conv1.weight"], sd["layer4.0.conv1.weight"])


@pytest.mark.parametrize(
    "size, sides",
    [(128, [32, 16, 8, 8, 8]), (384, [96, 48, 24, 16, 16]), (1024, [256, 128, 64, 32, 32])],
)
def test_paper_model_size_ladder(size, sides):
    """The release's accepted sizes and side-output ladder (docs/architecture.md), by shape propagation."""
    with torch.device("meta"):
        model = build_model(ModelConfig(backbone_weights=None)).eval()
        out = model(torch.empty(1, 3, size, size), torch.empty(1, 1, size, size), with_depth_decoder=True)
    assert out.logits.shape == (1, 1, size, size)
    assert [p.shape[-1] for p in out.side_logits] == sides
    assert out.depth_logits[0].shape[-1] == size // 2
