"""LR schedule (vs timm's CosineLRScheduler) and AdamW parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pdfnet.config import OptimConfig
from pdfnet.engine.optim import build_optimizer, param_groups
from pdfnet.engine.schedule import CosineWarmupSchedule


@pytest.mark.parametrize(
    "lr,warmup_lr,min_lr,warmup,epochs",
    [(1e-5, 1e-5, 1e-5, 5, 100), (1e-3, 1e-6, 1e-5, 5, 20), (2e-4, 0.0, 0.0, 0, 10),
     (1e-3, 1e-4, 1e-4, 1, 3)],
)
def test_cosine_matches_timm(lr, warmup_lr, min_lr, warmup, epochs):
    from timm.scheduler import CosineLRScheduler

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    ref = CosineLRScheduler(opt, t_initial=epochs, lr_min=min_lr, warmup_lr_init=warmup_lr, warmup_t=warmup)
    ours = CosineWarmupSchedule(lr=lr, epochs=epochs, warmup_epochs=warmup, warmup_lr=warmup_lr,
                                min_lr=min_lr)
    for e in range(epochs + 3):
        ref.step(e)
        assert ours.lr_at(e) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), e


def test_release_recipe_is_constant():
    s = CosineWarmupSchedule(lr=1e-5, epochs=100, warmup_epochs=5, warmup_lr=1e-5, min_lr=1e-5)
    assert all(abs(s.lr_at(e) - 1e-5) < 1e-18 for e in range(120))


def test_schedule_shape_and_apply():
    s = CosineWarmupSchedule(lr=1.0, epochs=10, warmup_epochs=2, warmup_lr=0.0, min_lr=0.1)
    assert s.lr_at(0) == 0.0 and s.lr_at(1) == pytest.approx(0.5)
    assert s.lr_at(5) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr_at(10) == 0.1 and s.lr_at(50) == 0.1
    lrs = [s.lr_at(e) for e in range(2, 10)]
    assert lrs == sorted(lrs, reverse=True)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1)), ], lr=123.0)
    assert s.apply(opt, 1) == pytest.approx(0.5) and opt.param_groups[0]["lr"] == pytest.approx(0.5)
    c = CosineWarmupSchedule(lr=0.3, epochs=5, kind="constant", warmup_epochs=3, warmup_lr=0.0)
    assert [c.lr_at(e) for e in range(7)] == [0.3] * 7
    s2 = CosineWarmupSchedule(lr=0.0, epochs=1)
    s2.load_state_dict(s.state_dict())
    assert s2 == s
    with pytest.raises(ValueError):
        CosineWarmupSchedule(lr=1.0, epochs=10, kind="step")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.LayerNorm(4)
        self.lin = nn.Linear(4, 2, bias=False)
        self.pos = nn.Parameter(torch.zeros(1, 4, 2, 2))
        self.scale = nn.Parameter(torch.ones(()))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_param_groups_split():
    net = _Net()
    groups = param_groups(net, 1e-4)
    names = {id(p): n for n, p in net.named_parameters()}
    decay = {names[id(p)] for p in groups[0]["params"]}
    no_decay = {names[id(p)] for p in groups[1]["params"]}
    assert decay == {"conv.weight", "lin.weight", "pos"}
    assert no_decay == {"conv.bias", "norm.weight", "norm.bias", "scale"}
    assert groups[0]["weight_decay"] == 1e-4 and groups[1]["weight_decay"] == 0.0
    opt = build_optimizer(net, OptimConfig(lr=3e-4, weight_decay=0.05, betas=[0.8, 0.9], eps=1e-7))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    assert opt.param_groups[0]["betas"] == (0.8, 0.9) and opt.param_groups[0]["eps"] == 1e-7
    # no decay really means no decay: a zero-gradient step leaves no_decay params unchanged
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt.step()
    after = dict(net.named_parameters())
    assert torch.equal(before["norm.weight"], after["norm.weight"])
    assert not torch.equal(before["conv.weight"], after["conv.weight"])
