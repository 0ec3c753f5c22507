"""Cut-outs: foreground colour estimation, backgrounds and composites, ``Predictor.cutout``, video predict."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import write_tiny_dav2, write_tiny_release

from pdfnet.bench.foreground import edge_errors, synthetic_composite
from pdfnet.cli.main import main
from pdfnet.errors import UserError
from pdfnet.inference import Predictor
from pdfnet.inference.foreground import (
    Background,
    blurred_background,
    composite,
    cover_resize,
    estimate_foreground,
    parse_background,
)
from pdfnet.utils.io import read_rgb, write_image


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def dav2(tmp_path_factory) -> Path:
    return write_tiny_dav2(tmp_path_factory.mktemp("dav2"))


@pytest.fixture(scope="module")
def comp():
    return synthetic_composite(256, seed=3)


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float32)
    return (base[..., None] * np.array([200, 60, 30]) + rng.integers(0, 50, (h, w, 3))).astype(np.uint8)


# ------------------------------------------------------------------------------ foreground estimation


def test_blur_fusion_removes_most_background_bleed(comp):
    naive = edge_errors(comp.image, comp)
    est = estimate_foreground(comp.image, comp.alpha)
    assert est.dtype == np.float32 and est.shape == comp.image.shape
    fused = edge_errors(est, comp)
    assert naive["soft_pixels"] > 2000
    assert fused["f_err"] < naive["f_err"] / 3 and fused["comp_err"] < naive["comp_err"] / 3
    # uint8 in → uint8 out, the same estimate up to the input's quantisation
    est8 = estimate_foreground((comp.image * 255 + 0.5).astype(np.uint8), comp.alpha)
    assert est8.dtype == np.uint8
    assert np.abs(est8.astype(np.float32) / 255 - est).mean() < 2 / 255


@pytest.mark.slow  # PyMatting compiles its numba kernels on first use: minutes in a fresh environment
def test_ml_reference_is_better_still(comp):
    naive = edge_errors(comp.image, comp)
    ml = edge_errors(estimate_foreground(comp.image, comp.alpha, method="ml"), comp)
    fused = edge_errors(estimate_foreground(comp.image, comp.alpha), comp)
    assert ml["f_err"] < naive["f_err"] / 8 and ml["f_err"] < fused["f_err"]


def test_estimate_keeps_opaque_pixels_and_rejects_bad_input():
    rgb = _rgb(40, 50)
    alpha = np.zeros((40, 50), np.float32)
    alpha[10:30, 10:40] = 1.0
    alpha[10:30, 40:45] = 0.5
    fg = estimate_foreground(rgb, alpha)
    np.testing.assert_array_equal(fg[alpha == 1], rgb[alpha == 1])
    # alpha given as uint8 (/255) means the same thing, up to its quantisation
    from_u8 = estimate_foreground(rgb, (alpha * 255 + 0.5).astype(np.uint8)).astype(int)
    assert np.abs(from_u8 - fg).max() <= 1
    with pytest.raises(UserError, match="shape"):
        estimate_foreground(rgb, alpha[:-1])
    with pytest.raises(UserError, match="RGB"):
        estimate_foreground(rgb[..., 0], alpha)
    with pytest.raises(UserError, match="unknown foreground method"):
        estimate_foreground(rgb, alpha, method="magic")


# ------------------------------------------------------------------------------ backgrounds


@pytest.mark.parametrize("spec,color", [("white", (255, 255, 255)), ("#00ff80", (0, 255, 128)),
                                        ("#f00", (255, 0, 0)), ("10, 20,30", (10, 20, 30)),
                                        ("Black", (0, 0, 0))])
def test_parse_background_colours(spec, color):
    bg = parse_background(spec)
    assert bg.kind == "color" and bg.color == color


def test_parse_background_blur_image_and_errors(tmp_path):
    assert parse_background("blur").kind == "blur"
    write_image(tmp_path / "beach.jpg", _rgb(30, 60))
    bg = parse_background(str(tmp_path / "beach.jpg"))
    assert bg.kind == "image" and bg.image.shape == (30, 60, 3)
    for bad in ("no-such-thing.png", "300,0,0", "#12345"):
        with pytest.raises(UserError, match="--background"):
            parse_background(bad)


def test_composite_and_renders():
    rgb = _rgb(40, 60).astype(np.float32) / 255
    alpha = np.linspace(0, 1, 60, dtype=np.float32)[None].repeat(40, 0)
    red = Background("color", color=(255, 0, 0)).render(rgb, alpha)
    out = composite(rgb, alpha, red)
    ref = alpha[..., None] * rgb + (1 - alpha[..., None]) * np.array([1.0, 0, 0])
    assert out.dtype == np.uint8 and np.abs(out / 255 - ref).max() <= 0.5 / 255 + 1e-6
    img_bg = Background("image", image=_rgb(100, 100, 1)).render(rgb, alpha)
    assert img_bg.shape == (40, 60, 3)
    assert cover_resize(np.zeros((100, 50, 3), np.uint8), (30, 60)).shape == (30, 60, 3)


def test_blur_background_leaves_the_subject_out():
    rgb = np.zeros((80, 80, 3), np.float32)
    rgb[...] = (0, 0, 1)  # blue background
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 20:60] = 1
    rgb[alpha == 1] = (1, 0, 0)  # red subject
    bg = blurred_background(rgb, alpha, sigma=6)
    plain = cv2.GaussianBlur(rgb, (0, 0), 6)
    ring = np.zeros((80, 80), bool)
    ring[14:66, 14:66] = True
    ring[20:60, 20:60] = False
    assert bg[ring][:, 0].max() < 0.02 < plain[ring][:, 0].mean()  # no red smeared around the subject


# ------------------------------------------------------------------------------ Predictor / CLI


def test_predictor_cutout_and_composite(release, dav2):
    pred = Predictor.from_pretrained(release, depth_model=str(dav2), device="cpu")
    rgb = _rgb(70, 90)
    prob = pred(rgb)
    rgba = pred.cutout(rgb)
    assert rgba.shape == (70, 90, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., 3], pred(rgb, as_uint8=True))
    np.testing.assert_array_equal(rgba[..., :3], estimate_foreground(rgb, prob))
    raw = pred.cutout([rgb], foreground=None)[0]
    np.testing.assert_array_equal(raw[..., :3], rgb)
    white = pred.cutout(rgb, background="white")
    ref = prob[..., None] * rgba[..., :3] / 255 + (1 - prob[..., None])
    assert white.shape == (70, 90, 3) and np.abs(white / 255 - ref).max() <= 0.5 / 255 + 1e-6


def test_cli_background_and_refine_flags(release, dav2, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _rgb(48, 64))
    base = ["predict", "--ckpt", str(release), "--input", str(src), "--depth-model", str(dav2), "--device",
            "cpu", "--no-progress"]
    assert main([*base, "--output", str(tmp_path / "o1"), "--save", "cutout", "--background", "0,0,255"]) == 0
    comp = read_rgb(tmp_path / "o1" / "a_composite.png")
    cut = cv2.imread(str(tmp_path / "o1" / "a_cutout.png"), cv2.IMREAD_UNCHANGED)
    a = cut[..., 3:].astype(np.float32) / 255
    ref = a * cut[..., 2::-1] + (1 - a) * np.array([0, 0, 255])
    assert comp.shape == (48, 64, 3) and np.abs(comp - ref).max() <= 1.5
    assert main([*base, "--output", str(tmp_path / "o2"), "--save", "cutout", "--no-refine-foreground"]) == 0
    raw = cv2.imread(str(tmp_path / "o2" / "a_cutout.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(raw[..., 2::-1], read_rgb(src / "a.png"))
    capsys.readouterr()
    for extra, msg in ((["--save", "composite"], "needs --background"),
                       (["--background", "nope"], "--background 'nope'")):
        assert main([*base, "--output", str(tmp_path / "o3"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]
    assert not (tmp_path / "o3").exists()  # refused before any work


# ------------------------------------------------------------------------------ video


def _write_clip(path: Path, n: int, size: tuple[int, int], fps: float) -> None:
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    for i in range(n):
        frame = np.roll(_rgb(h, w, i), 3 * i, axis=1)
        vw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    vw.release()


def _probe(path: Path) -> tuple[int, int, float, int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    w, h, fps = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), \
        cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return w, h, fps, n


def test_cli_video_keeps_frames_size_fps(release, dav2, tmp_path, capsys):
    clip = tmp_path / "my clip.mp4"
    _write_clip(clip, n=7, size=(72, 40), fps=12.0)
    (tmp_path / "broken.avi").write_bytes(b"RIFF\x00\x00 not really a video")
    out = tmp_path / "out"
    rc = main(["predict", "--ckpt", str(release), "--input", str(clip), str(tmp_path / "broken.avi"),
               "--output", str(out), "--depth-model", str(dav2), "--device", "cpu", "--batch-size", "3",
               "--save", "mask,cutout"])
    err = capsys.readouterr().err
    assert rc == 1
    bad = [ln for ln in err.splitlines() if "broken.avi" in ln and "skipped" in ln]
    assert len(bad) == 1 and "cannot read video" in bad[0]
    assert "frame/s" in err  # progress reports frames per second
    assert _probe(out / "my clip_mask.mp4") == (72, 40, 12.0, 7)
    frames = sorted((out / "my clip_cutout").iterdir())
    assert [f.name for f in frames] == [f"{i:06d}.png" for i in range(7)]
    first = cv2.imread(str(frames[0]), cv2.IMREAD_UNCHANGED)
    assert first.shape == (40, 72, 4)
    # the mask video is the thresholded alpha of the same frames (up to mp4 compression)
    mask = cv2.VideoCapture(str(out / "my clip_mask.mp4")).read()[1][..., 0]
    agree = (mask >= 128) == (first[..., 3] >= 128)
    assert agree.mean() > 0.95
    assert sorted(p.name for p in out.iterdir()) == ["my clip_cutout", "my clip_mask.mp4"]  # no temp files
    # precomputed depth folders are for images: a video given with --depth-dir is one line, nothing written
    (tmp_path / "depth").mkdir()
    rc = main(["predict", "--ckpt", str(release), "--input", str(clip), "--output", str(tmp_path / "o2"),
               "--depth-dir", str(tmp_path / "depth"), "--device", "cpu", "--no-progress"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert rc == 1 and len(lines) == 1 and "my clip.mp4" in lines[0] and "--depth-dir" in lines[0]
    assert list((tmp_path / "o2").iterdir()) == []


def test_video_api_matches_image_predictions(release, dav2, tmp_path):
    from pdfnet.inference.video import predict_video

    clip = tmp_path / "c.avi"
    cv2_w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (48, 32))
    frames = [_rgb(32, 48, i) for i in range(3)]
    for f in frames:
        cv2_w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    cv2_w.release()
    pred = Predictor.from_pretrained(release, depth_model=str(dav2), device="cpu", batch_size=2)
    written = predict_video(pred, clip, tmp_path, save=["alpha", "cutout"], progress=False)
    assert [p.name for p in written] == ["c_alpha.mp4", "c_cutout"]
    cap = cv2.VideoCapture(str(clip))
    decoded = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(3)]
    for i, rgb in enumerate(decoded):  # each frame's cut-out alpha is the image prediction of that frame
        cut = cv2.imread(str(tmp_path / "c_cutout" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(cut[..., 3], pred(rgb, as_uint8=True))
    with pytest.raises(UserError, match=re.escape("file not found")):
        predict_video(pred, tmp_path / "missing.mp4", tmp_path, save=["mask"], progress=False)


def test_bench_foreground_cli(tmp_path, capsys):
    import json

    rc = main(["bench", "foreground", "--size", "128", "--images", "1", "--repeat", "1",
               "--methods", "naive,blur-fusion", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert set(res["methods"]) == {"naive", "blur-fusion"} and res["factors"]["blur-fusion"]["f_err"] > 3
    assert "blur-fusion" in capsys.readouterr().out
    assert main(["bench", "foreground", "--methods", "naive,magic"]) == 2


@pytest.mark.parametrize("ext,codec", [("mov", "mp4v"), ("webm", "VP80"), ("mkv", "XVID"), ("avi", "MJPG")])
def test_video_containers_open(tmp_path, ext, codec):
    from pdfnet.inference.video import is_video, open_video, read_frames

    path = tmp_path / f"clip.{ext.upper()}"  # extensions are case-insensitive
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 8.0, (40, 32))
    assert vw.isOpened()
    for i in range(4):
        vw.write(np.full((32, 40, 3), 40 * i, np.uint8))
    vw.release()
    assert is_video(path)
    cap, info = open_video(path)
    frames = list(read_frames(cap, path))
    cap.release()
    assert (info.width, info.height, info.fps) == (40, 32, 8.0)
    assert len(frames) == 4 and frames[0].shape == (32, 40, 3) and frames[0].dtype == np.uint8
