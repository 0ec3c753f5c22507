"""DDP on CPU (gloo, 2 processes): the same parameters as one process with the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from pdfnet.config import Config


class _Out:
    def __init__(self, logits):
        self.logits = logits


class _Net(nn.Module):
    """Conv net without batch coupling (no norm over the batch)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, image, depth):
        return _Out(self.b(torch.relu(self.a(torch.cat([image, depth], 1)))))


def _loss(out, gt, depth_target):
    loss = nn.functional.binary_cross_entropy_with_logits(out.logits, gt)
    return loss, {"bce": loss.detach(), "total": loss.detach()}


class _Data(Dataset):
    def __init__(self, n=8, size=16):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 3, size, size, generator=g)
        self.d = torch.rand(n, 1, size, size, generator=g)
        self.y = (self.x[:, :1] > 0).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "depth": self.d[i], "gt": self.y[i]}


def _cfg(out: Path, batch: int) -> Config:
    cfg = Config()
    cfg.train.output_dir = str(out)
    cfg.train.batch_size = batch
    cfg.train.epochs = 1
    cfg.train.max_steps = 2
    cfg.train.device = "cpu"
    cfg.train.precision = "fp32"
    cfg.train.val_every_epochs = 0
    cfg.train.log_every_steps = 1
    cfg.train.tensorboard = False
    cfg.data.num_workers = 0
    cfg.optim.lr = cfg.optim.warmup_lr = cfg.optim.min_lr = 1e-2
    return cfg


def _run(out: Path, batch: int) -> dict[str, torch.Tensor]:
    from pdfnet.engine.trainer import train

    torch.manual_seed(0)
    model = _Net()
    train(_cfg(out, batch), model=model, loss_fn=_loss, train_set=_Data(), progress=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from pdfnet.engine import distributed as D

    try:
        params = _run(Path(out), batch=1)
        torch.save(params, Path(out) / f"rank{rank}.pt")
    finally:
        D.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed not available")
    single = _run(tmp_path / "single", batch=2)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "ddp" / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ddp" / "rank1.pt", weights_only=True)
    for k in single:
        assert torch.equal(r0[k], r1[k]), f"ranks diverged in {k}"
        torch.testing.assert_close(r0[k], single[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(single["a.weight"], _init_weight()), "training did not move the weights"
    # rank 0 alone wrote the run files
    assert (tmp_path / "ddp" / "last.pt").is_file() and (tmp_path / "ddp" / "metrics.jsonl").is_file()
    st = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert st["step"] == 2 and len(st["rng_per_rank"]) == 2


def _init_weight() -> torch.Tensor:
    torch.manual_seed(0)
    return _Net().a.weight.detach().clone()
