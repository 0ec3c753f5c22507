"""DISMetrics API: numpy/torch and uint8/float inputs, batched torch path, light mode, merge, cache."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from pdfnet.metrics import (
    AGGREGATE_KEYS,
    DISMetrics,
    SkeletonCache,
    evaluate_pair,
    quantize_prob,
    skeletonize,
)


def _pairs(n=6, h=40, w=52, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 4)
        gt = np.where(g > np.quantile(g, 0.7), 255, 0).astype(np.uint8)
        soft = np.clip(cv2.GaussianBlur((gt / 255).astype(np.float32), (0, 0), 1.5)
                       + rng.normal(0, 0.1, (h, w)).astype(np.float32), 0, 1)
        out.append((soft, gt))
    return out


def _same(a: dict, b: dict, tol=1e-12):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k], abs=tol), k


def test_quantize_prob_rounds_half_up_in_float32():
    p = np.array([0.0, 0.5 / 255, 1.5 / 255, 0.2, 1.0, -0.3, 1.7], dtype=np.float32)
    expect = (np.clip(p, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(quantize_prob(p), expect)
    np.testing.assert_array_equal(quantize_prob(torch.from_numpy(p)), expect)
    with pytest.raises(ValueError, match="NaN"):
        quantize_prob(np.array([np.nan], np.float32))


def test_float_and_uint8_inputs_agree():
    soft, gt = _pairs(1)[0]
    a, b = DISMetrics(), DISMetrics()
    a.update(quantize_prob(soft), gt)
    b.update(torch.from_numpy(soft)[None], torch.from_numpy(gt.astype(np.float32) / 255))  # [1,H,W], float GT
    _same(a.compute(), b.compute())


def test_torch_batch_path_equals_numpy_path():
    pairs = _pairs(5)
    ref = DISMetrics()
    for i, (s, g) in enumerate(pairs):
        ref.update(quantize_prob(s), g, name=f"im{i}")
    bat = DISMetrics()
    preds = torch.stack([torch.from_numpy(s) for s, _ in pairs])[:, None]  # [B,1,H,W]
    gts = torch.stack([torch.from_numpy(g) for _, g in pairs])[:, None]
    bat.update_batch(preds, gts, names=[f"im{i}" for i in range(5)])
    _same(ref.compute(), bat.compute(), tol=1e-15)
    for name in ref.per_image:
        _same(ref.per_image[name], bat.per_image[name], tol=1e-15)


@pytest.mark.gpu
def test_torch_batch_path_on_cuda():
    pairs = _pairs(4)
    ref, bat = DISMetrics(), DISMetrics()
    for s, g in pairs:
        ref.update(quantize_prob(s), g)
    preds = torch.stack([torch.from_numpy(s) for s, _ in pairs]).cuda()
    gts = torch.stack([torch.from_numpy(g) for _, g in pairs]).cuda()
    bat.update_batch(preds, gts)
    _same(ref.compute(), bat.compute(), tol=1e-15)


def test_light_mode_computes_only_what_it_needs():
    pairs = _pairs(4)
    full, light = DISMetrics(), DISMetrics(metrics=("maxF", "MAE", "maxF_meanPR"))
    for s, g in pairs:
        full.update(quantize_prob(s), g)
        rec = light.update(quantize_prob(s), g)
        assert "wF" not in rec and "HCE" not in rec and "S" not in rec
    fo, lo = full.compute(), light.compute()
    assert set(lo) == {"maxF", "MAE", "maxF_meanPR", "n_images"}
    for k in ("maxF", "MAE", "maxF_meanPR"):
        assert lo[k] == pytest.approx(fo[k], abs=1e-15)
    with pytest.raises(ValueError, match="unknown metric"):
        DISMetrics(metrics=("maxF", "Fbeta"))


def test_merge_and_state_dict_equal_single_accumulator():
    pairs = _pairs(7, seed=3)
    whole = DISMetrics()
    parts = [DISMetrics(), DISMetrics(), DISMetrics()]
    for i, (s, g) in enumerate(pairs):
        whole.update(quantize_prob(s), g, name=f"im{i}")
        parts[i % 3].update(quantize_prob(s), g, name=f"im{i}")
    merged = DISMetrics().merge(parts[0]).merge(parts[1].state_dict())
    merged.merge(json.loads(json.dumps(parts[2].state_dict())))  # JSON round trip (DDP gather / files)
    _same(whole.compute(), merged.compute(), tol=1e-14)
    assert merged.per_image.keys() == whole.per_image.keys()
    with pytest.raises(ValueError, match="duplicate"):
        merged.merge(parts[0])
    restored = DISMetrics.from_state_dict(whole.state_dict())
    _same(whole.compute(), restored.compute(), tol=0)


def test_empty_accumulator_and_bad_inputs():
    out = DISMetrics().compute()
    assert out["n_images"] == 0 and all(math.isnan(out[k]) for k in AGGREGATE_KEYS)
    m = DISMetrics()
    with pytest.raises(ValueError, match="differ in size"):
        m.update(np.zeros((4, 5), np.uint8), np.zeros((5, 4), np.uint8))
    with pytest.raises(TypeError):
        m.update(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        m.update(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8))


def test_skeleton_cache_is_content_keyed_atomic_and_robust(tmp_path):
    _, gt = _pairs(1, h=64, w=64)[0]
    mask = gt > 128
    cache = SkeletonCache(tmp_path)
    first = cache.get(mask)
    np.testing.assert_array_equal(first, skeletonize(mask))
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1 and cache.misses == 1
    again = SkeletonCache(tmp_path).get(mask.copy())  # a new cache object, same content
    np.testing.assert_array_equal(again, first)
    assert not list(tmp_path.rglob("*.tmp"))
    files[0].write_bytes(b"garbage")  # a corrupt entry is recomputed and rewritten
    c2 = SkeletonCache(tmp_path)
    np.testing.assert_array_equal(c2.get(mask), first)
    assert c2.misses == 1
    # HCE with the cache equals HCE without it
    soft, _ = _pairs(1, h=64, w=64)[0]
    pred = quantize_prob(soft)
    a = evaluate_pair(pred, gt, metrics=("HCE",))
    b = evaluate_pair(pred, gt, metrics=("HCE",), skeleton_cache=SkeletonCache(tmp_path))
    assert a["HCE"] == b["HCE"]


def test_gt_file_cache_skips_decoding_and_matches(tmp_path):
    from pdfnet.metrics.folders import score_files
    from pdfnet.utils.io import write_image

    soft, gt = _pairs(1, h=50, w=70, seed=9)[0]
    gt[3, 5] = 128  # 128 is background: the cached binarised GT must keep that
    write_image(tmp_path / "g.png", gt)
    write_image(tmp_path / "p.png", quantize_prob(soft))
    ref, _ = score_files(tmp_path / "p.png", tmp_path / "g.png")
    cache = SkeletonCache(tmp_path / "c")
    calls = []

    def decode(data):
        calls.append(1)
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)

    m1, s1 = cache.get_file(tmp_path / "g.png", decode)
    m2, s2 = SkeletonCache(tmp_path / "c").get_file(tmp_path / "g.png", decode)
    assert len(calls) == 1  # the second lookup did not decode
    np.testing.assert_array_equal(m1, gt > 128)
    np.testing.assert_array_equal(m2, m1)
    np.testing.assert_array_equal(s2, skeletonize(gt > 128))
    for _warm in range(2):  # cold then cached: identical records
        rec, _ = score_files(tmp_path / "p.png", tmp_path / "g.png", cache=SkeletonCache(tmp_path / "c2"))
        _same({k: v for k, v in rec.items() if not isinstance(v, np.ndarray)},
              {k: v for k, v in ref.items() if not isinstance(v, np.ndarray)}, tol=0)
    entry = next((tmp_path / "c").rglob("*.gtc"))
    entry.write_bytes(entry.read_bytes()[:20])  # truncated entry: ignored and rebuilt
    m3, _ = SkeletonCache(tmp_path / "c").get_file(tmp_path / "g.png", decode)
    assert len(calls) == 2
    np.testing.assert_array_equal(m3, m1)


def test_weighted_fmeasure_rejects_a_lut_that_is_not_a_normalisation():
    from pdfnet.metrics import weighted_fmeasure

    gt = np.zeros((8, 8), dtype=bool)
    gt[2:5, 2:5] = True
    pred = (gt * 200).astype(np.uint8)
    with pytest.raises(ValueError, match="normalisation_luts"):
        weighted_fmeasure(pred, gt, np.linspace(0.1, 0.9, 256))
