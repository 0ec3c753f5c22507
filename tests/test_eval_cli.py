"""``pdfnet score`` (= ``eval --pred-dir/--gt-dir``): JSON, resizing, pairing errors; ``eval --ckpt``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pdfnet.cli.main import main
from pdfnet.engine import evaluate as engine_evaluate
from pdfnet.metrics import AGGREGATE_KEYS, DISMetrics, read_gray_u8
from pdfnet.utils.io import write_image


def _write_set(root, n=4, h=48, w=60, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        g = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 4)
        gt = np.where(g > np.quantile(g, 0.7), 255, 0).astype(np.uint8)
        pred = np.clip(cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 2) + rng.normal(0, 20, (h, w)), 0, 255)
        write_image(root / "gt" / f"img{i}.png", gt)
        write_image(root / "pred" / f"img{i}.png", pred.astype(np.uint8))
    return root / "pred", root / "gt"


def _direct(pred_dir, gt_dir):
    acc = DISMetrics()
    for p in sorted(gt_dir.iterdir()):
        pred = read_gray_u8(pred_dir / p.name)
        gt = read_gray_u8(p)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        acc.update(pred, gt, name=p.stem)
    return acc


def test_eval_writes_complete_json(tmp_path, capsys):
    pred_dir, gt_dir = _write_set(tmp_path)
    lastcol = np.zeros((48, 60), np.uint8)
    lastcol[:, -1] = 255  # S undefined (NaN) for this image -> null in JSON, skipped by the dataset S
    write_image(gt_dir / "zz_lastcol.png", lastcol)
    write_image(pred_dir / "zz_lastcol.png", np.full((48, 60), 30, np.uint8))
    out = tmp_path / "res.json"
    rc = main(["eval", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--json", str(out), "--quiet",
               "--workers", "1", "--split", "DIS-VD", "--no-tta-used", "--resolution", "1024"])
    assert rc == 0
    doc = json.loads(out.read_text())  # strict JSON (NaN would not load back as null)
    assert set(AGGREGATE_KEYS) <= set(doc["dataset"])
    assert doc["dataset"]["n_images"] == 5 and doc["dataset"]["S_undefined"] == 1
    assert set(doc["per_image"]) == {"img0", "img1", "img2", "img3", "zz_lastcol"}
    assert doc["per_image"]["zz_lastcol"]["S"] is None
    assert isinstance(doc["per_image"]["img0"]["HCE"], int)
    assert all(len(doc["curves"][k]) == 256 for k in ("fm", "precision", "recall", "em", "fm_meanPR"))
    meta = doc["meta"]
    assert meta["split"] == "DIS-VD" and meta["tta"] is False and meta["resolution"] == "1024"
    ref = _direct(pred_dir, gt_dir).compute()
    for k in AGGREGATE_KEYS:
        assert doc["dataset"][k] == pytest.approx(ref[k], abs=1e-15), k
    assert "maxF" in capsys.readouterr().out


def test_eval_resizes_other_sizes_and_says_so(tmp_path, capsys):
    pred_dir, gt_dir = _write_set(tmp_path, n=3)
    small = cv2.resize(read_gray_u8(pred_dir / "img1.png"), (30, 24), interpolation=cv2.INTER_AREA)
    write_image(pred_dir / "img1.png", small)
    out = tmp_path / "r.json"
    args = ["eval", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--json", str(out), "--quiet"]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["resized"] == ["img1"]
    assert "resized" in capsys.readouterr().err
    ref = _direct(pred_dir, gt_dir).compute()
    assert doc["dataset"]["maxF"] == pytest.approx(ref["maxF"], abs=1e-15)
    assert doc["dataset"]["HCE"] == pytest.approx(ref["HCE"], abs=0)


@pytest.mark.parametrize("case", ["missing", "extra", "nofolder", "badmetric", "modeonly"])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, case):
    pred_dir, gt_dir = _write_set(tmp_path, n=2)
    args = ["eval", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--quiet"]
    if case == "missing":
        (pred_dir / "img0.png").unlink()
    elif case == "extra":
        write_image(pred_dir / "other.png", np.zeros((4, 4), np.uint8))
    elif case == "nofolder":
        args[2] = str(tmp_path / "nope")
    elif case == "badmetric":
        args += ["--metrics", "maxF,Fbeta"]
    else:
        args += ["--save-preds", str(tmp_path / "p")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pdfnet eval: error:")
    word = {"missing": "without prediction", "extra": "without GT", "nofolder": "not found",
            "badmetric": "Fbeta", "modeonly": "evaluating a checkpoint"}[case]
    assert word in err[0]


def test_ckpt_runs_the_engine_evaluation(tmp_path, monkeypatch, capsys):


    seen = {}

    def fake(cfg, ckpt, **kw):
        seen.update(kw, ckpt=ckpt, cfg=cfg)
        return {s: {"maxF": 0.5, "HCE": 3.0} for s in kw["splits"]}

    monkeypatch.setattr(engine_evaluate, "evaluate_model", fake)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(b"")
    args = ["eval", "--config", str(cfg), "--ckpt", str(ckpt), "--splits", "DIS-VD,DIS-TE1", "--tta",
            "--out-dir", str(tmp_path / "o"), "--device", "cpu", "--batch-size", "3", "--num-workers", "0",
            "--precision", "bf16", "--fast"]
    assert main(args) == 0
    assert seen["ckpt"] == ckpt and seen["splits"] == ["DIS-VD", "DIS-TE1"] and seen["tta"] is True
    e = seen["cfg"].eval  # the flags are aliases of eval.* keys
    assert (e.batch_size, e.num_workers, e.precision, e.tta, e.fast) == (3, 0, "bf16", True, True)
    assert seen["out_dir"] == tmp_path / "o"
    assert "DIS-TE1" in capsys.readouterr().out


@pytest.mark.parametrize("extra, word", [
    ([], "--config"),  # a checkpoint needs its config
    (["--config", "c.yaml", "--json", "r.json"], "--json only apply to scoring"),
])
def test_ckpt_mode_user_errors(tmp_path, capsys, extra, word):
    assert main(["eval", "--ckpt", "x.pt", *extra]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1


def test_tta_means_one_thing(tmp_path, capsys):
    """``--tta`` runs TTA (checkpoint evaluation); recording it for saved predictions is ``--tta-used``."""
    pred_dir, gt_dir = _write_set(tmp_path, n=2)
    assert main(["eval", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--tta", "--quiet"]) == 2
    assert "--tta-used" in capsys.readouterr().err
    out = tmp_path / "r.json"
    assert main(["score", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--tta-used", "--quiet",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["meta"]["tta"] is True


def test_score_is_eval_with_folders(tmp_path):
    """``pdfnet score`` and the older ``pdfnet eval --pred-dir/--gt-dir`` give the same document."""
    pred_dir, gt_dir = _write_set(tmp_path, n=3)
    docs = []
    for cmd in ("score", "eval"):
        out = tmp_path / f"{cmd}.json"
        assert main([cmd, "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--quiet", "--workers", "1",
                     "--json", str(out)]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["dataset"] == docs[1]["dataset"] and docs[0]["per_image"] == docs[1]["per_image"]


@pytest.mark.slow
def test_workers_and_skeleton_cache_give_identical_results(tmp_path):
    pred_dir, gt_dir = _write_set(tmp_path, n=6)
    docs = []
    for extra in (["--workers", "1"], ["--workers", "2", "--ske-cache", str(tmp_path / "ske")],
                  ["--workers", "1", "--ske-cache", str(tmp_path / "ske")]):
        out = tmp_path / f"r{len(docs)}.json"
        assert main(["eval", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--json", str(out),
                     "--quiet", *extra]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["dataset"] == docs[1]["dataset"] == docs[2]["dataset"]
    assert docs[0]["per_image"] == docs[1]["per_image"]
    assert len(list((tmp_path / "ske").rglob("*.gtc"))) == 6
