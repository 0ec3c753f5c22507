"""The PDFNet training loop (``pdfnet train``): one linear function, :func:`train`.

Read top to bottom it is: set-up (devices, DDP, seeds, run dir) → data → model → optimizer, schedule,
scaler → resume → ``for epoch: for batch: forward, loss, NaN guard, backward, (accumulate), clip, step,
log, validate, checkpoint``.

Semantics worth knowing:

* **Steps** count optimizer updates; one step = ``train.grad_accum`` micro-batches of
  ``train.batch_size`` per process. The global batch is ``batch_size * grad_accum * world_size``.
* **Schedule** is per epoch (the release's timm cosine; constant 1e-5 for the paper recipe).
* **Precision**: ``fp32``; ``bf16`` autocast (CPU or CUDA); ``fp16`` autocast with a ``GradScaler`` on
  CUDA. fp16 autocast on CPU is not a sensible training mode (slow, no scaler), so on CPU ``fp16`` falls
  back to fp32 with a warning; ask for ``bf16`` explicitly for CPU mixed precision.
* **Checkpoints** (rank 0, atomic): ``last.pt`` at each epoch end, every ``save_every_steps``, at the
  end and before stopping on a non-finite loss; ``best.pt`` whenever validation maxF ≥ the best so far
  (the release's rule). ``resume="auto"`` continues from ``<output_dir>/last.pt`` when it exists,
  exactly: an interrupted and resumed run gives the same parameters as an uninterrupted one.
* **DDP** (``torchrun``): sampler shards, rank-0 logging/checkpoints, seed + rank, loss terms and
  validation metrics reduced over ranks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pdfnet.config import Config
from pdfnet.engine import checkpoint as ckpt
from pdfnet.engine import distributed as D
from pdfnet.engine.events import EventSink, image_grid
from pdfnet.engine.optim import build_optimizer
from pdfnet.engine.rundir import setup_run_dir
from pdfnet.engine.schedule import CosineWarmupSchedule
from pdfnet.errors import UserError

LossFn = Callable[[Any, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class NonFiniteLossError(UserError):
    """The loss became NaN/inf; the message names the step and the first non-finite term."""


@dataclass
class TrainResult:
    """What :func:`train` returns (rank 0 has the full picture; other ranks the same numbers)."""

    step: int
    epoch: int
    best_maxF: float | None
    last_val: dict[str, float]
    run_dir: Path
    seconds: float


# --------------------------------------------------------------------------------------------------
# small helpers (each does one thing; the loop below reads linearly)


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_precision(name: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, use GradScaler)`` for ``fp32``/``bf16``/``fp16`` on ``device``."""
    if name == "fp32":
        return None, False
    if name == "bf16":
        return torch.bfloat16, False
    if name == "fp16":
        if device.type == "cuda":
            return torch.float16, True
        warnings.warn("train.precision=fp16 is not supported on CPU (no GradScaler, slow kernels); "
                      "training in fp32 instead. Use train.precision=bf16 for CPU mixed precision.",
                      stacklevel=2)
        return None, False
    raise UserError(f"unknown precision {name!r} (use fp32, bf16 or fp16)")


def autocast_ctx(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _nonfinite_message(terms: dict[str, torch.Tensor], loss: torch.Tensor, step: int, epoch: int,
                       micro: int, run_dir: Path) -> str:
    """Name the step and the first non-finite loss term (or say another rank had it)."""
    if bool(torch.isfinite(loss)):
        where = "on another rank"
    else:
        bad = next((k for k, v in terms.items() if k != "total" and not bool(torch.isfinite(v).all())), None)
        where = f"term '{bad}' = {float(terms[bad])}" if bad else f"total = {float(loss)}"
    return (f"non-finite loss at step {step + 1} (epoch {epoch}, micro-batch {micro}): {where}; "
            f"the state before this step was saved to {run_dir / 'last.pt'}")


def build_train_loader(dataset: Dataset, cfg: Config, info: D.DistInfo, device: torch.device,
                       ) -> tuple[DataLoader, D.ResumableDistributedSampler]:
    """Shuffled, sharded, resumable loader over ``dataset`` (order = f(seed, epoch))."""
    sampler = D.ResumableDistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                            shuffle=True, seed=cfg.train.seed, drop_last=False)
    workers = max(0, cfg.data.num_workers)
    loader = DataLoader(
        dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers, drop_last=True,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(cfg.train.seed + info.rank),
    )
    return loader, sampler


def build_components(cfg: Config, model: nn.Module | None = None, loss_fn: LossFn | None = None,
                     train_set: Dataset | None = None, val_set: Dataset | None = None,
                     ) -> tuple[nn.Module, LossFn, Dataset, Dataset | None]:
    """Build whatever is not given: the model (with pretrained backbone weights when configured), the
    PDFNet loss, the training split and (when validation is on) the validation split."""
    if model is None:
        from pdfnet.models import build_model

        if cfg.model.input_size != cfg.data.size:
            raise UserError(f"model.input_size ({cfg.model.input_size}) must equal data.size "
                            f"({cfg.data.size})")
        try:
            model = build_model(cfg.model)
        except ValueError as e:
            raise UserError(f"cannot build the model: {e}") from None
        _load_backbone_weights(model, cfg)
    if loss_fn is None:
        from pdfnet.losses import PDFNetLoss

        loss_fn = PDFNetLoss(cfg.loss)
    if train_set is None:
        from pdfnet.data import build_eval_dataset, build_train_dataset

        train_set = build_train_dataset(cfg.data, seed=cfg.train.seed)
        if val_set is None and (cfg.train.val_every_epochs or cfg.train.val_every_steps):
            val_set = build_eval_dataset(cfg.data)
    return model, loss_fn, train_set, val_set


def _load_backbone_weights(model: nn.Module, cfg: Config) -> None:
    """``model.backbone_weights``: a local file (or ``timm``) for the built-in Swin; timm backbones
    fetch their own weights in ``build_model``."""
    src = cfg.model.backbone_weights
    if not src or cfg.model.backbone.startswith("timm:"):
        return
    from pdfnet.models.official import load_swin_imagenet

    report = load_swin_imagenet(model.encoder.backbone, src)
    print(f"backbone weights: {report.summary()}")


# --------------------------------------------------------------------------------------------------
# the run: every object the loop needs, built once


@dataclass
class _Run:
    cfg: Config
    info: D.DistInfo
    device: torch.device
    amp_dtype: torch.dtype | None
    run_dir: Path
    model: nn.Module  # what forward calls (maybe DDP / compiled)
    raw_model: nn.Module  # the plain module (checkpoints, validation)
    loss_fn: LossFn
    train_set: Dataset
    val_set: Dataset | None
    loader: DataLoader
    sampler: D.ResumableDistributedSampler
    optimizer: torch.optim.Optimizer
    schedule: CosineWarmupSchedule
    scaler: torch.amp.GradScaler
    events: EventSink
    micro_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    epoch: int = 0
    micro: int = 0  # micro-batches of `epoch` consumed
    best: dict = dataclasses.field(default_factory=dict)
    progress: bool = True

    @property
    def micro_limit(self) -> int:
        """Micro-batches per epoch that fill whole optimizer steps."""
        return self.steps_per_epoch * self.cfg.train.grad_accum

    def save(self, name: str) -> None:
        """Collective (gathers every rank's RNG state); rank 0 writes ``<run_dir>/<name>``.

        The stored position is "continue at micro-batch ``micro`` of ``epoch``" (an epoch end is stored
        as the next epoch's start).
        """
        rngs = D.all_gather_objects(ckpt.get_rng_state())
        epoch, micro = (self.epoch + 1, 0) if self.micro >= self.micro_limit else (self.epoch, self.micro)
        if self.info.is_main:
            ckpt.save_train_state(self.run_dir / name, model=self.raw_model, optimizer=self.optimizer,
                                  schedule=self.schedule, scaler=self.scaler, cfg=self.cfg, step=self.step,
                                  epoch=epoch, batch_in_epoch=micro, best=self.best, rng_per_rank=rngs)


def _setup(cfg: Config, resume: str | None, model: nn.Module | None, loss_fn: LossFn | None,
           train_set: Dataset | None, val_set: Dataset | None) -> _Run:
    """Devices, DDP, seeds, run dir, data, model, optimizer, schedule, scaler; then resume."""
    from pdfnet.utils.device import resolve_device

    tc = cfg.train
    if tc.batch_size < 1 or tc.grad_accum < 1:
        raise UserError("train.batch_size and train.grad_accum must be >= 1")
    device = resolve_device(tc.device)
    info = D.init_distributed(device)
    device = D.local_device(device, info)
    amp_dtype, use_scaler = resolve_precision(tc.precision, device)
    run_dir = Path(tc.output_dir)
    resume_path = _resolve_resume(resume, run_dir)
    if info.is_main:
        setup_run_dir(cfg, run_dir)
    seed_all(tc.seed)  # the same init on every rank (DDP also broadcasts rank 0's weights)
    model, loss_fn, train_set, val_set = build_components(cfg, model, loss_fn, train_set, val_set)
    seed_all(tc.seed + info.rank)

    loader, sampler = build_train_loader(train_set, cfg, info, device)
    micro_per_epoch = len(sampler) // tc.batch_size
    steps_per_epoch = micro_per_epoch // tc.grad_accum
    if steps_per_epoch < 1:
        raise UserError(f"{len(train_set)} training samples give no full step of batch_size={tc.batch_size} "
                        f"x grad_accum={tc.grad_accum} x world_size={info.world_size}")
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)

    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    if tc.grad_checkpointing:
        if not hasattr(model, "set_grad_checkpointing"):
            raise UserError("train.grad_checkpointing: this model has no set_grad_checkpointing()")
        model.set_grad_checkpointing(True)
    model.train()
    optimizer = build_optimizer(model, cfg.optim, device)
    o = cfg.optim
    schedule = CosineWarmupSchedule(lr=o.lr, epochs=tc.epochs, warmup_epochs=o.warmup_epochs,
                                    warmup_lr=o.warmup_lr, min_lr=o.min_lr, kind=o.schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    run = _Run(cfg=cfg, info=info, device=device, amp_dtype=amp_dtype, run_dir=run_dir, model=model,
               raw_model=model, loss_fn=loss_fn, train_set=train_set, val_set=val_set, loader=loader,
               sampler=sampler, optimizer=optimizer, schedule=schedule, scaler=scaler,
               events=EventSink(run_dir, enabled=info.is_main, tensorboard=tc.tensorboard),
               micro_per_epoch=micro_per_epoch, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    if resume_path is not None:
        _restore(run, resume_path)
    if info.enabled:
        run.model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        run.model = torch.compile(run.model)
    return run


def _restore(run: _Run, path: Path) -> None:
    """Load a train state into ``run`` (model, optimizer, schedule, scaler, position, best, RNG)."""
    state = ckpt.load_train_state(path)
    ckpt.load_state_dict_strict(run.raw_model, state["model"], str(path))
    run.optimizer.load_state_dict(state["optimizer"])
    if state.get("schedule"):
        run.schedule.load_state_dict(state["schedule"])
        run.schedule.epochs = run.cfg.train.epochs  # the config may extend the run
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    run.step, run.epoch, run.micro = state["step"], state["epoch"], state["batch_in_epoch"]
    run.best = dict(state["best"])
    rngs = state.get("rng_per_rank") or [state["rng"]]
    if len(rngs) == run.info.world_size:
        ckpt.set_rng_state(rngs[run.info.rank])
    else:  # another world size: the data order stays exact, dropout draws are re-seeded
        seed_all(run.cfg.train.seed + run.info.rank + 1000003 * run.step)
    if run.info.is_main:
        print(f"resumed from {path}: step {run.step}, epoch {run.epoch}, micro-batch {run.micro}")


def _forward_backward(run: _Run, batch: dict, sync: bool) -> tuple[Any, dict[str, torch.Tensor]]:
    """One micro-batch: autocast forward, fp32 loss, NaN guard, scaled backward (no DDP sync unless
    ``sync``). Returns the model output and the detached loss terms."""
    tc = run.cfg.train
    no_sync = run.model.no_sync() if (run.info.enabled and not sync and hasattr(run.model, "no_sync")) \
        else contextlib.nullcontext()
    with no_sync:
        with autocast_ctx(run.device, run.amp_dtype):
            out = run.model(batch["image"], batch["depth"])
        loss, terms = run.loss_fn(out, batch["gt"], batch.get("depth_target"))
        finite = torch.isfinite(loss.detach()).float()
        if run.info.enabled:  # agree over ranks so that nobody hangs in the next collective
            finite = D.all_reduce_mean(finite)
        if float(finite) < 1.0:
            run.micro -= run.micro % tc.grad_accum  # the state before this (accumulated) step
            run.save("last.pt")
            raise NonFiniteLossError(_nonfinite_message(terms, loss, run.step, run.epoch, run.micro,
                                                        run.run_dir))
        run.scaler.scale(loss / tc.grad_accum).backward()
    return out, terms


def _optimizer_step(run: _Run, params: list[nn.Parameter]) -> torch.Tensor:
    """Unscale, clip (or just measure) the gradient norm, step, update the scaler, zero grads."""
    run.scaler.unscale_(run.optimizer)
    clip = run.cfg.optim.clip_grad
    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    return grad_norm


def _validate(run: _Run) -> dict[str, float]:
    """Validation on ``val_set`` (sharded over ranks), logged; writes ``best.pt`` on a new best maxF
    (≥, the release's rule). The training RNG state is left untouched."""
    from pdfnet.engine.evaluate import validate

    rng = ckpt.get_rng_state()
    metrics, grid = validate(run.raw_model, run.val_set, run.cfg, run.device, run.amp_dtype, run.info,
                             progress=run.progress)
    ckpt.set_rng_state(rng)
    run.raw_model.train()
    run.events.put_scalars(run.step, {f"val/{k}": v for k, v in metrics.items()}, kind="val")
    if grid is not None:
        run.events.put_image(run.step, "val/image_pred_gt_depth", grid)
    run.events.flush()
    f = metrics.get("maxF")
    if f is not None and math.isfinite(f) and (run.best.get("maxF") is None or f >= run.best["maxF"]):
        run.best.update({"maxF": float(f), "MAE": float(metrics.get("MAE", float("nan"))), "step": run.step})
        run.save("best.pt")
    if run.info.is_main:
        summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"[val step {run.step}] {summary} (best maxF {run.best.get('maxF', float('nan')):.4f})")
    return metrics


class _Meter:
    """Sums detached loss terms on the device between log points (one host sync per log)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.images = 0
        self.t0 = time.time()

    def add(self, terms: dict[str, torch.Tensor], images: int) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().float()
        self.count += 1
        self.images += images

    def means(self, info: D.DistInfo) -> dict[str, float]:
        """Interval mean of each term, averaged over ranks (one collective), + throughput."""
        out: dict[str, float] = {}
        if self.sums:
            names = sorted(self.sums)
            vec = D.all_reduce_mean(torch.stack([torch.as_tensor(self.sums[k]) for k in names]) / self.count)
            out = {k: float(v) for k, v in zip(names, vec.tolist())}
        out["img_per_s"] = self.images * info.world_size / max(time.time() - self.t0, 1e-9)
        return out


def _log_step(run: _Run, meter: _Meter, bar: Any, lr: float, grad_norm: torch.Tensor, batch: dict,
              out: Any) -> None:
    """Every ``log_every_steps``: interval means of all loss terms, lr, grad norm, throughput → sinks and
    the bar; every ``image_log_every_steps``: an image | prediction | GT | depth grid."""
    tc = run.cfg.train
    if run.step % tc.log_every_steps == 0 or run.step == run.total_steps:
        scalars = meter.means(run.info) | {"lr": lr, "grad_norm": float(grad_norm),
                                           "epoch": run.epoch + run.micro / run.micro_per_epoch}
        run.events.put_scalars(run.step, {f"train/{k}": v for k, v in scalars.items()})
        if bar is not None:
            bar.set_postfix(loss=f"{scalars.get('total', float('nan')):.4f}", lr=f"{lr:.2e}")
        meter.reset()
    if run.info.is_main and tc.image_log_every_steps and run.step % tc.image_log_every_steps == 0:
        run.events.put_image(run.step, "train/image_pred_gt_depth", image_grid(
            batch["image"], torch.sigmoid(out.logits.detach().float()), batch["gt"], batch.get("depth")))


# --------------------------------------------------------------------------------------------------
# the loop


def train(cfg: Config, *, resume: str | None = None, model: nn.Module | None = None,
          loss_fn: LossFn | None = None, train_set: Dataset | None = None, val_set: Dataset | None = None,
          progress: bool = True) -> TrainResult:
    """Train PDFNet as configured.

    Args:
        cfg: the resolved config (written to ``<output_dir>/config.yaml``).
        resume: None (fresh run), ``"auto"`` (``<output_dir>/last.pt`` if present) or a train-state path.
        model, loss_fn, train_set, val_set: injected components (tests); default: built from ``cfg``.
            ``model(image, depth)`` must return an object with ``.logits`` ``[B,1,S,S]``;
            ``loss_fn(out, gt, depth_target) -> (total, named detached 0-d terms)``.
        progress: show a tqdm bar on rank 0.

    Returns:
        :class:`TrainResult`.

    Raises:
        NonFiniteLossError: a NaN/inf loss (after ``last.pt`` was written with the state before it).
    """
    t_start = time.time()
    run = _setup(cfg, resume, model, loss_fn, train_set, val_set)
    run.progress = progress
    tc, info = cfg.train, run.info
    params = [p for p in run.raw_model.parameters() if p.requires_grad]
    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=run.total_steps, initial=min(run.step, run.total_steps), desc="train", unit="step",
                   dynamic_ncols=True)
    meter = _Meter()
    last_val: dict[str, float] = {}
    val_step = -1
    try:
        while run.step < run.total_steps and run.epoch < tc.epochs:
            lr = run.schedule.apply(run.optimizer, run.epoch)
            run.sampler.set_epoch(run.epoch)
            if hasattr(run.train_set, "set_epoch"):
                run.train_set.set_epoch(run.epoch)
            run.sampler.set_start(run.micro * tc.batch_size)  # mid-epoch resume
            for batch in run.loader:
                if run.micro >= run.micro_limit or run.step >= run.total_steps:
                    break
                batch = _to_device(batch, run.device, tc.channels_last)
                sync = (run.micro + 1) % tc.grad_accum == 0
                out, terms = _forward_backward(run, batch, sync)
                meter.add(terms, batch["image"].shape[0])
                run.micro += 1
                if not sync:
                    continue
                grad_norm = _optimizer_step(run, params)
                if bar is not None:
                    bar.update(1)
                _log_step(run, meter, bar, lr, grad_norm, batch, out)
                if run.val_set is not None and tc.val_every_steps and run.step % tc.val_every_steps == 0:
                    last_val, val_step = _validate(run), run.step
                if tc.save_every_steps and run.step % tc.save_every_steps == 0:
                    run.save("last.pt")
                if run.micro >= run.micro_limit or run.step >= run.total_steps:
                    break
            # ---- end of epoch (or of the run) ----
            epoch_done = run.micro >= run.micro_limit
            if epoch_done and run.val_set is not None and tc.val_every_epochs and \
                    (run.epoch + 1) % tc.val_every_epochs == 0 and val_step != run.step:
                last_val, val_step = _validate(run), run.step
            run.save("last.pt")
            if epoch_done:
                run.epoch, run.micro = run.epoch + 1, 0
        if run.val_set is not None and val_step != run.step and run.step > 0:  # a final validation
            last_val, val_step = _validate(run), run.step
            run.save("last.pt")
    except KeyboardInterrupt:
        if info.is_main:
            print(f"\ninterrupted at step {run.step}; `--resume auto` continues from "
                  f"{run.run_dir / 'last.pt'} (written at each epoch end and every train.save_every_steps)")
        raise
    finally:
        if bar is not None:
            bar.close()
        run.events.close()
    D.barrier()
    return TrainResult(step=run.step, epoch=run.epoch, best_maxF=run.best.get("maxF"), last_val=last_val,
                       run_dir=run.run_dir, seconds=time.time() - t_start)


def _resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    if resume is None or resume == "":
        return None
    if resume == "auto":
        p = run_dir / "last.pt"
        return p if p.is_file() else None
    p = Path(resume)
    if p.is_dir():
        p = p / "last.pt"
    if not p.is_file():
        raise UserError(f"--resume: no checkpoint at {p}")
    return p


__all__ = ["NonFiniteLossError", "TrainResult", "autocast_ctx", "build_components", "resolve_precision",
           "seed_all", "train"]
