"""DIS metrics vs the golden fixtures (tests/fixtures/dis_metrics, pysod_examples): exact parity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import fixture_path

from pdfnet.metrics import DISMetrics, evaluate_pair, hce_parts, read_gray_u8
from pdfnet.metrics.core import normalisation_luts

TOL = 1e-9
CURVES = {"fm": "fm_curve", "precision": "precision_curve", "recall": "recall_curve", "em": "em_curve"}
SCALARS = {"adpF": "adp_fm", "adpE": "adp_em", "MAE": "mae", "S": "sm", "wF": "wfm",
           "maxF": "max_fm", "meanF": "mean_fm", "maxE": "max_em", "meanE": "mean_em"}


@pytest.fixture(scope="module")
def reference():
    root = fixture_path("dis_metrics")
    ref = json.loads((root / "reference.json").read_text())
    cases = {}
    for c in ref["cases"]:
        pred = read_gray_u8(root / "cases" / "pred" / f"{c['name']}.png")
        gt = read_gray_u8(root / "cases" / "gt" / f"{c['name']}.png")
        cases[c["name"]] = (pred, gt, c)
    return ref, cases


@pytest.fixture(scope="module")
def records(reference):
    _, cases = reference
    return {name: evaluate_pair(pred, gt) for name, (pred, gt, _) in cases.items()}


def _val(v):
    return float("nan") if v is None else v


def test_every_case_matches_reference(reference, records):
    _, cases = reference
    assert len(cases) == 25
    for name, (_, _, case) in cases.items():
        rec, m = records[name], case["metrics"]
        for mine, theirs in CURVES.items():
            np.testing.assert_allclose(rec[mine], m[theirs], rtol=0, atol=TOL, err_msg=f"{name} {mine}")
        for mine, theirs in SCALARS.items():
            ref_v = _val(m[theirs])
            if math.isnan(ref_v):
                assert math.isnan(rec[mine]), f"{name} {mine}: expected NaN, got {rec[mine]}"
            else:
                assert abs(rec[mine] - ref_v) <= TOL, f"{name} {mine}: {rec[mine]} vs {ref_v}"
        parts = m["hce_parts"]
        got = (rec["HCE_fp_points"], rec["HCE_fp_indep"], rec["HCE_fn_points"], rec["HCE_fn_indep"])
        assert got == (parts["fp_points"], parts["fp_indep"], parts["fn_points"], parts["fn_indep"]), name
        assert rec["HCE"] == m["hce"], name


def test_nan_cases_are_exactly_the_documented_ones(reference, records):
    _, cases = reference
    nan_names = {n for n, r in records.items() if math.isnan(r["S"])}
    assert nan_names == {n for n, (_, _, c) in cases.items() if c["nan_fields"]}
    assert nan_names == {"gtlastcol_64x80", "gtlastrow_90x70"}


def test_aggregates_match_reference(reference, records):
    ref, _ = reference
    acc = DISMetrics()
    for name in ref["aggregate"]["included"]:
        acc.add_record(records[name], name)
    out = acc.compute()
    agg = ref["aggregate"]
    for mine, theirs in [("maxF", "maxF"), ("meanF", "meanF"), ("adpF", "adpF"), ("maxE", "maxE"),
                         ("meanE", "meanE"), ("adpE", "adpE"), ("MAE", "MAE"), ("S", "S"), ("wF", "wF"),
                         ("HCE", "HCE"), ("maxF_meanPR", "maxF_of_meanPR")]:
        assert abs(out[mine] - agg[theirs]) <= TOL, (mine, out[mine], agg[theirs])
    curves = acc.curves()
    np.testing.assert_allclose(curves["fm"], agg["fm_curve"], atol=TOL, rtol=0)
    np.testing.assert_allclose(curves["em"], agg["em_curve"], atol=TOL, rtol=0)
    np.testing.assert_allclose(curves["fm_meanPR"], agg["fm_of_meanPR_curve"], atol=TOL, rtol=0)
    assert out["n_images"] == agg["n_images"] == 23


def test_nan_images_are_skipped_by_dataset_s(reference):
    ref, cases = reference
    acc = DISMetrics(metrics=("S", "MAE"))
    for name, (pred, gt, _) in cases.items():
        acc.update(pred, gt, name=name)
    out = acc.compute()
    assert out["S_undefined"] == 2
    finite = [r["S"] for r in acc.per_image.values() if math.isfinite(r["S"])]
    assert out["S"] == pytest.approx(sum(finite) / len(finite), abs=1e-15)


def test_pysod_golden_examples():
    root = fixture_path("pysod_examples")
    golden = json.loads((root / "golden.json").read_text())
    acc = DISMetrics()
    hces_pysod_binarisation = []
    for name in golden["pairs"]:
        pred = read_gray_u8(root / "preds" / name)
        gt = read_gray_u8(root / "masks" / name)
        acc.update(pred, gt, name=name)
        # PySOD's own HCE binarises the min-max normalised prediction at > 0.5: feed our HCE that binary map
        p, _ = normalisation_luts(int(pred.min()), int(pred.max()))
        binary = np.where(p[pred] > 0.5, 255, 0).astype(np.uint8)
        hces_pysod_binarisation.append(hce_parts(gt, binary).total)
    out = acc.compute()
    g = golden["dataset"]
    for mine, theirs in [("MAE", "MAE"), ("S", "Smeasure"), ("wF", "wFmeasure"), ("adpE", "adpEm"),
                         ("meanE", "meanEm"), ("maxE", "maxEm"), ("adpF", "adpFm"), ("meanF", "meanFm"),
                         ("maxF", "maxFm")]:
        assert abs(out[mine] - g[theirs]) <= 1e-12, (mine, out[mine], g[theirs])
    assert hces_pysod_binarisation == [36, 184, 1]
    assert np.mean(hces_pysod_binarisation) == pytest.approx(g["HCE_pysod_binarisation"], abs=1e-12)


@pytest.mark.parametrize("factor", [0, 10**9])
def test_wf_both_correlation_paths_match(reference, monkeypatch, factor):
    import pdfnet.metrics.wfm as wfm

    _, cases = reference
    monkeypatch.setattr(wfm, "GATHER_FACTOR", factor)
    for name, (pred, gt, case) in cases.items():
        ref = case["metrics"]["wfm"]
        rec = evaluate_pair(pred, gt, metrics=("wF",))
        assert abs(rec["wF"] - ref) <= TOL, (name, factor)


def test_reference_port_of_official_hce_reproduces_the_fixture_hce(reference):
    # the benchmark's baseline (pdfnet.bench.reference) must be the official protocol, value for value
    pytest.importorskip("skimage")
    from pdfnet.bench.reference import official_hce

    _, cases = reference
    for name, (pred, gt, case) in cases.items():
        parts = case["metrics"]["hce_parts"]
        want = (parts["fp_points"], parts["fp_indep"], parts["fn_points"], parts["fn_indep"])
        assert official_hce(gt, pred) == want, name
