"""The release's joint training augmentations: alignment, determinism, individual steps."""

from __future__ import annotations

import numpy as np
import torch

from pdfnet.data.dataset import sample_rng
from pdfnet.data.transforms import (
    augment_train,
    color_enhance,
    default_zoom_border,
    rotate_and_crop,
    zoom_crop,
)
from pdfnet.utils.normalize import denormalize_image, normalize_image

S = 64


def asymmetric_mask(s: int = S) -> torch.Tensor:
    """An 'L' plus an off-centre bar: no flip or rotation maps it onto itself. ``[1, s, s]``."""
    m = torch.zeros(1, s, s)
    m[:, s // 8: s * 3 // 4, s // 5: s // 5 + s // 8] = 1
    m[:, s * 5 // 8: s * 3 // 4, s // 5: s * 3 // 5] = 1
    m[:, s // 6: s // 6 + 4, s * 5 // 8: s * 7 // 8] = 1
    return m


def test_image_gt_depth_stay_aligned_under_every_augmentation():
    gt = asymmetric_mask()
    image = torch.cat([gt * 0.9 + 0.05, gt * 0.6 + 0.3, gt * 0.5 + 0.2])  # every channel encodes the shape
    changed = 0
    for i in range(60):
        img, (g, d, t) = augment_train(image, [gt, gt.clone(), gt.clone()], sample_rng(3, 0, i))
        assert img.shape == (3, S, S) and g.shape == d.shape == t.shape == (1, S, S)
        assert torch.equal(g, d) and torch.equal(g, t)  # identical inputs → identical geometry
        ch = img[0]
        thr = (ch.max() + ch.min()) / 2
        pred = ch > thr
        hard = g[0] > 0.5
        sure = (g[0] < 0.1) | (g[0] > 0.9)  # ignore the soft edge band
        mism = (pred != hard)[sure].float().mean().item()
        assert mism < 0.01, (i, mism)
        changed += not torch.equal(g, gt)
    assert changed > 30  # most samples were transformed


def test_augment_is_deterministic_per_seed_epoch_index():
    gt = asymmetric_mask()
    image = torch.rand(3, S, S)
    a = augment_train(image, [gt], sample_rng(0, 1, 5))
    b = augment_train(image, [gt], sample_rng(0, 1, 5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][0], b[1][0])
    outs = {augment_train(image, [gt], sample_rng(0, e, 5))[1][0].sum().item() for e in range(8)}
    assert len(outs) > 2  # other epochs draw other augmentations


def test_probabilities_order_and_ranges_match_the_release(monkeypatch):
    import pdfnet.data.transforms as T

    calls: dict[str, list] = {k: [] for k in ("flip", "rotate", "color", "gray", "zoom")}
    log: list[str] = []

    def spy(name, fn):
        def wrapped(*args, **kw):
            calls[name].append(args[1:])
            log.append(name)
            return fn(*args, **kw)
        return wrapped

    monkeypatch.setattr(T.torch, "flip", spy("flip", torch.flip))
    monkeypatch.setattr(T, "rotate_and_crop", spy("rotate", T.rotate_and_crop))
    monkeypatch.setattr(T, "color_enhance", spy("color", T.color_enhance))
    monkeypatch.setattr(T.TF, "rgb_to_grayscale", spy("gray", T.TF.rgb_to_grayscale))
    monkeypatch.setattr(T, "zoom_crop", spy("zoom", T.zoom_crop))
    n = 400
    x, m = torch.rand(3, 16, 16), torch.rand(1, 16, 16)
    for i in range(n):
        before = len(log)
        T.augment_train(x, [m], sample_rng(0, 0, i), zoom_border=4)
        order = [("flip", "rotate", "color", "gray", "zoom").index(k) for k in log[before:]]
        assert order == sorted(order)
    rates = {k: len(v) / n for k, v in calls.items()}
    for k, p in {"flip": 0.5, "rotate": 0.5, "color": 0.5, "gray": 0.25, "zoom": 0.5}.items():
        assert abs(rates[k] - p) < 0.08, (k, rates[k])
    angles = [a[0] for a in calls["rotate"]]
    assert min(angles) >= -30 and max(angles) <= 29 and len(set(angles)) > 30
    factors = np.array([a[0] for a in calls["color"]])
    assert factors[:, :2].min() >= 0.5 and factors[:, :2].max() <= 1.5
    assert factors[:, 2].min() >= 0.0 and factors[:, 2].max() <= 2.0 and factors[:, 3].max() <= 3.0
    crops = np.array([a for a in calls["zoom"]])  # (crop_h, crop_w) in [16 - 4, 16)
    assert crops.min() >= 12 and crops.max() <= 15
    assert default_zoom_border(1024) == 30 and default_zoom_border(256) == 8
    assert torch.equal(rotate_and_crop(asymmetric_mask(), 0), asymmetric_mask())


def test_rotate_and_crop_keeps_shape_and_removes_zero_corners():
    x = torch.ones(2, S, S)
    y = rotate_and_crop(x, 25)
    assert y.shape == x.shape
    assert torch.allclose(y, torch.ones_like(y), atol=1e-5)  # inscribed crop: no zero fill visible
    assert torch.allclose(rotate_and_crop(x, -29), rotate_and_crop(x, 29))


def test_zoom_crop_and_color_enhance_ranges():
    x = torch.rand(3, S, S)
    z = zoom_crop(x, S - 6, S - 4)
    assert z.shape == x.shape and torch.allclose(z[:, 0, 0], x[:, 3, 2])  # align_corners: corner kept
    c = color_enhance(x, (1.0, 1.0, 1.0, 1.0))
    assert torch.allclose(c, torch.floor(x * 255) / 255, atol=1e-6)  # identity factors: uint8 round trip
    c2 = color_enhance(x, (1.5, 0.5, 0.0, 3.0))
    assert c2.dtype == torch.float32 and 0 <= c2.min() and c2.max() <= 1
    assert torch.allclose(c2[0], c2[1]) and torch.allclose(c2[1], c2[2])  # colour 0 → gray


def test_normalize_roundtrip():
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(denormalize_image(normalize_image(x)), x, atol=1e-6)
    n = normalize_image(torch.full((3, 1, 1), 0.485))
    assert abs(n[0].item()) < 1e-6
