"""Pseudo-depth precompute (pdfnet.depth, ``pdfnet depth``): conventions, CLI, idempotence, safety.

All offline: a tiny random ``DepthAnythingForDepthEstimation`` is saved to a temp dir and used as
every alias through ``--model-path``. Input sizes are kept small (``--input-size 28``, ``large_1024``
patched to 56) so the whole file runs in seconds on CPU.
"""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import read_unchanged, write_images
from torch import nn

from pdfnet.cli.main import main
from pdfnet.depth import (
    DEPTH_MODELS,
    DepthEstimator,
    DepthJob,
    DepthModelSpec,
    DepthTarget,
    depth_folder_name,
    parse_model_paths,
    resolve_depth_dtype,
    resolve_source,
    run_depth,
    target_size,
    to_uint8,
    to_uint16,
    use_official_pos_interp,
)
from pdfnet.depth import precompute as pre
from pdfnet.depth.transforms import IMAGENET_MEAN, IMAGENET_STD, preprocess, quantize
from pdfnet.errors import UserError

SIZES = [(37, 53), (100, 61), (37, 53)]  # odd sizes; two share a network input size


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def small_1024(monkeypatch):
    """Shrink ``large_1024``'s input size for speed (the code path is identical)."""
    spec = DEPTH_MODELS["large_1024"]
    monkeypatch.setitem(DEPTH_MODELS, "large_1024", DepthModelSpec(spec.name, spec.hub_id, 56))


def _model_args(model_dir: Path) -> list[str]:
    out = []
    for alias in ("small", "base", "large"):
        out += ["--model-path", f"{alias}={model_dir}"]
    return out + ["--input-size", "28", "--workers", "2", "--no-progress"]


# ----------------------------------------------------------------------------- conventions
def _official_size(h: int, w: int, s: int, m: int = 14) -> tuple[int, int]:
    """DAv2 ``Resize(keep_aspect_ratio, ensure_multiple_of=m, resize_method='lower_bound')``, numpy style."""
    sh, sw = s / h, s / w
    if sw > sh:
        sh = sw
    else:
        sw = sh

    def c(x):
        y = int(np.round(x / m) * m)
        return int(np.ceil(x / m) * m) if y < s else y

    return c(sh * h), c(sw * w)


def test_target_size_official_rule():
    assert target_size(37, 53) == (518, 742)
    assert target_size(100, 61) == (854, 518)
    assert target_size(1000, 1000) == (518, 518)
    assert target_size(518, 525) == (518, 532)  # 525/14 = 37.5 → half to even → 38·14
    assert target_size(518, 539) == (518, 532)  # 38.5 → 38
    assert target_size(1024, 1024, 1024) == (1036, 1036)  # 1022 < 1024 → round up
    assert target_size(2000, 1500) == (686, 518)
    rng = np.random.default_rng(1)
    for h, w in rng.integers(20, 5000, (300, 2)):
        for s in (518, 1024):
            got = target_size(int(h), int(w), s)
            if max(h, w) / min(h, w) <= 7.9:  # the official rule, exactly
                assert got == _official_size(int(h), int(w), s)
            else:  # our bound: the long side is capped at 8·S
                assert max(got) == 8 * s // 14 * 14 and max(got) < max(_official_size(int(h), int(w), s))
            assert min(got) >= s and got[0] % 14 == 0 and got[1] % 14 == 0
    assert target_size(8, 2000) == (518, 4144)  # a thin strip; uncapped 518 x 129 500


@pytest.mark.parametrize("hw,size", [((37, 53), (518, 742)), ((90, 130), (56, 84))])
def test_preprocess_matches_official_cv2(hw, size):
    """Torch bicubic + ImageNet norm == the official cv2 INTER_CUBIC path (up- and down-scaling)."""
    img = np.random.default_rng(2).integers(0, 256, (*hw, 3), dtype=np.uint8)
    assert target_size(*hw, input_size=min(size)) == size
    ref = cv2.resize(img / 255.0, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    ref = ((ref - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).astype(np.float32)
    got = preprocess([torch.from_numpy(img)], size)
    assert got.shape == (1, 3, *size) and got.dtype == torch.float32
    np.testing.assert_allclose(got[0].numpy(), ref, atol=2e-4)


class _BrightnessStub(nn.Module):
    """Returns the mean brightness of the de-normalised input as "depth" and records its input."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, pixel_values):
        self.seen.append(pixel_values)
        m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        rgb = pixel_values * s + m
        return types.SimpleNamespace(predicted_depth=rgb.mean(1))


def test_polarity_rgb_order_and_sizes():
    """Near = bright stays bright, channels reach the model in RGB order, output is at input size."""
    img = np.zeros((37, 53, 3), np.uint8)
    img[:, :26, 0] = 250  # bright *red* left half
    img[:, 26:, 2] = 40  # dim blue right half
    stub = _BrightnessStub()
    est = DepthEstimator(stub, input_size=518)
    (d,) = est([img])
    (x,) = stub.seen
    assert tuple(x.shape) == (1, 3, 518, 742)
    rgb = x[0] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert rgb[0, :, :300].mean() > 0.9 and rgb[2, :, :300].abs().mean() < 0.02  # R really is channel 0
    assert d.shape == (37, 53) and d.dtype == np.float32
    assert d[:, :20].mean() > 2 * d[:, 33:].mean()
    u = to_uint8(d)
    assert u.dtype == np.uint8 and u.min() == 0 and u.max() == 255
    assert u[:, :20].mean() > 200 and u[:, 33:].mean() < 50


def test_quantize_rounding_and_degenerate():
    d = np.array([[0.0, 1.0, 2.0, 4.0]], np.float32)  # 63.75, 127.5 → 64, 128 (half to even)
    assert to_uint8(d).tolist() == [[0, 64, 128, 255]]
    assert to_uint16(d).tolist() == [[0, 16384, 32768, 65535]] and to_uint16(d).dtype == np.uint16
    assert to_uint8(np.full((3, 4), 7.0, np.float32)).max() == 0
    r = np.random.default_rng(3).random((40, 30)).astype(np.float32) * 5
    for bits, fn in ((8, to_uint8), (16, to_uint16)):
        assert np.array_equal(quantize(torch.from_numpy(r), bits).numpy(), fn(r).astype(np.int32))


def test_batching_does_not_change_results(tiny_model_dir):
    est = DepthEstimator.from_pretrained(str(tiny_model_dir), input_size=28, batch_size=8)
    rng = np.random.default_rng(4)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    together = est(imgs)
    alone = [est([im])[0] for im in imgs]
    for a, b, (h, w) in zip(together, alone, SIZES):
        assert a.shape == (h, w) and a.dtype == np.float32 and a.min() >= 0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(np.abs(b).max()))


def test_processor_agrees_on_downscaled_shape():
    """The transformers DAv2 processor and ours agree on the input size of a large image (for small
    images they differ: the processor does not enlarge to a 518 short side; see transforms.py)."""
    from transformers import DPTImageProcessor

    proc = DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14
    )
    img = np.zeros((1200, 900, 3), np.uint8)
    out = proc(images=img, return_tensors="pt")["pixel_values"]
    assert tuple(out.shape[-2:]) == target_size(1200, 900) == (686, 518)


def _official_infer_uint8(model: nn.Module, bgr: np.ndarray, input_size: int) -> np.ndarray:
    """The release's recipe with cv2/numpy: DAv2 ``infer_image`` on a cv2 BGR image, then the depth
    notebook's min–max ×255 written by cv2 (which rounds)."""
    h, w = bgr.shape[:2]
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    th, tw = _official_size(h, w, input_size)
    img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_CUBIC)
    img = ((img - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(img).astype(np.float32))[None]
    with torch.no_grad():
        d = torch.relu(model(pixel_values=x).predicted_depth)
        d = torch.nn.functional.interpolate(d[:, None], (h, w), mode="bilinear", align_corners=True)[0, 0]
    d = d.numpy()
    d = (d - d.min()) / (d.max() - d.min()) * 255.0
    ok, buf = cv2.imencode(".png", d)  # float → 8 bit the way cv2.imwrite does it
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def test_end_to_end_matches_official_recipe(tiny_model_dir, tmp_path):
    """``pdfnet depth`` output == the release's cv2/numpy recipe on the same weights (±1 level)."""
    from transformers import AutoModelForDepthEstimation

    srcs = write_images(tmp_path / "photos", SIZES[:2])
    out = tmp_path / "out"
    assert main(["depth", "--images", str(tmp_path / "photos"), "--out", str(out), "--model",
                 str(tiny_model_dir), "--name", "t", "--input-size", "42", "--no-progress"]) == 0
    model = AutoModelForDepthEstimation.from_pretrained(tiny_model_dir).eval()
    assert use_official_pos_interp(model)  # the release's DINOv2 (tested on its own below)
    for src in srcs:
        ref = _official_infer_uint8(model, cv2.imread(str(src)), 42)
        got = read_unchanged(out / f"{src.stem}.png")
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02


def test_official_position_embedding_resize(tiny_model_dir):
    """DINOv2 position grid resized like the official code: scale_factor (n + 0.1) / grid, not size."""
    from transformers import AutoModelForDepthEstimation

    model = AutoModelForDepthEstimation.from_pretrained(tiny_model_dir).eval()
    emb = model.backbone.embeddings
    with torch.no_grad():
        emb.position_embeddings.normal_()
    pos = emb.position_embeddings  # [1, 1 + 4·4, C]: a 56-px, patch-14 grid
    tokens = torch.zeros(1, 1 + 3 * 5, pos.shape[-1])
    hf = emb.interpolate_pos_encoding(tokens, 42, 70)
    assert use_official_pos_interp(model)
    got = emb.interpolate_pos_encoding(tokens, 42, 70)
    grid = pos[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(grid, scale_factor=(3.1 / 4, 5.1 / 4), mode="bicubic")
    ref = torch.cat([pos[:, :1], ref.permute(0, 2, 3, 1).reshape(1, 15, -1)], 1)
    torch.testing.assert_close(got, ref)
    assert not torch.allclose(got, hf, atol=1e-3)
    square = torch.zeros(1, 1 + 16, pos.shape[-1])
    assert emb.interpolate_pos_encoding(square, 56, 56) is pos  # no resize at the pretraining size
    x = torch.randn(1, 3, 42, 70)
    with torch.no_grad():
        a = model(pixel_values=x).predicted_depth
        use_official_pos_interp(model, enable=False)
        b = model(pixel_values=x).predicted_depth
    torch.testing.assert_close(emb.interpolate_pos_encoding(tokens, 42, 70), hf)
    assert not torch.allclose(a, b)


def test_strict_weights(tiny_model_dir, tmp_path):
    """A model folder whose weights miss a tensor is refused (no silently random depth)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from pdfnet.depth import load_depth_model

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    sd = load_file(bad / "model.safetensors")
    sd.pop(next(k for k in sd if k.startswith("head.conv3")))
    save_file(sd, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UserError, match="does not match"):
        load_depth_model(str(bad))
    with pytest.raises(UserError, match="cannot load depth model"):
        load_depth_model(str(tmp_path / "missing"))


@pytest.mark.gpu
def test_cuda_matches_cpu_and_fp16_runs(tiny_model_dir):
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    def run(**kw):
        return DepthEstimator.from_pretrained(str(tiny_model_dir), input_size=56, **kw)(imgs)

    cpu, gpu, half = run(), run(device="cuda", dtype="fp32"), run(device="cuda", dtype="fp16")
    for c, g, h in zip(cpu, gpu, half):
        assert np.abs(to_uint8(c).astype(int) - to_uint8(g).astype(int)).max() <= 1
        assert h.shape == c.shape and np.isfinite(h).all() and to_uint8(h).max() == 255


def test_dtype_fallback_and_registry(monkeypatch, tmp_path):
    with pytest.warns(UserWarning, match="fp16"):
        assert resolve_depth_dtype("fp16", torch.device("cpu")) == torch.float32
    assert resolve_depth_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_depth_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert DEPTH_MODELS["small"].hub_id == "depth-anything/Depth-Anything-V2-Small-hf"
    assert DEPTH_MODELS["large_1024"].input_size == 1024
    assert depth_folder_name("large_1024") == "depth_large_1024"
    with pytest.raises(UserError):
        depth_folder_name("../x")
    paths = parse_model_paths([f"large={tmp_path}"])
    assert paths["large_1024"] == str(tmp_path)
    assert resolve_source("large_1024", paths) == str(tmp_path)
    with pytest.raises(UserError):
        parse_model_paths(["huge=/x"])
    (tmp_path / "Depth-Anything-V2-Small-hf").mkdir()
    monkeypatch.setenv("PDFNET_DEPTH_MODELS_DIR", str(tmp_path))
    assert resolve_source("small") == str(tmp_path / "Depth-Anything-V2-Small-hf")
    assert resolve_source("base") == "depth-anything/Depth-Anything-V2-Base-hf"
    assert resolve_source("some/other-model") == "some/other-model"


# ----------------------------------------------------------------------------- CLI / pipeline
def test_cli_dataset_all_then_rerun_skips(tiny_model_dir, tmp_path, small_1024, capsys):
    root = tmp_path / "DIS5K"
    write_images(root / "DIS-TR" / "im", SIZES)  # official DIS5K folder name
    write_images(root / "DIS-VD" / "images", SIZES[:2], ext=".png")  # release folder name
    (root / "DIS-VD" / "masks").mkdir()
    assert main(["depth", "--data-root", str(root), "--model", "all", *_model_args(tiny_model_dir)]) == 0
    assert "18 maps written, 0 already done" in capsys.readouterr().err  # 3×4 + 2×3
    expected = {
        "DIS-TR": ["depth_small", "depth_base", "depth_large", "depth_large_1024"],
        "DIS-VD": ["depth_small", "depth_base", "depth_large"],
    }
    for split, folders in expected.items():
        have = sorted(p.name for p in (root / split).iterdir() if p.name.startswith("depth_"))
        assert have == sorted(folders)
        n = 3 if split == "DIS-TR" else 2
        for f in folders:
            files = sorted((root / split / f).iterdir())
            assert [p.name for p in files] == [f"img{i}.png" for i in range(n)]
            for p, (h, w) in zip(files, SIZES):
                a = read_unchanged(p)
                assert a.shape == (h, w) and a.dtype == np.uint8 and a.min() == 0 and a.max() == 255
    # the 518-class models differ from each other only through weights; here they share weights, so equal
    a = read_unchanged(root / "DIS-TR" / "depth_small" / "img1.png")
    assert np.array_equal(a, read_unchanged(root / "DIS-TR" / "depth_large" / "img1.png"))
    assert not np.array_equal(a, read_unchanged(root / "DIS-TR" / "depth_large_1024" / "img1.png"))

    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.png") if "depth_" in p.parent.name}
    assert main(["depth", "--data-root", str(root), "--model", "all", *_model_args(tiny_model_dir)]) == 0
    err = capsys.readouterr().err
    assert "0 maps written, 18 already done" in err
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}


def test_cli_folder_16bit_and_bit_depth_change(tiny_model_dir, tmp_path):
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES[:2])
    out = tmp_path / "out"
    base = ["depth", "--images", str(imgs), "--out", str(out), "--model", str(tiny_model_dir),
            "--name", "tiny", "--input-size", "28", "--no-progress"]
    assert main([*base, "--set", "depth.bit_depth=16"]) == 0  # config route (--bit-depth 16 alike)
    for i, (h, w) in enumerate(SIZES[:2]):
        a = read_unchanged(out / f"img{i}.png")
        assert a.shape == (h, w) and a.dtype == np.uint16 and a.min() == 0 and a.max() == 65535
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
    assert main(base) == 0  # 8-bit requested now: the 16-bit files do not count as finished
    assert read_unchanged(out / "img0.png").dtype == np.uint8


def test_interrupted_run_leaves_no_partial_file_and_resumes(tiny_model_dir, tmp_path, monkeypatch):
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES)
    out = tmp_path / "out"
    args = ["depth", "--images", str(imgs), "--out", str(out), "--model", "small",
            "--model-path", f"small={tiny_model_dir}", "--input-size", "28", "--workers", "1",
            "--no-progress"]
    real = pre.write_image
    calls = []

    def crashing(path, img, rgb=True):
        calls.append(path)
        if len(calls) >= 2:  # the process "dies" after the first file
            raise RuntimeError("simulated crash")
        return real(path, img, rgb=rgb)

    monkeypatch.setattr(pre, "write_image", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args)
    left = sorted(out.iterdir())
    assert len(left) == 1 and left[0].suffix == ".png"  # one finished file, no temp or partial file
    read_unchanged(left[0])

    # a crash inside the atomic write itself (after the temp file is written) leaves nothing either
    import pdfnet.utils.io as io_mod

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pre, "write_image", real)
    monkeypatch.setattr(io_mod.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io_mod.write_image(out / "x.png", np.zeros((4, 4), np.uint8))
    monkeypatch.undo()
    assert sorted(out.iterdir()) == left

    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    # a truncated output is redone; finished ones are left alone
    victim = out / "img1.png"
    victim.write_bytes(victim.read_bytes()[:40])
    keep = (out / "img0.png").stat().st_mtime_ns
    assert main(args) == 0
    assert read_unchanged(victim).shape == SIZES[1]
    assert (out / "img0.png").stat().st_mtime_ns == keep


def test_corrupt_input_reported_and_nonzero_exit(tiny_model_dir, tmp_path, capsys):
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES[:2])
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    rc = main(["depth", "--images", str(imgs), "--out", str(out), "--model", "small",
               "--model-path", f"small={tiny_model_dir}", "--input-size", "28", "--no-progress"])
    assert rc == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--model", "{m}", "--name", "a/b"], "invalid depth name"),
        (["--model", "small", "--name", "x"], "only for a custom model"),
        (["--model", "small,base"], "one model"),
        (["--model", "small", "--model-path", "small=/nonexistent/dir"], "not a directory"),
    ],
)
def test_cli_user_errors_exit_2(tiny_model_dir, tmp_path, capsys, extra, match):
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES[:1])
    extra = [e.replace("{m}", str(tiny_model_dir)) for e in extra]
    rc = main(["depth", "--images", str(imgs), "--out", str(tmp_path / "o"), *extra, "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_folder_form_takes_a_custom_model_without_name(tiny_model_dir, tmp_path, capsys):
    """``--images DIR --out DIR`` writes into ``--out``: no ``--name`` needed for a model directory; the
    dataset form writes ``depth_<name>`` and asks for it; ``--threads`` and its older name ``--workers``."""
    imgs = tmp_path / "photos"
    write_images(imgs, SIZES[:1])
    for flag in ("--threads", "--workers"):
        out = tmp_path / f"out{flag}"
        assert main(["depth", "--images", str(imgs), "--out", str(out), "--model", str(tiny_model_dir),
                     "--input-size", "28", flag, "1", "--no-progress"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["img0.png"]
    root = tmp_path / "DIS5K"
    write_images(root / "DIS-TR" / "im", SIZES[:1])
    capsys.readouterr()
    assert main(["depth", "--data-root", str(root), "--model", str(tiny_model_dir), "--no-progress"]) == 2
    assert "--name is required" in capsys.readouterr().err


def test_cli_dataset_errors(tmp_path, capsys):
    root = tmp_path / "DIS5K"
    write_images(root / "DIS-TR" / "im", SIZES[:1])
    assert main(["depth", "--data-root", str(root), "--splits", "DIS-TE9", "--model", "small"]) == 2
    assert "DIS-TE9" in capsys.readouterr().err
    assert main(["depth", "--images", str(root / "DIS-TR" / "im"), "--out", str(root / "DIS-TR" / "im"),
                 "--model", "small"]) == 2
    assert "different folder" in capsys.readouterr().err


def test_shards_are_disjoint_and_complete(tiny_model_dir, tmp_path):
    imgs = tmp_path / "photos"
    srcs = write_images(imgs, SIZES + [(30, 30), (40, 29)])
    jobs = [DepthJob(s, {"t": tmp_path / "o" / f"{s.stem}.png"}) for s in srcs]
    parts = [pre.shard(jobs, r, 2) for r in range(2)]
    names = [{j.src.name for j in p} for p in parts]
    assert not names[0] & names[1] and names[0] | names[1] == {s.name for s in srcs}
    est = DepthEstimator.from_pretrained(str(tiny_model_dir), input_size=28)
    target = DepthTarget("t", lambda: est, 28)
    written = [run_depth(jobs, [target], rank=r, world_size=2, progress=False, workers=1).written
               for r in range(2)]
    assert written == [3, 2]
    assert len(list((tmp_path / "o").iterdir())) == 5


def test_time_depth_reports_throughput(tiny_model_dir, tmp_path):
    srcs = write_images(tmp_path / "p", SIZES)
    est = DepthEstimator.from_pretrained(str(tiny_model_dir), input_size=28)
    stats = pre.time_depth(srcs, est, batch_size=2, workers=1)
    assert stats.images == 3 and stats.written == 3 and stats.images_per_s > 0
    assert 0 < stats.model_seconds <= stats.seconds
    assert not list(tmp_path.glob("**/*.png"))


def test_plan_dataset_layouts(tmp_path):
    outer = tmp_path / "data"
    root = outer / "DIS5K"  # the archive unzips as <outer>/DIS5K/<split>
    write_images(root / "DIS-TR" / "im", SIZES[:1])
    write_images(root / "DIS-TE1" / "images", SIZES[:2])
    jobs = pre.plan_dataset(outer, ["small", "large_1024"], target_splits=["DIS-TR"])
    got = sorted((j.src.parent.parent.name, sorted(j.outputs)) for j in jobs)
    assert got == [("DIS-TE1", ["small"]), ("DIS-TE1", ["small"]), ("DIS-TR", ["large_1024", "small"])]
    tr = next(j for j in jobs if j.src.parent.name == "im")
    assert tr.outputs["large_1024"] == root / "DIS-TR" / "depth_large_1024" / "img0.png"
    assert pre.is_target_split("DIS-TR") and pre.is_target_split("HRSOD_TR")
    assert not pre.is_target_split("DIS-TE1") and not pre.is_target_split("METR")
    (root / "DIS-TR" / "images").mkdir()
    with pytest.raises(UserError, match="both im/ and images/"):
        pre.plan_dataset(root, ["small"], splits=["DIS-TR"])


def test_benchmark_model_reports(tiny_model_dir):
    from pdfnet.bench.depth import benchmark_model

    est = DepthEstimator.from_pretrained(str(tiny_model_dir), input_size=28)
    t = benchmark_model(est, batch_size=2, image_hw=(30, 45), warmup=1, iters=2)
    assert t.input_hw == (28, 42) and t.batch_size == 2
    assert t.ms_per_batch > 0 and t.images_per_s == pytest.approx(2000.0 / t.ms_per_batch)
    assert t.peak_mem_mib is None


@pytest.mark.slow
def test_real_dav2_small_matches_official_recipe(tmp_path):
    """With real DAv2-S weights available locally ($PDFNET_DEPTH_MODELS_DIR/Depth-Anything-V2-Small-hf),
    ``pdfnet depth`` equals the release's cv2/numpy recipe (skipped otherwise)."""
    import os

    base = os.environ.get("PDFNET_DEPTH_MODELS_DIR")
    path = Path(base) / "Depth-Anything-V2-Small-hf" if base else None
    if path is None or not path.is_dir():
        pytest.skip("real DAv2-S weights not available (set PDFNET_DEPTH_MODELS_DIR)")
    from transformers import AutoModelForDepthEstimation

    rng = np.random.default_rng(6)
    bgr = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    src = tmp_path / "photos" / "a.png"
    src.parent.mkdir()
    cv2.imwrite(str(src), bgr)
    out = tmp_path / "out"
    assert main(["depth", "--images", str(src.parent), "--out", str(out), "--model", "small",
                 "--model-path", f"small={path}", "--no-progress"]) == 0
    ref_model = AutoModelForDepthEstimation.from_pretrained(path).eval()
    use_official_pos_interp(ref_model)
    ref = _official_infer_uint8(ref_model, bgr, 518)
    diff = np.abs(read_unchanged(out / "a.png").astype(int) - ref.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.05
