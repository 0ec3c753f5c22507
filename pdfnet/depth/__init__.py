"""Pseudo-depth with Depth Anything V2 (via transformers): official conventions, batched, idempotent.

Public API:

* :data:`DEPTH_MODELS` — alias (``small``, ``base``, ``large``, ``large_1024``) → hub id + input size.
* :func:`depth_folder_name` — ``depth_<name>``, the folder the dataset reads inside each split.
* :class:`DepthEstimator` — ``DepthEstimator.from_pretrained(name, device=..., dtype=...)``;
  ``est(list of RGB uint8 [H, W, 3]) -> list of float32 [H, W]`` (relative inverse depth, near = large).
* :func:`to_uint8` / :func:`to_uint16` — per-image min–max quantisation (what the folders store).
* :func:`plan_dataset`, :func:`plan_folder`, :func:`run_depth` — the ``pdfnet depth`` pipeline;
  :func:`time_depth` — the same pipeline over a list of files without writing, with timings.
(The GPU-only timing of a depth model lives with the benchmark tools: :mod:`pdfnet.bench.depth`.)
"""

from pdfnet.depth.estimator import DepthEstimator, load_depth_model, resolve_depth_dtype
from pdfnet.depth.official import use_official_pos_interp
from pdfnet.depth.precompute import (
    DepthJob,
    DepthRunStats,
    DepthTarget,
    is_finished,
    plan_dataset,
    plan_folder,
    run_depth,
    time_depth,
)
from pdfnet.depth.registry import (
    ALL_ALIASES,
    DEPTH_MODELS,
    TARGET_ALIAS,
    DepthModelSpec,
    depth_folder_name,
    parse_model_paths,
    resolve_source,
    validate_name,
)
from pdfnet.depth.transforms import preprocess, target_size, to_uint8, to_uint16

__all__ = [
    "ALL_ALIASES",
    "DEPTH_MODELS",
    "TARGET_ALIAS",
    "DepthEstimator",
    "DepthJob",
    "DepthModelSpec",
    "DepthRunStats",
    "DepthTarget",
    "depth_folder_name",
    "is_finished",
    "load_depth_model",
    "parse_model_paths",
    "plan_dataset",
    "plan_folder",
    "preprocess",
    "resolve_depth_dtype",
    "resolve_source",
    "run_depth",
    "target_size",
    "time_depth",
    "to_uint16",
    "to_uint8",
    "use_official_pos_interp",
    "validate_name",
]
