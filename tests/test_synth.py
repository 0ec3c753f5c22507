"""Synthetic DIS-like data: layout, determinism, integrity-prior depth, CLI behaviour, read-back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pdfnet.cli.main import main
from pdfnet.data import DISDataset, discover
from pdfnet.data.synth import DEPTH_MODELS, OBJECT_KINDS, SPLITS, generate_dataset, render_scene

COUNTS = {"DIS-TR": 4, "DIS-VD": 2, "DIS-TE1": 1, "DIS-TE2": 1, "DIS-TE3": 1, "DIS-TE4": 1}


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_read_back(tmp_path):
    out = tmp_path / "d"
    generate_dataset(out, COUNTS, size=64, seed=3, workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted([*SPLITS, "synth.json"])
    idx = discover(out, SPLITS, DEPTH_MODELS)
    for split, n in COUNTS.items():
        assert len(idx[split]) == n and idx[split].layout == "official"
        assert all(s.image.suffix == ".jpg" and s.gt.suffix == ".png" for s in idx[split].samples)
    stem = idx["DIS-TR"].samples[0].stem
    assert stem.count("#") == 4 and stem.split("#")[1] == "Synthetic"
    gt = cv2.imread(str(idx["DIS-VD"].samples[0].gt), cv2.IMREAD_UNCHANGED)
    assert gt.shape == (64, 64) and set(np.unique(gt)) <= {0, 255} and gt.any()
    ds = DISDataset(out, "DIS-TR", size=32, train=True, input_depths=("small", "base", "large"),
                    target_depth="large_1024")
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["depth_target"].shape == (1, 32, 32)


def test_deterministic_bytes_independent_of_workers(tmp_path):
    counts = {"DIS-TR": 10, "DIS-VD": 8}
    generate_dataset(tmp_path / "a", counts, size=48, seed=5, workers=1, progress=False)
    generate_dataset(tmp_path / "b", counts, size=48, seed=5, workers=2, progress=False)
    generate_dataset(tmp_path / "c", counts, size=48, seed=6, workers=1, progress=False)
    a, b, c = (digest(tmp_path / k) for k in "abc")
    assert len(a) == 18 * 6 + 1 and a == b
    assert sum(a[k] != c.get(k) for k in a) > 100


@pytest.mark.parametrize("near_floor", [0.0, 1.0])
def test_depth_follows_the_integrity_prior(near_floor):
    floors = 0
    for i, kind in enumerate(OBJECT_KINDS):
        s = render_scene(np.random.default_rng(i), 96, 128, kind, near_floor=near_floor)
        gt, depth = s["gt"] > 127, s["depth"]
        assert s["image"].shape == (96, 128, 3) and s["image"].dtype == np.uint8
        assert gt.mean() > 0.003, kind
        core, bg = s["alpha"] == 1, s["alpha"] == 0
        assert core.sum() > 10 and gt[core].all() and not gt[bg].any(), kind
        obj_d = depth[core]
        assert obj_d.min() >= 0.6 and obj_d.min() > np.median(depth[bg]), kind  # object in front
        near = (depth[bg] >= obj_d.min()).mean()
        assert near < 0.3, kind  # only a near floor may reach the object's depth
        floors += depth[bg].max() >= 0.6  # the near floor reaches object depths
        assert obj_d.std() < 0.08 and depth[bg].std() > obj_d.std(), kind  # smooth object, chaotic bg
        corr = [np.corrcoef(s["depths"][m].ravel().astype(np.float64), depth.ravel())[0, 1]
                for m in ("large_1024", "large", "base", "small")]
        assert corr == sorted(corr, reverse=True) and corr[0] > 0.99, (kind, corr)  # smaller → worse
    assert floors == (len(OBJECT_KINDS) if near_floor else 0)


def test_colours_do_not_identify_the_object():
    # Object and background colours come from one distribution: across scenes, the mean object colour
    # is not separable from the mean background colour by a fixed colour rule.
    obj, bg = [], []
    for i in range(24):
        s = render_scene(np.random.default_rng(100 + i), 64, 64)
        m = s["gt"] > 127
        obj.append(s["image"][m].mean(0))
        bg.append(s["image"][~m].mean(0))
    obj, bg = np.array(obj), np.array(bg)
    assert np.abs(obj.mean(0) - bg.mean(0)).max() < 60
    assert obj.std(0).min() > 25  # object colours vary widely


def test_aspect_jitter_and_argument_errors(tmp_path):
    generate_dataset(tmp_path / "j", {"DIS-VD": 6}, size=64, seed=0, aspect_jitter=0.5, workers=1,
                     progress=False)
    widths = {cv2.imread(str(p)).shape[1] for p in (tmp_path / "j" / "DIS-VD" / "im").iterdir()}
    assert len(widths) > 1 and all(w % 2 == 0 for w in widths)
    from pdfnet.errors import UserError

    with pytest.raises(UserError, match="--size"):
        generate_dataset(tmp_path / "e", {"DIS-VD": 1}, size=8)
    with pytest.raises(UserError, match="--near-floor"):
        generate_dataset(tmp_path / "e", {"DIS-VD": 1}, near_floor=-0.1)
    with pytest.raises(UserError, match="--aspect-jitter"):
        generate_dataset(tmp_path / "e", {"DIS-VD": 1}, aspect_jitter=2.0)


def test_cli_refuses_non_empty_dir_with_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc = main(["synth", "--out", str(out), "--train", "1", "--val", "1", "--test", "0", "--size", "32"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "not empty" in err and err.startswith("pdfnet synth: error:")
    rc = main(["synth", "--out", str(out), "--train", "-1"])
    assert rc == 2 and "--train must be >= 0" in capsys.readouterr().err
    # --overwrite never deletes a folder synth did not write
    rc = main(["synth", "--out", str(out), "--train", "1", "--val", "1", "--test", "0", "--size", "32",
               "--overwrite"])
    assert rc == 2 and "not written by pdfnet synth" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_overwrite_replaces_only_what_synth_wrote(tmp_path, capsys):
    out = tmp_path / "o"
    generate_dataset(out, {"DIS-TR": 3, "DIS-TE1": 2}, size=32, workers=1, progress=False)
    (out / "notes.txt").write_text("mine")
    rc = main(["synth", "--out", str(out), "--train", "2", "--val", "1", "--test", "0", "--size", "32",
               "--overwrite", "--no-progress", "--workers", "1", "--near-floor", "0"])
    assert rc == 0 and "wrote 3 images" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "mine" and len(list((out / "DIS-TR" / "im").iterdir())) == 2
    assert not (out / "DIS-TE1").exists()
    meta = json.loads((out / "synth.json").read_text())
    assert meta["near_floor"] == 0.0 and meta["complete"] is True
    # a file of the user's inside a split folder: refused, nothing deleted
    (out / "DIS-TR" / "im" / "real.jpg").write_bytes(b"x")
    before = digest(out)
    rc = main(["synth", "--out", str(out), "--train", "1", "--val", "0", "--test", "0", "--size", "32",
               "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "DIS-TR/im/real.jpg" in err and err.count("\n") == 1
    assert digest(out) == before
