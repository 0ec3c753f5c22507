"""Inference for users: :class:`Predictor` (Python API), folder prediction, TTA and ONNX export.

* :class:`Predictor` — ``Predictor.from_pretrained(ckpt_or_hub_id, depth_model=...)(images)`` → masks.
* :func:`tta_logits` — the release's 6-pass flip × scale TTA over any ``forward(image, depth)``; shared
  with the evaluation engine.
* :func:`predict_files` — what ``pdfnet predict`` runs.
* :func:`pdfnet.inference.export.export_onnx` — what ``pdfnet export`` runs (imported lazily: onnx).
"""

from pdfnet.inference.predictor import Prediction, Predictor
from pdfnet.inference.run import PredictReport, predict_files
from pdfnet.inference.tta import TTA_SCALES, scaled_side, tta_logits

__all__ = [
    "Prediction", "PredictReport", "Predictor", "TTA_SCALES", "predict_files",
    "scaled_side", "tta_logits",
]
