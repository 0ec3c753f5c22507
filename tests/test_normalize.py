"""pdfnet.utils.normalize: ImageNet normalisation and the one min–max rule (constant map → zeros)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pdfnet.config.schema import LossConfig
from pdfnet.depth.transforms import quantize, to_uint8
from pdfnet.engine.evaluate import predict_logits
from pdfnet.inference.preprocess import depth_to_tensor
from pdfnet.losses import PDFNetLoss
from pdfnet.models.encoder import normalize_depth
from pdfnet.models.pdfnet import PDFNetOutput
from pdfnet.utils.normalize import (
    IMAGENET_MEAN,
    denormalize_image,
    minmax_normalize,
    minmax_normalize_np,
    normalize_image,
)


def test_imagenet_roundtrip_any_leading_shape():
    x = torch.rand(2, 3, 5, 4)
    torch.testing.assert_close(denormalize_image(normalize_image(x)), x)
    assert torch.allclose(normalize_image(torch.tensor(IMAGENET_MEAN).view(3, 1, 1)), torch.zeros(3, 1, 1))
    assert normalize_image(x.double()).dtype == torch.float64


def test_minmax_modes_and_constant_maps():
    x = torch.stack([torch.rand(1, 5, 7) * 3 + 1, torch.full((1, 5, 7), 2.0)])
    y = minmax_normalize(x, "per_sample")
    assert y[0].min() == 0 and y[0].max() == 1 and torch.all(y[1] == 0)
    b = minmax_normalize(x, "batch")
    assert b.min() == 0 and b.max() == 1 and b[1].max() < 1
    # a constant map with bilinear round-off is still constant (not blown up to [0, 1])
    c = F.interpolate(torch.full((1, 1, 32, 32), 0.3), size=(64, 64), mode="bilinear", align_corners=True)
    assert c.max() > c.min() and torch.all(minmax_normalize(c) == 0)
    assert minmax_normalize(torch.rand(1, 1, 8, 8) * 1e-7).max() == 1  # a tiny absolute range is fine
    # an already-[0, 1] map spanning the range is a bit-exact fixed point of a batch min–max
    z = minmax_normalize(torch.rand(2, 1, 9, 9), "per_sample")
    assert torch.equal(minmax_normalize(z), z)
    assert minmax_normalize(torch.rand(2, 1, 3, 3).half()).dtype == torch.float16
    with pytest.raises(ValueError, match="per_sample"):
        minmax_normalize(x, "global")


def test_numpy_twin_matches():
    d = np.random.default_rng(0).random((6, 5), dtype=np.float32) * 4 - 1
    np.testing.assert_array_equal(minmax_normalize_np(d), minmax_normalize(torch.from_numpy(d)).numpy())
    for flat in (np.full((3, 3), 7.0), np.zeros((3, 3)), np.full((3, 3), np.nan)):
        assert not minmax_normalize_np(flat).any()


def test_constant_depth_is_zeros_everywhere():
    """Model, loss target, prediction/evaluation input and stored depth files all read a flat map as zeros."""
    flat = torch.full((1, 1, 16, 16), 0.4)
    assert torch.equal(normalize_depth(flat), torch.zeros(1, 3, 16, 16))
    assert torch.equal(depth_to_tensor(np.full((10, 12), 0.4, np.float32), 16), torch.zeros(1, 1, 16, 16))
    assert not quantize(flat[0, 0]).any() and not to_uint8(flat[0, 0].numpy()).any()
    seen = []

    class Net(torch.nn.Module):
        def forward(self, image, depth):
            seen.append(depth)
            return type("Out", (), {"logits": image[:, :1]})()

    predict_logits(Net(), torch.zeros(1, 3, 16, 16), flat)
    assert torch.equal(seen[0], torch.zeros(1, 1, 16, 16))
    # the loss's depth target: a flat target is the all-zero target (finite terms, equal values)
    loss = PDFNetLoss(LossConfig())
    gt = (torch.rand(1, 1, 16, 16) > 0.5).float()
    logits = [torch.randn(1, 1, 16, 16) for _ in range(6)]
    depth_logits = [torch.randn(1, 1, 16, 16) for _ in range(5)]
    out = PDFNetOutput(logits[0], tuple(logits[1:]), tuple(depth_logits))
    a, _ = loss(out, gt, flat)
    b, _ = loss(out, gt, torch.zeros_like(flat))
    assert torch.isfinite(a) and torch.equal(a, b)
