"""DIS5K discovery on tiny fake trees: both layouts, pairing, depth folders and clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pdfnet.data.dis5k import available_depths, depth_command_hint, discover, discover_split
from pdfnet.errors import UserError


def _img(path: Path, h: int = 12, w: int = 16, value: int = 128, dtype=np.uint8, channels: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (h, w, channels) if channels > 1 else (h, w)
    assert cv2.imwrite(str(path), np.full(shape, value, dtype))


def make_tree(root: Path, split: str = "DIS-TR", stems=("a", "b", "c"), layout: str = "official",
              depths=("small", "base", "large"), depth_ext: str = ".png") -> Path:
    im, gt = ("im", "gt") if layout == "official" else ("images", "masks")
    d = root / split
    for s in stems:
        _img(d / im / f"{s}.jpg")
        _img(d / gt / f"{s}.png", value=255, channels=1)
        for n in depths:
            _img(d / f"depth_{n}" / f"{s}{depth_ext}", channels=1)
    return d


@pytest.mark.parametrize("layout", ["official", "renamed"])
def test_discovers_both_layouts(tmp_path, layout):
    make_tree(tmp_path, layout=layout)
    idx = discover_split(tmp_path, "DIS-TR", ["large", "small"])
    assert idx.layout == layout
    assert [s.stem for s in idx.samples] == ["a", "b", "c"]
    assert idx.depth_names == ("large", "small")
    s = idx.samples[1]
    assert s.image.name == "b.jpg" and s.gt.name == "b.png"
    assert s.depths["large"] == tmp_path / "DIS-TR" / "depth_large" / "b.png"
    assert available_depths(tmp_path / "DIS-TR") == ("base", "large", "small")


def test_root_holding_dis5k_folder_and_several_splits(tmp_path):
    for split in ("DIS-TR", "DIS-VD"):
        make_tree(tmp_path / "DIS5K", split, depths=())
    out = discover(tmp_path, ["DIS-TR", "DIS-VD"])
    assert list(out) == ["DIS-TR", "DIS-VD"] and all(len(v) == 3 for v in out.values())


def test_images_without_gt_error_lists_first_files_and_count(tmp_path):
    d = make_tree(tmp_path, stems=[f"s{i}" for i in range(8)], depths=())
    for i in range(7):
        (d / "gt" / f"s{i}.png").unlink()
    with pytest.raises(UserError) as e:
        discover_split(tmp_path, "DIS-TR")
    msg = str(e.value)
    assert msg.startswith("DIS-TR: 7 images have no GT mask") and "s0.jpg, s1.jpg" in msg and "..." in msg
    assert "\n" not in msg


def test_gt_without_image_and_missing_gt_folder(tmp_path):
    d = make_tree(tmp_path, depths=())
    _img(d / "gt" / "orphan.png", channels=1)
    with pytest.raises(UserError, match=r"1 GT mask have no image in im/ \(first: orphan.png\)"):
        discover_split(tmp_path, "DIS-TR")
    d2 = make_tree(tmp_path, "DIS-VD", depths=())
    for p in (d2 / "gt").iterdir():
        p.unlink()
    (d2 / "gt").rmdir()
    with pytest.raises(UserError, match="GT folder .* not found"):
        discover_split(tmp_path, "DIS-VD")
    assert len(discover_split(tmp_path, "DIS-VD", require_gt=False)) == 3


def test_missing_split_and_root(tmp_path):
    make_tree(tmp_path, depths=())
    with pytest.raises(UserError, match=r"split 'DIS-TE1' not found .*splits found: DIS-TR"):
        discover_split(tmp_path, "DIS-TE1")
    with pytest.raises(UserError, match="data root not found"):
        discover_split(tmp_path / "nope", "DIS-TR")
    (tmp_path / "DIS-VD" / "other").mkdir(parents=True)
    with pytest.raises(UserError, match="no image folder"):
        discover_split(tmp_path, "DIS-VD")


def test_missing_depth_folder_names_the_command(tmp_path):
    make_tree(tmp_path, depths=("small",))
    with pytest.raises(UserError) as e:
        discover_split(tmp_path, "DIS-TR", ["large_1024"])
    msg = str(e.value)
    assert "depth_large_1024/ not found" in msg and "present: small" in msg
    assert f"`pdfnet depth --data-root {tmp_path} --splits DIS-TR --model large_1024`" in msg
    assert "--name mine" in depth_command_hint(tmp_path, "DIS-TR", "mine")


def test_missing_depth_files_and_optional_depths(tmp_path):
    d = make_tree(tmp_path, depths=("large", "base"))
    (d / "depth_large" / "b.png").unlink()
    with pytest.raises(UserError, match=r"1 image have no depth map in depth_large/ \(first: b.jpg\)"):
        discover_split(tmp_path, "DIS-TR", ["large"])
    idx = discover_split(tmp_path, "DIS-TR", ["base"], optional_depths=["large", "small"])
    assert idx.depth_names == ("base",)  # incomplete / absent optional folders are skipped


def test_depth_png_preferred_over_jpg_and_custom_names(tmp_path):
    d = make_tree(tmp_path, depths=("large",), depth_ext=".jpg")
    _img(d / "depth_large" / "a.png", channels=1)
    _img(d / "depth_my-model.v2" / "a.png", channels=1)
    for s in ("b", "c"):
        _img(d / "depth_my-model.v2" / f"{s}.png", value=4000, dtype=np.uint16, channels=1)
    idx = discover_split(tmp_path, "DIS-TR", ["large", "my-model.v2"])
    assert idx.samples[0].depths["large"].suffix == ".png"
    assert idx.samples[1].depths["large"].suffix == ".jpg"
    assert idx.samples[2].depths["my-model.v2"].name == "c.png"


def test_duplicate_stems_and_mixed_layouts_are_errors(tmp_path):
    d = make_tree(tmp_path, depths=())
    _img(d / "im" / "a.png")
    with pytest.raises(UserError, match="share a stem"):
        discover_split(tmp_path, "DIS-TR")
    (d / "im" / "a.png").unlink()
    (d / "images").mkdir()
    with pytest.raises(UserError, match="both im/ and images/"):
        discover_split(tmp_path, "DIS-TR")
