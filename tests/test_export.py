"""``pdfnet export``: the tiny PDFNet to ONNX, run with onnxruntime, compared with PyTorch (CPU, fp32).

Tolerance: max |onnxruntime − PyTorch| ≤ 1e-4 on the logits (measured ≈ 4e-6 with |logits| ≲ 1, fp32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import sharpen, tiny_config

from pdfnet.cli.main import main
from pdfnet.inference.checkpoint import export_release
from pdfnet.inference.export import SegmentationNetwork, example_inputs
from pdfnet.models import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SIZE = 64
TOL = 1e-4


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = tiny_config(SIZE)
    model = sharpen(build_model(cfg.model)).eval()  # logits that span a useful range and depend on depth
    out = tmp_path_factory.mktemp("release")
    export_release(model, cfg, out)
    return out, model


@pytest.mark.slow
def test_export_dynamic_batch_matches_pytorch(release, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    ckpt, model = release
    path = tmp_path / "sub" / "pdfnet.onnx"
    # --no-optimize halves the CPU time of this test (the optimised graph is what users get by default)
    rc = main(["export", "--ckpt", str(ckpt), "--onnx", str(path), "--dynamic-batch", "--no-optimize"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "B=1" in err and "B=3" in err  # the built-in onnxruntime check ran
    assert not [p for p in path.parent.iterdir() if p.name != "pdfnet.onnx"]  # no temp files left

    m = onnx.load(str(path))
    assert [i.name for i in m.graph.input] == ["image", "depth"]
    assert [o.name for o in m.graph.output] == ["logits"]
    assert {p.key for p in m.metadata_props} >= {"producer", "inputs", "output", "batch"}
    assert not any("depth_decoder" in init.name for init in m.graph.initializer)  # decoder excluded

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = SegmentationNetwork(model).eval()
    for b in (1, 2):
        image, depth = example_inputs(SIZE, b, seed=7)
        with torch.no_grad():
            ref = net(image, depth).numpy()
            full = model(image, depth).logits.numpy()
        got = sess.run(None, {"image": image.numpy(), "depth": depth.numpy()})[0]
        assert got.shape == (b, 1, SIZE, SIZE)
        np.testing.assert_array_equal(ref, full)
        assert np.abs(ref).max() > 0.5  # not a degenerate near-zero output
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_export_refuses_bad_size(release, tmp_path, capsys):
    ckpt, _ = release
    rc = main(["export", "--ckpt", str(ckpt), "--onnx", str(tmp_path / "x.onnx"), "--size", "80"])
    assert rc == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
