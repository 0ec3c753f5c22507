"""Model evaluation: in-training validation and ``pdfnet eval --ckpt`` (model mode).

* :func:`validate` (used by the trainer): predictions at the model's input size against the dataset's
  GT resized to the same size (the release's DIS-VD check), maxF and MAE from the metrics package fed
  with tensors (no PNG round trip), sharded over DDP ranks and merged.
* :func:`evaluate_model`: every requested split at the config input size (1024² by default), optional
  6-pass flip × scale TTA averaging logits, each prediction resized back to its GT's original size (as
  the release's ``Test.py`` does) and scored against the original-resolution GT; per-split JSONs, the
  paper table and plots via the metrics package; optional PNGs of the predictions.

Depth inputs are min–max normalised per image before the forward pass, so a batch of several images
gives exactly the per-image (B = 1) result of the release.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pdfnet.config import Config
from pdfnet.data import build_dataloader, build_eval_dataset, check_data
from pdfnet.engine import distributed as D
from pdfnet.engine.events import image_grid
from pdfnet.errors import UserError
from pdfnet.inference.checkpoint import load_model_for_inference
from pdfnet.inference.fast import FastPathOptions, apply_fast_path
from pdfnet.inference.predictor import model_size_step
from pdfnet.inference.preprocess import prob_to_size, prob_to_uint8
from pdfnet.inference.tta import tta_logits
from pdfnet.metrics import DISMetrics, write_report, write_split_json
from pdfnet.metrics.selection import ReleaseF
from pdfnet.utils.fs import check_output_dir, safe_name
from pdfnet.utils.io import read_alpha, read_gray, write_image
from pdfnet.utils.normalize import minmax_normalize
from pdfnet.utils.precision import amp_precision, autocast


def size_step(model: nn.Module) -> int:
    """The model's side granularity (TTA rounds scaled sides to it)."""
    return model_size_step(model)


@torch.no_grad()
def predict_logits(model: nn.Module, image: torch.Tensor, depth: torch.Tensor, *,
                   amp_dtype: torch.dtype | None = None, tta: bool = False, step: int = 32) -> torch.Tensor:
    """P0 logits for a batch, fp32.

    Args:
        model: PDFNet (``model(image, depth).logits``), in eval mode.
        image: ``[B, 3, S, S]`` normalised RGB on the model's device.
        depth: ``[B, 1, S, S]`` depth in [0, 1]; min–max normalised per image here.
        amp_dtype: autocast dtype or None for fp32.
        tta: 6-pass flip × scale {0.75, 1, 1.25} averaging of logits.
        step: side granularity for the TTA scales.

    Returns:
        ``[B, 1, S, S]`` fp32 logits.
    """
    depth = minmax_normalize(depth.float(), "per_sample")

    def forward(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        with autocast(x.device, amp_dtype):
            return model(x, d).logits.float()

    if tta:
        return tta_logits(forward, image, depth, size_step=step)
    return forward(image, depth)


def iterate_predictions(model: nn.Module, dataset: Dataset, *, device: torch.device,
                        amp_dtype: torch.dtype | None, tta: bool, batch_size: int, workers: int,
                        info: D.DistInfo, progress: str | None = None,
                        ) -> Iterator[tuple[torch.Tensor, dict]]:
    """Yield ``(prob [B,1,S,S] fp32 on device, batch)`` over this rank's shard of ``dataset``."""
    loader = build_dataloader(dataset, batch_size, train=False, num_workers=workers, rank=info.rank,
                              world_size=info.world_size, pin_memory=device.type == "cuda")
    model.eval()
    step = size_step(model)
    it: Any = loader
    if progress and info.is_main:
        it = tqdm(loader, desc=progress, unit="batch", dynamic_ncols=True, leave=False)
    for batch in it:
        image = batch["image"].to(device, non_blocking=True)
        depth = batch["depth"].to(device, non_blocking=True)
        logits = predict_logits(model, image, depth, amp_dtype=amp_dtype, tta=tta, step=step)
        yield torch.sigmoid(logits), batch


VAL_METRICS: tuple[str, ...] = ("maxF", "MAE", "maxF_meanPR")
"""Validation: the headline maxF (mean-F curve), MAE and the official evaluator's F(mean P, mean R)."""


def _merge(acc: Any) -> Any:
    """All ranks' accumulators merged in rank order (every rank gets the merged one)."""
    parts = D.all_gather_objects(acc.state_dict())
    merged = DISMetrics(metrics=acc.metrics, keep_per_image=acc.keep_per_image)
    for st in parts:
        merged.merge(st)
    return merged


@torch.no_grad()
def validate(model: nn.Module, val_set: Dataset, cfg: Config, device: torch.device,
             amp_dtype: torch.dtype | None, info: D.DistInfo, progress: bool = True,
             ) -> tuple[dict[str, float], torch.Tensor | None]:
    """Validation scores on ``val_set`` at the model's input size (sharded, merged over ranks).

    Every score ``train.select_metric`` can name is computed: the release's own validation F and MAE
    (``release_F``, ``release_MAE``: :class:`pdfnet.metrics.selection.ReleaseF` on the raw sigmoid
    maps), the DIS ``maxF``, ``maxF_meanPR`` and ``MAE``, and ``wF`` when it is the selection metric (it
    is the costly one).

    Args:
        amp_dtype: the training autocast dtype; used only with ``train.val_precision: train`` — by default
            validation runs in fp32 without autocast, as the release's does.

    Returns:
        ``(metrics, grid)``: ``{"release_F", "release_MAE", "maxF", "MAE", "maxF_meanPR"[, "wF"]}`` floats and
        an image grid of the first batch (rank 0; None elsewhere).
    """
    keys = VAL_METRICS + (("wF",) if cfg.train.select_metric == "wF" else ())
    acc = DISMetrics(metrics=keys, keep_per_image=False)
    release = ReleaseF()
    amp = amp_dtype if cfg.train.val_precision == "train" else None
    grid = None
    for prob, batch in iterate_predictions(model, val_set, device=device, amp_dtype=amp, tta=False,
                                           batch_size=cfg.eval.batch_size, workers=cfg.eval.num_workers,
                                           info=info, progress="val" if progress else None):
        gt = batch["gt"].to(prob.device)
        acc.update_batch(prob, gt)  # tensors, batched histograms on the device
        release.update(prob, gt)
        if grid is None and info.is_main:
            grid = image_grid(batch["image"], prob.cpu(), batch["gt"], batch.get("depth"))
    res = _merge(acc).compute()
    merged = ReleaseF()
    for st in D.all_gather_objects(release.state_dict()):
        merged.merge(st)
    return merged.compute() | {k: float(res[k]) for k in keys if k in res}, grid


def evaluate_model(cfg: Config, ckpt: str | os.PathLike, *, splits: list[str], out_dir: str | os.PathLike,
                   tta: bool = False, save_preds: str | os.PathLike | None = None,
                   device: torch.device | str = "cpu", size: int | None = None,
                   progress: bool = True) -> dict[str, dict]:
    """Run a checkpoint on DIS splits and score it against the original-resolution GTs.

    Args:
        cfg: config for the data (``data.root``, ``data.eval_depth``) and ``eval.*`` (batch size, workers,
            precision, fast); the model's architecture comes from the checkpoint.
        ckpt: anything :func:`pdfnet.inference.checkpoint.load_model_for_inference` accepts.
        splits: split folder names under ``data.root``.
        out_dir: where ``<split>.json``, the tables and the plots go.
        tta: 6-pass flip × scale TTA (logits averaged).
        save_preds: also write ``<save_preds>/<split>/<stem>.png`` (original size, uint8).
        device: torch device (under ``torchrun`` each rank takes a shard; rank 0 writes).
        size: network input side (default: the checkpoint's ``model.input_size``).
        progress: tqdm bars.

    Returns:
        ``{split: aggregate metrics}`` (``maxF``, ``wF``, ``meanE``, ``S``, ``MAE``, ``HCE``, ...).
    """

    device = torch.device(device)
    info = D.current_info()
    for split in splits:  # split names become file names under out_dir / save_preds
        safe_name(split, "split")
    if info.is_main:  # outputs usable before any inference
        check_output_dir(out_dir, "--out-dir")
        if save_preds is not None:
            check_output_dir(save_preds, "--save-preds")
    check_data(cfg.data, eval_splits=splits, progress=progress and info.is_main)  # every split, before work
    model, model_cfg = load_model_for_inference(ckpt, device)
    if cfg.eval.fast:
        apply_fast_path(model, FastPathOptions.best_for(device))
    size = int(size or model_cfg.model.input_size)
    amp_dtype, _ = amp_precision(cfg.eval.precision, device)
    out_dir = Path(out_dir)
    results: dict[str, dict] = {}
    for split in splits:
        ds = build_eval_dataset(cfg.data, split=split, size=size, check=False)  # checked above
        acc = DISMetrics()
        for prob, batch in iterate_predictions(model, ds, device=device, amp_dtype=amp_dtype, tta=tta,
                                               batch_size=cfg.eval.batch_size, workers=cfg.eval.num_workers,
                                               info=info, progress=split if progress else None):
            for i in range(prob.shape[0]):
                h, w = (int(v) for v in batch["orig_size"][i])
                pred = prob_to_uint8(prob_to_size(prob[i:i + 1], (h, w)))  # the release: back to W×H
                gt_path = batch["gt_path"][i]
                gt = read_alpha(gt_path) if bool(batch["gt_alpha"][i]) else read_gray(gt_path)
                if gt.shape != (h, w):
                    raise UserError(f"{split}: GT {batch['gt_path'][i]} is {gt.shape}, the image {(h, w)}")
                acc.update(pred, gt, name=batch["stem"][i])
                if save_preds is not None:
                    write_image(Path(save_preds) / split / f"{batch['stem'][i]}.png", pred)
        acc = _merge(acc)
        results[split] = acc.compute()
        if info.is_main:
            meta = {"tta": tta, "resolution": size, "checkpoint": str(ckpt), "depth": cfg.data.eval_depth}
            write_split_json(acc, split, out_dir, meta=meta)
    if info.is_main:
        write_report(results, out_dir)
    return results
