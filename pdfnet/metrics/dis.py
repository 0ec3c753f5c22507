"""The DIS evaluation accumulator: ``DISMetrics`` with ``update``, ``compute``, ``state_dict``, ``merge``.

Dataset aggregates (:data:`AGGREGATE_KEYS`):

* ``maxF`` (**default headline**): max over the 256 thresholds of the dataset-mean F curve (mean over images
  of per-image F(t)); DIS / SOCToolbox / BiRefNet rule. ``meanF``: mean of that curve.
* ``maxF_meanPR``: max over t of ``1.3 P̄(t) R̄(t) / (0.3 P̄(t) + R̄(t) + 1e-16)`` with P̄, R̄ the dataset-mean
  precision / recall curves: the rule of the official PDFNet evaluator (and paper-era MVANet). Higher than
  ``maxF`` on the same data; never compare the two across papers.
* ``maxE`` / ``meanE``: max / mean of the dataset-mean E curve (the DIS papers report ``meanE``).
* ``adpF``, ``adpE``, ``MAE``, ``wF``, ``HCE``: means of the per-image values. ``HCE`` is the official
  IS-Net protocol (raw ``pred > 128``), a float mean of integer per-image values.
* ``S``: mean of the per-image S-measures over the images where S is defined. PySOD returns NaN when the GT
  centroid falls on the last row/column (an empty S-measure block); such images keep their NaN in
  ``per_image`` but are skipped by the dataset mean (``S_undefined`` counts them; a warning is printed by
  the CLI). Rationale: one degenerate GT should not turn the table into NaN (PySOD) nor be scored 0
  (BiRefNet); DIS5K GTs do not hit this case.

Edge cases otherwise follow PySOD 1.6.2 (:mod:`pdfnet.metrics.core`): empty-GT images are *included* (F ≡ 0,
wF = 0, S = 1 − mean(p)), constant predictions are not min-max normalised.

Inputs. ``update(pred, gt)`` takes numpy or torch, ``[H, W]`` (or ``[1, H, W]``), or batches ``[B, H, W]`` /
``[B, 1, H, W]`` through :meth:`DISMetrics.update_batch`:

* prediction ``uint8`` (a saved PNG), or float probabilities in [0, 1], which are quantised exactly as the
  inference writer stores PNGs: ``uint8(clip(p, 0, 1) * 255 + 0.5)`` in float32 (round half up), see
  :func:`quantize_prob`; NaN is an error;
* GT ``uint8`` (foreground > 128), ``bool``, or float ``u8 / 255`` (rounded back to uint8 first).

Light mode. ``DISMetrics(metrics=("maxF", "MAE", "maxF_meanPR"))`` computes only what those need (one
256-bin histogram pair per image, no S blocks, no wF, no HCE): what training validation should use.

Merging (DDP). The state is a set of sums: ``n``, curve sums ``fm/precision/recall/em`` (float64 ``[256]``),
scalar sums and counts, plus optional per-image records. ``merge(other)`` adds another accumulator or its
``state_dict()`` (a dict of plain lists/floats: safe for ``torch.distributed.all_gather_object`` or JSON);
``compute()`` on the merged state equals computing on all images in one process up to float64 summation
order (~1e-16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pdfnet.metrics.record import (
    AGGREGATE_KEYS,
    CURVE_KEYS,
    PER_IMAGE_KEYS,
    evaluate_pair,
)
from pdfnet.metrics.skeleton import SkeletonCache

_SCALAR_SUMS: tuple[str, ...] = ("adpF", "adpE", "MAE", "S", "wF", "HCE")
STATE_VERSION = 1


def quantize_prob(prob: Any) -> np.ndarray:
    """Float probabilities ``[..., H, W]`` in [0, 1] → uint8 ``round(255·p)`` (float32, as the PNG writer).

    Accepts numpy arrays or torch tensors (moved to CPU). Raises ``ValueError`` on NaN.
    """
    if _is_torch(prob):
        import torch  # torch inputs only: this module stays torch-free at import

        t = prob.detach().to(torch.float32)
        if torch.isnan(t).any():
            raise ValueError("prediction contains NaN")
        return (t.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    a = np.asarray(prob).astype(np.float32, copy=False)
    if np.isnan(a).any():
        raise ValueError("prediction contains NaN")
    return (np.clip(a, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _to_numpy(x: Any) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_pred_u8(pred: Any) -> np.ndarray:
    """Prediction → uint8 ``[..., H, W]`` (uint8 as is; float quantised by :func:`quantize_prob`)."""
    if _is_torch(pred):
        import torch  # torch inputs only: this module stays torch-free at import

        if pred.dtype == torch.uint8:
            return pred.detach().cpu().numpy()
        if pred.dtype == torch.bool:
            return pred.detach().cpu().numpy().astype(np.uint8) * 255
        if not pred.dtype.is_floating_point:
            raise TypeError(f"prediction tensor must be uint8, bool or float, got {pred.dtype}")
        return quantize_prob(pred)
    a = np.asarray(pred)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        return quantize_prob(a)
    raise TypeError(f"prediction must be uint8, bool or float in [0, 1], got {a.dtype}")


def to_gt_u8(gt: Any) -> np.ndarray:
    """GT → uint8 ``[..., H, W]`` (bool → 0/255; float ``u8/255`` → rounded back)."""
    a = _to_numpy(gt)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise ValueError("GT contains NaN")
        return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise TypeError(f"GT must be uint8, bool or float in [0, 1], got {a.dtype}")


def _squeeze2d(a: np.ndarray, what: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{what} must be [H, W] (or [1, H, W]), got shape {a.shape}")
    return np.ascontiguousarray(a)


class DISMetrics:
    """Accumulator for the DIS protocol; see the module docstring for definitions and edge cases.

    Args:
        metrics: aggregates to compute (subset of :data:`AGGREGATE_KEYS`); default all.
        keep_per_image: keep per-image scalar records (``per_image`` in :meth:`compute`).
        skeleton_cache: optional :class:`SkeletonCache` (or folder) for GT skeletons used by HCE.
        relax, epsilon: HCE parameters (official 5 and 2.0).
    """

    def __init__(
        self,
        metrics: Sequence[str] | None = None,
        keep_per_image: bool = True,
        skeleton_cache: SkeletonCache | str | None = None,
        relax: int = 5,
        epsilon: float = 2.0,
    ) -> None:
        metrics = tuple(AGGREGATE_KEYS if metrics is None else metrics)
        bad = [m for m in metrics if m not in AGGREGATE_KEYS]
        if bad:
            raise ValueError(f"unknown metric(s) {bad}; choose from {list(AGGREGATE_KEYS)}")
        self.metrics = metrics
        self.keep_per_image = keep_per_image
        if isinstance(skeleton_cache, str):
            skeleton_cache = SkeletonCache(skeleton_cache)
        self.skeleton_cache = skeleton_cache
        self.relax = relax
        self.epsilon = epsilon
        self.reset()

    # -- state ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.n = 0
        self.curve_sums = {k: np.zeros(256, dtype=np.float64) for k in CURVE_KEYS}
        self.sums = {k: 0.0 for k in _SCALAR_SUMS}
        self.counts = {k: 0 for k in _SCALAR_SUMS}
        self.per_image: dict[str, dict[str, float]] = {}

    def add_record(self, rec: dict, name: str | None = None) -> None:
        """Add one per-image record (output of :func:`evaluate_pair`)."""
        self.n += 1
        if "fm" in rec:
            for k in CURVE_KEYS:
                self.curve_sums[k] += rec[k]
        for k in _SCALAR_SUMS:
            if k in rec:
                v = float(rec[k])
                if math.isfinite(v):
                    self.sums[k] += v
                    self.counts[k] += 1
        if self.keep_per_image:
            if name is None:
                name = f"{len(self.per_image):06d}"
            if name in self.per_image:
                raise ValueError(f"duplicate image name {name!r}")
            self.per_image[name] = {k: _py(rec[k]) for k in PER_IMAGE_KEYS if k in rec}

    def update(self, pred: Any, gt: Any, name: str | None = None, skeleton: np.ndarray | None = None) -> dict:
        """Score one image. ``pred``/``gt``: see the module docstring. Returns the per-image record."""
        p = _squeeze2d(to_pred_u8(pred), "prediction")
        g = _squeeze2d(to_gt_u8(gt), "GT")
        rec = evaluate_pair(p, g, self.metrics, skeleton=skeleton, skeleton_cache=self.skeleton_cache,
                            relax=self.relax, epsilon=self.epsilon)
        self.add_record(rec, name)
        return rec

    def update_batch(self, preds: Any, gts: Any, names: Sequence[str] | None = None) -> list[dict]:
        """Score a batch ``[B, H, W]`` / ``[B, 1, H, W]`` (numpy or torch, any device).

        With torch inputs the threshold/MAE histograms run batched on the tensors' device
        (:mod:`pdfnet.metrics.torch_stats`); S, wF and HCE (if requested) run on CPU per image.
        """
        if _is_torch(preds):
            # deferred: the torch path loads torch, which folder scoring (numpy inputs) never needs
            from pdfnet.metrics.torch_stats import batch_records

            recs = batch_records(preds, gts, self.metrics, skeleton_cache=self.skeleton_cache,
                                 relax=self.relax, epsilon=self.epsilon)
            for i, rec in enumerate(recs):
                self.add_record(rec, None if names is None else names[i])
            return recs
        p = to_pred_u8(preds)
        g = to_gt_u8(gts)
        if p.ndim == 4:
            p, g = p[:, 0], g[:, 0] if g.ndim == 4 else g
        out = []
        for i in range(p.shape[0]):
            out.append(self.update(p[i], g[i], None if names is None else names[i]))
        return out

    def state_dict(self) -> dict:
        """Plain-python state (JSON / ``all_gather_object`` safe)."""
        return {
            "version": STATE_VERSION, "metrics": list(self.metrics), "n": self.n,
            "curve_sums": {k: v.tolist() for k, v in self.curve_sums.items()},
            "sums": dict(self.sums), "counts": dict(self.counts), "per_image": dict(self.per_image),
        }

    def merge(self, other: DISMetrics | dict) -> DISMetrics:
        """Add another accumulator (or its :meth:`state_dict`) into this one; returns self."""
        st = other.state_dict() if isinstance(other, DISMetrics) else other
        if st.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported DISMetrics state version {st.get('version')}")
        self.n += int(st["n"])
        for k in CURVE_KEYS:
            self.curve_sums[k] += np.asarray(st["curve_sums"][k], dtype=np.float64)
        for k in _SCALAR_SUMS:
            self.sums[k] += float(st["sums"][k])
            self.counts[k] += int(st["counts"][k])
        for name, rec in st.get("per_image", {}).items():
            if self.keep_per_image:
                if name in self.per_image:
                    raise ValueError(f"duplicate image name {name!r} while merging")
                self.per_image[name] = dict(rec)
        return self

    @classmethod
    def from_state_dict(cls, st: dict) -> DISMetrics:
        m = cls(metrics=st.get("metrics"))
        return m.merge(st)

    # -- results -------------------------------------------------------------------------------------
    def curves(self) -> dict[str, np.ndarray]:
        """Dataset-mean curves ``fm``, ``precision``, ``recall``, ``em`` and ``fm_meanPR`` (``[256]``)."""
        n = max(self.n, 1)
        c = {k: v / n for k, v in self.curve_sums.items()}
        p, r = c["precision"], c["recall"]
        c["fm_meanPR"] = 1.3 * p * r / (0.3 * p + r + 1e-16)
        return c

    def compute(self) -> dict[str, float]:
        """Dataset aggregates (requested ones; NaN when no image was added)."""
        out: dict[str, float] = {}
        c = self.curves()
        for k in self.metrics:
            if k in ("maxF", "meanF", "maxE", "meanE", "maxF_meanPR"):
                if self.n == 0:
                    out[k] = float("nan")
                    continue
                curve = {"maxF": c["fm"], "meanF": c["fm"], "maxE": c["em"], "meanE": c["em"],
                         "maxF_meanPR": c["fm_meanPR"]}[k]
                out[k] = float(curve.max() if k.startswith("max") else curve.mean())
            else:
                cnt = self.counts[k]
                out[k] = self.sums[k] / cnt if cnt else float("nan")
        if "S" in self.metrics:
            out["S_undefined"] = self.n - self.counts["S"]
        out["n_images"] = self.n
        return out


def _py(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v
