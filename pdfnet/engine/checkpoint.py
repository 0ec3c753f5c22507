"""Checkpoint I/O: resumable train states, the safetensors release, and one inference loader.

Two artifacts (conventions §1.9):

* **train state** (``last.pt`` / ``best.pt`` in the run directory): model, optimizer, schedule, grad
  scaler, step/epoch/sampler position, RNG states and the resolved config. Everything is stored as
  tensors or plain Python types so ``torch.load(..., weights_only=True)`` can read it back.
* **release** (``pdfnet export-weights``): ``model.safetensors`` + the resolved ``config.yaml``.

Every write is atomic (temp file in the destination folder, then ``os.replace``). Every load is strict:
a missing or unexpected key raises :class:`CheckpointError` naming the keys.

:func:`load_model_for_inference` accepts any of: a train state, a release (folder or ``.safetensors``
with its ``config.yaml``), a run directory, or the official ``PDFNet_Best.pth``.
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

from pdfnet.config import Config, config_to_dict, dump_config, load_config
from pdfnet.engine import distributed as D
from pdfnet.engine.schedule import EpochPlan
from pdfnet.errors import CheckpointError, UserError

TRAIN_STATE_FORMAT = "pdfnet-train-state"
TRAIN_STATE_VERSION = 1
RELEASE_WEIGHTS = "model.safetensors"
RELEASE_CONFIG = "config.yaml"


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


def torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None


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
# strict state-dict loading


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str = "") -> None:
    """``model.load_state_dict(strict=True)`` that reports missing/unexpected/mis-shaped keys by name."""
    own = unwrap_model(model).state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        def _few(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {_few(shapes)}")
        where = f" {source}" if source else ""
        raise CheckpointError(f"checkpoint{where} does not match the model: " + "; ".join(parts))
    unwrap_model(model).load_state_dict(dict(state_dict), strict=True)


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


def is_train_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == TRAIN_STATE_FORMAT


def load_train_state(path: str | os.PathLike) -> dict:
    """Read a train state (``weights_only=True``) and check its format marker."""
    state = torch_load(path)
    if not is_train_state(state):
        raise CheckpointError(f"{path} is not a pdfnet train state (no '{TRAIN_STATE_FORMAT}' marker)")
    if state.get("version", 0) > TRAIN_STATE_VERSION:
        raise CheckpointError(f"{path}: train-state version {state['version']} is newer than this pdfnet")
    return state


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
    """

    step: int = 0
    best: dict = dataclasses.field(default_factory=dict)
    val_step: int = 0
    rng: list = dataclasses.field(default_factory=list)


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
                                 extra={"val_step": state.val_step})
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
        val_step = int((st.get("extra") or {}).get("val_step", step))
        return TrainState(step=step, best=best, val_step=val_step, rng=list(rngs))


def config_from_yaml_text(text: str, source: str = "checkpoint") -> Config:
    """Rebuild a :class:`Config` from YAML text with the strict loader (unknown keys are errors)."""
    fd, tmp = tempfile.mkstemp(prefix="pdfnet-cfg-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return load_config(tmp)
    except UserError as e:
        raise CheckpointError(f"{source}: stored config does not load: {e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# release (safetensors + config.yaml)


def export_release(model_or_state: nn.Module | Mapping[str, torch.Tensor], cfg: Config,
                   out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.yaml`` (both atomically)."""
    from safetensors.torch import save_file

    from pdfnet.config import save_config

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = (unwrap_model(model_or_state).state_dict() if isinstance(model_or_state, nn.Module)
          else dict(model_or_state))
    # safetensors refuses aliased storage; a contiguous clone per tensor keeps every key.
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{RELEASE_WEIGHTS}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(sd, tmp, metadata={"format": "pt", "producer": "pdfnet"})
        os.replace(tmp, out_dir / RELEASE_WEIGHTS)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    save_config(cfg, out_dir / RELEASE_CONFIG)
    return out_dir / RELEASE_WEIGHTS


def load_release(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Config]:
    """Read a release: a folder with both files, or a ``.safetensors`` file with ``config.yaml`` beside it."""
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / RELEASE_WEIGHTS if path.is_dir() else path
    cfg_path = weights.parent / RELEASE_CONFIG
    if not weights.is_file():
        raise CheckpointError(f"release weights not found: {weights}")
    if not cfg_path.is_file():
        raise CheckpointError(f"{weights}: its {RELEASE_CONFIG} is missing (expected at {cfg_path})")
    try:
        sd = load_file(str(weights))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot read {weights}: {e}") from None
    return sd, load_config(cfg_path)


# --------------------------------------------------------------------------------------------------
# inference loader


def resolve_checkpoint_path(path: Path) -> Path:
    """Folder → the file to load: a release's safetensors, else a run's ``best.pt``, else ``last.pt``."""
    if not path.is_dir():
        return path
    for name in (RELEASE_WEIGHTS, "best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{path} holds no {RELEASE_WEIGHTS}, best.pt or last.pt")


def load_model_for_inference(path_or_dir: str | os.PathLike, device: torch.device | str = "cpu",
                             ) -> tuple[nn.Module, Config]:
    """Build the model and load weights strictly, from any checkpoint kind pdfnet knows.

    Args:
        path_or_dir: a train state (``.pt``), a release folder or ``.safetensors`` (+ ``config.yaml``),
            a run directory (``best.pt`` preferred over ``last.pt``), or the official ``PDFNet_Best.pth``
            (recognised by its keys; its config is the default paper model).
        device: where the model is placed.

    Returns:
        ``(model, cfg)``: the model in ``eval()`` mode on ``device`` and the config it was built from.
    """
    from pdfnet.models import build_model

    path = resolve_checkpoint_path(Path(path_or_dir))
    device = torch.device(device)
    if path.suffix == ".safetensors":
        sd, cfg = load_release(path)
    else:
        obj = torch_load(path)
        if is_train_state(obj):
            sd, cfg = obj["model"], config_from_yaml_text(obj["config_yaml"], str(path))
        else:
            model, cfg = _load_official(obj, path)
            return model.to(device).eval(), cfg
    # an export may leave out the train-only depth decoder; everything else must match exactly
    has_depth = any(k.startswith("depth_decoder.") for k in sd)
    try:
        model = build_model(cfg.model, with_depth_decoder=has_depth)
    except ValueError as e:
        raise CheckpointError(f"{path}: cannot build its model: {e}") from None
    load_state_dict_strict(model, sd, str(path))
    return model.to(device).eval(), cfg


#: keys only the official ``PDFNet_process`` layout has (how ``PDFNet_Best.pth`` is recognised)
OFFICIAL_MARKERS: tuple[str, ...] = ("channel_mix1.0.weight", "decoder.Bside.0.weight", "Glob.0.0.weight")


def is_official_state_dict(sd: Mapping[str, Any]) -> bool:
    return any(k in sd for k in OFFICIAL_MARKERS) or any(k.startswith("decoder.FSE_mix.") for k in sd)


def _load_official(obj: Any, path: Path) -> tuple[nn.Module, Config]:
    """Official ``PDFNet_Best.pth`` → (model, paper config), via ``pdfnet.models.official``."""
    from pdfnet.models import official

    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict", "module"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a pdfnet train state, release or official PDFNet state dict")
    if not is_official_state_dict(obj):
        raise CheckpointError(f"{path}: a state dict, but neither a pdfnet checkpoint nor the official "
                              "PDFNet layout (use `pdfnet export-weights` for pdfnet runs)")
    cfg = Config()
    cfg.model = official.official_model_config()
    model = official.from_official_state_dict(obj, cfg=cfg.model)
    return model, cfg
