"""``pdfnet data check`` and :mod:`pdfnet.data.check` on tiny generic and DIS5K-layout trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pdfnet.cli.main import main
from pdfnet.data import check as C
from pdfnet.data.check import ProbeCache, check_splits
from pdfnet.data.dis5k import discover_split
from pdfnet.utils.io import read_rgb

# names with spaces and non-ASCII characters, one per image format
GENERIC = {"a photo.jpg": (20, 30), "b.png": (18, 24), "çafé 2.webp": (16, 16), "d d.bmp": (12, 20)}


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    return m


def make_generic(root: Path, split: str = "train", names=GENERIC, folders=("images", "masks"),
                 depths=()) -> Path:
    """A generic split: images in several formats, masks as PNG, optional depth_<name>/ folders."""
    rng = np.random.default_rng(0)
    d = root / split
    for name, (h, w) in names.items():
        _write(d / folders[0] / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        _write(d / folders[1] / (Path(name).stem + ".png"), _mask(h, w))
        for n in depths:
            depth = rng.integers(0, 256, (h, w), dtype=np.uint8)
            _write(d / f"depth_{n}" / (Path(name).stem + ".png"), depth)
    return d


def _kinds(report, errors=True) -> list[str]:
    return [i.kind for _, i in (report.errors if errors else report.warnings)]


def test_generic_dataset_passes(tmp_path, capsys):
    make_generic(tmp_path, "train", depths=("large",))
    make_generic(tmp_path, "val", folders=("im", "gt"))
    rep = check_splits(tmp_path, progress=False)
    assert rep.ok and not rep.warnings, rep.errors
    assert [s.name for s in rep.splits] == ["train", "val"]
    assert rep.splits[0].depth_counts == {"large": 4} and rep.splits[0].n_samples == 4
    assert main(["data", "check", str(tmp_path), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "train (renamed): 4 images, 4 masks, 4 pairs; depth: large 4/4" in out
    assert "val (official): 4 images, 4 masks, 4 pairs; depth: none" in out
    assert "data check: ok (2 split(s), 8 samples)" in err


def test_removed_mask_exits_1_naming_the_image(tmp_path, capsys):
    d = make_generic(tmp_path)
    (d / "masks" / "a photo.png").unlink()
    assert main(["data", "check", str(tmp_path), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "error: 1 image have no GT mask in masks/ (first: a photo.jpg)" in out
    assert err.count("\n") == 1 and "1 problem in 1 of 1 split(s)" in err and "a photo.jpg" in err


def test_corrupt_and_truncated_files_are_named(tmp_path):
    d = make_generic(tmp_path, depths=("small",))
    jpg = d / "images" / "a photo.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-40])  # truncated download
    (d / "masks" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    png = d / "depth_small" / "d d.png"
    png.write_bytes(png.read_bytes()[:-20])
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["unreadable"]
    issue = rep.errors[0][1]
    assert issue.message.startswith("3 files are unreadable or corrupt")
    assert set(issue.files) == {"images/a photo.jpg (truncated JPEG (no end-of-image marker))",
                                "masks/b.png (cannot decode image (corrupt or unsupported format))",
                                "depth_small/d d.png (truncated PNG (no IEND chunk))"}
    assert "\n" not in rep.first_problem()


def test_mask_problems_sizes_levels_and_strict(tmp_path, capsys):
    d = make_generic(tmp_path)
    _write(d / "masks" / "a photo.png", _mask(10, 10))  # wrong size
    soft = _mask(18, 24)
    soft[0, :4] = 100
    _write(d / "masks" / "b.png", soft)
    _write(d / "masks" / "çafé 2.png", (_mask(16, 16) > 0).astype(np.uint8))  # 0/1 labels
    _write(d / "masks" / "d d.png", np.dstack([_mask(12, 20)] * 3))  # RGB mask
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["size-mismatch", "mask-levels"]
    assert "a photo.png 10x10 vs image 20x30" in rep.errors[0][1].message
    assert _kinds(rep, errors=False) == ["mask-channels", "mask-soft"]
    soft_msg = rep.warnings[1][1].message
    assert soft_msg.startswith("1 mask is not binary (") and "b.png" in soft_msg
    share = 4 / (18 * 24 + 10 * 10 + 16 * 16 + 12 * 20)
    assert rep.splits[0].soft_share == pytest.approx(share)
    assert main(["data", "check", str(tmp_path), "--strict", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "error: 1 mask is not binary" in out and "error: 1 mask is not single-channel" in out


def test_stem_clash_and_orphan_mask(tmp_path):
    d = make_generic(tmp_path)
    _write(d / "images" / "b.jpg", np.zeros((18, 24, 3), np.uint8))
    _write(d / "masks" / "zz.png", _mask(4, 4))
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["stem-clash", "orphan-mask"]
    assert "b.jpg/b.png" in rep.errors[0][1].message and "zz.png" in rep.errors[1][1].message


def test_depth_coverage_missing_incomplete_and_aspect(tmp_path, capsys):
    d = make_generic(tmp_path, depths=("small", "large"))
    (d / "depth_small" / "b.png").unlink()
    _write(d / "depth_large" / "b.png", np.zeros((24, 18), np.uint8))  # transposed: other aspect
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["depth-size"]
    assert "depth_large/b.png 24x18 vs image 18x24" in rep.errors[0][1].message
    assert "depth_small 3/4" in rep.warnings[0][1].message
    assert main(["data", "check", str(tmp_path), "--depths", "small", "base", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "depth: large 4/4, small 3/4, base missing" in out
    assert "depth folder depth_base/ not found" in out and "--model base" in out
    assert "1 image have no depth map in depth_small/ (first: b.png)" in out


def test_masks_from_alpha_channel(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "cutouts" / "images"
    for name in ("x y.png", "z.webp"):
        rgba = np.dstack([rng.integers(0, 256, (10, 12, 3), dtype=np.uint8), _mask(10, 12)])
        _write(d / name, rgba)
    rep = check_splits(tmp_path, progress=False)
    assert rep.ok and rep.splits[0].layout == "alpha"
    idx = discover_split(tmp_path, "cutouts")
    assert all(s.gt_alpha and s.gt == s.image for s in idx.samples)
    _write(d / "w.png", np.zeros((10, 12, 3), np.uint8))  # one image without alpha
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["unreadable"] and "w.png (image has no alpha channel" in rep.errors[0][1].message


def test_list_file_split(tmp_path, capsys):
    src = make_generic(tmp_path / "elsewhere", depths=("large",))
    lst = tmp_path / "data" / "train.csv"
    lst.parent.mkdir()
    rows = ["image,mask,depth"]
    for name in GENERIC:
        stem = Path(name).stem
        rows.append(f'"{src / "images" / name}",../elsewhere/train/masks/{stem}.png,'
                    f"../elsewhere/train/depth_large/{stem}.png")
    lst.write_text("\n".join(rows) + "\n# a comment\n", encoding="utf-8")
    rep = check_splits(tmp_path / "data", ["train.csv"], depths=["large"], progress=False)
    assert rep.ok, rep.errors
    idx = rep.indexes["train.csv"]
    assert idx.layout == "list" and len(idx) == 4 and idx.depth_names == ("large",)
    lst.write_text("\n".join(rows[:2] + ["nope.jpg,nope.png"]) + "\n", encoding="utf-8")
    assert main(["data", "check", str(tmp_path / "data"), "--splits", "train.csv", "--no-progress"]) == 1
    assert "2 files listed in train.csv do not exist" in capsys.readouterr().out
    tsv = tmp_path / "data" / "val.txt"
    tsv.write_text(f"{src / 'images' / 'b.png'}\t{src / 'masks' / 'b.png'}\n", encoding="utf-8")
    assert len(discover_split(tmp_path / "data", "val.txt")) == 1


def test_cache_skips_unchanged_files_and_redoes_changed_ones(tmp_path, monkeypatch):
    d = make_generic(tmp_path)
    check_splits(tmp_path, progress=False)
    cache = ProbeCache.for_root(tmp_path)
    assert cache.path.is_file() and len(cache.entries) == 8
    calls: list[str] = []
    real = C._run_probe
    monkeypatch.setattr(C, "_run_probe", lambda job: calls.append(job[1]) or real(job))
    assert check_splits(tmp_path, progress=False, workers=1).ok and calls == []
    jpg = d / "images" / "a photo.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-40])
    rep = check_splits(tmp_path, progress=False, workers=1)
    assert calls == [str(jpg)] and _kinds(rep) == ["unreadable"]
    calls.clear()
    assert not check_splits(tmp_path, progress=False, workers=1).ok and calls == []  # errors are cached too


def test_pool_gives_the_same_results(tmp_path, monkeypatch):
    names = {f"im {i}.png": (8 + i % 3, 9) for i in range(12)}
    d = make_generic(tmp_path, names=names)
    (d / "masks" / "im 3.png").write_bytes(b"broken")
    monkeypatch.setattr(C, "_POOL_MIN", 4)
    pooled = check_splits(tmp_path, progress=False, workers=2, cache=False)
    single = check_splits(tmp_path, progress=False, workers=1, cache=False)
    assert pooled.errors == single.errors and pooled.errors[0][1].files == ("masks/im 3.png (cannot decode "
                                                                           "image (corrupt or unsupported "
                                                                           "format))",)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".webp"])
def test_exif_rotated_image_matches_the_mask_of_its_decoded_size(tmp_path, ext):
    d = tmp_path / "s"
    im = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    (d / "images").mkdir(parents=True)
    im.save(d / "images" / f"r{ext}", exif=exif.tobytes())
    h, w = read_rgb(d / "images" / f"r{ext}").shape[:2]  # what training reads (OpenCV's rule per format)
    _write(d / "masks" / "r.png", _mask(h, w))
    assert check_splits(tmp_path, progress=False).ok


def test_image_over_the_pixel_bound_is_a_problem(tmp_path):
    d = make_generic(tmp_path)
    Image.new("1", (10_001, 10_001)).save(d / "images" / "huge.png")  # 100 MP, a few KB on disk
    _write(d / "masks" / "huge.png", _mask(4, 4))
    rep = check_splits(tmp_path, progress=False)
    assert _kinds(rep) == ["unreadable"] and "huge.png (image is 10001x10001" in rep.errors[0][1].message


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert "data root not found" in capsys.readouterr().err
    make_generic(tmp_path)
    assert main(["data", "check", str(tmp_path), "--splits", "nope", "--no-progress"]) == 1
    assert "split 'nope' not found" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "train")]) == 2
    assert f"give the folder holding it: {tmp_path.resolve()} --splits train" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["data", "check"])
    assert e.value.code == 2


def test_check_imports_no_torch(tmp_path):
    make_generic(tmp_path)
    code = ("import sys; from pdfnet.data.check import check_splits; import pdfnet.cli.data; "
            f"assert check_splits({str(tmp_path)!r}, progress=False).ok; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_predict_names_unreadable_inputs_before_loading_a_model(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a b.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (src / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    rc = main(["predict", "--ckpt", str(tmp_path / "no-such-checkpoint"), "--input", str(src),
               "--output", str(tmp_path / "out"), "--no-progress"])  # the checkpoint is never opened
    err = capsys.readouterr().err
    assert rc == 1 and "none of the 2 input(s) can be read" in err
    assert f"skipped {src / 'a b.jpg'}: cannot decode image" in err and f"skipped {src / 'c.png'}:" in err
