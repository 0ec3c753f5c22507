"""PDFNet losses (docs/architecture.md): structure (edge-weighted BCE + weighted IoU), SSIM, the depth
integrity prior (l_v, l_g) and SiLog, composed with the release's deep-supervision weights.

Stable entry points::

    from pdfnet.losses import pdfnet_loss, PDFNetLoss
    total, terms = pdfnet_loss(out, gt, depth_target)  # depth_target raw; normalised inside

``PDFNetLoss`` returns ``(total, {name: detached 0-d tensor})`` and computes in fp32. Its parts
(:class:`StructureLoss`, :class:`SSIMLoss`, :class:`IntegrityPriorLoss`, :class:`SiLogLoss`) are modules
whose ``forward`` is exactly what training runs: all mask (or depth) outputs at once, stacked as
``[N, B, 1, S, S]`` at the GT size, one loss value per output.
"""

from pdfnet.losses.common import resize_logits
from pdfnet.losses.composite import PDFNetLoss, pdfnet_loss
from pdfnet.losses.integrity import (
    IntegrityPriorLoss,
    integrity_terms,
    object_mean_depth,
    sobel_magnitude,
)
from pdfnet.losses.silog import SiLogLoss, silog_terms
from pdfnet.losses.ssim import SSIMLoss, gaussian_window, ssim_terms
from pdfnet.losses.structure import StructureLoss, edge_weight, structure_terms

__all__ = [
    "IntegrityPriorLoss",
    "PDFNetLoss",
    "SSIMLoss",
    "SiLogLoss",
    "StructureLoss",
    "edge_weight",
    "gaussian_window",
    "integrity_terms",
    "object_mean_depth",
    "pdfnet_loss",
    "resize_logits",
    "silog_terms",
    "sobel_magnitude",
    "ssim_terms",
    "structure_terms",
]
