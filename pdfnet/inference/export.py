"""ONNX export of the PDFNet segmentation network (image + depth in, P0 logits out; no depth decoder).

Exporter: ``torch.export`` + ``torch.onnx.export(..., dynamo=True)`` (onnxscript), the exporter that
works with torch 2.14 for this model. The legacy TorchScript exporter fails on it (an internal
shape-inference assert in a reshape). Two things make the dynamo path work:

* SDPA is traced with the **math** backend (:func:`torch.nn.attention.sdpa_kernel`): with the CPU
  flash kernel, ``torch.export``'s fake strides and the decomposed graph disagree and the
  decomposition fails. The math backend computes the same attention (explicit softmax in the graph).
* the model's depth min–max uses ``min()``/``max()`` (``amin()`` without dims has no onnxscript
  translation).

Graph contract (also stored as ONNX metadata):

* inputs ``image`` float32 ``[B, 3, S, S]`` (ImageNet-normalised RGB) and ``depth`` float32
  ``[B, 1, S, S]``; output ``logits`` float32 ``[B, 1, S, S]`` (apply a sigmoid for the mask);
* ``B`` is fixed to 1, or symbolic with ``dynamic_batch`` (exported from a batch of 2); ``S`` is fixed;
* like the release, the graph min–max normalises ``depth`` over the **whole batch**. Min–max each
  map to [0, 1] yourself (as :class:`pdfnet.inference.Predictor` does) so batched results equal
  single-image ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from pdfnet.errors import UserError
from pdfnet.utils.atomic import atomic_path
from pdfnet.utils.normalize import minmax_normalize

#: ONNX tolerance for ``check``: |onnxruntime − PyTorch| on the logits, fp32 CPU. Measured on random
#: tiny models: ≤ 4e-6 (logits |max| ~ 1); the release network's longer chains are allowed 1e-3.
DEFAULT_ATOL = 1e-3
DEFAULT_OPSET = 18


class SegmentationNetwork(nn.Module):
    """The inference graph: ``(image [B,3,S,S], depth [B,1,S,S]) -> logits [B,1,S,S]`` (P0 only)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.model(image, depth, with_depth_decoder=False).logits


@dataclass
class ExportReport:
    """What :func:`export_onnx` did: the file, the opset, and the onnxruntime check (if run)."""

    path: Path
    opset: int
    size: int
    dynamic_batch: bool
    max_abs_diff: dict[int, float] = field(default_factory=dict)
    """batch size → max |onnxruntime − PyTorch| over the logits (empty when not checked)."""


def example_inputs(size: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic inputs: normal image ``[B,3,S,S]``, smooth per-image [0,1] depth ``[B,1,S,S]``."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, size, size, generator=g)
    coarse = torch.rand(batch, 1, 8, 8, generator=g)
    depth = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return image, minmax_normalize(depth, "per_sample")


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    size: int,
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    optimize: bool = True,
    check: bool = True,
    atol: float = DEFAULT_ATOL,
) -> ExportReport:
    """Export ``model``'s segmentation path to ONNX at ``path`` (atomic write), optionally verified.

    Args:
        model: a PDFNet (its depth decoder, if any, is not part of the graph). Exported on CPU, fp32.
        path: output ``.onnx`` file.
        size: the square input side S (fixed in the graph).
        dynamic_batch: symbolic batch axis ``B`` (else B = 1).
        opset: ONNX opset (18 default).
        optimize: run the ONNX exporter's graph optimisation (constant folding, redundant-op removal).
        check: run the file with onnxruntime (CPU) on fixed inputs (B = 1, and B = 3 with
            ``dynamic_batch``) and compare with PyTorch; skipped with a note if onnxruntime is missing.
        atol: maximum accepted |onnxruntime − PyTorch| on the logits.

    Raises:
        UserError: ``onnx``/``onnxscript`` missing, unsupported size, or the check fails.
    """
    try:  # the optional export extra: a clear message when it is missing
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise UserError(f"ONNX export needs the 'export' extra (pip install 'pdfnet[export]'): {e}") from None
    check_size = getattr(model, "check_input_size", None)
    if check_size is not None:
        try:
            check_size(size)
        except ValueError as e:
            raise UserError(str(e)) from None
    net = SegmentationNetwork(model).to("cpu").float().eval()
    args = example_inputs(size, 2 if dynamic_batch else 1)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=4096)
        dynamic_shapes = ({0: batch}, {0: batch})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        # One eager forward first: the Swin caches shape-only constants (lru_cache); if the first call
        # happened under torch.export's fake-tensor tracing, FakeTensors would be cached and every
        # later eager forward of this model would return FakeTensors.
        net(*args)
        program = torch.export.export(net, args, dynamic_shapes=dynamic_shapes)
        onnx_program = torch.onnx.export(
            program, args, dynamo=True, input_names=["image", "depth"], output_names=["logits"],
            opset_version=opset, optimize=optimize, verify=False,
        )
    meta = {
        "producer": "pdfnet",
        "inputs": f"image float32 [B,3,{size},{size}] ImageNet-normalised RGB; depth float32 "
                  f"[B,1,{size},{size}] min-max normalised per image to [0,1] (the graph min-max "
                  "normalises over the whole batch)",
        "output": f"logits float32 [B,1,{size},{size}] (sigmoid -> mask)",
        "batch": "dynamic" if dynamic_batch else "1",
    }
    for k, v in meta.items():
        onnx_program.model.metadata_props[k] = v
    with atomic_path(path) as tmp:
        onnx_program.save(str(tmp))
    report = ExportReport(path=path, opset=opset, size=size, dynamic_batch=dynamic_batch)
    if check:
        report.max_abs_diff = verify_onnx(net, path, size=size, batches=(1, 3) if dynamic_batch else (1,),
                                          atol=atol)
    return report


def verify_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    *,
    size: int,
    batches: tuple[int, ...] = (1,),
    atol: float = DEFAULT_ATOL,
) -> dict[int, float]:
    """Run ``path`` with onnxruntime (CPU) and compare the logits with ``net`` (PyTorch, fp32).

    Returns:
        batch size → max |ort − torch|; empty if onnxruntime is not installed.

    Raises:
        UserError: a difference above ``atol`` (or non-finite output).
    """
    try:  # onnxruntime: the optional export extra
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a dev dependency
        return {}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs = {}
    for b in batches:
        image, depth = example_inputs(size, b, seed=1)
        with torch.no_grad():
            ref = net(image, depth).numpy()
        got = sess.run(["logits"], {"image": image.numpy(), "depth": depth.numpy()})[0]
        if got.shape != ref.shape:
            raise UserError(f"ONNX check: output shape {got.shape} != PyTorch {ref.shape} at batch {b}")
        diff = float(np.max(np.abs(got - ref))) if np.isfinite(got).all() else float("inf")
        diffs[b] = diff
        if not diff <= atol:
            raise UserError(f"ONNX check failed at batch {b}: max |onnxruntime - torch| = {diff:.3g} "
                            f"> {atol:g}")
    return diffs
