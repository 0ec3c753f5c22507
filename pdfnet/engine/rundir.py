"""The run directory of ``pdfnet train``: what is in it, who may write it, and what a start may change.

Guarantees (each tested in ``tests/test_rundir_safety.py``):

* **No run is lost.** A fresh start into a directory that holds a train state (``last.pt``/``best.pt``)
  is refused with one line; ``--resume auto`` continues it, ``--overwrite`` first moves the old run's
  files into ``previous-<UTC time>/`` inside the directory (nothing is deleted).
* **One run per directory.** :class:`RunLock` holds ``train.lock`` (PID, host, start time) for the whole
  run; a second run into a live directory is refused naming the holder. A lock whose process is gone
  (same host, PID not running) is taken over.
* **Nothing is rewritten before the checks pass.** :func:`open_run_dir` only locks and checks;
  :func:`write_run_files` (``config.yaml``, ``env.json``, ``metrics.jsonl`` trimmed to the resumed step)
  runs once the train state has loaded into the model and optimizer.
* **No debris.** Temp files of interrupted atomic writes (``.<name>.*.tmp``) are removed on start.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pdfnet.config import Config, dump_config
from pdfnet.engine import distributed as D
from pdfnet.errors import UserError
from pdfnet.utils.atomic import atomic_write_bytes
from pdfnet.utils.provenance import environment_info, git_info

try:  # POSIX advisory locks; without them the lock falls back to the PID check alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: train states a run directory may hold (their presence means "a run lives here")
TRAIN_STATES: tuple[str, ...] = ("last.pt", "best.pt")
#: every file/folder a run writes; ``--overwrite`` moves these aside
RUN_FILES: tuple[str, ...] = (*TRAIN_STATES, "config.yaml", "env.json", "metrics.jsonl", "tb")
LOCK_NAME = "train.lock"
#: temp-file patterns of the atomic writers (``pdfnet.utils.io``, ``checkpoint``, ``save_config``)
TEMP_PATTERNS: tuple[str, ...] = (".*.tmp", ".tmp-*.yaml")


# --------------------------------------------------------------------------------------------------
# the lock


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


class RunLock:
    """An exclusive lock on a run directory: ``<run_dir>/train.lock`` with the holder's PID and host.

    Held with ``flock`` while the run lives (the kernel drops it when the process dies, however it
    dies); the file's PID and host name the holder in the refusal and catch a live holder on a file
    system without ``flock``. A lock file left by a dead process on this host is taken over.

    Raises (from :meth:`acquire`):
        UserError: another live run holds the directory, or a lock from another host.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(10):  # retried only when the file was replaced under us
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._flock(fd):
                    raise UserError(self._busy_message(self._holder(), live=True))
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    os.close(fd)  # released and unlinked by its holder meanwhile: lock the new file
                    continue
                holder = self._holder()
                if holder and holder != me:
                    if holder.get("host") != me["host"]:
                        raise UserError(self._busy_message(holder, live=False))
                    if _pid_running(holder["pid"]):
                        raise UserError(self._busy_message(holder, live=True))
                    print(f"taking over the stale lock {self.path} (pid {holder.get('pid')} is not running)")
                rec = dict(me, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(rec) + "\n").encode(), 0)
                self._fd = fd
                return self
            except BaseException:
                if self._fd is None:
                    os.close(fd)
                raise
        raise UserError(f"cannot lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def _flock(fd: int) -> bool:
        """Take the flock without waiting; True if taken (or if the file system has no flock)."""
        if fcntl is None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return True  # no flock here: the PID check decides
            raise
        return True

    def _holder(self) -> dict:
        try:
            rec = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
            return {}  # empty or torn: nobody can be named
        return {"pid": rec["pid"], "host": rec.get("host")}

    def _busy_message(self, holder: dict, live: bool) -> str:
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        if live:
            return (f"{self.path.parent} is in use by another training run ({who}); wait for it to end or "
                    "choose another train.output_dir")
        return (f"{self.path.parent} is locked by {who}, which this host cannot check; if that run has "
                f"ended, delete {self.path}")


# --------------------------------------------------------------------------------------------------
# opening a run directory


@dataclass(frozen=True)
class RunDir:
    """A locked run directory and the train state to resume from (None: a fresh start)."""

    path: Path
    resume_path: Path | None


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """``--resume`` → the train state to load: None/``""`` (fresh), ``auto`` (``<run_dir>/last.pt`` when
    it exists) or a path (a run directory means its ``last.pt``)."""
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


def check_start(run_dir: Path, resume_path: Path | None, overwrite: bool) -> None:
    """Refuse a start that would replace another run's train state.

    Allowed: a directory without ``last.pt``/``best.pt``; resuming from a state inside ``run_dir``;
    ``overwrite`` (a fresh start; the caller moves the old files aside).
    """
    if overwrite and resume_path is not None:
        raise UserError("--overwrite starts a fresh run and cannot be combined with --resume")
    held = [n for n in TRAIN_STATES if (run_dir / n).exists()]
    if not held or overwrite:
        return
    if resume_path is not None and resume_path.resolve().parent == run_dir.resolve():
        return
    what = " and ".join(held)
    raise UserError(f"{run_dir} already holds a training run ({what}); continue it with --resume auto, "
                    f"choose another train.output_dir, or pass --overwrite to move it into "
                    f"{run_dir / 'previous-<time>'}/ and start afresh")


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temp files interrupted atomic writes left in ``run_dir`` (call only under the lock)."""
    gone = []
    for pattern in TEMP_PATTERNS:
        for p in run_dir.glob(pattern):
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone


def move_aside(run_dir: Path, names: tuple[str, ...] = RUN_FILES) -> Path | None:
    """Move the run files ``names`` (default: all of :data:`RUN_FILES`) into a new
    ``run_dir/previous-<UTC time>/``; its path, or None when there was nothing to move."""
    present = [run_dir / n for n in names if (run_dir / n).exists() or (run_dir / n).is_symlink()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dest = run_dir / f"previous-{stamp}"
    n = 1
    while dest.exists():
        n += 1
        dest = run_dir / f"previous-{stamp}-{n}"
    dest.mkdir()
    for p in present:
        os.replace(p, dest / p.name)  # same file system: a rename, nothing copied or deleted
    return dest


def _prepare(run_dir: Path, lock: RunLock, resume_path: Path | None, overwrite: bool) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as e:
        raise UserError(f"cannot use {run_dir} as the run directory: {e.strerror or e}") from None
    try:
        check_start(run_dir, resume_path, overwrite)
        remove_stale_temp_files(run_dir)
        if overwrite:
            moved = move_aside(run_dir)
            if moved is not None:
                print(f"--overwrite: the previous run's files are now in {moved}")
    except OSError as e:
        lock.release()
        raise UserError(f"cannot prepare the run directory {run_dir}: {e.strerror or e}") from None
    except BaseException:
        lock.release()
        raise


@contextlib.contextmanager
def open_run_dir(run_dir: str | os.PathLike, *, resume: str | None, overwrite: bool = False,
                 info: D.DistInfo | None = None) -> Iterator[RunDir]:
    """Lock ``run_dir`` for a run and check the start is safe; release the lock on exit.

    In order: create the folder, take the lock, refuse a start that would replace a run
    (:func:`check_start`), delete stale temp files, and with ``overwrite`` move the old run aside.
    Nothing the run writes (config, environment, metrics, checkpoints) is touched here. Only rank 0
    locks and changes the folder; a refusal there is raised on every rank.

    Raises:
        UserError: a refused start, a live lock, or an OS error (named path).
    """
    run_dir = Path(run_dir)
    resume_path = resolve_resume(resume, run_dir)  # every rank gets the same answer
    lock = RunLock(run_dir)
    D.run_on_main(info or D.DistInfo(), _prepare, run_dir, lock, resume_path, overwrite)
    try:
        yield RunDir(run_dir, resume_path)
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------------
# what a run writes at its start (after the resume checks)


def trim_metrics(path: Path, step: int, val_step: int) -> int:
    """Keep the records of ``metrics.jsonl`` a resume at ``step`` does not write again.

    Kept: train records with ``step <= step``, validation records with ``step <= val_step`` (the last
    validated step), other kinds with ``step <= step``. A torn last line is dropped. Returns the number
    of records removed. The file is rewritten atomically, and only when something goes.
    """
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
            s = int(rec["step"])
        except (ValueError, KeyError, TypeError):
            dropped += 1
            continue
        if s <= (val_step if rec.get("kind") == "val" else step):
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(path, "".join(x + "\n" for x in keep).encode())
    return dropped


def write_run_files(cfg: Config, run_dir: str | os.PathLike, *, step: int = 0, val_step: int = 0,
                    resumed_from: Path | None = None) -> Path:
    """Write ``config.yaml`` (resolved) and ``env.json`` (git + environment), and trim ``metrics.jsonl``
    to what a run starting at ``step`` keeps (:func:`trim_metrics`). Call once the resume checks passed.

    A resume from another train state of this directory (e.g. ``best.pt``) would overwrite a later
    ``last.pt`` and trim its metrics: both are first kept in ``previous-<time>/``.

    Raises:
        UserError: an OS error writing into ``run_dir`` (the path named).
    """
    run_dir = Path(run_dir)
    env = {"git": git_info(), "env": environment_info()}
    target = run_dir
    try:
        last = run_dir / "last.pt"
        if resumed_from is not None and last.is_file() and resumed_from.resolve() != last.resolve() \
                and resumed_from.resolve().parent == run_dir.resolve():
            target = run_dir / "metrics.jsonl"
            kept = move_aside(run_dir, ("last.pt",))
            if target.is_file():
                shutil.copy2(target, kept / target.name)
            print(f"resuming from {resumed_from.name}: the later last.pt and its metrics are kept in {kept}")
        target = run_dir / "config.yaml"
        atomic_write_bytes(target, dump_config(cfg).encode())
        target = run_dir / "env.json"
        atomic_write_bytes(target, (json.dumps(env, indent=2) + "\n").encode())
        target = run_dir / "metrics.jsonl"
        trim_metrics(target, step, val_step)
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None
    return run_dir


__all__ = ["LOCK_NAME", "RUN_FILES", "TRAIN_STATES", "RunDir", "RunLock", "check_start",
           "move_aside", "open_run_dir", "remove_stale_temp_files", "resolve_resume",
           "trim_metrics", "write_run_files"]
