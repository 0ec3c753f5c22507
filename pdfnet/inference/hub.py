"""Resolve a checkpoint argument: a local file/folder, or a Hugging Face Hub id.

Accepted forms (tried in this order):

1. an existing local path: a train checkpoint, a release folder (``model.safetensors`` +
   ``config.yaml``) or file, or the official ``PDFNet_Best.pth``;
2. ``owner/name/path/in/repo.ext``: that file from the Hub repo ``owner/name``;
3. ``owner/name``: a known repo's checkpoint file (:data:`KNOWN_REPOS`, e.g. ``Tennineee/PDFNet`` →
   ``PDFNet_Best.pth``, ``Tennineee/PDFNet-General`` → ``PDF-Generally.pth``), else our release layout
   (``config.yaml`` + ``model.safetensors``).

Downloads go through :func:`huggingface_hub.hf_hub_download` (its cache, its offline mode, its token
handling). Tests monkeypatch :data:`hf_hub_download` in this module.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pdfnet.errors import UserError

try:  # huggingface_hub is a declared dependency; keep import errors lazy for a clear message
    from huggingface_hub import hf_hub_download
except ImportError:  # pragma: no cover
    hf_hub_download = None  # type: ignore[assignment]

#: Hub repos whose checkpoint is not in our release layout: repo id → file name.
KNOWN_REPOS: dict[str, str] = {
    "Tennineee/PDFNet": "PDFNet_Best.pth",  # the DIS5K release (the paper's model)
    "Tennineee/PDFNet-General": "PDF-Generally.pth",  # the authors' general-purpose weights, same layout
}
RELEASE_FILES: tuple[str, ...] = ("config.yaml", "model.safetensors")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/.+)?$")


def _download(repo_id: str, filename: str) -> Path:
    if hf_hub_download is None:  # pragma: no cover
        raise UserError("huggingface_hub is not installed; pass a local checkpoint path instead")
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as e:  # network, auth, missing file, offline mode: all user-facing
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        raise UserError(f"checkpoint {repo_id}: no such local path, and downloading {filename!r} from the "
                        f"Hugging Face Hub repo {repo_id!r} failed ({msg})") from None


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """Local path for ``spec`` (see the module docstring); downloads Hub files when needed.

    Returns:
        A file (``.pth``/``.pt``/``.safetensors``) or a release folder holding ``config.yaml`` and
        ``model.safetensors``.

    Raises:
        UserError: not a local path nor a Hub id, or the download failed.
    """
    p = Path(spec).expanduser()
    if p.exists():
        return p
    s = str(spec)
    if not _HUB_ID.match(s) or s.startswith(("./", "../", "/")):
        raise UserError(f"checkpoint not found: {s} (not a local file/folder, nor a Hub id like owner/name)")
    parts = s.split("/", 2)
    repo_id = "/".join(parts[:2])
    if len(parts) == 3:
        return _download(repo_id, parts[2])
    if repo_id in KNOWN_REPOS:
        return _download(repo_id, KNOWN_REPOS[repo_id])
    files = [_download(repo_id, f) for f in RELEASE_FILES]
    folder = files[0].parent
    if any(f.parent != folder for f in files):  # pragma: no cover - the hub cache keeps a snapshot together
        raise UserError(f"Hub repo {repo_id}: config.yaml and model.safetensors landed in different folders")
    return folder
