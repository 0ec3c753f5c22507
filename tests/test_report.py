"""``pdfnet report``: tables (md/csv/tex), plots, exact DIS-TE(all) pooling, published rows."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from pdfnet.cli.main import main
from pdfnet.metrics import DISMetrics, load_docs, pool, write_report, write_split_json
from pdfnet.metrics.published import PUBLISHED
from pdfnet.metrics.report import te_all_mean


def _pairs(rng, n, h=36, w=44):
    for _ in range(n):
        g = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3)
        gt = np.where(g > np.quantile(g, rng.uniform(0.5, 0.9)), 255, 0).astype(np.uint8)
        pred = np.clip(cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 2) + rng.normal(0, 25, (h, w)), 0, 255)
        yield pred.astype(np.uint8), gt


@pytest.fixture()
def split_dir(tmp_path):
    rng = np.random.default_rng(0)
    everything = DISMetrics()
    sizes = {"DIS-VD": 3, "DIS-TE1": 2, "DIS-TE2": 4, "DIS-TE3": 3, "DIS-TE4": 2}
    for split, n in sizes.items():
        acc = DISMetrics()
        for i, (p, g) in enumerate(_pairs(rng, n)):
            acc.update(p, g, name=f"{split}_{i}")
            if split != "DIS-VD":
                everything.update(p, g, name=f"{split}_{i}")
        write_split_json(acc, split, tmp_path / "json", meta={"tta": True, "resolution": 1024})
    return tmp_path / "json", everything


def test_te_all_is_pooled_exactly(split_dir):
    json_dir, everything = split_dir
    docs = load_docs(json_dir)
    pooled = pool([docs[s] for s in ("DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")])
    ref = everything.compute()
    assert pooled["dataset"]["n_images"] == 11
    for k, v in ref.items():
        assert pooled["dataset"][k] == pytest.approx(v, abs=1e-14), k
    # the pooled maxF is not the mean of the split values (that is what the v1 paper's TE(ALL) column is)
    assert te_all_mean(docs, "maxF") != pytest.approx(pooled["dataset"]["maxF"], abs=1e-12)


def test_report_cli_writes_tables_and_plots(split_dir, tmp_path, capsys):
    json_dir, everything = split_dir
    out = tmp_path / "rep"
    args = ["report", "--json-dir", str(json_dir), "--out", str(out), "--compare", "--method", "mine",
            "--protocol", "dis"]
    assert main(args) == 0
    md = (out / "table.md").read_text()
    assert "protocol: DIS" in md and "max of the dataset-mean F curve" in md
    assert "TTA: on" in md and "resolution: 1024" in md
    assert "DIS-TE(all)" in md and "mine" in md and "BiRefNet'24" in md
    lines = (out / "table.csv").read_text().splitlines()
    rows = [r for r in csv.reader(lines) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    assert header == ["method", "params", "split", "Fmax", "Fw", "Em", "S", "MAE", "HCE"]
    mine = {r[2]: r for r in body if r[0] == "mine"}
    assert set(mine) == {"DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4", "DIS-TE(all)"}
    assert float(mine["DIS-TE(all)"][3]) == pytest.approx(everything.compute()["maxF"], abs=1e-12)
    assert len(body) == 6 * (1 + len(PUBLISHED))
    tex = (out / "table.tex").read_text()
    assert tex.count(r"\\") >= 2 + len(PUBLISHED) and r"\begin{tabular}" in tex
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "pr_all.png" in pngs and "fthr_DIS-TEall.png" in pngs and len(pngs) == 2 * 7
    assert (out / "pr_DIS-VD.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _f_of_mean_pr(doc: dict) -> float:
    """The official PDFNet evaluator's Fmax, recomputed from a split JSON's mean P/R curves."""
    p = np.asarray(doc["curves"]["precision"], dtype=np.float64)
    r = np.asarray(doc["curves"]["recall"], dtype=np.float64)
    return float(np.max(1.3 * p * r / (0.3 * p + r + 1e-16)))


def test_compare_defaults_to_the_paper_protocol(split_dir, tmp_path, capsys):
    json_dir, _ = split_dir
    docs = load_docs(json_dir)
    out = tmp_path / "rep"
    assert main(["report", "--json-dir", str(json_dir), "--out", str(out), "--compare", "--method", "mine",
                 "--no-plots"]) == 0
    assert "table protocol: paper" in capsys.readouterr().out
    md = (out / "table.md").read_text()
    assert md.splitlines()[0].startswith("_protocol: paper") and "mean of TE1-4 in every column" in md
    rows = [r for r in csv.reader((out / "table.csv").read_text().splitlines()) if r and r[0] == "mine"]
    mine = {r[2]: [float(v) for v in r[3:]] for r in rows}
    te = ("DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
    for split in ("DIS-VD", *te):  # our Fmax is F(mean P, mean R) of the split's own curves
        assert mine[split][0] == pytest.approx(_f_of_mean_pr(docs[split]), abs=1e-12), split
    for col in range(6):  # DIS-TE(all) is the mean of TE1-4 in every column, HCE included
        assert mine["DIS-TE(all)"][col] == pytest.approx(sum(mine[s][col] for s in te) / 4, abs=1e-12), col
    assert mine["DIS-TE(all)"][0] == pytest.approx(te_all_mean(docs, "maxF_meanPR"), abs=1e-12)
    # the DIS protocol, asked for, pools instead
    assert main(["report", "--json-dir", str(json_dir), "--out", str(out), "--compare", "--protocol", "dis",
                 "--method", "mine", "--no-plots"]) == 0
    rows = [r for r in csv.reader((out / "table.csv").read_text().splitlines()) if r and r[0] == "mine"]
    pooled = pool([docs[s] for s in te])["dataset"]
    assert float({r[2]: r for r in rows}["DIS-TE(all)"][3]) == pytest.approx(pooled["maxF"], abs=1e-12)


def test_paper_protocol_and_engine_style_call(split_dir, tmp_path):
    json_dir, _ = split_dir
    docs = load_docs(json_dir)
    res = write_report({k: v["dataset"] for k, v in docs.items()}, json_dir, protocol="paper", plots=False)
    md = (json_dir / "table.md").read_text()
    assert "F(mean precision, mean recall)" in md
    vd = docs["DIS-VD"]["dataset"]
    assert f"{vd['maxF_meanPR']:.3f}".lstrip("0") in md
    assert "DIS-TE(all)" in res["docs"]  # the engine passes compute() dicts; the JSONs beside are used


def test_report_errors(tmp_path, capsys):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "other.json").write_text(json.dumps({"x": 1}))
    assert main(["report", "--json-dir", str(tmp_path / "j"), "--out", str(tmp_path / "o")]) == 2
    assert "no eval JSONs" in capsys.readouterr().err
