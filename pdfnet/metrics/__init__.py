"""DIS evaluation metrics: the exact reference protocol (PySODMetrics 1.6.2 + official IS-Net HCE), fast.

Main entry points:

* :class:`DISMetrics` — accumulator: ``update(pred, gt)`` (numpy/torch, uint8 or float probabilities),
  ``compute()``, ``state_dict()`` / ``merge()`` for DDP; light ``metrics=("maxF", "MAE")`` mode.
* :func:`evaluate_pair` — all per-image metrics of one uint8 pair (:mod:`~pdfnet.metrics.record`).
* :func:`evaluate_folders` — score a prediction folder against a GT folder (``pdfnet eval``).
* :func:`write_split_json`, :func:`write_report` — per-split JSONs, paper tables, plots (``pdfnet report``).
* building blocks: :mod:`~pdfnet.metrics.core` (F/E/MAE/S from histograms), :mod:`~pdfnet.metrics.wfm`,
  :mod:`~pdfnet.metrics.hce`, :mod:`~pdfnet.metrics.rdp`, :mod:`~pdfnet.metrics.skeleton`.

The definitions, edge cases and the choices we made are documented in :mod:`pdfnet.metrics.dis` and
:mod:`pdfnet.metrics.core`. :mod:`pdfnet.bench.reference` (PySOD + the official HCE, ported operation for
operation) is for tests and ``pdfnet bench metrics`` only and needs the ``dev`` extras.
"""

from pdfnet.metrics.dis import DISMetrics, quantize_prob, to_gt_u8, to_pred_u8
from pdfnet.metrics.folders import evaluate_folders, pair_folders, read_gray_u8, result_document
from pdfnet.metrics.hce import HCEParts, hce_parts
from pdfnet.metrics.record import AGGREGATE_KEYS, PER_IMAGE_KEYS, evaluate_pair
from pdfnet.metrics.report import load_docs, pool, write_report, write_split_json, write_tables
from pdfnet.metrics.skeleton import SkeletonCache, skeletonize
from pdfnet.metrics.wfm import weighted_fmeasure

__all__ = [
    "AGGREGATE_KEYS", "PER_IMAGE_KEYS", "DISMetrics", "HCEParts", "SkeletonCache", "evaluate_folders",
    "evaluate_pair", "hce_parts", "load_docs", "pair_folders", "pool", "quantize_prob", "read_gray_u8",
    "result_document", "skeletonize", "to_gt_u8", "to_pred_u8", "weighted_fmeasure", "write_report",
    "write_split_json", "write_tables",
]
