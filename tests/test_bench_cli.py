"""`pdfnet bench model/train/depth/predict`: argument checks (user errors exit 2, no traceback).

The full runs (every workload, baseline + candidate, JSON) are exercised by the CPU dry run of
scripts/gpu_check.sh in tests/test_gpu_check.py.
"""

from __future__ import annotations

import pytest

from pdfnet.cli.main import main

TINY = ["--backbone", "swin_tiny_test", "--size", "64", "--set", "model.emb=16", "--device", "cpu"]


@pytest.mark.parametrize("argv,msg", [
    (["model", *TINY, "--cudagraphs"], "--cudagraphs needs a CUDA device"),
    (["model", *TINY, "--dtype", "fp16"], "fp16 needs CUDA"),
    (["model", *TINY, "--baseline", "fp16"], "fp16 needs CUDA"),
    (["model", *TINY, "--iters", "0"], "--iters must be >= 1"),
    (["model", *TINY, "--batch-size", "0"], "--batch-size must be >= 1"),
    (["model", *TINY, "--warmup", "-1"], "--warmup must be >= 0"),
    (["train", *TINY, "--dtype", "fp16"], "fp16 training needs CUDA"),
    (["depth", "--device", "cpu", "--dtype", "fp16"], "fp16 needs CUDA"),
    (["predict", *TINY, "--depth-dtype", "fp16"], "fp16 needs CUDA"),
    (["model", "--backbone", "swin_tiny_test", "--size", "100", "--device", "cpu"], "100"),
])
def test_user_errors_exit_2(capsys, argv, msg):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_speed_benches_are_registered(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    for name in ("metrics", "model", "train", "depth", "predict"):
        assert name in out
