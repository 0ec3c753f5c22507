"""Training loop: run-dir artifacts, exact resume, NaN guard, grad accumulation (tiny CPU runs)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from helpers import REPO, write_tiny_dis
from torch import nn

from pdfnet.config import load_config
from pdfnet.engine import checkpoint as ck
from pdfnet.engine.trainer import NonFiniteLossError, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_dis(tmp_path_factory.mktemp("dis"), {"DIS-TR": 6, "DIS-VD": 3})


def tiny_cfg(data: Path, out: Path, *extra: str):
    """The demo config shrunk to 64² (real PDFNet with the toy Swin), no validation, no workers."""
    return load_config(REPO / "configs" / "demo_cpu.yaml", [
        f"data.root={data}", "data.size=64", "model.input_size=64", f"train.output_dir={out}",
        "train.batch_size=2", "train.epochs=2", "train.val_every_epochs=0", "train.log_every_steps=1",
        "train.image_log_every_steps=2", "data.num_workers=0", "train.device=cpu", "train.precision=fp32",
        *extra,
    ])


def _params(path: Path) -> dict[str, torch.Tensor]:
    return ck.load_train_state(path)["model"]


@pytest.mark.slow
def test_resume_is_exact(tiny_data, tmp_path):
    """Interrupted at step 2 (mid-epoch), resumed with --resume auto → the same parameters at step 4
    (crossing an epoch boundary) as an uninterrupted run; dropout/drop-path and augmentation on."""
    reg = ["model.drop_path=0.2", "model.attn_dropout=0.2", "data.augment=true"]
    full = train(tiny_cfg(tiny_data, tmp_path / "a", "train.max_steps=4", *reg), progress=False)
    assert (full.step, full.epoch) == (4, 1)
    part = train(tiny_cfg(tiny_data, tmp_path / "b", "train.max_steps=2", *reg), progress=False)
    assert part.step == 2
    st = ck.load_train_state(tmp_path / "b" / "last.pt")
    assert (st["step"], st["epoch"], st["batch_in_epoch"]) == (2, 0, 2)
    resumed = train(tiny_cfg(tiny_data, tmp_path / "b", "train.max_steps=4", *reg), resume="auto",
                    progress=False)
    assert resumed.step == 4
    a, b = _params(tmp_path / "a" / "last.pt"), _params(tmp_path / "b" / "last.pt")
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"resumed run differs in {len(diff)} tensors, e.g. {diff[:3]}"
    # and the run really moved away from the step-2 weights
    assert any(not torch.equal(st["model"][k], a[k]) for k in a)
    # run-dir artifacts
    run = tmp_path / "a"
    assert load_config(run / "config.yaml").train.max_steps == 4
    env = json.loads((run / "env.json").read_text())
    # versions come from package metadata (no import); torch's build facts are added since it is loaded
    assert "commit" in env["git"] and env["env"]["torch"] == importlib.metadata.version("torch")
    assert env["env"]["cuda"] == torch.version.cuda
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == [1, 2, 3, 4]
    for key in ("train/total", "train/struct_0", "train/ssim_0", "train/inte_0", "train/silog_0", "train/lr",
                "train/grad_norm"):
        assert key in train_recs[0], key
    assert list((run / "tb").glob("events.out.tfevents.*"))


class _TinyOut:
    def __init__(self, logits):
        self.logits = logits


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, image, depth):
        return _TinyOut(self.conv(torch.cat([image, depth], 1)))


def _bce(out, gt, depth_target):
    loss = nn.functional.binary_cross_entropy_with_logits(out.logits, gt)
    return loss, {"bce": loss.detach(), "total": loss.detach()}


def test_nan_guard_names_step_and_term(tiny_data, tmp_path):
    calls = {"n": 0}

    def poisoned(out, gt, depth_target):
        calls["n"] += 1
        loss, terms = _bce(out, gt, depth_target)
        if calls["n"] == 3:  # the third micro-batch = step 3
            bad = loss * float("nan")
            return loss + bad, {"bce": loss.detach(), "silog_0": bad.detach(), "total": (loss + bad).detach()}
        return loss, terms

    torch.manual_seed(0)
    cfg = tiny_cfg(tiny_data, tmp_path / "run")
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*term 'silog_0' = nan"):
        train(cfg, model=_TinyNet(), loss_fn=poisoned, progress=False)
    st = ck.load_train_state(tmp_path / "run" / "last.pt")
    assert st["step"] == 2  # the state before the bad step
    assert (st["epoch"], st["batch_in_epoch"]) == (0, 2)
    assert all(torch.isfinite(v).all() for v in st["model"].values())


def test_grad_accumulation_equals_big_batch(tiny_data, tmp_path):
    """batch 1 x accum 2 == batch 2 x accum 1 (same samples per step, mean-reduced loss)."""
    res = []
    for name, extra in (("acc", ["train.batch_size=1", "train.grad_accum=2"]), ("big", [])):
        torch.manual_seed(0)
        model = _TinyNet()
        train(tiny_cfg(tiny_data, tmp_path / name, "train.max_steps=3", "data.augment=false", *extra),
              model=model, loss_fn=_bce, progress=False)
        res.append(model.conv.weight.detach().clone())
    torch.testing.assert_close(res[0], res[1], rtol=1e-5, atol=1e-6)


def test_bf16_autocast_channels_last_and_clipping(tiny_data, tmp_path):
    """CPU bf16 autocast + channels_last + grad clipping run; the logged grad norm is the pre-clip norm."""
    torch.manual_seed(0)
    model = _TinyNet()
    res = train(tiny_cfg(tiny_data, tmp_path / "run", "train.max_steps=2", "train.precision=bf16",
                         "train.channels_last=true", "optim.clip_grad=1e-3"),
                model=model, loss_fn=_bce, progress=False)
    assert res.step == 2
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train/grad_norm"] > 1e-3 for r in recs)  # the norm before clipping is what is logged
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.conv.weight.grad is None  # zeroed (set_to_none) after the step


@pytest.mark.slow
def test_torch_compile_path(tiny_data, tmp_path):
    """train.compile=true runs (inductor on CPU) and checkpoints keep the plain module's keys."""
    import shutil

    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    torch.manual_seed(0)
    res = train(tiny_cfg(tiny_data, tmp_path / "run", "train.max_steps=2", "train.compile=true"),
                model=_TinyNet(), loss_fn=_bce, progress=False)
    assert res.step == 2
    assert sorted(_params(tmp_path / "run" / "last.pt")) == ["conv.bias", "conv.weight"]
