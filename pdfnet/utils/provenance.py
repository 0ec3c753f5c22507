"""Run provenance, one owner: the git commit and the environment recorded next to results.

Training writes it to ``env.json`` in the run directory, ``pdfnet eval``/``report`` put the library
versions into their JSON, and the benchmarks into their reports. Torch-free: versions come from the
package metadata (importing a package just for its version costs seconds), and torch's runtime facts
(CUDA, threads, GPUs) are added only when torch is already imported.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from pdfnet.utils.ranks import torchrun_env

__all__ = ["RUN_PACKAGES", "environment_info", "git_info", "package_versions"]

#: Distributions whose versions a training run records.
RUN_PACKAGES: tuple[str, ...] = ("torch", "numpy", "timm", "opencv-python-headless", "safetensors",
                                 "transformers")


def git_info(repo_dir: str | os.PathLike | None = None, short: bool = False) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding the package
    (None when git or the repository is absent, as in an installed wheel)."""
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", *(("--short",) if short else ()), "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"commit": sha, "dirty": (bool(status) if status is not None else None)}


def package_versions(dists: Sequence[str]) -> dict[str, str | None]:
    """``{distribution: version or None}`` from the installed package metadata (nothing is imported)."""
    out: dict[str, str | None] = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def environment_info(dists: Sequence[str] = RUN_PACKAGES) -> dict:
    """Python, platform, host, command line, CPU count, world size, ``dists``' versions and — when
    torch is already imported — its CUDA build, availability, threads and GPU names."""
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": list(sys.argv),
        "cpu_count": os.cpu_count(),
        "world_size": torchrun_env()[1],
        **package_versions(dists),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info.update(cuda_available=torch.cuda.is_available(), cuda=torch.version.cuda,
                    torch_threads=torch.get_num_threads())
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
