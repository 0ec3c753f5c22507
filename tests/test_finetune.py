"""Fine-tuning: ``train.init`` (strict / non-strict, every weights kind) and ``train.freeze``."""

from __future__ import annotations

import pytest
import torch
from helpers import official_keys_path  # tests/ is on sys.path

from pdfnet.config import Config
from pdfnet.config.schema import ModelConfig
from pdfnet.engine import checkpoint as ck
from pdfnet.engine.finetune import freeze, load_init_weights, part_of, trainable_count
from pdfnet.engine.optim import build_optimizer
from pdfnet.errors import UserError
from pdfnet.inference import checkpoint as ick
from pdfnet.models import build_model

TINY = dict(backbone="swin_tiny_test", emb=16, input_size=64)


def _model(seed: int, **kw):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**(TINY | kw)))


def _equal(a: torch.nn.Module, sd: dict) -> bool:
    own = a.state_dict()
    return set(own) == set(sd) and all(torch.equal(own[k], sd[k]) for k in own)


def test_strict_init_from_release_train_state_and_state_dict(tmp_path):
    src = _model(1)
    cfg = Config()
    cfg.model = ModelConfig(**TINY)
    ick.export_release(src, cfg, tmp_path / "rel")
    opt = torch.optim.AdamW(src.parameters(), lr=1e-3)
    ck.save_train_state(tmp_path / "last.pt", model=src, optimizer=opt, schedule=None, scaler=None, cfg=cfg,
                        step=7, epoch=2, batch_in_epoch=0)
    torch.save(src.state_dict(), tmp_path / "plain.pth")
    torch.save({"model": src.state_dict()}, tmp_path / "wrapped.pth")
    ref = src.state_dict()
    for path, kind in ((tmp_path / "rel" / "model.safetensors", "safetensors"),
                       (tmp_path / "rel", "safetensors"), (tmp_path / "last.pt", "train state"),
                       (tmp_path / "plain.pth", "state dict"), (tmp_path / "wrapped.pth", "state dict")):
        dst = _model(2)
        assert not _equal(dst, ref)
        rep = load_init_weights(dst, path)
        assert _equal(dst, ref), path
        assert rep.kind.startswith(kind) and rep.loaded == len(ref) and not rep.missing and not rep.unexpected


def test_other_architecture_fails_strict_one_line_and_loads_matching_keys_non_strict(tmp_path):
    other = _model(1, emb=32)  # decoder/head widths differ; the backbone is the same
    torch.save(other.state_dict(), tmp_path / "other.pth")
    dst = _model(2)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ck.CheckpointError,
                       match="train.init: .*does not match the model.*init_strict=false") as e:
        load_init_weights(dst, tmp_path / "other.pth")
    assert "\n" not in str(e.value)
    assert _equal(dst, before)  # nothing half-loaded
    rep = load_init_weights(dst, tmp_path / "other.pth", strict=False)
    own, theirs = dst.state_dict(), other.state_dict()
    same = [k for k in own if k in theirs and theirs[k].shape == own[k].shape]
    assert rep.loaded == len(same) and all(torch.equal(own[k], theirs[k]) for k in same)
    assert rep.mismatched and sum(rep.mismatched.values()) == len(own) - len(same)
    assert all(torch.equal(own[k], before[k]) for k in own if k not in same)
    assert rep.mismatched["backbone"] == 0 and "decoder" in rep.summary() and "shape differs" in rep.summary()
    # a missing depth decoder (an inference-only export) is counted per part
    torch.save({k: v for k, v in theirs.items() if not k.startswith("depth_decoder.")}, tmp_path / "inf.pth")
    rep = load_init_weights(_model(2, emb=32), tmp_path / "inf.pth", strict=False)
    assert set(rep.missing) == {"depth_decoder"} and "kept at init" in rep.summary()
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "junk.pth")
    with pytest.raises(ck.CheckpointError, match="no key .* matches the model"):
        load_init_weights(dst, tmp_path / "junk.pth", strict=False)
    with pytest.raises(ck.CheckpointError, match="no weights|not found"):
        load_init_weights(dst, tmp_path / "missing.pth")


def test_official_layout_is_converted(tmp_path):
    """An official-layout state dict (the release's key names) is renamed to ours before loading."""
    from pdfnet.models import official

    src = _model(1)
    ours = src.state_dict()
    # invert the official → ours renaming on the official key list of the paper model
    keys = [line.split("\t")[0] for line in official_keys_path().read_text().splitlines()[1:]]
    off = {}
    for k in keys:
        new = official._rename(k)
        if new is not None and new in ours:
            off[k] = ours[new].clone()
    torch.save(off, tmp_path / "PDFNet_like.pth")
    dst = _model(2)
    rep = load_init_weights(dst, tmp_path / "PDFNet_like.pth", strict=False)
    assert rep.kind == "official checkpoint" and rep.loaded == len(off)
    own = dst.state_dict()
    assert all(torch.equal(own[official._rename(k)], v) for k, v in off.items())


def test_freeze_leaves_parts_out_of_the_optimizer():
    model = _model(0)
    total = sum(p.numel() for p in model.parameters())
    trainable, tot = freeze(model, ["backbone", "depth_decoder"])
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(part_of(n) in ("backbone", "depth_decoder") for n in frozen)
    assert all(n.startswith(("encoder.backbone.", "depth_decoder.")) == (n in frozen)
               for n, _ in model.named_parameters())
    assert tot == total
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if n not in frozen)
    assert trainable_count(model) == (trainable, total)
    opt = build_optimizer(model, Config().optim)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for n, p in model.named_parameters() if n not in frozen}
    with pytest.raises(UserError, match="no part 'neck'.*backbone, encoder, decoder, head"):
        freeze(model, ["neck"])
    assert freeze(_model(0), ["encoder.projector"])[0] < total
