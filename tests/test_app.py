"""``pdfnet app``: the missing-extra message, the model side on its own, and the page in a real browser.

The browser test (marker ``browser``) starts ``pdfnet app`` on 127.0.0.1 with a tiny random checkpoint,
drives Debian's headless Chromium through Selenium and its ``chromedriver`` (no browser download), uploads
images, waits for the outputs and checks their size (the browser side lives in ``scripts/app_screenshot.py``).
``.ci/run`` installs Chromium, chromedriver and the ``[app]`` extra; where they are missing the test is
skipped with the reason. Set ``PDFNET_APP_SCREENSHOT`` to a path to keep the page's screenshot
(``docs/app_screenshot.png`` was made so).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, write_tiny_dav2, write_tiny_release

from pdfnet.cli.main import main
from pdfnet.inference import Predictor
from pdfnet.utils.io import read_gray, write_image


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("app_models")
    (root / "rel").mkdir()
    (root / "dav2").mkdir()
    return write_tiny_release(root / "rel"), write_tiny_dav2(root / "dav2")


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float32)
    return (disc[..., None] * np.array([200, 60, 30]) + rng.integers(0, 50, (h, w, 3))).astype(np.uint8)


def test_missing_gradio_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    assert main(["app", "--ckpt", "no-such-checkpoint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[app]" in err[0] and "Gradio" in err[0]


def test_backend_outputs_messages_zip_and_rethreshold(models, tmp_path):
    from pdfnet.cli.app_ui import DemoBackend

    rel, dav2 = models
    pred = Predictor.from_pretrained(rel, depth_model=str(dav2), device="cpu")
    backend = DemoBackend(pred, tmp_path)
    assert len(backend.add_examples(2, size=(48, 64))) == 2
    good = write_image(tmp_path / "in" / "photo one.png", _rgb(50, 70))
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not an image")
    res = backend.run([str(good), str(bad), *backend.examples])
    assert res.names == ["photo one.png", *[Path(p).name for p in backend.examples]]
    assert len(res.messages) == 1 and res.messages[0].startswith("broken.png: ")
    assert str(tmp_path) not in res.messages[0]  # the page names the file, not the server's path
    for kind in ("mask", "alpha", "cutout", "depth"):
        assert len(res.files[kind]) == 3
    alpha = read_gray(res.files["alpha"][0])
    assert alpha.shape == (50, 70)
    np.testing.assert_array_equal(alpha, pred(good, as_uint8=True))
    with zipfile.ZipFile(res.zip_path) as zf:
        assert len(zf.namelist()) == 12 and "photo one_cutout.png" in zf.namelist()
    masks = backend.rethreshold(res.probs, res.names, 0.9)
    np.testing.assert_array_equal(read_gray(masks[0]), np.where(res.probs[0] >= 0.9, 255, 0))
    assert backend.run([]).names == []


def test_backend_reads_depth_dir(models, tmp_path):
    from pdfnet.cli.app_ui import DemoBackend

    rel, _ = models
    pred = Predictor.from_pretrained(rel, depth_model=None, device="cpu")
    ddir = tmp_path / "depth"
    depth = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    write_image(ddir / "has.png", (depth * 255).astype(np.uint8))
    backend = DemoBackend(pred, tmp_path, depth_dir=ddir)
    has = write_image(tmp_path / "in" / "has.jpg", _rgb(30, 40))
    lacks = write_image(tmp_path / "in" / "lacks.jpg", _rgb(30, 40))
    res = backend.run([str(has), str(lacks)])
    assert res.names == ["has.jpg"] and len(res.messages) == 1
    assert "lacks.jpg: no depth map" in res.messages[0]
    ref = pred(has, ddir / "has.png", as_uint8=True)
    np.testing.assert_array_equal(read_gray(res.files["alpha"][0]), ref)


# ---------------------------------------------------------------------------------------------- browser


def _browser_tools():
    """``scripts/app_screenshot.py`` as a module: starting the app and driving Chromium live there."""
    spec = importlib.util.spec_from_file_location("app_screenshot", REPO / "scripts" / "app_screenshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.browser
def test_app_in_headless_chromium(models, tmp_path):
    tools = _browser_tools()
    if missing := tools.missing_tools():
        pytest.skip(f"browser test needs {', '.join(missing)} (.ci/run installs them)")
    rel, dav2 = models
    imgs = [write_image(tmp_path / "up" / "bird.png", _rgb(60, 90, 1)),
            write_image(tmp_path / "up" / "tall.jpg", _rgb(80, 48, 2))]
    bad = tmp_path / "up" / "corrupt.png"
    bad.write_bytes(b"\x89PNG not really")
    port = tools.free_port()
    app_args = ["--ckpt", str(rel), "--depth-model", str(dav2), "--device", "cpu", "--examples", "1"]
    proc = tools.start_app(app_args, port, tmp_path / "app.log", tmp_path)
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        tools.wait_http(url, proc, tmp_path / "app.log", timeout=180)
        driver = tools.chrome(tmp_path / "chrome-profile")
        res = tools.upload_and_run(driver, url, [*imgs, bad], n_ok=2)
        assert "corrupt.png" in res["status"] and "cannot decode" in res["status"]  # a message, no crash
        for kind, got in res["sizes"].items():  # every output at its input's size
            assert sorted(got)[:2] == sorted([(90, 60), (48, 80)]), (kind, got)
        # nothing was fetched from anywhere but this server
        assert res["resources"] and all(u.startswith((url, "data:", "blob:")) for u in res["resources"])
        shot = tmp_path / "app.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("PDFNET_APP_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["PDFNET_APP_SCREENSHOT"])
    finally:
        if driver is not None:
            driver.quit()
        tools.stop(proc)
