"""Best-checkpoint selection: the release's validation F against a direct transcription of its code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pdfnet.metrics.selection import SELECT_METRICS, ReleaseF, is_better, selection_score

# ------------------------------------------------------------------------------------------------------
# transcription of the release (metric_tools/F1torch.py: f1score_torch; utiles.py: eval's aggregation)


def _f1score_torch(pd_raw, gt_raw):
    pd = pd_raw[0] * 255
    gt = gt_raw[0] * 255
    gt_num = torch.sum((gt > 128).float() * 1)
    pp = pd[gt > 128]
    nn_ = pd[gt <= 128]
    pp_hist = torch.histc(pp, bins=255, min=0, max=255)
    nn_hist = torch.histc(nn_, bins=255, min=0, max=255)
    pp_cum = torch.cumsum(torch.flipud(pp_hist), dim=0)
    nn_cum = torch.cumsum(torch.flipud(nn_hist), dim=0)
    precision = pp_cum / (pp_cum + nn_cum + 1e-4)
    recall = pp_cum / (gt_num + 1e-4)
    f1 = (1 + 0.3) * precision * recall / (0.3 * precision + recall + 1e-8)
    return precision.reshape(1, -1), recall.reshape(1, -1), f1.reshape(1, -1)


def _release_eval(preds, gts):
    n = len(preds)
    pre_all, rec_all, mae_all = np.zeros((n, 255)), np.zeros((n, 255)), np.zeros(n)
    for k, (p, g) in enumerate(zip(preds, gts)):
        p = F.interpolate(p[None, ...], size=g.shape[1:], mode="bilinear")[0]  # the release's F.upsample
        pre, rec, _ = _f1score_torch(p, g)
        pre_all[k, :] = pre.cpu().detach().numpy()
        rec_all[k, :] = rec.cpu().detach().numpy()
        mae_all[k] = torch.nn.L1Loss()(p, g.float()).cpu().detach().numpy()
    pre_m, rec_m = np.mean(pre_all, 0), np.mean(rec_all, 0)
    f1_m = (1 + 0.3) * pre_m * rec_m / (0.3 * pre_m + rec_m + 1e-8)
    return np.amax(f1_m), np.mean(mae_all)


# ------------------------------------------------------------------------------------------------------


def _maps(seed: int, n: int, size=(48, 40)):
    g = torch.Generator().manual_seed(seed)
    preds, gts = [], []
    for i in range(n):
        gt = (torch.rand(1, *size, generator=g) > torch.rand(1, generator=g)).float()
        if i == 1:
            gt.zero_()  # an empty GT
        if i == 2:
            gt.fill_(1)  # all foreground
        logits = (gt * 2 - 1) * torch.rand(1, *size, generator=g) * 6 + torch.randn(1, *size, generator=g)
        prob = torch.sigmoid(logits)
        if i == 3:
            prob = torch.round(prob * 255) / 255  # values on the bin edges
        preds.append(prob)
        gts.append(gt)
    return preds, gts


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_release_f_equals_the_transcription(seed):
    preds, gts = _maps(seed, 7)
    ref_f, ref_mae = _release_eval(preds, gts)
    acc = ReleaseF()
    acc.update(torch.stack(preds[:3]), torch.stack(gts[:3]))  # batches of any size give the same result
    for p, g in zip(preds[3:], gts[3:]):
        acc.update(p[None], g[None])
    res = acc.compute()
    assert res["release_F"] == ref_f and res["release_MAE"] == ref_mae
    # merged over "ranks" in rank order = the same images in the same order
    a, b = ReleaseF(), ReleaseF()
    a.update(torch.stack(preds[:4]), torch.stack(gts[:4]))
    b.update(torch.stack(preds[4:]), torch.stack(gts[4:]))
    merged = ReleaseF().merge(a.state_dict()).merge(b.state_dict()).compute()
    assert merged == res


def test_release_f_resizes_the_prediction_to_the_gt_and_differs_from_the_dis_rules():
    from pdfnet.metrics import DISMetrics

    preds, gts = _maps(5, 4, size=(32, 32))
    big = [(F.interpolate(g[None], size=(40, 36), mode="nearest")[0]) for g in gts]
    ref_f, _ = _release_eval(preds, big)
    acc = ReleaseF()
    for p, g in zip(preds, big):
        acc.update(p[None], g[None])
    assert acc.compute()["release_F"] == ref_f
    dis = DISMetrics(metrics=("maxF", "maxF_meanPR"), keep_per_image=False)
    dis.update_batch(torch.stack(preds), torch.stack(gts))
    same = ReleaseF()
    same.update(torch.stack(preds), torch.stack(gts))
    d = dis.compute()
    assert same.compute()["release_F"] not in (pytest.approx(d["maxF"], abs=1e-9),
                                               pytest.approx(d["maxF_meanPR"], abs=1e-9))


def test_is_better_is_the_release_rule():
    assert set(SELECT_METRICS) == {"release_F", "maxF", "maxF_meanPR", "wF", "MAE"}
    assert is_better(0.5, None, "release_F") and is_better(0.5, 0.5, "release_F")  # >=: ties move on
    assert not is_better(0.49, 0.5, "maxF") and is_better(0.8, 0.5, "wF")
    assert is_better(0.03, 0.03, "MAE") and is_better(0.02, 0.03, "MAE") and not is_better(0.04, 0.03, "MAE")
    assert not is_better(math.nan, None, "maxF") and not is_better(math.inf, 0.1, "MAE")
    assert ReleaseF().compute()["release_F"] != ReleaseF().compute()["release_F"]  # NaN when empty


def test_selection_score_turns_every_rule_into_greater_or_equal():
    m = {"release_F": 0.8, "maxF": 0.7, "maxF_meanPR": 0.75, "wF": 0.6, "MAE": 0.05}
    assert selection_score(m, "release_F") == 0.8 and selection_score(m, "MAE") == -0.05
    assert selection_score({"MAE": math.nan}, "MAE") is None and selection_score({}, "wF") is None
    with pytest.raises(ValueError, match="unknown selection metric"):
        selection_score(m, "S")
