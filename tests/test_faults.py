"""Fault catalog: bad, hostile and failing conditions as a user meets them, through the ``pdfnet`` CLI.

Every case asserts the exit status, that the user gets exactly one ``pdfnet <cmd>: error: …`` line
(or one ``skipped`` line per refused file) and no traceback, and that nothing was lost or left half
written. Conditions that need privileges (a full or read-only file system: small tmpfs mounts) run when
the tests run as root and are skipped with the reason otherwise. Run-directory safety during training
and input validation have their own tests (``test_rundir_safety.py``, ``test_data_check.py``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_tiny_dav2

from pdfnet.cli.main import main
from pdfnet.config.schema import Config, ModelConfig
from pdfnet.data.synth import generate_dataset
from pdfnet.depth.precompute import is_finished
from pdfnet.depth.transforms import target_size
from pdfnet.engine.checkpoint import save_train_state
from pdfnet.errors import CheckpointError
from pdfnet.inference.checkpoint import export_release
from pdfnet.models import build_model
from pdfnet.utils.io import header_size, write_image

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT,
                                reason="mounting a small tmpfs (full / read-only disk) needs root")


# ------------------------------------------------------------------------------------------ helpers
def tiny_cfg(**model) -> Config:
    cfg = Config()
    cfg.model = ModelConfig(**{"backbone": "swin_tiny_test", "emb": 16, "input_size": SIZE, "drop_path": 0.0,
                               "attn_dropout": 0.0, **model})
    return cfg


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) → sha256: equal digests = nothing lost or added."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(err: str, command: str, *needles: str) -> str:
    """The single error line of ``err`` (no traceback, no other lines), containing every needle."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pdfnet {command}: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def run_process(*argv, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m pdfnet.cli.main ARGV`` in a fresh process (what a user runs)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pdfnet.cli.main", *map(str, argv)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)


@contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A small tmpfs at ``path`` (root only); ``read_only`` remounts it read-only after ``yield``-ing
    once for set-up is not needed: callers fill it first, then call :func:`remount_ro`."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount_ro(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def write_rgb(path: Path, h: int, w: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def fake_png_header(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims ``w × h`` (a decompression bomb's header; no pixel data)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny random PDFNet as a safetensors release."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    out = tmp_path_factory.mktemp("release")
    export_release(build_model(cfg.model), cfg, out)
    return out


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """A tiny train state (``last.pt``)."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = build_model(cfg.model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path_factory.mktemp("run") / "last.pt"
    save_train_state(path, model=model, optimizer=opt, schedule=None, scaler=None, cfg=cfg, step=3, epoch=0,
                     batch_in_epoch=3)
    return path


@pytest.fixture(scope="module")
def dav2(tmp_path_factory) -> Path:
    """A tiny random Depth Anything V2 folder (transformers layout)."""
    return write_tiny_dav2(tmp_path_factory.mktemp("dav2"))


@pytest.fixture()
def images(tmp_path) -> tuple[Path, Path]:
    """Two small images and matching depth maps: ``(images dir, depth dir)``."""
    src, dep = tmp_path / "imgs", tmp_path / "depth"
    for i in range(2):
        write_rgb(src / f"im{i}.jpg", 40, 60, i)
        write_image(dep / f"im{i}.png", (np.random.default_rng(i).random((40, 60)) * 255).astype(np.uint8))
    return src, dep


def predict_args(ckpt: Path, src: Path, dep: Path, out: Path, *extra) -> list:
    return ["predict", "--ckpt", ckpt, "--input", src, "--output", out, "--depth-dir", dep, "--device", "cpu",
            "--no-progress", *extra]


# ------------------------------------------------------------------------ 2. never lose a dataset
def test_synth_overwrite_refuses_a_dataset_it_did_not_write(tmp_path, capsys):
    root = tmp_path / "DIS5K"
    write_rgb(root / "DIS-TR" / "im" / "real.jpg", 32, 32)
    write_image(root / "DIS-TR" / "gt" / "real.png", np.zeros((32, 32), np.uint8))
    before = digest(root)
    rc, _, err = cli(capsys, "synth", "--out", root, "--train", 1, "--val", 0, "--test", 0, "--size", 32,
                     "--overwrite", "--no-progress")
    assert rc == 2 and digest(root) == before
    one_error(err, "synth", "not written by pdfnet synth")


def test_synth_overwrite_keeps_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "d"
    generate_dataset(out, {"DIS-VD": 2}, size=32, workers=1, progress=False)
    write_rgb(out / "DIS-VD" / "im" / "mine.jpg", 32, 32)
    before = digest(out)
    rc, _, err = cli(capsys, "synth", "--out", out, "--val", 1, "--train", 0, "--test", 0, "--size", 32,
                     "--overwrite", "--no-progress")
    assert rc == 2 and digest(out) == before
    one_error(err, "synth", "DIS-VD/im/mine.jpg")


# ------------------------------------------------------------------------ 4. bounded resources
def test_oversized_and_hostile_images_are_skipped_rest_continues(release, images, tmp_path, capsys):
    src, dep = images
    fake_png_header(src / "bomb.png", 20000, 20000)  # 400 MP claimed by a tiny file
    with open(src / "sparse.png", "wb") as f:  # a 50 GB sparse file that is not a parseable image
        f.truncate(50 << 30)
    for name in ("bomb", "sparse"):
        write_image(dep / f"{name}.png", np.zeros((40, 60), np.uint8))
    out = tmp_path / "out"
    rc, _, err = cli(capsys, *predict_args(release, src, dep, out, "--save", "alpha"))
    assert rc == 1 and "Traceback" not in err
    skipped = [ln for ln in err.splitlines() if "skipped" in ln]
    assert len(skipped) == 2
    assert any("bomb.png" in ln and "400 MP" in ln and "100 MP" in ln for ln in skipped)
    assert any("sparse.png" in ln and "50.0 GiB" in ln for ln in skipped)
    assert sorted(p.name for p in out.iterdir()) == ["im0_alpha.png", "im1_alpha.png"]
    # the bound is configurable
    rc, _, err = cli(capsys, *predict_args(release, src, dep, tmp_path / "o2", "--save", "alpha",
                                           "--max-pixels", 1000))
    assert rc == 1 and err.count("skipped") == 4 and "over the bound of 0.001 MP" in err


def test_depth_skips_an_oversized_image_and_continues(dav2, images, tmp_path, capsys):
    src, _ = images
    fake_png_header(src / "bomb.png", 20000, 20000)
    rc, _, err = cli(capsys, "depth", "--images", src, "--out", tmp_path / "d", "--model", dav2, "--name",
                     "tiny", "--device", "cpu", "--no-progress")
    assert rc == 1 and "Traceback" not in err and "bomb.png" in err and "400 MP" in err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["im0.png", "im1.png"]
    rc, _, err = cli(capsys, "depth", "--images", src, "--out", tmp_path / "d", "--model", dav2, "--name",
                     "tiny", "--device", "cpu", "--no-progress", "--max-pixels", -1)
    assert rc == 2
    one_error(err, "depth", "'depth.max_pixels' must be >= 0")


def test_depth_resize_of_a_thin_strip_is_bounded():
    assert target_size(8, 2000) == (518, 4144)  # uncapped: 518 x 129 500 (minutes on a CPU)
    assert target_size(2000, 8, 1024) == (8190, 1036)
    assert target_size(300, 1000) == (518, 1722)  # ordinary aspects: the official rule, unchanged


# ------------------------------------------------------------------------ 5. offline-safe loading
@pytest.mark.parametrize("kind", ["release", "train_state"])
def test_checkpoint_naming_hub_backbone_weights_loads_offline(kind, images, tmp_path, monkeypatch):
    cfg = tiny_cfg(backbone="timm:resnet10t", backbone_weights="timm", input_size=256)
    model = build_model(tiny_cfg(backbone="timm:resnet10t", input_size=256).model)  # no download here
    if kind == "release":
        ckpt = tmp_path / "rel"
        export_release(model, cfg, ckpt)
    else:
        ckpt = tmp_path / "last.pt"
        save_train_state(ckpt, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                         schedule=None, scaler=None, cfg=cfg, step=1, epoch=0, batch_in_epoch=1)
    src, dep = images
    argv = predict_args(ckpt, src, dep, tmp_path / "out", "--save", "mask")
    if kind == "release":  # what a user runs offline: a fresh process with HF_HUB_OFFLINE=1
        env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf_home"),
               "HTTPS_PROXY": "http://0.0.0.0:9"}
        r = run_process(*argv, env=env)
        assert r.returncode == 0, r.stderr
    else:  # in-process, with every network connection refused
        import socket

        def no_network(*a, **k):
            raise OSError(errno.ENETUNREACH, "network disabled by the test")

        monkeypatch.setattr(socket.socket, "connect", no_network)
        assert main([str(a) for a in argv]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_mask.png", "im1_mask.png"]


# ------------------------------------------------------------------------ 6. one line for every failure
@pytest.mark.parametrize("override,key", [
    ("optim.lr=-1", "optim.lr"), ("optim.lr=.nan", "optim.lr"), ("train.epochs=0", "train.epochs"),
    ("train.batch_size=0", "train.batch_size"), ("eval.batch_size=0", "eval.batch_size"),
    ("optim.betas=[0.9, 1.5]", "optim.betas"), ("model.drop_path=1.0", "model.drop_path"),
])
def test_config_value_out_of_range(override, key, capsys):
    rc, out, err = cli(capsys, "config", "--set", override)
    assert rc == 2 and out == ""
    one_error(err, "config", f"'{key}' must be")


def test_train_with_out_of_range_config_touches_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    rc, _, err = cli(capsys, "train", "--config", REPO / "configs" / "demo_cpu.yaml", "--set", "optim.lr=-1",
                     "--set", f"train.output_dir={run}")
    assert rc == 2 and not run.exists()
    one_error(err, "train", "'optim.lr' must be >= 0 and finite")


def test_non_utf8_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes("train:\n  output_dir: r\xe9sum\xe9\n".encode("latin-1"))
    rc, _, err = cli(capsys, "config", "--config", bad)
    assert rc == 2
    one_error(err, "config", "not UTF-8")


def test_output_path_of_the_wrong_kind_or_name(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (tmp_path / "adir", "is a folder where a file is needed"),  # EISDIR
        (tmp_path / "afile" / "c.yaml", "is a file, not a folder"),  # ENOTDIR
        (tmp_path / ("n" * 300 + ".yaml"), "file name too long"),  # ENAMETOOLONG
    ]
    for path, needle in cases:
        rc, _, err = cli(capsys, "config", "--out", path)
        assert rc == 1
        one_error(err, "config", str(path), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]  # no temp file left
    assert (tmp_path / "afile").read_text() == "x" and not any((tmp_path / "adir").iterdir())


@pytest.mark.parametrize("code,needle", [(errno.EACCES, "permission denied"), (errno.ENOSPC, "no space left"),
                                         (errno.EROFS, "read-only file system")])
def test_os_error_mapping_at_the_entry_point(code, needle, tmp_path, capsys, monkeypatch):
    # the CLI entry point turns an OSError from anywhere into one line naming the path (exit 1)
    import pdfnet.utils.atomic as fs

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fs.os, "replace", refuse)
    out = tmp_path / "c.yaml"
    rc, _, err = cli(capsys, "config", "--out", out)
    assert rc == 1 and list(tmp_path.iterdir()) == []
    one_error(err, "config", str(out), needle)


@needs_root
def test_read_only_file_system_in_every_command(release, state, dav2, images, tmp_path, capsys):
    src, dep = images
    ro = tmp_path / "ro"
    gt = tmp_path / "gt"
    write_image(gt / "im0.png", (np.arange(40 * 60).reshape(40, 60) % 2 * 255).astype(np.uint8))
    assert cli(capsys, "eval", "--pred-dir", gt, "--gt-dir", gt, "--split", "DIS-VD", "--json",
               tmp_path / "jsons" / "DIS-VD.json", "--quiet")[0] == 0
    with tmpfs(ro, "1m"):
        remount_ro(ro)
        commands = {
            "config": ["config", "--out", ro / "c.yaml"],
            "synth": ["synth", "--out", ro / "d", "--train", 1, "--val", 0, "--test", 0, "--size", 32,
                      "--no-progress"],
            "predict": predict_args(release, src, dep, ro / "p"),
            "export-weights": ["export-weights", state, "--out", ro / "rel"],
            "export": ["export", "--ckpt", release, "--onnx", ro / "m.onnx", "--no-check"],
            "eval": ["eval", "--pred-dir", gt, "--gt-dir", gt, "--json", ro / "r.json", "--quiet"],
            "report": ["report", "--json-dir", tmp_path / "jsons", "--out", ro / "rep", "--no-plots"],
            "depth": ["depth", "--images", src, "--out", ro / "d", "--model", dav2, "--name", "tiny",
                      "--device", "cpu", "--no-progress"],
            "train": ["train", "--config", REPO / "configs" / "demo_cpu.yaml", "--set",
                      f"train.output_dir={ro / 'run'}", "--set", f"data.root={tmp_path}"],
        }
        for name, argv in commands.items():
            rc, _, err = cli(capsys, *argv)
            assert rc == (2 if name == "train" else 1), (name, err)  # train names its run directory
            line = one_error(err, name, str(ro))
            assert "read-only file system" in line.lower(), line
        assert list(ro.iterdir()) == []


@needs_root
def test_disk_full_is_one_line_and_leaves_nothing(state, release, images, tmp_path, capsys):
    full = tmp_path / "full"
    with tmpfs(full, "256k"):
        rc, _, err = cli(capsys, "export-weights", state, "--out", full / "rel")  # ~1 MB of weights
        assert rc == 1
        one_error(err, "export-weights", "no space left on the device", str(full / "rel"))
        assert [p.name for p in (full / "rel").iterdir()] == []  # no temp file left behind
        # torch.save's "unexpected pos" is a full disk too
        from pdfnet.engine.checkpoint import atomic_torch_save
        from pdfnet.errors import file_system_error

        with pytest.raises(OSError) as ei:  # the CLI entry point turns it into the one line
            atomic_torch_save({"w": torch.zeros(200_000)}, full / "last.pt")
        assert str(file_system_error(ei.value)) == (f"{full / 'last.pt'}: no space left on the device (free "
                                                    "some space or write somewhere else)")
        assert sorted(p.name for p in full.iterdir()) == ["rel"]
        # predict: every image gets all of its outputs or none (no partial sets)
        src, dep = images
        for i in range(2, 12):
            write_rgb(src / f"im{i}.jpg", 200, 300, i)
            write_image(dep / f"im{i}.png",
                        np.random.default_rng(i).integers(0, 255, (200, 300), dtype=np.uint8))
        rc, _, err = cli(capsys, *predict_args(release, src, dep, full / "pred", "--save",
                                               "mask,alpha,cutout"))
        assert rc == 1 and "Traceback" not in err and "no space left on the device" in err
        names = [p.name for p in (full / "pred").iterdir()]
        stems = {n.rsplit("_", 1)[0] for n in names}
        assert all(n.startswith(".") is False for n in names)
        assert all({f"{s}_mask.png", f"{s}_alpha.png", f"{s}_cutout.png"} <= set(names) for s in stems)


# ---------------------------------------------------------------- malformed checkpoints and models
def test_malformed_checkpoints_are_one_line(release, images, tmp_path, capsys):
    src, dep = images
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save({"format": "pdfnet-train-state", "version": 1, "model": [1, 2], "config_yaml": 3},
               bad / "a.pt")
    torch.save({"format": "pdfnet-train-state", "version": 1}, bad / "b.pt")
    (bad / "c.pt").write_bytes(b"not a checkpoint" * 8)
    rel = tmp_path / "rel"
    rel.mkdir()
    (rel / "config.yaml").write_bytes((release / "config.yaml").read_bytes())
    (rel / "model.safetensors").write_bytes((release / "model.safetensors").read_bytes()[:1000])  # truncated
    for ckpt, needle in [(bad / "a.pt", "malformed train state"), (bad / "b.pt", "malformed train state"),
                         (bad / "c.pt", "cannot read checkpoint"), (rel, "cannot read")]:
        rc, _, err = cli(capsys, *predict_args(ckpt, src, dep, tmp_path / "o"))
        assert rc == 2, err
        one_error(err, "predict", needle)
        rc, _, err = cli(capsys, "export-weights", ckpt, "--out", tmp_path / "e")
        assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_resume_from_a_malformed_train_state_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "pdfnet-train-state", "version": 1, "model": {}}, run / "last.pt")
    before = digest(run)
    data = tmp_path / "data"
    generate_dataset(data, {"DIS-TR": 4, "DIS-VD": 1}, size=32, workers=1, progress=False)
    rc, _, err = cli(capsys, "train", "--config", REPO / "configs" / "demo_cpu.yaml", "--set",
                     f"train.output_dir={run}", "--set", f"data.root={data}", "--resume", "auto")
    assert rc == 2 and digest(run) == before
    one_error(err, "train", "malformed train state")


def test_pickle_checkpoint_is_refused_without_unsafe_advice(images, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    src, dep = images
    rc, _, err = cli(capsys, *predict_args(tmp_path / "evil.pt", src, dep, tmp_path / "o"))
    assert rc == 2 and not marker.exists()
    one_error(err, "predict", "not a weights-only file", "pickled")
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err


def test_nan_weights_are_an_error(images, tmp_path, capsys):
    cfg = tiny_cfg()
    model = build_model(cfg.model)
    with torch.no_grad():
        model.head.out.weight.fill_(float("nan"))
    export_release(model, cfg, tmp_path / "rel")
    src, dep = images
    rc, _, err = cli(capsys, *predict_args(tmp_path / "rel", src, dep, tmp_path / "o"))
    assert rc == 2 and not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    one_error(err, "predict", "NaN or inf", "head.out.weight")


def test_bad_depth_model_folders(tmp_path, images, release, capsys):
    src, _ = images
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{ not json")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "depth_anything"}))

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Payload()}, pickled / "pytorch_model.bin")
    for folder in (garbage, pickled, tmp_path / "missing_dir"):
        rc, _, err = cli(capsys, "predict", "--ckpt", release, "--input", src, "--output", tmp_path / "o",
                         "--depth-model", folder, "--device", "cpu", "--no-progress")
        assert rc == 2, err
        line = one_error(err, "predict", "depth model")
        assert "weights_only=False" not in line
    assert not (tmp_path / "pwned").exists()


def test_corrupt_backbone_weights_are_one_line(tmp_path):
    from pdfnet.models.backbone_weights import load_swin_imagenet, load_timm_backbone_file

    (tmp_path / "w.pth").write_bytes(b"\x80\x02garbage")
    (tmp_path / "w.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json")
    swin = build_model(tiny_cfg().model).encoder.backbone
    timm_bb = build_model(tiny_cfg(backbone="timm:resnet10t", input_size=256).model).encoder.backbone
    for f in ("w.pth", "w.safetensors"):
        for load, bb in ((load_swin_imagenet, swin), (load_timm_backbone_file, timm_bb)):
            with pytest.raises(CheckpointError) as ei:
                load(bb, tmp_path / f)
            msg = str(ei.value)
            assert "\n" not in msg and f in msg and "weights_only=False" not in msg


# ------------------------------------------------------------------------ 3. outputs checked before work
def test_eval_output_paths_fail_before_scoring(tmp_path, capsys):
    gt = tmp_path / "gt"
    write_image(gt / "a.png", np.zeros((16, 16), np.uint8))
    (tmp_path / "jdir").mkdir()
    rc, out, err = cli(capsys, "eval", "--pred-dir", gt, "--gt-dir", gt, "--json", tmp_path / "jdir",
                       "--quiet")
    assert rc == 2 and "maxF" not in out  # nothing was scored
    one_error(err, "eval", "--json", "is a folder")


def test_model_eval_out_dir_file_and_escaping_split_fail_before_inference(state, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    cfg = REPO / "configs" / "demo_cpu.yaml"
    rc, _, err = cli(capsys, "eval", "--config", cfg, "--set", f"data.root={tmp_path / 'nodata'}", "--ckpt",
                     state, "--out-dir", tmp_path / "afile", "--splits", "DIS-VD", "--device", "cpu")
    assert rc == 2
    one_error(err, "eval", "--out-dir", "not a folder")
    rc, _, err = cli(capsys, "eval", "--config", cfg, "--set", f"data.root={tmp_path / 'nodata'}", "--ckpt",
                     state, "--out-dir", tmp_path / "ev", "--splits", "../X", "--device", "cpu")
    assert rc == 2 and not (tmp_path / "X.json").exists()
    one_error(err, "eval", "'../X' is not a plain name")


def test_predict_unwritable_output_fails_before_loading_the_model(images, tmp_path, capsys):
    src, dep = images
    (tmp_path / "afile").write_text("x")
    # the checkpoint does not even exist: the output check comes first
    rc, _, err = cli(capsys, *predict_args(tmp_path / "nockpt.pt", src, dep, tmp_path / "afile"))
    assert rc == 2
    one_error(err, "predict", "--output", "not a folder")


# ------------------------------------------------------------------------ 7. the smaller points
def test_depth_map_of_another_aspect_is_refused_like_training(release, images, tmp_path, capsys):
    src, dep = images
    rng = np.random.default_rng(0)
    write_image(dep / "im1.png", rng.integers(0, 255, (40, 40), dtype=np.uint8))  # image is 40x60
    write_image(dep / "im0.png", rng.integers(0, 255, (80, 120), dtype=np.uint8))  # same aspect: fine
    rc, _, err = cli(capsys, *predict_args(release, src, dep, tmp_path / "o", "--save", "mask"))
    assert rc == 1 and "different aspect ratio" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["im0_mask.png"]


def test_predict_into_its_input_folder_reruns_cleanly_and_counts_unsupported(release, images, capsys):
    src, dep = images
    (src / "anim.gif").write_bytes(b"GIF89a")
    (src / "notes.txt").write_text("x")
    for _ in range(2):
        rc, _, err = cli(capsys, *predict_args(release, src, dep, src, "--save", "mask,alpha"))
        assert rc == 0, err
        assert "2 of 2 input(s)" in err and "ignored 2 unsupported file(s) (.gif, .txt)" in err
    assert "left out 4 earlier output(s)" in err
    assert sorted(p.name for p in src.iterdir()) == ["anim.gif", "im0.jpg", "im0_alpha.png", "im0_mask.png",
                                                     "im1.jpg", "im1_alpha.png", "im1_mask.png", "notes.txt"]


def test_predict_output_set_is_all_or_none(release, images, tmp_path, capsys, monkeypatch):
    import pdfnet.utils.atomic as fs

    real = os.replace

    def fail_cutout(a, b):
        if str(b).endswith("im1_cutout.png"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(a, b)

    monkeypatch.setattr(fs.os, "replace", fail_cutout)
    src, dep = images
    rc, _, err = cli(capsys, *predict_args(release, src, dep, tmp_path / "o", "--save", "mask,alpha,cutout"))
    assert rc == 1 and "im1.jpg" in err and "no space left" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["im0_alpha.png", "im0_cutout.png",
                                                                  "im0_mask.png"]


def test_exif_rotated_source_counts_as_finished_depth(tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: decoders return 60x40 for this 40x60 (h x w) file
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    from pdfnet.utils.io import read_rgb

    assert read_rgb(tmp_path / "r.jpg").shape[:2] == (60, 40) == header_size(tmp_path / "r.jpg")
    write_image(tmp_path / "r.png", np.zeros((60, 40), np.uint8))
    assert is_finished(tmp_path / "r.png", header_size(tmp_path / "r.jpg"), 8)


def test_metrics_jsonl_symlink_is_not_followed(tmp_path):
    from pdfnet.engine.events import JsonlWriter
    from pdfnet.errors import UserError

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        JsonlWriter(tmp_path / "run" / "metrics.jsonl")
    assert victim.read_text() == "keep"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_honour_the_umask(umask, mode, state, release, images, tmp_path, capsys, monkeypatch):
    import pdfnet.utils.atomic as fs

    old = os.umask(umask)
    fs.file_mode.cache_clear()
    try:
        src, dep = images
        assert cli(capsys, *predict_args(release, src, dep, tmp_path / "p", "--save", "mask"))[0] == 0
        assert cli(capsys, "export-weights", state, "--out", tmp_path / "rel")[0] == 0
        assert cli(capsys, "config", "--out", tmp_path / "c.yaml")[0] == 0
        model = build_model(tiny_cfg().model)
        save_train_state(tmp_path / "last.pt", model=model, optimizer=torch.optim.SGD(model.parameters()),
                         schedule=None, scaler=None, cfg=tiny_cfg(), step=1, epoch=0, batch_in_epoch=1)
        files = [*(tmp_path / "p").iterdir(), *(tmp_path / "rel").iterdir(), tmp_path / "c.yaml",
                 tmp_path / "last.pt"]
        assert len(files) == 6 and {f.stat().st_mode & 0o777 for f in files} == {mode}
    finally:
        os.umask(old)
        fs.file_mode.cache_clear()
