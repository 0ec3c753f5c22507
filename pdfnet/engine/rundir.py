"""Run-directory set-up: resolved config, git commit and environment next to the checkpoints."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

from pdfnet.config import Config, save_config
from pdfnet.utils.io import atomic_write_bytes


def git_info(repo_dir: str | os.PathLike | None = None) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repo holding the package."""
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"commit": sha, "dirty": (bool(status) if status is not None else None)}


def environment_info() -> dict:
    """Versions and hardware worth knowing when comparing runs."""
    import numpy as np

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": sys.argv,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    from importlib import metadata

    for dist in ("timm", "opencv-python-headless", "safetensors", "transformers"):
        try:  # from the package metadata: importing timm/cv2 just for a version costs seconds
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def setup_run_dir(cfg: Config, run_dir: str | os.PathLike) -> Path:
    """Create ``run_dir`` and write ``config.yaml`` (resolved) and ``env.json`` (git + environment)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    env = {"git": git_info(), "env": environment_info()}
    atomic_write_bytes(run_dir / "env.json", (json.dumps(env, indent=2) + "\n").encode())
    return run_dir
