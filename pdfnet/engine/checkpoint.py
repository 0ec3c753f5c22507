"""Train states: resumable checkpoints of a run (``last.pt`` / ``best.pt`` in the run directory).

A train state holds the model, optimizer, schedule, grad scaler, step/epoch/sampler position, RNG states
and the resolved config. Everything is stored as tensors or plain Python types so
``torch.load(..., weights_only=True)`` can read it back. Every write is atomic (temp file in the destination
folder, then ``os.replace``). :class:`TrainState` is what the loop carries; :class:`Checkpointer` saves and
restores it with the modules. Reading checkpoints for inference and the safetensors release live in
:mod:`pdfnet.inference.checkpoint` (this module reads train states through it).
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pdfnet.config import Config, config_to_dict, dump_config
from pdfnet.data.hard_half import HardHalf
from pdfnet.engine import distributed as D
from pdfnet.engine.schedule import EpochPlan
from pdfnet.errors import CheckpointError, UserError
from pdfnet.inference.checkpoint import (
    TRAIN_STATE_FORMAT,
    TRAIN_STATE_VERSION,
    is_train_state,
    load_state_dict_strict,
    torch_load,
    unwrap_model,
)
from pdfnet.utils.atomic import file_mode

# --------------------------------------------------------------------------------------------------
# atomic writes


class _WriteErrors:
    """A binary file wrapper that remembers the first ``OSError`` of a write: ``torch.save`` turns it
    into ``RuntimeError: ... unexpected pos ...``, which says nothing about the disk being full."""

    def __init__(self, f: Any):
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``.

    On any failure the temp file is removed and ``path`` is untouched; a failed write (disk full,
    quota, read-only) raises the ``OSError`` itself, with ``filename`` set to ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # the umask's permissions, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            w = _WriteErrors(f)
            try:
                torch.save(obj, w)
                f.flush()
            except RuntimeError:
                if w.error is None:
                    raise
                raise w.error from None
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------------
# RNG states as tensors / plain types


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """Python, NumPy, torch CPU (and CUDA, when available) RNG states in ``weights_only``-safe form."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping) -> None:
    """Restore what :func:`get_rng_state` captured (CUDA states only when the device count matches)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------------------
# train state


def save_train_state(path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                     schedule: Any, scaler: Any | None, cfg: Config, step: int, epoch: int,
                     batch_in_epoch: int, best: Mapping[str, Any] | None = None,
                     rng_per_rank: list | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a resumable train state atomically.

    Args:
        step: optimizer steps completed so far.
        epoch: current epoch (0-based).
        batch_in_epoch: micro-batches of ``epoch`` already consumed (sampler position; 0 at an epoch end
            means "start ``epoch``" — the caller advances ``epoch`` itself).
        best: best-checkpoint bookkeeping, e.g. ``{"maxF": 0.9, "step": 120}``.
        rng_per_rank: every DDP rank's :func:`get_rng_state` (rank order); default: this process's.
    """
    state = {
        "format": TRAIN_STATE_FORMAT,
        "version": TRAIN_STATE_VERSION,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "step": int(step),
        "epoch": int(epoch),
        "batch_in_epoch": int(batch_in_epoch),
        "best": dict(best or {}),
        "rng": get_rng_state(),
        "rng_per_rank": list(rng_per_rank) if rng_per_rank is not None else None,
        "config": config_to_dict(cfg),
        "config_yaml": dump_config(cfg),
        "torch_version": str(torch.__version__),
        "extra": dict(extra or {}),
    }
    return atomic_torch_save(state, path)


def load_train_state(path: str | os.PathLike) -> dict:
    """Read a train state (``weights_only=True``) and check its format marker."""
    state = torch_load(path)
    if not is_train_state(state):
        raise CheckpointError(f"{path} is not a pdfnet train state (no '{TRAIN_STATE_FORMAT}' marker)")
    if state.get("version", 0) > TRAIN_STATE_VERSION:
        raise CheckpointError(f"{path}: train-state version {state['version']} is newer than this pdfnet")
    check_train_state(state, path)
    return state


#: entries every train state has, with the type each must be (what resuming reads)
_TRAIN_STATE_ENTRIES: dict[str, type | tuple[type, ...]] = {
    "model": Mapping, "optimizer": Mapping, "step": int, "epoch": int, "batch_in_epoch": int, "best": Mapping,
    "rng": Mapping, "config_yaml": str,
}


def check_train_state(state: Mapping, path: str | os.PathLike) -> None:
    """Refuse a train state whose entries are missing or of the wrong type (a damaged or hand-made file
    that is safe to read but would fail with a KeyError deep in the resume) with one line."""
    bad = [k for k, tp in _TRAIN_STATE_ENTRIES.items()
           if not isinstance(state.get(k), tp) or isinstance(state.get(k), bool)]
    if bad:
        raise CheckpointError(f"{path}: malformed train state (missing or wrong: {', '.join(bad)}); it "
                              "cannot be resumed or exported")


@dataclasses.dataclass
class TrainState:
    """What the training loop itself carries from step to step (the modules carry the rest).

    Attributes:
        step: optimizer steps done. The data position follows from it (:class:`EpochPlan`): the epoch
            and ``steps into it x grad_accum`` micro-batches of it.
        best: the best validation so far: its metrics, ``score`` (what selection compares) and ``step``.
        val_step: the last step whose validation ran (a resume re-runs a validation that a stop cut off).
        rng: every rank's RNG state (:func:`get_rng_state`) at ``step``, in rank order; gathered when
            saving, restored when resuming.
        hard_half: the ``train.hard_half`` books (:class:`~pdfnet.data.hard_half.HardHalf`), or None.
    """

    step: int = 0
    best: dict = dataclasses.field(default_factory=dict)
    val_step: int = 0
    rng: list = dataclasses.field(default_factory=list)
    hard_half: HardHalf | None = None


class Checkpointer:
    """Saves and restores the train states of one run: ``<run_dir>/last.pt`` and ``best.pt``.

    Every process calls :meth:`save` (it gathers each rank's RNG state; rank 0 writes) and :meth:`load`
    (each loads the file into its own modules).

    Args:
        run_dir: where :meth:`save` writes.
        model: the plain module (no DDP / compile wrapper).
        optimizer, schedule, scaler, cfg: saved beside the weights; ``cfg.train.epochs`` may extend a
            resumed schedule.
        plan: the run's epochs in optimizer steps (fixes the stored data position).
        info: this process's rank and the world size.
    """

    def __init__(self, run_dir: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                 scaler: Any, cfg: Config, plan: EpochPlan, info: D.DistInfo):
        self.run_dir, self.model, self.optimizer, self.schedule = Path(run_dir), model, optimizer, schedule
        self.scaler, self.cfg, self.plan, self.info = scaler, cfg, plan, info

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, micro-batches of it consumed)`` after ``step`` optimizer steps."""
        epoch, steps = self.plan.locate(step)
        return epoch, steps * self.cfg.train.grad_accum

    def _check_position(self, st: Mapping[str, Any], path: Path) -> None:
        """The data order continues only with the same global batch and steps per epoch."""
        tc, old = self.cfg.train, (st.get("config") or {}).get("train") or {}
        old_accum = int(old.get("grad_accum", tc.grad_accum))
        old_world = len(st.get("rng_per_rank") or [0])
        old_global = int(old.get("batch_size", tc.batch_size)) * old_accum * old_world
        new_global = tc.batch_size * tc.grad_accum * self.info.world_size
        stored = (int(st["epoch"]), int(st["batch_in_epoch"]) // old_accum)
        if old_global != new_global or stored != self.plan.locate(int(st["step"])):
            raise CheckpointError(
                f"{path} stopped after step {st['step']} (epoch {stored[0]} + {stored[1]} steps) with a "
                f"global batch of {old_global}; this run has a global batch of {new_global} and "
                f"{self.plan.steps[0]} steps in epoch 0, which cannot continue the same data order: resume "
                "with the batch_size x grad_accum x world size and the data it was trained with")

    def save(self, name: str, state: TrainState) -> Path:
        """Write ``state`` with the modules to ``<run_dir>/<name>`` atomically (collective).

        Raises:
            UserError: the write failed (disk full, read-only, ...): one line naming the file; the
                previous file of that name is intact. Raised on every rank.
        """
        path = self.run_dir / name
        state.rng = D.all_gather_objects(get_rng_state())
        error = None
        if self.info.is_main:
            epoch, micro = self.position(state.step)
            try:
                save_train_state(path, model=self.model, optimizer=self.optimizer, schedule=self.schedule,
                                 scaler=self.scaler, cfg=self.cfg, step=state.step, epoch=epoch,
                                 batch_in_epoch=micro, best=state.best, rng_per_rank=state.rng,
                                 extra={"val_step": state.val_step, "hard_half": (
                                     None if state.hard_half is None else state.hard_half.state_dict())})
            except OSError as e:
                kept = "the previous one is intact" if path.exists() else "no earlier one exists"
                error = f"cannot save {path}: {e.strerror or e} ({kept})"
        error = D.all_gather_objects(error)[0]
        if error:
            raise UserError(error)
        return path

    def load(self, path: Path) -> TrainState:
        """Restore the modules from the train state at ``path`` and return the loop's :class:`TrainState`
        (this rank's RNG state is set; with another world size the RNG is re-seeded instead).

        Raises:
            CheckpointError: the file is unreadable, not a train state, or does not fit this model,
                optimizer or data (another steps-per-epoch cannot continue the same data order).
        """
        st = load_train_state(path)
        load_state_dict_strict(self.model, st["model"], str(path))
        try:
            self.optimizer.load_state_dict(st["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: its optimizer state does not fit this run "
                                  f"(other trainable parameters?): {e}") from None
        if st.get("schedule"):
            self.schedule.load_state_dict(st["schedule"])
            self.schedule.epochs = self.cfg.train.epochs  # the config may extend the run
        if st.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(st["scaler"])
        step = int(st["step"])
        self._check_position(st, path)
        best = dict(st["best"])
        if "score" not in best and "maxF" in best:  # states written before the selection score existed
            best["score"] = best["maxF"]
        rngs = st.get("rng_per_rank") or [st["rng"]]
        if len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank])
        else:  # another world size: the data order stays exact, dropout draws are re-seeded
            seed_all(self.cfg.train.seed + self.info.rank + 1000003 * step)
        extra = st.get("extra") or {}
        val_step = int(extra.get("val_step", step))
        hard = None
        if extra.get("hard_half") is not None:
            hard = HardHalf()
            hard.load_state_dict(extra["hard_half"])
        return TrainState(step=step, best=best, val_step=val_step, rng=list(rngs), hard_half=hard)


