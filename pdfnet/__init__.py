"""pdfnet: PDFNet for high-precision dichotomous image segmentation (CVPR 2026)."""

__version__ = "0.1.0"
