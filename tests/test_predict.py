"""``Predictor`` and ``pdfnet predict`` on CPU with a tiny random PDFNet and a tiny random DAv2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_SIZE, sharpen, tiny_config, write_tiny_dav2, write_tiny_release

from pdfnet.cli.main import main
from pdfnet.errors import UserError
from pdfnet.inference import Predictor
from pdfnet.inference import hub as hub_mod
from pdfnet.inference.files import collect_inputs, parse_save
from pdfnet.inference.foreground import estimate_foreground
from pdfnet.inference.preprocess import depth_to_tensor, image_to_tensor, to_rgb_uint8
from pdfnet.models import build_model
from pdfnet.utils.io import read_gray, read_rgb, write_image
from pdfnet.utils.normalize import minmax_normalize

SIZE = TINY_SIZE


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny random PDFNet (sharpened) saved as our safetensors release."""
    return write_tiny_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def dav2(tmp_path_factory) -> Path:
    """A tiny random Depth Anything V2 (transformers layout) whose processor runs at 42 px."""
    return write_tiny_dav2(tmp_path_factory.mktemp("dav2"))


@pytest.fixture(scope="module")
def predictor(release, dav2) -> Predictor:
    return Predictor.from_pretrained(release, depth_model=str(dav2), device="cpu", batch_size=1)


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float32)
    img = base[..., None] * np.array([200, 60, 30]) + rng.integers(0, 50, (h, w, 3))
    return img.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- API


def test_api_any_size_and_input_kind(predictor, tmp_path):
    from PIL import Image

    rgb = _rgb(333, 517)
    masks = predictor([rgb, Image.fromarray(rgb[:40, :90])])
    assert isinstance(masks, list) and len(masks) == 2
    for m, shape in zip(masks, [(333, 517), (40, 90)]):
        assert m.shape == shape and m.dtype == np.float32
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
    assert masks[0].min() < 0.2 and masks[0].max() > 0.8
    write_image(tmp_path / "a.png", rgb)
    single = predictor(tmp_path / "a.png", as_uint8=True)  # a path, one image → one uint8 array
    assert isinstance(single, np.ndarray) and single.dtype == np.uint8 and single.shape == (333, 517)
    np.testing.assert_array_equal(single, np.floor(masks[0] * 255 + 0.5).astype(np.uint8))


def test_input_conversion():
    from PIL import Image

    rgb = _rgb(20, 30)
    gray = rgb[..., 0]
    gray3 = np.repeat(gray[..., None], 3, 2)
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 77, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(gray), gray3)
    np.testing.assert_array_equal(to_rgb_uint8(gray[..., None]), gray3)
    np.testing.assert_array_equal(to_rgb_uint8(rgba), rgb)  # alpha dropped
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(rgba)), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(gray)), gray3)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.float32) / 255.0), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.uint16) * 257), rgb)
    with pytest.raises(UserError, match="at least"):
        to_rgb_uint8(np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(UserError, match="shape"):
        to_rgb_uint8(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(UserError, match="expected a path"):
        to_rgb_uint8([1, 2, 3])


def test_batch_equals_single(release):
    """Depth maps with different ranges and images of different sizes: batch of 3 == 3 singles."""
    p1 = Predictor.from_pretrained(release, depth_model=None, device="cpu", batch_size=1)
    p3 = Predictor.from_pretrained(release, depth_model=None, device="cpu", batch_size=3)
    rgbs = [_rgb(61, 90, 1), _rgb(100, 40, 2), _rgb(64, 64, 3)]
    rng = np.random.default_rng(0)
    depths = [rng.random((61, 90)) * 0.2 + 0.7, rng.random((30, 20)) * 5.0, rng.random((64, 64))]
    depths = [d.astype(np.float32) for d in depths]
    one = p1(rgbs, depths)
    three = p3(rgbs, depths)
    for a, b in zip(one, three):
        np.testing.assert_allclose(a, b, atol=2e-5)
    # the coupling is real: without per-image normalisation the batch would differ from singles
    img = torch.cat([image_to_tensor(r, SIZE) for r in rgbs])
    raw = torch.cat([F.interpolate(torch.from_numpy(d)[None, None], size=(SIZE, SIZE)) for d in depths])
    with torch.no_grad():
        coupled = torch.sigmoid(p3.model(img, raw).logits[1])
        alone = torch.sigmoid(p3.model(img[1:2], raw[1:2]).logits[0])
    assert (coupled - alone).abs().max() > 1e-4


def test_constant_depth_means_no_depth(release):
    """A constant depth map carries no depth information: it predicts as an all-zero map (no NaN/error)."""
    p = Predictor.from_pretrained(release, depth_model=None, device="cpu")
    rgb = _rgb(32, 40)
    const = p(rgb, np.full((32, 40), 0.3, np.float32))
    assert np.isfinite(const).all()
    np.testing.assert_array_equal(const, p(rgb, np.zeros((32, 40), np.float32)))
    assert not np.array_equal(const, p(rgb, np.random.default_rng(0).random((32, 40), dtype=np.float32)))


def test_tta_predictor_is_mean_of_six_recorded_passes():
    """TTA through the real tiny model: P = σ(mean of the 6 de-augmented logits), recorded by a hook.

    S = 64 with size step 32 gives passes at 64 (0.75 → 48 rounds up to 64), 64 and 96 (1.25 → 80 → 96);
    the hand-computed reference of the exact release sizes lives in tests/test_tta.py.
    """
    torch.manual_seed(1)
    model = sharpen(build_model(tiny_config().model, with_depth_decoder=False)).eval()
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append((args[0], args[1], out.logits)))
    pred = Predictor(model, size=SIZE, device="cpu", tta=True)
    rgb = _rgb(50, 70, 5)
    depth = np.random.default_rng(5).random((50, 70)).astype(np.float32)
    got = pred([rgb], [depth])[0]
    assert [x.shape[-1] for x, _, _ in seen] == [64, 64, 96, 64, 64, 96]
    img, dep = image_to_tensor(rgb, SIZE), depth_to_tensor(depth, SIZE)
    torch.testing.assert_close(seen[1][0], img)
    torch.testing.assert_close(seen[4][0], img.flip(-1))
    torch.testing.assert_close(seen[4][1], dep.flip(-1))
    up = F.interpolate(dep.flip(-1), size=(96, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(seen[5][1], minmax_normalize(up, "per_sample"))
    acc = []
    for k, (x, _, y) in enumerate(seen):
        if x.shape[-1] != SIZE:
            y = F.interpolate(y, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        acc.append(y.flip(-1) if k >= 3 else y)
    prob = torch.sigmoid(torch.stack(acc).mean(0))
    ref = F.interpolate(prob, size=(50, 70), mode="bilinear", align_corners=False, antialias=True)[0, 0]
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)
    plain = torch.sigmoid(seen[1][2])
    assert (plain - prob).abs().max() > 1e-3  # TTA changes the result, so the check above is not vacuous


# ---------------------------------------------------------------------------------------------- checkpoints


def _same_weights(a: Predictor, b: Predictor) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_from_pretrained_train_state_and_hub(release, tmp_path, monkeypatch):
    from pdfnet.engine.checkpoint import save_train_state
    from pdfnet.inference.checkpoint import load_model_for_inference

    model, cfg = load_model_for_inference(release)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    save_train_state(tmp_path / "last.pt", model=model, optimizer=opt, schedule=None, scaler=None, cfg=cfg,
                     step=1, epoch=0, batch_in_epoch=0)
    ref = Predictor.from_pretrained(release, depth_model=None, device="cpu")
    assert ref.size == SIZE and ref.size_step == 32
    assert _same_weights(ref, Predictor.from_pretrained(tmp_path / "last.pt", depth_model=None, device="cpu"))

    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        return str(release / filename)

    monkeypatch.setattr(hub_mod, "hf_hub_download", fake_download)
    hub = Predictor.from_pretrained("someone/pdfnet-tiny", depth_model=None, device="cpu")
    assert _same_weights(ref, hub)
    assert calls == [("someone/pdfnet-tiny", "config.yaml"), ("someone/pdfnet-tiny", "model.safetensors")]
    calls.clear()
    assert hub_mod.resolve_checkpoint("Tennineee/PDFNet") == release / "PDFNet_Best.pth"
    assert calls == [("Tennineee/PDFNet", "PDFNet_Best.pth")]
    calls.clear()
    hub_mod.resolve_checkpoint("Tennineee/PDFNet-General")
    assert calls == [("Tennineee/PDFNet-General", "PDF-Generally.pth")]
    calls.clear()
    hub_mod.resolve_checkpoint("owner/repo/sub/w.safetensors")
    assert calls == [("owner/repo", "sub/w.safetensors")]

    def offline(repo_id, filename, **kw):
        raise OSError("offline mode is enabled")

    monkeypatch.setattr(hub_mod, "hf_hub_download", offline)
    with pytest.raises(UserError, match="no such local path.*offline"):
        hub_mod.resolve_checkpoint("nobody/nothing")
    with pytest.raises(UserError, match="not found"):
        hub_mod.resolve_checkpoint(str(tmp_path / "missing.pth"))


# ---------------------------------------------------------------------------------------------- files


def test_collect_inputs_and_save_parsing(tmp_path):
    (tmp_path / "d").mkdir()
    for n in ("b.png", "a.jpg", "notes.txt", ".hidden.png"):
        (tmp_path / "d" / n).write_bytes(b"x")
    (tmp_path / "c.webp").write_bytes(b"x")
    got = collect_inputs([tmp_path / "d", str(tmp_path / "*.webp"), tmp_path / "d" / "a.jpg"])
    assert [p.name for p in got] == ["a.jpg", "b.png", "c.webp"]
    with pytest.raises(UserError, match="no such file"):
        collect_inputs([tmp_path / "nope.png"])
    with pytest.raises(UserError, match="matches no image"):
        collect_inputs([str(tmp_path / "*.tif")])
    assert parse_save("mask, cutout,mask") == ("mask", "cutout")
    with pytest.raises(UserError, match="unknown output"):
        parse_save("mask,matte")


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_folder_with_bad_files(release, dav2, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rgb = _rgb(333, 517)
    write_image(src / "odd.png", rgb)
    write_image(src / "gray.png", rgb[..., 1])
    write_image(src / "rgba.png", np.concatenate([rgb[:60, :80], np.full((60, 80, 1), 9, np.uint8)], 2))
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    write_image(src / "dot.png", np.zeros((1, 1, 3), np.uint8))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "out"
    rc = main(["predict", "--ckpt", str(release), "--input", str(src), "--output", str(out),
               "--depth-model", str(dav2), "--save", "mask,alpha,cutout,depth", "--device", "cpu",
               "--batch-size", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search(r"corrupt\.jpg.*(decode|corrupt)", err) and re.search(r"dot\.png.*at least", err)
    assert "wrote outputs for 3 of 5 input(s)" in err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched
    for stem, hw in (("odd", (333, 517)), ("gray", (333, 517)), ("rgba", (60, 80))):
        alpha = read_gray(out / f"{stem}_alpha.png")
        mask = read_gray(out / f"{stem}_mask.png")
        depth = read_gray(out / f"{stem}_depth.png")
        assert alpha.shape == mask.shape == depth.shape == hw
        np.testing.assert_array_equal(mask, np.where(alpha >= 128, 255, 0))
        import cv2

        cut = cv2.imread(str(out / f"{stem}_cutout.png"), cv2.IMREAD_UNCHANGED)
        assert cut.shape == (*hw, 4)
        np.testing.assert_array_equal(cut[..., 3], alpha)
        # refined foreground colours (the default): the estimate for this alpha (up to its 8-bit rounding)
        ref = estimate_foreground(read_rgb(src / f"{stem}.png"), alpha / 255.0).astype(int)
        assert np.abs(cut[..., 2::-1].astype(int) - ref).max() <= 2
        assert depth.min() == 0 and depth.max() == 255
    assert not list(out.glob("corrupt*")) and not list(out.glob("dot*"))

    # the README figure script runs on this output folder: 3 rows of input | depth | mask | cutout
    import importlib.util

    script = Path(__file__).parents[1] / "scripts" / "make_readme_figure.py"
    spec = importlib.util.spec_from_file_location("make_readme_figure", script)
    fig_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fig_mod)
    assert fig_mod.main(["--pred-dir", str(out), "--out", str(tmp_path / "fig.png"), "--height", "64"]) == 0
    fig = read_rgb(tmp_path / "fig.png")
    assert fig.shape[0] == 6 + 24 + 6 + 3 * 64 + 2 * 6 + 6 and fig.shape[1] > 4 * 64


def test_cli_depth_dir_glob_and_output_into_input_folder(release, tmp_path, capsys):
    src = tmp_path / "imgs"
    ddir = tmp_path / "depth"
    src.mkdir()
    ddir.mkdir()
    for i in range(3):
        write_image(src / f"im{i}.jpg", _rgb(45 + i, 70, i))
    rng = np.random.default_rng(0)
    for i in range(2):  # im2 has no depth map; the maps have the images' aspect at another resolution
        write_image(ddir / f"im{i}.png", (rng.random(((45 + i) * 2, 140)) * 255).astype(np.uint8))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    rc = main(["predict", "--ckpt", str(release), "--input", str(src / "im*.jpg"), "--output", str(src),
               "--depth-dir", str(ddir), "--device", "cpu", "--no-progress", "--save", "alpha"])
    err = capsys.readouterr().err
    assert rc == 1 and "im2.jpg" in err and "no depth map" in err
    assert sorted(p.name for p in src.iterdir()) == ["im0.jpg", "im0_alpha.png", "im1.jpg", "im1_alpha.png",
                                                    "im2.jpg"]
    assert all((src / n).read_bytes() == b for n, b in before.items())
    assert read_gray(src / "im1_alpha.png").shape == (46, 70)
    # the depth file is used: same result as the API with that map
    p = Predictor.from_pretrained(release, depth_model=None, device="cpu")
    ref = p(src / "im0.jpg", ddir / "im0.png", as_uint8=True)
    np.testing.assert_array_equal(read_gray(src / "im0_alpha.png"), ref)


def test_cli_user_errors_exit_2(release, tmp_path, capsys):
    rc = main(["predict", "--ckpt", str(release), "--input", str(tmp_path / "missing.png"), "--output",
               str(tmp_path / "o"), "--depth-dir", str(tmp_path)])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_image(tmp_path / "a" / "x.png", _rgb(16, 16))
    write_image(tmp_path / "b" / "x.jpg", _rgb(16, 16))
    rc = main(["predict", "--ckpt", str(release), "--input", str(tmp_path / "a"), str(tmp_path / "b"),
               "--output", str(tmp_path / "o"), "--depth-dir", str(tmp_path), "--no-progress"])
    assert rc == 2 and "share the stem" in capsys.readouterr().err
    rc = main(["predict", "--ckpt", str(release), "--input", str(tmp_path / "a"), "--output",
               str(tmp_path / "o"), "--depth-dir", str(tmp_path), "--size", "100"])
    assert rc == 2 and "multiple of 32" in capsys.readouterr().err
