"""DIS metrics vs live PySODMetrics 1.6.2 and the official HCE port on random inputs."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from pdfnet.metrics import evaluate_pair, skeletonize
from pdfnet.metrics.rdp import approx_poly_count, approx_poly_count_many

psm = pytest.importorskip("py_sod_metrics")
skm = pytest.importorskip("skimage.morphology")
from pdfnet.bench.reference import official_hce  # noqa: E402  (needs the dev extras checked above)

TOL = 1e-9
OPENCV_PRE_413 = tuple(int(v) for v in cv2.__version__.split(".")[:2]) < (4, 13)


def _blobby(rng, h, w, frac=0.5, sigma=None):
    sigma = sigma or max(1.0, min(h, w) / 10)
    f = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigma)
    thr = np.quantile(f, 1 - frac) if f.size > 1 else 0.5
    return f > thr


def _case(rng: np.random.Generator, kind: str, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred_u8, gt_u8) for a named input family."""
    g = _blobby(rng, h, w, frac=rng.uniform(0.05, 0.6))
    if rng.random() < 0.3:  # thin lines: many wF ties and skeleton branches
        for _ in range(3):
            cv2.line(g.view(np.uint8), tuple(int(v) for v in rng.integers(0, [w, h])),
                     tuple(int(v) for v in rng.integers(0, [w, h])), 1, 1)
    gt = np.where(g, 255, 0).astype(np.uint8)
    if rng.random() < 0.2:  # non-binary GT with 128 / 129 values
        gt = np.where(rng.random((h, w)) < 0.1, rng.choice([128, 129], size=(h, w)), gt).astype(np.uint8)
    soft = cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.5)
    soft = soft + rng.normal(0, 0.15, (h, w)).astype(np.float32)
    soft = np.clip(soft, 0, 1)
    if kind == "uniform":
        pred = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == "soft":
        pred = (soft * 255).astype(np.uint8)
    elif kind == "compressed":
        lo, hi = sorted(int(v) for v in rng.choice(256, 2, replace=False))
        pred = (lo + (hi - lo) * soft).astype(np.uint8)
    elif kind == "constant":
        pred = np.full((h, w), rng.integers(0, 256), np.uint8)
    elif kind == "twovalued":
        a, b = rng.choice([0, 40, 127, 128, 129, 215, 255], 2, replace=False)
        pred = np.where(soft > 0.5, a, b).astype(np.uint8)
    elif kind == "threevalued":
        pred = rng.choice(np.array([127, 128, 129], np.uint8), size=(h, w))
    else:
        raise ValueError(kind)
    return pred, gt


SIZES = [(1, 17), (17, 1), (2, 2), (3, 5), (33, 47), (64, 80), (57, 91), (120, 97), (181, 243)]
KINDS = ["uniform", "soft", "compressed", "constant", "twovalued", "threevalued"]


def _pysod(pred, gt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm, em, mae = psm.Fmeasure(), psm.Emeasure(), psm.MAE()
        sm, wfm = psm.Smeasure(), psm.WeightedFmeasure()
        for m in (fm, em, mae, sm, wfm):
            m.step(pred=pred, gt=gt)
    return {"fm": fm.changeable_fms[0], "precision": fm.precisions[0], "recall": fm.recalls[0],
            "em": em.changeable_ems[0], "adpF": fm.adaptive_fms[0], "adpE": em.adaptive_ems[0],
            "MAE": mae.maes[0], "S": sm.sms[0], "wF": wfm.weighted_fms[0]}


def _compare(pred, gt, label):
    mine = evaluate_pair(pred, gt)
    ref = _pysod(pred, gt)
    for k in ("fm", "precision", "recall", "em"):
        np.testing.assert_allclose(mine[k], ref[k], rtol=0, atol=TOL, err_msg=f"{label} {k}")
    for k in ("adpF", "adpE", "MAE", "S", "wF"):
        r = float(ref[k])
        if math.isnan(r):
            assert math.isnan(mine[k]), f"{label} {k}"
        else:
            assert abs(mine[k] - r) <= TOL, f"{label} {k}: {mine[k]} vs {r}"
    if min(gt.shape) >= 1:
        assert (mine["HCE_fp_points"], mine["HCE_fp_indep"], mine["HCE_fn_points"],
                mine["HCE_fn_indep"]) == official_hce(gt, pred), label


@pytest.mark.parametrize("kind", KINDS)
def test_random_inputs_match_pysod_and_official_hce(kind):
    rng = np.random.default_rng(100 + KINDS.index(kind))
    for h, w in SIZES:
        for rep in range(3):
            pred, gt = _case(rng, kind, h, w)
            _compare(pred, gt, f"{kind} {h}x{w} #{rep}")


def test_edge_gts_match_pysod():
    rng = np.random.default_rng(7)
    h, w = 48, 61
    pred = (np.clip(cv2.GaussianBlur(rng.random((h, w)), (0, 0), 2), 0, 1) * 255).astype(np.uint8)
    gts = {
        "empty": np.zeros((h, w), np.uint8), "full": np.full((h, w), 255, np.uint8),
        "single": np.zeros((h, w), np.uint8), "lastcol": np.zeros((h, w), np.uint8),
        "lastrow": np.zeros((h, w), np.uint8), "border": np.zeros((h, w), np.uint8),
    }
    gts["single"][20, 30] = 255
    gts["lastcol"][:, -1] = 255
    gts["lastrow"][-1, :] = 255
    gts["border"][:5, :] = 255
    gts["border"][:, -3:] = 255
    for name, gt in gts.items():
        for p in (pred, np.zeros_like(pred), np.full_like(pred, 255), np.full_like(pred, 128)):
            _compare(p, gt, name)


def test_adaptive_threshold_ties_follow_numpy():
    # three values 0, 0.5, 1 with mean exactly 0.25 -> threshold 0.5 equals a prediction value
    pred = np.array([[0, 0, 128, 255] * 4] * 4, dtype=np.uint8)
    pred[0, 0] = 0
    gt = np.zeros_like(pred)
    gt[:2] = 255
    _compare(pred, gt, "tie")
    rng = np.random.default_rng(3)
    for _ in range(20):  # values spread so that 2 * mean often hits a value exactly
        vals = np.array(sorted(rng.choice(256, 3, replace=False)), np.uint8)
        pred = rng.choice(vals, size=(16, 16))
        gt = np.where(rng.random((16, 16)) < 0.4, 255, 0).astype(np.uint8)
        _compare(pred, gt, f"tie {vals}")


def test_skeleton_is_bit_identical_to_skimage():
    rng = np.random.default_rng(11)
    for i in range(40):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        if i % 3 == 0:
            m = rng.random((h, w)) < rng.uniform(0.3, 0.9)
        else:
            m = _blobby(rng, h, w, frac=rng.uniform(0.1, 0.9), sigma=rng.uniform(1, 8))
        np.testing.assert_array_equal(skeletonize(m), skm.skeletonize(m), err_msg=f"mask {i}")
    solid = np.zeros((150, 200), np.uint8)
    cv2.ellipse(solid, (100, 75), (90, 60), 20, 0, 360, 1, -1)
    np.testing.assert_array_equal(skeletonize(solid > 0), skm.skeletonize(solid > 0))


def _random_curves(rng, n):
    curves = []
    for k in range(n):
        m = int(rng.integers(1, 60))
        if k % 3 == 0:
            pts = np.cumsum(rng.integers(-1, 2, (m, 2)), 0) + 40
        elif k % 3 == 1:
            pts = rng.integers(0, 25, (m, 2))
        else:
            t = np.linspace(0, rng.uniform(1, 6), m)
            pts = np.stack([30 + 20 * np.cos(t), 30 + 20 * np.sin(t)], 1).round()
        curves.append(pts.astype(np.int32))
    return curves


def test_rdp_vectorised_equals_scalar():
    curves = _random_curves(np.random.default_rng(5), 400)
    x = np.concatenate([c[:, 0] for c in curves]).astype(np.int64)
    y = np.concatenate([c[:, 1] for c in curves]).astype(np.int64)
    b = np.concatenate([[0], np.cumsum([len(c) for c in curves])]).astype(np.int64)
    assert approx_poly_count_many(x, y, b, 2.0) == sum(approx_poly_count(c, 2.0) for c in curves)


@pytest.mark.skipif(not OPENCV_PRE_413, reason="OpenCV >= 4.13 changed approxPolyDP; ours keeps the old rule")
def test_rdp_matches_opencv_pre_413():
    for c in _random_curves(np.random.default_rng(6), 600):
        assert approx_poly_count(c, 2.0) == len(cv2.approxPolyDP(c[:, None, :], 2.0, False))


@pytest.mark.parametrize("eps", [1.0, 2.0, 3.5])
def test_rdp_vectorised_equals_scalar_per_batch(eps):
    # small batches, so a wrong clean-up shortcut on any one curve changes a batch total
    rng = np.random.default_rng(17)
    for _ in range(60):
        curves = _random_curves(rng, int(rng.integers(1, 8)))
        x = np.concatenate([c[:, 0] for c in curves]).astype(np.int64)
        y = np.concatenate([c[:, 1] for c in curves]).astype(np.int64)
        b = np.concatenate([[0], np.cumsum([len(c) for c in curves])]).astype(np.int64)
        assert approx_poly_count_many(x, y, b, eps) == sum(approx_poly_count(c, eps) for c in curves)


def test_hce_relax_growth_on_seed_box_equals_full_loop():
    from pdfnet.metrics.hce import CROSS, _relax_grow

    rng = np.random.default_rng(23)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(3, 60, 2))
        seed = rng.random((h, w)) < rng.uniform(0.0, 0.05)
        allow = rng.random((h, w)) < rng.uniform(0.3, 0.9)
        full = seed.copy()
        for _ in range(5):
            full = cv2.dilate(full.view(np.uint8), CROSS).view(bool) & allow
        np.testing.assert_array_equal(_relax_grow(seed.copy(), allow, 5), full)
