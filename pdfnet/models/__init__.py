"""PDFNet network: Swin backbone, three-stream encoder, FSE mask decoder, up-conv head, depth decoder.

Public API: :func:`build_model`, :class:`PDFNet`, :class:`PDFNetOutput`; official weights in
:mod:`pdfnet.models.official` (``from_official_state_dict``, ``load_official_checkpoint``).
"""

from .factory import build_model
from .pdfnet import PDFNet, PDFNetOutput

__all__ = ["PDFNet", "PDFNetOutput", "build_model"]
