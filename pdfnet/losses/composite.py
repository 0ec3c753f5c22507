"""The PDFNet training loss with the release's deep supervision (docs/architecture.md).

    L = Σ_i w_i [struct_i + 0.5·ssim_i] + ½·Σ_i w_i·inte_i + (1/10)·Σ_j w_j·silog_j,
    w = (1, .5, .5, ...),

over the mask outputs P0..P5 (``out.logits`` then ``out.side_logits``) and the depth-decoder outputs
Q0..Q4 (``out.depth_logits``). Every P/Q is resized to the GT size (bilinear, align_corners=False)
before its loss, and everything is computed in fp32 with autocast disabled, whatever the caller's
autocast state.

Speed: the six (five) outputs are resized and stacked into one ``[N, B, 1, S, S]`` tensor and each loss
runs once over the stack; everything that depends only on the targets (edge weights, SSIM target
statistics, depth min–max, Sobel map, object mean μ, log D̂) is computed once per call. No Python
loop runs over the batch, and no value is moved to the host.

Release batch coupling, kept as the default and switchable (see :class:`pdfnet.config.LossConfig`):

* ``depth_target_norm='batch'``: the raw depth target is min–max normalised with ONE min/max over the
  whole batch, so each sample's D̂ depends on the others when B > 1. ``'per_sample'`` decouples it.
* ``integrity_mean='batch'``: the integrity loss's object mean depth μ is one scalar over the batch.
  ``'per_sample'`` uses each sample's own μ_b.

For B = 1 (the release's batch size) both variants are identical. Empty GT: see
:mod:`pdfnet.losses.integrity` (μ = 0 where ΣG == 0, instead of the release's NaN); a constant depth
target normalises to zeros instead of NaN.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from pdfnet.config.schema import LossConfig
from pdfnet.losses.common import as_target, stack_resized
from pdfnet.losses.integrity import IntegrityPriorLoss
from pdfnet.losses.silog import EPS as SILOG_EPS
from pdfnet.losses.silog import SiLogLoss
from pdfnet.losses.ssim import SSIMLoss
from pdfnet.losses.structure import StructureLoss
from pdfnet.utils.normalize import minmax_normalize


def _branch_weights(n: int, side_weight: float, device: torch.device) -> torch.Tensor:
    """``[n]`` fp32 deep-supervision weights (1, side_weight, side_weight, ...)."""
    w = torch.full((n,), float(side_weight), dtype=torch.float32, device=device)
    w[0] = 1.0
    return w


class PDFNetLoss(nn.Module):
    """The release's training loss over a PDFNet output.

    Args:
        config: loss settings; ``LossConfig()`` (the March-2025 release) when None.
        **overrides: any ``LossConfig`` field by name (e.g. ``iou_smooth=1e-6``); these win over
            ``config``.

    ``forward(out, gt, depth_target)`` duck-types ``out``: it needs ``.logits`` ``[B, 1, S, S]``,
    ``.side_logits`` (sequence of ``[B, 1, h_i, w_i]``) and ``.depth_logits`` (sequence of
    ``[B, 1, h_j, w_j]`` or None). It never imports the model package.
    """

    def __init__(self, config: LossConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config if config is not None else LossConfig()
        if overrides:
            names = {f.name for f in dataclasses.fields(LossConfig)}
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise TypeError(f"unknown loss option(s) {unknown}; valid: {sorted(names)}")
            cfg = dataclasses.replace(cfg, **overrides)
        for mode_name in ("integrity_mean", "depth_target_norm"):
            value = getattr(cfg, mode_name)
            if value not in ("batch", "per_sample"):
                raise ValueError(f"{mode_name} must be 'batch' or 'per_sample', got {value!r}")
        self.config = cfg
        self.structure = StructureLoss(iou_smooth=cfg.iou_smooth)
        self.ssim = SSIMLoss()
        self.integrity = IntegrityPriorLoss(mean=cfg.integrity_mean)
        self.silog = SiLogLoss()

    def forward(
        self, out: Any, gt: torch.Tensor, depth_target: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the total loss and its named terms.

        Args:
            out: model output with ``.logits``, ``.side_logits`` and ``.depth_logits`` (see class doc).
            gt: ``[B, 1, S, S]`` (or ``[B, S, S]``) GT mask in [0, 1]; S sets the loss resolution.
            depth_target: ``[B, 1, S, S]`` RAW depth target D* (min–max normalised inside, per
                ``depth_target_norm``). None skips the integrity and SiLog parts.

        Returns:
            ``(total, terms)``. ``total`` is a 0-d fp32 tensor with grad. ``terms`` holds detached
            0-d fp32 tensors: ``struct_i``, ``wbce_i``, ``wiou_i``, ``ssim_i``, ``inte_i``, ``lv_i``,
            ``lg_i`` for each mask output i (0 = ``out.logits``), ``silog_j`` for each depth output j,
            and ``target`` (struct_0 + 0.5·ssim_0), ``seg_total``, ``inte_total``, ``depth_total``,
            ``total``. When ``out.depth_logits`` is None (or ``depth_target`` is None) the SiLog part
            is skipped: no ``silog_j`` keys and ``depth_total`` = 0; likewise ``inte_*``/``lv_*``/
            ``lg_*`` are absent and ``inte_total`` = 0 when ``depth_target`` is None.
        """
        cfg = self.config
        gt = as_target(gt, "gt")
        size = tuple(gt.shape[-2:])
        mask_logits = [out.logits, *tuple(out.side_logits or ())]
        depth_logits = getattr(out, "depth_logits", None)
        device = gt.device
        terms: dict[str, torch.Tensor] = {}
        zero = torch.zeros((), dtype=torch.float32, device=device)

        with torch.autocast(device_type=device.type, enabled=False):
            stacked = stack_resized(mask_logits, size)  # [N, B, 1, S, S]
            prob = torch.sigmoid(stacked)
            w = _branch_weights(len(mask_logits), cfg.side_weight, device)

            wbce, wiou = self.structure(stacked, gt)
            struct = wbce + wiou
            ssim = self.ssim(prob, gt, self.ssim.target_stats(gt))
            seg = struct + cfg.ssim_weight * ssim
            seg_total = (w * seg).sum()
            self._put(terms, struct=struct, wbce=wbce, wiou=wiou, ssim=ssim)

            inte_total = depth_total = zero
            if depth_target is not None:
                depth = minmax_normalize(as_target(depth_target, "depth_target"), cfg.depth_target_norm)
                if depth.shape != gt.shape:
                    raise ValueError(
                        f"depth_target shape {tuple(depth.shape)} must match gt shape {tuple(gt.shape)}"
                    )
                lv, lg = self.integrity(prob, gt, depth, self.integrity.target_stats(gt, depth))
                inte = lv + lg
                inte_total = (w * inte).sum()
                self._put(terms, inte=inte, lv=lv, lg=lg)
                if depth_logits is not None and len(depth_logits) > 0:
                    q = torch.sigmoid(stack_resized(list(depth_logits), size))
                    silog = self.silog(q, depth, torch.log(depth + SILOG_EPS))
                    depth_total = (_branch_weights(len(depth_logits), cfg.side_weight, device) * silog).sum()
                    self._put(terms, silog=silog)

            total = seg_total + cfg.integrity_weight * inte_total + cfg.silog_weight * depth_total

        terms["target"] = seg[0].detach()
        terms["seg_total"] = seg_total.detach()
        terms["inte_total"] = inte_total.detach()
        terms["depth_total"] = depth_total.detach()
        terms["total"] = total.detach()
        return total, terms

    @staticmethod
    def _put(terms: dict[str, torch.Tensor], **vectors: torch.Tensor) -> None:
        """Store ``name_i = vector[i]`` (detached 0-d views) for each ``[N]`` vector."""
        for name, vec in vectors.items():
            vec = vec.detach()
            for i in range(vec.shape[0]):
                terms[f"{name}_{i}"] = vec[i]


def pdfnet_loss(
    out: Any,
    gt: torch.Tensor,
    depth_target: torch.Tensor | None,
    config: LossConfig | None = None,
    **overrides: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The release's PDFNet training loss (functional form of :class:`PDFNetLoss`).

    Args:
        out: model output with ``.logits`` P0 ``[B,1,S,S]``, ``.side_logits`` (P1..P5) and
            ``.depth_logits`` (Q0..Q4 or None).
        gt: ``[B, 1, S, S]`` GT mask.
        depth_target: ``[B, 1, S, S]`` RAW depth target (normalised inside).
        config: loss settings (release defaults when None); ``overrides`` replace single fields.

    Returns:
        ``(total, terms)`` as :meth:`PDFNetLoss.forward`.
    """
    return PDFNetLoss(config, **overrides).to(gt.device)(out, gt, depth_target)
