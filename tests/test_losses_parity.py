"""Parity of pdfnet.losses with the official release's losses (fixture: tests/fixtures/pdfnet_official).

The fixture stores the official logits P0..P5, Q0..Q4 and every loss the official code computed from
them; feeding the stored logits through ``pdfnet_loss`` must reproduce each ``loss_*`` array.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from helpers import official_expected, official_fixture

from pdfnet.config.schema import LossConfig
from pdfnet.losses import (
    IntegrityPriorLoss,
    PDFNetLoss,
    SiLogLoss,
    SSIMLoss,
    StructureLoss,
    pdfnet_loss,
    resize_logits,
)
from pdfnet.utils.normalize import minmax_normalize

RTOL = ATOL = 1e-5
SCALAR_TERMS = ("target", "seg_total", "inte_total", "depth_total", "total")


def _load_case(size: int):
    """(npz, out namespace, gt, depth_gt) for the stored seed-0 case at ``size``."""
    z = official_expected(size)
    t = lambda k: torch.from_numpy(z[k])  # noqa: E731
    if "in_gt" in z.files:
        gt, depth_gt = t("in_gt"), t("in_depth_gt")
    else:
        mw = official_fixture()
        inp = mw.make_inputs(0, size)
        assert mw.tensor_digest(inp.values()) == str(z["meta_inputs_sha256"]), "regenerated inputs differ"
        gt, depth_gt = inp["gt"], inp["depth_gt"]
    out = types.SimpleNamespace(
        logits=t("P0"),
        side_logits=tuple(t(f"P{i}") for i in range(1, 6)),
        depth_logits=tuple(t(f"Q{j}") for j in range(5)),
    )
    return z, out, gt, depth_gt


def _assert_matches_fixture(z, terms: dict[str, torch.Tensor]) -> None:
    names = sorted(k[5:] for k in z.files if k.startswith("loss_"))
    assert len(names) == 13
    for name in names:
        expected = z[f"loss_{name}"]
        if expected.ndim == 0:
            got = terms[name].numpy()
        else:
            got = np.stack([terms[f"{name}_{i}"].numpy() for i in range(expected.shape[0])])
        print(f"parity: loss_{name} max|diff| {np.abs(got - expected).max():.2e}")  # README (-s)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"loss_{name}")


def test_parity_s256():
    z, out, gt, depth_gt = _load_case(256)
    total, terms = pdfnet_loss(out, gt, depth_gt)
    _assert_matches_fixture(z, terms)
    np.testing.assert_allclose(total.detach().numpy(), z["loss_total"], rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_parity_s1024():
    z, out, gt, depth_gt = _load_case(1024)
    total, terms = pdfnet_loss(out, gt, depth_gt)
    _assert_matches_fixture(z, terms)
    np.testing.assert_allclose(total.detach().numpy(), z["loss_total"], rtol=RTOL, atol=ATOL)


def test_parity_s256_per_sample_variants_equal_release_at_b1():
    z, out, gt, depth_gt = _load_case(256)
    cfg = LossConfig(integrity_mean="per_sample", depth_target_norm="per_sample")
    _, terms = PDFNetLoss(cfg)(out, gt, depth_gt)
    _assert_matches_fixture(z, terms)


def test_parity_s256_under_bf16_autocast_stays_fp32():
    """fp32 logits under an active CPU bf16 autocast: the loss must still compute in fp32."""
    z, out, gt, depth_gt = _load_case(256)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        total, terms = pdfnet_loss(out, gt, depth_gt)
    assert total.dtype == torch.float32
    _assert_matches_fixture(z, terms)


def test_parity_s256_single_modules():
    """Each loss module on its own reproduces the fixture for every output."""
    z, out, gt, depth_gt = _load_case(256)
    mask = [out.logits, *out.side_logits]
    st, ss, it, sl = StructureLoss(), SSIMLoss(), IntegrityPriorLoss(), SiLogLoss()
    size = tuple(gt.shape[-2:])
    depth = minmax_normalize(depth_gt)
    for i, p in enumerate(mask):  # one output at a time (no leading stack axis)
        p = resize_logits(p, size)
        wbce, wiou = st(p, gt)
        np.testing.assert_allclose((wbce + wiou).numpy(), z["loss_struct"][i], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(wbce.numpy(), z["loss_wbce"][i], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ss(p.sigmoid(), gt).numpy(), z["loss_ssim"][i], rtol=RTOL, atol=ATOL)
        lv, lg = it(p.sigmoid(), gt, depth)
        np.testing.assert_allclose((lv + lg).numpy(), z["loss_inte"][i], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(lv.numpy(), z["loss_lv"][i], rtol=RTOL, atol=ATOL)
    for j, q in enumerate(out.depth_logits):
        silog = sl(resize_logits(q, size).sigmoid(), depth)
        np.testing.assert_allclose(silog.numpy(), z["loss_silog"][j], rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_end_to_end_official_model_to_loss_s256():
    """Synthetic official weights → our model (strict official loading) → pdfnet_loss == fixture losses.

    Checks that the model's output object feeds the loss as the release's training forward does
    (P0..P5, Q0..Q4 order and sizes). Costs one full S = 256 forward of the model (tens of seconds on CPU).
    """
    from pdfnet.models.official import from_official_state_dict

    mw = official_fixture()
    z = official_expected(256)
    model = from_official_state_dict(mw.official_state_dict(mw.DEFAULT_KEYS, 0))
    inp = mw.make_inputs(0, 256)
    with torch.no_grad():
        out = model(inp["image"], inp["depth"], with_depth_decoder=True)
    total, terms = pdfnet_loss(out, inp["gt"], inp["depth_gt"])
    _assert_matches_fixture(z, terms)
    np.testing.assert_allclose(total.numpy(), z["loss_total"], rtol=RTOL, atol=ATOL)
