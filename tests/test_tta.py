"""TTA (pdfnet.inference.tta): 6-pass flip × scale, logits averaged, depth transformed like the image."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pdfnet.inference.tta import TTA_SCALES, scaled_side, tta_logits
from pdfnet.utils.normalize import minmax_normalize


class StandIn(torch.nn.Module):
    """A tiny network that is neither flip- nor scale-equivariant and reads the depth.

    Its logits depend on a fixed x-ramp (breaks flip symmetry) and on the batch-wide depth min–max
    (like PDFNet), and it records every input it sees.
    """

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = torch.randn(1, 4, 3, 3, generator=g)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        self.seen.append((image.clone(), depth.clone()))
        d = (depth - depth.amin()) / (depth.amax() - depth.amin())  # batch-coupled, like the release
        y = F.conv2d(torch.cat([image, d], 1), self.w, padding=1)
        ramp = torch.linspace(-1, 1, image.shape[-1]).view(1, 1, 1, -1)
        return y + 2.0 * ramp * d


def _inputs(b=1, s=64):
    image = torch.randn(b, 3, s, s)
    depth = torch.rand(b, 1, s, s) * 0.6 + 0.2
    return image, minmax_normalize(depth, "per_sample")


def test_scaled_side_multiples():
    assert [scaled_side(1024, s, 32) for s in TTA_SCALES] == [768, 1024, 1280]
    assert [scaled_side(256, s, 32) for s in TTA_SCALES] == [192, 256, 320]
    assert scaled_side(96, 0.75, 32) == 64  # 72 → nearest multiple of 32
    assert scaled_side(32, 0.75, 32) == 32  # never below one step
    for side in (64, 96, 160, 352):
        for s in TTA_SCALES:
            assert scaled_side(side, s, 32) % 32 == 0
    with pytest.raises(ValueError):
        scaled_side(0, 1.0, 32)


def test_tta_equals_mean_of_six_hand_computed_passes():
    net = StandIn()
    image, depth = _inputs(1, 64)
    got = tta_logits(net, image, depth, size_step=16)
    assert got.shape == (1, 1, 64, 64) and got.dtype == torch.float32
    assert len(net.seen) == 6

    # by hand: sizes 48/64/80, image and depth flipped and resized alike, logits resized back, unflipped
    ref = []
    for flip in (False, True):
        for side in (48, 64, 80):
            im = image.flip(-1) if flip else image
            de = depth.flip(-1) if flip else depth
            if side != 64:
                im = F.interpolate(im, size=(side, side), mode="bilinear", align_corners=False)
                de = F.interpolate(de, size=(side, side), mode="bilinear", align_corners=False)
            de = (de - de.amin()) / (de.amax() - de.amin())
            y = net(im, de)
            if side != 64:
                y = F.interpolate(y, size=(64, 64), mode="bilinear", align_corners=False)
            ref.append(y.flip(-1) if flip else y)
    ref = torch.stack(ref).mean(0)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    # sanity: the passes differ, so a wrong de-augmentation could not pass by accident
    plain = net(image, depth)
    assert (plain - ref).abs().max() > 1e-2


def test_depth_follows_image_transform():
    net = StandIn()
    image, depth = _inputs(1, 64)
    image = torch.cat([depth, depth, depth], 1)  # image channels == depth, so transforms must agree
    tta_logits(net, image, depth, size_step=16, renormalize_depth=False)
    sizes = []
    for im, de in net.seen:
        torch.testing.assert_close(im[:, :1], de)
        sizes.append(im.shape[-1])
    assert sizes == [48, 64, 80, 48, 64, 80]
    torch.testing.assert_close(net.seen[4][1], depth.flip(-1))  # flipped, unscaled pass


def test_tta_batch_equals_single_with_batch_coupled_model():
    net = StandIn()
    image, depth = _inputs(3, 64)
    depth[1] = depth[1] * 0.5 + 0.3  # differing ranges would couple samples through the batch min–max
    depth = minmax_normalize(depth, "per_sample")
    batch = tta_logits(net, image, depth, size_step=16)
    for i in range(3):
        one = tta_logits(net, image[i:i + 1], depth[i:i + 1], size_step=16)
        torch.testing.assert_close(batch[i:i + 1], one, rtol=1e-5, atol=1e-5)


def test_tta_validates_inputs():
    with pytest.raises(ValueError):
        tta_logits(lambda i, d: i[:, :1], torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError):
        tta_logits(lambda i, d: i[:, :1], torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), scales=())
