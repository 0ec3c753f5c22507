"""Checkpoint I/O: atomic writes, weights_only reload, strict key checks, RNG round trip, safetensors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from pdfnet.config import Config
from pdfnet.engine import checkpoint as ck
from pdfnet.engine.optim import build_optimizer
from pdfnet.engine.schedule import CosineWarmupSchedule
from pdfnet.errors import CheckpointError
from pdfnet.inference import checkpoint as ick


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 1, 1))


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ck.atomic_torch_save({"a": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"partial garbage")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        ck.atomic_torch_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(ick.torch_load(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp files left


def test_rng_round_trip():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    state = ck.get_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    torch.rand(10)
    np.random.rand(10)
    random.random()
    ck.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3] == b[3]


def test_train_state_round_trip_weights_only(tmp_path):
    net = _net()
    cfg = Config()
    cfg.train.batch_size = 3
    opt = build_optimizer(net, cfg.optim)
    net(torch.randn(1, 3, 8, 8)).sum().backward()
    opt.step()
    sched = CosineWarmupSchedule(lr=1e-3, epochs=4, warmup_epochs=1, warmup_lr=1e-4, min_lr=1e-5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = ck.save_train_state(tmp_path / "last.pt", model=net, optimizer=opt, schedule=sched, scaler=scaler,
                               cfg=cfg, step=7, epoch=2, batch_in_epoch=1, best={"maxF": 0.5, "step": 4})
    # plain weights_only load works (no custom classes pickled)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["step"] == 7
    state = ck.load_train_state(path)
    assert (state["epoch"], state["batch_in_epoch"], state["best"]) == (2, 1, {"maxF": 0.5, "step": 4})
    assert ick.config_from_yaml_text(state["config_yaml"]) == cfg
    net2 = _net()
    ick.load_state_dict_strict(net2, state["model"])
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)
    opt2 = build_optimizer(net2, cfg.optim)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    sched2 = CosineWarmupSchedule(lr=0, epochs=1)
    sched2.load_state_dict(state["schedule"])
    assert sched2 == sched


def test_strict_load_names_keys(tmp_path):
    net = _net()
    sd = net.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["0.bias"]
    with pytest.raises(CheckpointError,
                       match=r"missing key\(s\): 0\.bias.*unexpected key\(s\): extra\.weight"):
        ick.load_state_dict_strict(_net(), sd)
    sd = net.state_dict()
    sd["2.weight"] = torch.zeros(2, 4, 1, 1)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*2\.weight"):
        ick.load_state_dict_strict(_net(), sd)


def test_not_a_train_state(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"a": torch.ones(1)}, p)
    with pytest.raises(CheckpointError, match="not a pdfnet train state"):
        ck.load_train_state(p)
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot read"):
        ick.torch_load(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        ick.torch_load(tmp_path / "missing.pt")


def test_release_round_trip(tmp_path):
    net = _net()
    cfg = Config()
    cfg.model.emb = 32
    ick.export_release(net, cfg, tmp_path / "rel")
    assert (tmp_path / "rel" / "model.safetensors").is_file() and (tmp_path / "rel" / "config.yaml").is_file()
    for where in (tmp_path / "rel", tmp_path / "rel" / "model.safetensors"):
        sd, cfg2 = ick.load_release(where)
        assert cfg2 == cfg
        net2 = _net()
        ick.load_state_dict_strict(net2, sd)
        x = torch.randn(1, 3, 8, 8)
        assert torch.equal(net(x), net2(x))
    (tmp_path / "rel" / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="config.yaml is missing"):
        ick.load_release(tmp_path / "rel")
