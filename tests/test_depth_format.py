"""``pdfnet depth --format jpg``: the release's 8-bit JPEG depth files (quality 95) beside our PNG default."""

from __future__ import annotations

import cv2
import numpy as np
from helpers import read_unchanged, write_images

from pdfnet.cli.main import main
from pdfnet.depth.precompute import is_finished

SIZES = [(37, 53), (100, 61)]  # odd sizes


def test_jpg_is_the_png_map_encoded_at_quality_95(tiny_model_dir, tmp_path, capsys):
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES[:2])
    base = ["depth", "--images", str(imgs), "--model", str(tiny_model_dir), "--name", "tiny",
            "--input-size", "28", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "png")]) == 0
    assert main([*base, "--out", str(tmp_path / "jpg"), "--format", "jpg"]) == 0
    assert sorted(p.name for p in (tmp_path / "jpg").iterdir()) == ["img0.jpg", "img1.jpg"]
    for i, (h, w) in enumerate(SIZES[:2]):
        png = read_unchanged(tmp_path / "png" / f"img{i}.png")
        data = (tmp_path / "jpg" / f"img{i}.jpg").read_bytes()
        ok, ref = cv2.imencode(".jpg", png, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok and data == ref.tobytes()  # the same map, JPEG at quality 95 (cv2's default)
        ok, default = cv2.imencode(".jpg", png)
        assert data == default.tobytes()  # what the release's cv2.imwrite(".jpg") writes
        jpg = read_unchanged(tmp_path / "jpg" / f"img{i}.jpg")
        assert jpg.shape == (h, w) and jpg.dtype == np.uint8
        assert np.abs(jpg.astype(int) - png).mean() < 8  # lossy, close
        assert is_finished(tmp_path / "jpg" / f"img{i}.jpg", (h, w), 8)
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "jpg"), "--set", "depth.format=jpg"]) == 0
    assert "0 maps written, 2 already done" in capsys.readouterr().err
    # a truncated JPEG is not finished; 16-bit JPEG is a one-line user error
    p = tmp_path / "jpg" / "img0.jpg"
    p.write_bytes(p.read_bytes()[:-40])
    assert not is_finished(p, SIZES[0], 8)
    assert main([*base, "--out", str(tmp_path / "j16"), "--format", "jpg", "--bit-depth", "16"]) == 2
    err = capsys.readouterr().err
    assert "JPEG depth maps are 8-bit" in err and "Traceback" not in err
