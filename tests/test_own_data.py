"""Training on your own data, end to end on CPU: a generic dataset (jpg/png/webp/bmp images, names with
spaces) passes ``pdfnet data check``, gets depth with ``pdfnet depth --data-root`` (a tiny random DAv2) and
trains with ``data.train_split``/``data.val_split``; a removed mask or a corrupt image stops ``data check``
(exit 1) and ``pdfnet train`` (one line, before any checkpoint)."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import REPO

from pdfnet.cli.main import main

EXTS = (".jpg", ".png", ".webp", ".bmp")


def write_generic(root: Path, counts: dict[str, int], size: int = 48) -> Path:
    """Split folders ``images/`` + ``masks/``: discs on noise, one image format after another, names with
    spaces and a non-ASCII character."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, n in counts.items():
        for i in range(n):
            cx, cy = rng.uniform(0.3, 0.7, 2)
            m = ((xx - cx) ** 2 + (yy - cy) ** 2 < 0.06).astype(np.uint8) * 255
            img = rng.integers(0, 90, (size, size + 8 * (i % 2), 3)).astype(np.uint8)
            img[:, :size][m > 0] = (40, 140, 220)
            mask = np.zeros(img.shape[:2], np.uint8)
            mask[:, :size] = m
            stem = f"photo {i} é"
            files = (("images", stem + EXTS[i % len(EXTS)], img), ("masks", stem + ".png", mask))
            for folder, name, arr in files:
                path = root / split / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                ok, buf = cv2.imencode(path.suffix, arr, [cv2.IMWRITE_WEBP_QUALITY, 100])
                assert ok
                path.write_bytes(buf.tobytes())
    return root


def _train(data: Path, run: Path) -> int:
    sets = [f"data.root={data}", "data.train_split=train", "data.val_split=val", "data.train_depths=[large]",
            "data.eval_depth=large", "data.target_depth=large", "data.size=32", "model.input_size=32",
            f"train.output_dir={run}", "train.batch_size=2", "train.epochs=1", "train.val_every_epochs=1",
            "data.num_workers=0", "eval.num_workers=0", "train.tensorboard=false", "train.device=cpu",
            "train.precision=fp32"]
    return main(["train", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--no-progress",
                 *(a for kv in sets for a in ("--set", kv))])


def _checkpoints(run: Path) -> list[Path]:
    return sorted(run.glob("*.pt")) if run.exists() else []


def test_generic_dataset_checks_gets_depth_and_trains(tiny_model_dir, tmp_path, capsys):
    data = write_generic(tmp_path / "my data", {"train": 4, "val": 2})
    assert main(["data", "check", str(data), "--no-progress"]) == 0
    assert main(["depth", "--data-root", str(data), "--model", "large", "--model-path",
                 f"large={tiny_model_dir}", "--input-size", "28", "--no-progress"]) == 0
    for split, n in (("train", 4), ("val", 2)):
        assert len(list((data / split / "depth_large").glob("photo * é.png"))) == n
    capsys.readouterr()
    assert main(["data", "check", str(data), "--depths", "large", "--no-progress"]) == 0
    assert "train (renamed): 4 images, 4 masks, 4 pairs; depth: large 4/4" in capsys.readouterr().out
    run = tmp_path / "run"
    assert _train(data, run) == 0
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    # model eval checks every split it will read before loading the model
    jpg = data / "train" / "images" / "photo 0 é.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-30])  # a truncated download
    capsys.readouterr()
    out_dir = tmp_path / "eval"
    assert main(["eval", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--ckpt", str(run / "best.pt"),
                 "--splits", "val", "train", "--out-dir", str(out_dir), "--device", "cpu", "--set",
                 f"data.root={data}", "--set", "data.eval_depth=large", "--set", "data.size=32"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdfnet eval: error: train: 1 file is unreadable or corrupt (first: images/photo 0 "
                          "é.jpg (truncated JPEG")
    assert "\n" not in err and not (out_dir.exists() and any(out_dir.iterdir()))  # nothing written


@pytest.mark.parametrize("fault", ["mask removed", "corrupt image"])
def test_a_broken_dataset_stops_check_and_train_before_any_checkpoint(tmp_path, capsys, fault):
    data = write_generic(tmp_path / "data", {"train": 4, "val": 2})
    for split in ("train", "val"):  # depth as `pdfnet depth` would write it (same names, PNG)
        shutil.copytree(data / split / "masks", data / split / "depth_large")
    if fault == "mask removed":
        (data / "train" / "masks" / "photo 2 é.png").unlink()
        named = "photo 2 é.webp"
    else:
        (data / "val" / "images" / "photo 1 é.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        named = "images/photo 1 é.png"
    capsys.readouterr()
    assert main(["data", "check", str(data), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert named in out and named in err
    run = tmp_path / "run"
    rc = _train(data, run)
    err = capsys.readouterr().err
    assert rc != 0 and named in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pdfnet train: error:") and "Traceback" not in err
    assert _checkpoints(run) == []


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_broken_mid_run_is_one_line_naming_it(tmp_path, workers):
    """A file that breaks after the start-up check (here: between building the dataset and training) stops
    training with the same one-line error, with or without DataLoader workers."""
    from helpers import write_tiny_dis

    from pdfnet.config import load_config
    from pdfnet.data import build_train_dataset
    from pdfnet.engine.trainer import train
    from pdfnet.errors import ImageReadError

    data = write_tiny_dis(tmp_path / "data", {"DIS-TR": 4})
    cfg = load_config(REPO / "configs" / "demo_cpu.yaml", [
        f"data.root={data}", "data.size=32", "model.input_size=32", f"train.output_dir={tmp_path / 'run'}",
        "train.batch_size=4", "train.epochs=1", "train.val_every_epochs=0", f"data.num_workers={workers}",
        "train.tensorboard=false", "train.device=cpu", "train.precision=fp32"])
    train_set = build_train_dataset(cfg.data)
    broken = train_set.samples[1].image
    broken.write_bytes(b"no longer an image")
    with pytest.raises(ImageReadError) as e:
        train(cfg, train_set=train_set, progress=False)
    assert str(e.value) == f"cannot decode image (corrupt or unsupported format): {broken}"
    # the workers (which ignore SIGTERM) are gone already: nothing is left to hang the exit
    assert multiprocessing.active_children() == []
