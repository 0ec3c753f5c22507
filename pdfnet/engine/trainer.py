"""The PDFNet training loop (``pdfnet train``): :func:`train`, read top to bottom.

Set-up (device, DDP, locked run directory, data, model, optimizer, schedule, scaler, resume) → one loop
over optimizer steps: the checkpoint and validation decisions for the step just done, then the next step
(its micro-batches: forward, loss, non-finite check, backward; then clip, optimizer step, log).

Semantics worth knowing:

* **One counter.** ``step`` counts optimizer updates; everything else is derived from it by the run's
  :class:`~pdfnet.engine.schedule.EpochPlan` (steps of each epoch): the epoch drives the schedule and
  the sampler's permutation, and the data position inside it is ``steps into it x grad_accum``
  micro-batches. One step = ``train.grad_accum`` micro-batches of ``train.batch_size`` per process; the
  global batch is ``batch_size * grad_accum * world_size``.
* **Schedule** is per epoch (the release's timm cosine; constant 1e-5 for the paper recipe).
* **Precision**: ``fp32``; ``bf16`` autocast (CPU or CUDA); ``fp16`` autocast with a ``GradScaler`` on
  CUDA (on CPU fp16 falls back to fp32 with a warning; :func:`pdfnet.utils.precision.amp_precision`).
* **Checkpoints** (rank 0, atomic): ``last.pt`` at each epoch end, every ``save_every_steps``, at the end,
  on SIGINT/SIGTERM (once the current step is complete) and before stopping on a non-finite loss. Then
  validation runs (``val_every_epochs`` / ``val_every_steps`` / the end), so a failing validation never
  costs the step; a score ``>=`` the best so far (the release's rule) writes ``best.pt``, and ``last.pt``
  is rewritten to record the validation. ``resume="auto"`` continues from ``<output_dir>/last.pt``
  exactly: an interrupted and resumed run gives the same parameters as an uninterrupted one.
* **Run directory** (:mod:`pdfnet.engine.rundir`): locked for the run; a start that would replace a train
  state is refused (``--resume auto`` or ``--overwrite``); nothing is written before the resume checks.
* **DDP** (``torchrun``): sampler shards, rank-0 logging/checkpoints, seed + rank, loss terms and
  validation metrics reduced over ranks; every decision that stops the loop is agreed over ranks.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from pdfnet.config import Config
from pdfnet.config.schema import TrainConfig
from pdfnet.data import build_eval_dataset, build_train_dataset, loader_context, shutdown_workers
from pdfnet.data.hard_half import HardHalf, is_hard_epoch
from pdfnet.engine import distributed as D
from pdfnet.engine.checkpoint import Checkpointer, TrainState, get_rng_state, seed_all, set_rng_state
from pdfnet.engine.evaluate import validate
from pdfnet.engine.events import EventSink, image_grid
from pdfnet.engine.finetune import prepare_finetune
from pdfnet.engine.optim import build_optimizer
from pdfnet.engine.rundir import open_run_dir, write_run_files
from pdfnet.engine.schedule import CosineWarmupSchedule, EpochPlan
from pdfnet.errors import UserError
from pdfnet.losses import PDFNetLoss
from pdfnet.metrics.selection import selection_score
from pdfnet.models import build_model
from pdfnet.models.backbone_weights import load_swin_imagenet
from pdfnet.utils.device import resolve_device
from pdfnet.utils.precision import amp_precision, autocast

LossFn = Callable[[Any, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, dict[str, torch.Tensor]]]
#: validation metrics → the score checkpoint selection maximises, ``>=`` winning (None: this validation
#: cannot be ranked); a lower-is-better metric returns its negation (``-MAE``)
ScoreFn = Callable[[Mapping[str, float]], float | None]


class NonFiniteLossError(UserError):
    """The loss became NaN/inf; the message names the step and the first non-finite term."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training once the current step was complete and ``last.pt`` held it."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclass
class TrainResult:
    """What :func:`train` returns (rank 0 has the full picture; other ranks the same numbers)."""

    step: int
    epoch: int
    best_maxF: float | None
    best: dict
    """The kept validation: its metrics, ``score`` and ``step`` (empty when none ran)."""
    last_val: dict[str, float]
    run_dir: Path
    seconds: float


def select_score(metric: str) -> ScoreFn:
    """The checkpoint-selection score for ``train.select_metric`` (:mod:`pdfnet.metrics.selection`): the
    metric, negated for MAE, so that ``>=`` is the release's rule either way."""
    return lambda metrics: selection_score(metrics, metric)


# --------------------------------------------------------------------------------------------------
# the loop


def train(cfg: Config, *, resume: str | None = None, overwrite: bool = False, model: nn.Module | None = None,
          loss_fn: LossFn | None = None, train_set: Dataset | None = None, val_set: Dataset | None = None,
          score_fn: ScoreFn | None = None, progress: bool = True) -> TrainResult:
    """Train PDFNet as configured.

    Args:
        cfg: the resolved config (written to ``<output_dir>/config.yaml``).
        resume: None (fresh run), ``"auto"`` (``<output_dir>/last.pt`` if present) or a train-state path.
        overwrite: start afresh in an ``output_dir`` that holds a run, moving its files into
            ``<output_dir>/previous-<time>/`` first.
        model, loss_fn, train_set, val_set: injected components (tests); default: built from ``cfg``.
            ``model(image, depth)`` must return an object with ``.logits`` ``[B,1,S,S]``;
            ``loss_fn(out, gt, depth_target) -> (total, named detached 0-d terms)``.
        score_fn: validation metrics → the score ``best.pt`` maximises (``>=`` wins, the release's rule);
            default :func:`select_score` of ``train.select_metric``.
        progress: show a tqdm bar on rank 0.

    Raises:
        UserError: a refused start (see :mod:`pdfnet.engine.rundir`), a bad config or checkpoint, a failed
            save; :class:`NonFiniteLossError` after writing ``last.pt`` with the state before that step.
        TrainingInterrupted: SIGINT/SIGTERM, after ``last.pt`` was written.
    """
    t_start, tc = time.time(), cfg.train
    score_fn = score_fn or select_score(tc.select_metric)
    device, info = _init_device(tc)
    amp_dtype, use_scaler = amp_precision(tc.precision, device)
    with open_run_dir(tc.output_dir, resume=resume, overwrite=overwrite, info=info) as run:
        seed_all(tc.seed)  # the same init on every rank (DDP also broadcasts rank 0's weights)
        model, loss_fn, train_set, val_set = build_components(cfg, model, loss_fn, train_set, val_set)
        seed_all(tc.seed + info.rank)
        loader = build_train_loader(train_set, cfg, info, device)
        plan = epoch_plan(len(loader.sampler), tc, info.world_size)
        model = _prepare_model(model, loss_fn, tc, device)  # weights and freezing go before the optimizer
        prepare_finetune(model, tc.init, tc.init_strict, tc.freeze, resuming=run.resume_path is not None,
                         verbose=info.is_main)
        optimizer = build_optimizer(model, cfg.optim, device)  # every parameter that requires grad
        params = [p for group in optimizer.param_groups for p in group["params"]]
        schedule, scaler = build_schedule(cfg), torch.amp.GradScaler(device.type, enabled=use_scaler)
        ckpt = Checkpointer(run.path, model=model, optimizer=optimizer, schedule=schedule, scaler=scaler,
                            cfg=cfg, plan=plan, info=info)
        state = ckpt.load(run.resume_path) if run.resume_path else TrainState()
        if tc.hard_half and state.hard_half is None:
            state.hard_half = HardHalf()
        D.run_on_main(info, write_run_files, cfg, run.path, step=state.step, val_step=state.val_step,
                      resumed_from=run.resume_path)
        net = _wrap_model(model, tc, info, device)
        batches = micro_batches(loader, plan, tc.grad_accum, start_step=state.step, hard=state.hard_half)
        saved_step, last_val, meter = state.step, {}, _Meter()
        with _StopSignals() as stop, contextlib.closing(batches), \
                _sinks(run.path, tc, info, plan, state.step, progress) as (events, bar):
            while True:
                # ---- checkpoint, then validation, for the step just done ----
                stopping = stop.requested(info, device)
                if state.step > saved_step and (stopping or _save_due(state.step, tc, plan)):
                    ckpt.save("last.pt", state)
                    saved_step = state.step
                if not stopping and val_set is not None and state.val_step < state.step and \
                        _val_due(state.step, tc, plan):
                    last_val = _validate(model, val_set, cfg, device, amp_dtype, info, events, state.step,
                                         progress)
                    state.val_step = state.step
                    if _select(state, last_val, score_fn, info):
                        ckpt.save("best.pt", state)
                    ckpt.save("last.pt", state)
                if stopping:
                    raise stop.interrupted(state.step, run.path / "last.pt")
                if state.step >= plan.total:
                    break
                # ---- one optimizer step over grad_accum micro-batches ----
                epoch = plan.locate(state.step)[0]
                lr = schedule.apply(optimizer, epoch)
                for micro in range(tc.grad_accum):
                    batch = _to_device(next(batches), device, tc.channels_last)
                    out, loss, terms, finite = _forward_backward(net, loss_fn, batch, amp_dtype, scaler,
                                                                 micro, tc.grad_accum, info)
                    if not finite:
                        ckpt.save("last.pt", state)
                        raise NonFiniteLossError(_nonfinite_message(terms, loss, state.step, epoch, micro,
                                                                    run.path))
                    meter.add(terms, batch["image"].shape[0])
                    if state.hard_half is not None:  # the release ranks samples by the P0 ("target") loss
                        state.hard_half.record_batch(batch, terms)
                grad_norm = _optimizer_step(optimizer, scaler, params, cfg.optim.clip_grad)
                state.step += 1
                bar.update(1)
                _log_step(events, meter, bar, tc, info, state.step, plan, lr, grad_norm, batch, out)
        D.barrier()
    return TrainResult(step=state.step, epoch=plan.locate(state.step)[0], best_maxF=state.best.get("maxF"),
                       best=dict(state.best), last_val=last_val, run_dir=run.path,
                       seconds=time.time() - t_start)


# --------------------------------------------------------------------------------------------------
# set-up


def _init_device(tc: TrainConfig) -> tuple[torch.device, D.DistInfo]:
    """``train.device`` → this process's device, joining the DDP group under ``torchrun``."""
    if tc.batch_size < 1 or tc.grad_accum < 1:
        raise UserError("train.batch_size and train.grad_accum must be >= 1")
    device = resolve_device(tc.device)
    info = D.init_distributed(device)
    return D.local_device(device, info), info


def build_components(cfg: Config, model: nn.Module | None = None, loss_fn: LossFn | None = None,
                     train_set: Dataset | None = None, val_set: Dataset | None = None,
                     ) -> tuple[nn.Module, LossFn, Dataset, Dataset | None]:
    """Build whatever is not given: the model (with pretrained backbone weights when configured), the
    PDFNet loss, the training split and (when validation is on) the validation split."""
    if model is None:
        if cfg.model.input_size != cfg.data.size:
            raise UserError(f"model.input_size ({cfg.model.input_size}) must equal data.size "
                            f"({cfg.data.size})")
        try:
            model = build_model(cfg.model)
        except ValueError as e:
            raise UserError(f"cannot build the model: {e}") from None
        _load_backbone_weights(model, cfg)
    if loss_fn is None:
        loss_fn = PDFNetLoss(cfg.loss)
    if train_set is None:
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
    report = load_swin_imagenet(model.encoder.backbone, src)
    print(f"backbone weights: {report.summary()}")


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C reaches the whole process group; the main process decides
    when to stop (after the current step), so a worker must not die under it first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_train_loader(dataset: Dataset, cfg: Config, info: D.DistInfo, device: torch.device) -> DataLoader:
    """Shuffled, sharded loader over ``dataset`` whose order is a function of ``(seed, epoch)``; its
    sampler (:class:`~pdfnet.engine.distributed.ResumableDistributedSampler`) can start mid-epoch."""
    sampler = D.ResumableDistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                            shuffle=True, seed=cfg.train.seed, drop_last=False)
    workers = max(0, cfg.data.num_workers)
    return DataLoader(
        dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers, drop_last=True,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
        worker_init_fn=_ignore_stop_signals if workers > 0 else None,
        multiprocessing_context=loader_context(workers),
        generator=torch.Generator().manual_seed(cfg.train.seed + info.rank),
    )


def epoch_plan(samples_per_rank: int, tc: TrainConfig, world_size: int) -> EpochPlan:
    """The run's epochs in optimizer steps: whole steps of ``batch_size x grad_accum`` per epoch (a partial
    step's samples are left out), ``epochs`` of them, capped by ``max_steps``."""
    steps_per_epoch = samples_per_rank // tc.batch_size // tc.grad_accum
    if steps_per_epoch < 1:
        raise UserError(f"{samples_per_rank * world_size} training samples give no full step of "
                        f"batch_size={tc.batch_size} x grad_accum={tc.grad_accum} x world_size={world_size}")
    if not tc.hard_half:
        return EpochPlan.uniform(steps_per_epoch, tc.epochs, tc.max_steps)
    # the release's update_half: odd epochs train on the hardest half of the epoch before, N // 2 steps
    if world_size > 1:
        raise UserError("train.hard_half runs in one process, like the release's update_half (not under "
                        "torchrun)")
    if steps_per_epoch < 2:
        raise UserError(f"train.hard_half needs >= 2 steps per epoch to halve, got {steps_per_epoch}")
    return EpochPlan(tuple(steps_per_epoch // 2 if is_hard_epoch(e) else steps_per_epoch
                           for e in range(tc.epochs)), tc.max_steps)


def build_schedule(cfg: Config) -> CosineWarmupSchedule:
    o = cfg.optim
    return CosineWarmupSchedule(lr=o.lr, epochs=cfg.train.epochs, warmup_epochs=o.warmup_epochs,
                                warmup_lr=o.warmup_lr, min_lr=o.min_lr, kind=o.schedule)


def _prepare_model(model: nn.Module, loss_fn: LossFn, tc: TrainConfig, device: torch.device) -> nn.Module:
    """Device, memory format, gradient checkpointing, train mode."""
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    if tc.grad_checkpointing:
        if not hasattr(model, "set_grad_checkpointing"):
            raise UserError("train.grad_checkpointing: this model has no set_grad_checkpointing()")
        model.set_grad_checkpointing(True)
    return model.train()


def _wrap_model(model: nn.Module, tc: TrainConfig, info: D.DistInfo, device: torch.device) -> nn.Module:
    """What forward calls: DDP under ``torchrun``, then ``torch.compile`` when asked."""
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model) if tc.compile else model


def micro_batches(loader: DataLoader, plan: EpochPlan, grad_accum: int,
                  start_step: int = 0, hard: HardHalf | None = None) -> Iterator[dict]:
    """Micro-batches from optimizer step ``start_step`` to the end of ``plan``: epoch ``e`` is the
    sampler's permutation ``e`` cut to ``plan.steps[e] * grad_accum`` micro-batches; a resume starts
    mid-epoch. An epoch's sampler and dataset are set up only when its first batch is asked for (after
    the previous epoch's checkpoint and validation). With ``hard`` (``train.hard_half``), a starting epoch
    closes the books of the one before and odd epochs keep only its hard half (in their own order)."""
    first, steps_done = plan.locate(start_step)
    try:
        for epoch in range(first, len(plan.steps)):
            loader.sampler.set_epoch(epoch)
            if hard is not None:
                if steps_done == 0 and hard.records:
                    hard.end_epoch()
                loader.sampler.set_subset(hard.allowed(epoch))
            if hasattr(loader.dataset, "set_epoch"):
                loader.dataset.set_epoch(epoch)
            loader.sampler.set_start(steps_done * grad_accum * loader.batch_size)
            yield from itertools.islice(loader, (plan.steps[epoch] - steps_done) * grad_accum)
            steps_done = 0
    finally:  # closed, finished or failed (e.g. an unreadable file): the workers go now, not at exit
        shutdown_workers(loader)


# --------------------------------------------------------------------------------------------------
# one step


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _forward_backward(net: nn.Module, loss_fn: LossFn, batch: dict, amp_dtype: torch.dtype | None,
                      scaler: torch.amp.GradScaler, micro: int, grad_accum: int, info: D.DistInfo,
                      ) -> tuple[Any, torch.Tensor, dict[str, torch.Tensor], bool]:
    """Micro-batch ``micro`` of ``grad_accum``: autocast forward, fp32 loss, scaled backward (under DDP,
    gradients are reduced on the step's last micro-batch only). Returns the model output, the loss, its
    detached terms and whether the loss was finite on every rank; when it was not, nothing is
    back-propagated on any rank (the caller stops)."""
    ddp_no_sync = info.enabled and micro < grad_accum - 1 and hasattr(net, "no_sync")
    with net.no_sync() if ddp_no_sync else contextlib.nullcontext():
        with autocast(batch["image"].device, amp_dtype):
            out = net(batch["image"], batch["depth"])
        loss, terms = loss_fn(out, batch["gt"], batch.get("depth_target"))
        finite = torch.isfinite(loss.detach()).float()
        finite = bool(float(D.all_reduce_mean(finite) if info.enabled else finite) == 1.0)  # agreed
        if finite:
            scaler.scale(loss / grad_accum).backward()
    return out, loss, terms, finite


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


def _optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    params: list[nn.Parameter], clip: float | None) -> torch.Tensor:
    """Unscale, clip (or just measure) the gradient norm, step, update the scaler, zero grads; returns
    the norm before clipping."""
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


@contextlib.contextmanager
def _sinks(run_dir: Path, tc: TrainConfig, info: D.DistInfo, plan: EpochPlan, step: int,
           progress: bool) -> Iterator[tuple[EventSink, Any]]:
    """The metrics sinks (``metrics.jsonl``, TensorBoard; rank 0) and the progress bar, from ``step`` on."""
    events = EventSink(run_dir, enabled=info.is_main, tensorboard=tc.tensorboard, purge_step=step + 1)
    bar = tqdm(total=plan.total, initial=step, desc="train", unit="step", dynamic_ncols=True,
               disable=not (progress and info.is_main))
    try:
        yield events, bar
    finally:
        bar.close()
        events.close()


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


def _log_step(events: EventSink, meter: _Meter, bar: Any, tc: TrainConfig, info: D.DistInfo, step: int,
              plan: EpochPlan, lr: float, grad_norm: torch.Tensor, batch: dict, out: Any) -> None:
    """Every ``log_every_steps``: interval means of all loss terms, lr, grad norm, throughput → sinks and
    the bar; every ``image_log_every_steps``: an image | prediction | GT | depth grid."""
    if step % tc.log_every_steps == 0 or step == plan.total:
        epoch, done = plan.locate(step)
        scalars = meter.means(info) | {"lr": lr, "grad_norm": float(grad_norm),
                                       "epoch": epoch + done / plan.steps[epoch] if done else epoch}
        events.put_scalars(step, {f"train/{k}": v for k, v in scalars.items()})
        bar.set_postfix(loss=f"{scalars.get('total', float('nan')):.4f}", lr=f"{lr:.2e}")
        meter.reset()
    if info.is_main and tc.image_log_every_steps and step % tc.image_log_every_steps == 0:
        events.put_image(step, "train/image_pred_gt_depth", image_grid(
            batch["image"], torch.sigmoid(out.logits.detach().float()), batch["gt"], batch.get("depth")))


# --------------------------------------------------------------------------------------------------
# checkpoint and validation decisions


def _save_due(step: int, tc: TrainConfig, plan: EpochPlan) -> bool:
    """``last.pt`` after ``step``: at each epoch end, at the end, every ``save_every_steps``."""
    return step > 0 and (plan.is_epoch_end(step) or step == plan.total
                         or bool(tc.save_every_steps and step % tc.save_every_steps == 0))


def _val_due(step: int, tc: TrainConfig, plan: EpochPlan) -> bool:
    """Validation after ``step``: every ``val_every_steps``, every ``val_every_epochs``-th epoch end, and
    once at the end of the run."""
    by_epoch = bool(tc.val_every_epochs and plan.is_epoch_end(step)
                    and plan.locate(step)[0] % tc.val_every_epochs == 0)
    return step > 0 and (step == plan.total or by_epoch
                         or bool(tc.val_every_steps and step % tc.val_every_steps == 0))


def _validate(model: nn.Module, val_set: Dataset, cfg: Config, device: torch.device,
              amp_dtype: torch.dtype | None, info: D.DistInfo, events: EventSink, step: int,
              progress: bool) -> dict[str, float]:
    """Validation on ``val_set`` (sharded over ranks), logged at ``step``. The training RNG state is left
    untouched and the model goes back to train mode."""
    rng = get_rng_state()
    metrics, grid = validate(model, val_set, cfg, device, amp_dtype, info, progress=progress)
    set_rng_state(rng)
    model.train()
    events.put_scalars(step, {f"val/{k}": v for k, v in metrics.items()}, kind="val")
    if grid is not None:
        events.put_image(step, "val/image_pred_gt_depth", grid)
    events.flush()
    return metrics


def _select(state: TrainState, metrics: dict[str, float], score_fn: ScoreFn, info: D.DistInfo) -> bool:
    """Whether ``metrics`` (at ``state.step``) is the best validation so far (``>=``, the release's rule);
    if so ``state.best`` records it."""
    score = score_fn(metrics)
    better = score is not None and (state.best.get("score") is None or score >= state.best["score"])
    if better:
        state.best = {**metrics, "score": float(score), "step": state.step}
    if info.is_main:
        summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"[val step {state.step}] {summary} (best score {state.best.get('score', float('nan')):.4f} "
              f"at step {state.best.get('step', '-')})")
    return better


class _StopSignals:
    """SIGINT/SIGTERM → a request the loop honours once the current step is complete (it saves
    ``last.pt`` and raises :class:`TrainingInterrupted`). A second signal acts at once, as before.
    Handlers are installed only in the main thread (elsewhere signals keep their behaviour)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        for s, handler in self._previous.items():  # the next signal: the previous behaviour
            signal.signal(s, handler)

    def requested(self, info: D.DistInfo, device: torch.device) -> bool:
        """Whether any rank was signalled (agreed over ranks: they all stop after the same step)."""
        if not info.enabled:
            return self.signum is not None
        return float(D.all_reduce_mean(torch.tensor(float(self.signum is not None), device=device))) > 0

    def interrupted(self, step: int, last: Path) -> TrainingInterrupted:
        signum = self.signum or signal.SIGTERM
        what = f"stopped by {signal.Signals(signum).name} after step {step}"
        saved = f"{last} holds it; --resume auto continues" if step > 0 else "nothing to save yet"
        return TrainingInterrupted(f"{what}; {saved}", int(signum))


__all__ = ["NonFiniteLossError", "ScoreFn", "TrainResult", "TrainingInterrupted", "build_components",
           "build_schedule", "build_train_loader", "epoch_plan", "micro_batches", "select_score", "train"]
