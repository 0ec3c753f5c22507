"""Never lose a run: the run-directory guarantees of ``pdfnet train`` (pdfnet.engine.rundir + trainer).

Tiny CPU runs with injected components (a one-conv net on 8 random 16² samples). The signal, lock and
disk-full cases run the real ``pdfnet train`` CLI in a subprocess (:data:`DRIVER` injects the same tiny
components) and check the exit code, the one line on stderr and what is left on disk.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO
from torch import nn
from torch.utils.data import Dataset

from pdfnet.config import Config
from pdfnet.engine import checkpoint as ck
from pdfnet.engine.rundir import LOCK_NAME, RunLock
from pdfnet.engine.trainer import train
from pdfnet.errors import CheckpointError, UserError


class _Out:
    def __init__(self, logits):
        self.logits = logits


class TinyNet(nn.Module):
    def __init__(self, width: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(4, width, 3, padding=1)

    def forward(self, image, depth):
        return _Out(self.conv(torch.cat([image, depth], 1))[:, :1])


def bce(out, gt, depth_target):
    loss = nn.functional.binary_cross_entropy_with_logits(out.logits, gt)
    return loss, {"bce": loss.detach(), "total": loss.detach()}


class TinyData(Dataset):
    """8 samples of ``[3|1|1, 16, 16]``: 4 steps per epoch at batch 2."""

    def __init__(self, n: int = 8, size: int = 16, broken: bool = False):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 3, size, size, generator=g)
        self.d = torch.rand(n, 1, size, size, generator=g)
        self.y = (self.x[:, :1] > 0).float()
        self.broken = broken

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.broken:
            raise UserError(f"cannot decode image (corrupt or unsupported format): val_{i:03d}.jpg")
        return {"image": self.x[i], "depth": self.d[i], "gt": self.y[i]}


def tiny_cfg(out: Path, **train_fields) -> Config:
    cfg = Config()
    t = cfg.train
    t.output_dir, t.batch_size, t.epochs, t.device, t.precision = str(out), 2, 3, "cpu", "fp32"
    t.val_every_epochs, t.log_every_steps, t.image_log_every_steps, t.tensorboard = 0, 1, 0, False
    cfg.data.num_workers = 0
    cfg.eval.num_workers = 0
    cfg.optim.lr = cfg.optim.warmup_lr = cfg.optim.min_lr = 1e-2
    for k, v in train_fields.items():
        setattr(t, k, v)
    return cfg


def run(out: Path, *, model: nn.Module | None = None, val_set: Dataset | None = None, **kw):
    fields = {k: kw.pop(k) for k in list(kw) if k not in ("resume", "overwrite", "score_fn")}
    torch.manual_seed(0)
    return train(tiny_cfg(out, **fields), model=model or TinyNet(), loss_fn=bce, train_set=TinyData(),
                 val_set=val_set, progress=False, **kw)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------------------
# refusing to replace a run, --overwrite, resume checks before any write


def test_fresh_start_into_a_run_is_refused_and_nothing_changes(tmp_path):
    run(tmp_path, max_steps=2)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match=r"already holds a training run \(last\.pt\).*--resume auto.*"
                                        r"train\.output_dir.*--overwrite"):
        run(tmp_path, max_steps=4)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / LOCK_NAME).exists()  # the refusal released the lock


def test_overwrite_moves_the_old_run_aside(tmp_path):
    run(tmp_path, max_steps=2)
    before = snapshot(tmp_path)
    res = run(tmp_path, max_steps=3, overwrite=True)
    assert res.step == 3
    (previous,) = tmp_path.glob("previous-*")
    assert snapshot(previous) == before  # every file of the old run, byte for byte
    assert ck.load_train_state(tmp_path / "last.pt")["step"] == 3
    assert [r["step"] for r in records(tmp_path)] == [1, 2, 3]
    with pytest.raises(UserError, match="cannot be combined with --resume"):
        run(tmp_path, max_steps=3, overwrite=True, resume="auto")


def test_refused_resume_rewrites_nothing(tmp_path):
    """A train state that does not fit the model is refused before config.yaml/env.json/metrics change."""
    run(tmp_path, max_steps=2)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match="does not match the model"):
        run(tmp_path, max_steps=4, resume="auto", model=TinyNet(width=2))
    assert snapshot(tmp_path) == before
    with pytest.raises(CheckpointError, match="global batch of 2; this run has a global batch of 1"):
        run(tmp_path, max_steps=4, resume="auto", batch_size=1)
    assert snapshot(tmp_path) == before


def test_resume_from_best_keeps_the_later_last(tmp_path):
    """--resume <dir>/best.pt continues from the best step; the later last.pt and the metrics past that step
    are kept in previous-<time>/ rather than overwritten."""
    scores = iter([1.0, 0.0])  # the first validation (step 2) stays the best
    run(tmp_path, val_every_steps=2, val_set=TinyData(), max_steps=4, score_fn=lambda m: next(scores))
    assert ck.load_train_state(tmp_path / "best.pt")["step"] == 2
    last, metrics = (tmp_path / "last.pt").read_bytes(), (tmp_path / "metrics.jsonl").read_bytes()
    run(tmp_path, max_steps=3, resume=str(tmp_path / "best.pt"))
    (previous,) = tmp_path.glob("previous-*")
    assert (previous / "last.pt").read_bytes() == last
    assert (previous / "metrics.jsonl").read_bytes() == metrics
    assert ck.load_train_state(tmp_path / "last.pt")["step"] == 3
    assert [r["step"] for r in records(tmp_path) if r["kind"] == "train"] == [1, 2, 3]


def test_stale_temp_files_are_removed_on_start(tmp_path):
    run(tmp_path, max_steps=2)
    debris = [".last.pt.k2j3h4.tmp", ".env.json.abc.tmp", ".tmp-x1y2.yaml"]
    for name in debris:
        (tmp_path / name).write_bytes(b"x" * 100)
    (tmp_path / "notes.txt").write_text("mine")
    run(tmp_path, max_steps=3, resume="auto")
    assert not [n for n in debris if (tmp_path / n).exists()]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_metrics_continue_without_repeating_steps(tmp_path):
    """Records past the resumed step (written after the last save, before a kill) are dropped."""
    run(tmp_path, max_steps=2, save_every_steps=1)
    with open(tmp_path / "metrics.jsonl", "a") as f:  # what a run killed after logging step 3 leaves
        f.write(json.dumps({"kind": "train", "step": 3, "train/total": 1.0}) + "\n")
        f.write(json.dumps({"kind": "val", "step": 3, "val/maxF": 0.5}) + "\n")
        f.write('{"kind": "train", "st')  # torn last line
    run(tmp_path, max_steps=5, resume="auto")
    steps = [r["step"] for r in records(tmp_path) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    assert not [r for r in records(tmp_path) if r["kind"] == "val"]


# --------------------------------------------------------------------------------------------------
# validation after the save


def test_failing_validation_never_costs_the_epoch(tmp_path):
    """Validation runs after the epoch-end save: a corrupt validation image leaves the epoch in last.pt,
    and the resumed run validates that epoch before going on."""
    with pytest.raises(UserError, match="cannot decode image"):
        run(tmp_path, val_every_epochs=1, val_set=TinyData(broken=True))
    st = ck.load_train_state(tmp_path / "last.pt")
    assert (st["step"], st["epoch"], st["batch_in_epoch"]) == (4, 1, 0)  # the whole first epoch is kept
    res = run(tmp_path, val_every_epochs=1, val_set=TinyData(), resume="auto")
    assert res.step == 12
    val_steps = [r["step"] for r in records(tmp_path) if r["kind"] == "val"]
    assert val_steps == [4, 8, 12]
    best = ck.load_train_state(tmp_path / "best.pt")["best"]
    assert ck.load_train_state(tmp_path / "last.pt")["best"] == best and best["step"] in val_steps


# --------------------------------------------------------------------------------------------------
# the lock


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    run(tmp_path, max_steps=2)
    pid = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    assert run(tmp_path, max_steps=3, resume="auto").step == 3
    assert f"stale lock {tmp_path / LOCK_NAME} (pid {pid} is not running)" in capsys.readouterr().out
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_names_the_live_holder(tmp_path):
    """A live holder (flock held, or a running PID on this host) keeps a second run out; a lock from
    another host is not guessed at."""
    with RunLock(tmp_path):
        with pytest.raises(UserError, match=rf"in use by another training run \(pid {os.getpid()} on "):
            run(tmp_path, max_steps=1)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(UserError, match=rf"in use by another training run \(pid {sleeper.pid} on "):
            run(tmp_path, max_steps=1)
    finally:
        sleeper.kill()
        sleeper.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1234, "host": "elsewhere.example"}))
    lock = tmp_path / LOCK_NAME
    with pytest.raises(UserError, match=rf"locked by pid 1234 on elsewhere.example.*delete {lock}"):
        run(tmp_path, max_steps=1)
    assert not (tmp_path / "last.pt").exists()


# --------------------------------------------------------------------------------------------------
# subprocess cases: the real CLI with the tiny components injected

DRIVER = """
import sys, time
sys.path.insert(0, {tests!r})
import test_rundir_safety as T
from pdfnet.engine import trainer

SLEEP = float({sleep!r})

def slow_bce(out, gt, depth_target):
    time.sleep(SLEEP)
    return T.bce(out, gt, depth_target)

def components(cfg, model=None, loss_fn=None, train_set=None, val_set=None):
    return T.TinyNet(), slow_bce, T.TinyData(), None

trainer.build_components = components
{prelude}
from pdfnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def cli(tmp_path: Path, run_dir: Path, *sets: str, sleep: float = 0.0, prelude: str = "",
        extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``pdfnet train`` on the tiny components (stdout/stderr piped)."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(REPO / "tests"), sleep=sleep, prelude=prelude))
    overrides = ["train.batch_size=2", "train.device=cpu", "train.precision=fp32", "train.val_every_epochs=0",
                 "train.log_every_steps=1", "train.image_log_every_steps=0", "train.tensorboard=false",
                 "data.num_workers=0", f"train.output_dir={run_dir}", *sets]
    args = [sys.executable, str(driver), "train", "--config", str(REPO / "configs" / "demo_cpu.yaml"),
            "--no-progress", *extra]
    for s in overrides:
        args += ["--set", s]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_steps(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.communicate()}")
        p = run_dir / "metrics.jsonl"
        if p.is_file() and sum(1 for _ in p.open()) >= n:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("training made no progress")


@pytest.mark.slow  # a subprocess: ~5 s of start-up
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_the_step_and_exits_with_one_line(tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = cli(tmp_path, run_dir, "train.epochs=50", sleep=0.2)
    _wait_for_steps(run_dir, 2, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    step = ck.load_train_state(run_dir / "last.pt")["step"]
    assert step >= 2
    assert lines[0] == (f"pdfnet train: stopped by {sig.name} after step {step}; {run_dir / 'last.pt'} "
                        "holds it; --resume auto continues")
    assert max(r["step"] for r in records(run_dir)) == step  # the step in last.pt is the last one logged
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / LOCK_NAME).exists()


@pytest.mark.slow  # a subprocess: ~5 s of start-up
def test_second_run_into_a_live_directory_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(tmp_path, run_dir, "train.epochs=50", "train.save_every_steps=1", sleep=0.2)
    try:
        _wait_for_steps(run_dir, 2, proc)  # step 1 is saved before step 2 starts
        with pytest.raises(UserError, match=rf"in use by another training run \(pid {proc.pid} on "):
            run(run_dir, resume="auto")
    finally:
        proc.kill()  # kill -9: the lock file stays behind, stale
        proc.communicate()
    assert (run_dir / LOCK_NAME).is_file()
    assert run(run_dir, resume="auto", max_steps=ck.load_train_state(run_dir / "last.pt")["step"] + 1)


@pytest.mark.slow  # a subprocess: ~5 s of start-up
def test_disk_full_while_saving_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    """RLIMIT_FSIZE makes every write past the limit fail with EFBIG, as a full disk does (ENOSPC)."""
    run_dir = tmp_path / "run"
    run(run_dir, max_steps=2)
    before = (run_dir / "last.pt").read_bytes()
    limit = len(before) // 2  # config.yaml, env.json and metrics.jsonl stay below it
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))")
    proc = cli(tmp_path, run_dir, "train.epochs=3", "train.max_steps=3", prelude=prelude,
               extra=("--resume", "auto"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    assert err.strip() == (f"pdfnet train: error: cannot save {run_dir / 'last.pt'}: File too large "
                           "(the previous one is intact)")
    assert (run_dir / "last.pt").read_bytes() == before
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / LOCK_NAME).exists()


@pytest.mark.slow  # four subprocesses
def test_kill_9_twice_then_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    """kill -9 at arbitrary points (save_every_steps=1), then --resume auto: the same parameters as a run
    never interrupted, no repeated metrics, no debris, the stale lock taken over."""
    sets = ("train.epochs=3", "train.save_every_steps=1")
    ref = cli(tmp_path, tmp_path / "ref", *sets)
    assert ref.wait(timeout=120) == 0, ref.communicate()
    run_dir = tmp_path / "run"
    for steps in (2, 6):
        proc = cli(tmp_path, run_dir, *sets, sleep=0.1, extra=("--resume", "auto"))
        _wait_for_steps(run_dir, steps, proc)
        proc.kill()
        proc.communicate()
    proc = cli(tmp_path, run_dir, *sets, extra=("--resume", "auto"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert "taking over the stale lock" in out
    a, b = (ck.load_train_state(d / "last.pt") for d in (tmp_path / "ref", run_dir))
    assert a["step"] == b["step"] == 12
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["step"] for r in records(run_dir)] == list(range(1, 13))
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / LOCK_NAME).exists()


def _ddp_worker(rank: int, world: int, port: int, out: str, errors: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from pdfnet.engine import distributed as D

    try:
        run(Path(out), batch_size=1, max_steps=2)
    except UserError as e:
        Path(errors, f"rank{rank}.txt").write_text(str(e))
    finally:
        D.cleanup()


@pytest.mark.slow  # two spawned processes
def test_ddp_refusal_on_rank_0_reaches_every_rank(tmp_path):
    """Only rank 0 locks and checks the run directory; its refusal is raised on every rank, so no rank
    waits forever in the next collective."""
    import torch.multiprocessing as mp

    run(tmp_path / "run", max_steps=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert "already holds a training run" in (tmp_path / f"rank{rank}.txt").read_text()
