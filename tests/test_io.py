"""Image I/O: channel handling, 16-bit maps, clear errors, atomic writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pdfnet.errors import UserError
from pdfnet.utils import io


def test_rgb_from_rgba_gray_and_16bit(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    io.write_image(tmp_path / "a.png", rgba)
    assert np.array_equal(io.read_rgb(tmp_path / "a.png"), rgba[..., :3])
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    io.write_image(tmp_path / "g.png", gray)
    assert np.array_equal(io.read_rgb(tmp_path / "g.png"), np.repeat(gray[..., None], 3, axis=2))
    rgb = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    io.write_image(tmp_path / "c.png", rgb)
    assert np.array_equal(io.read_rgb(tmp_path / "c.png"), rgb)  # RGB order survives the BGR codec


def test_gray_16bit_float(tmp_path):
    m = np.array([[0, 65535], [32768, 1]], np.uint16)
    io.write_image(tmp_path / "d.png", m)
    assert io.read_gray(tmp_path / "d.png", keep_16bit=True).dtype == np.uint16
    f = io.read_gray_float(tmp_path / "d.png")
    assert f.dtype == np.float32 and f[0, 1] == 1.0 and f[0, 0] == 0.0
    assert io.read_gray(tmp_path / "d.png").dtype == np.uint8


def test_errors_name_the_file(tmp_path):
    with pytest.raises(io.ImageReadError, match="not found"):
        io.read_rgb(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UserError, match="bad.jpg"):
        io.read_rgb(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(io.ImageReadError, match="empty.png"):
        io.read_gray(empty)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out" / "x.png"
    io.write_image(target, np.zeros((2, 2), np.uint8))
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        io.write_image(target, np.full((2, 2), 255, np.uint8))
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]


def test_list_images_sorted_filtered(tmp_path):
    for name in ["b.JPG", "a.png", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in io.list_images(tmp_path)] == ["a.png", "b.JPG"]


def test_jpeg_roundtrip_close(tmp_path):
    img = np.full((8, 8, 3), (200, 30, 90), np.uint8)
    io.write_image(tmp_path / "j.jpg", img)
    back = io.read_rgb(tmp_path / "j.jpg")
    assert np.abs(back.astype(int) - img).max() < 8
    assert cv2.imread(str(tmp_path / "j.jpg")) is not None
