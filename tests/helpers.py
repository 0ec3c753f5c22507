"""Helpers shared by the test modules (the one place they live: no test module imports another).

``tests/`` has no ``__init__.py``; pytest puts it on ``sys.path``, so a test module does
``from helpers import ...``.

Fixtures: every file a test reads is vendored under ``tests/fixtures/`` (each folder's README says how it was
made). A missing fixture fails the test that needs it; it never skips.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
OFFICIAL = ("pdfnet_official",)
DEPTHS = ("small", "base", "large", "large_1024")
"""The depth folders a DIS5K-layout tree carries (``depth_<name>``)."""


def fixture_path(*parts: str) -> Path:
    """``tests/fixtures/<parts>``; fails the calling test when absent (fixtures are part of the repo)."""
    p = FIXTURES.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"missing test fixture {p.relative_to(REPO)}: it is committed with the repository, "
                    "restore it from git", pytrace=False)
    return p


@functools.cache
def official_fixture() -> ModuleType:
    """``tests/fixtures/pdfnet_official/make_weights.py`` as a module: ``official_state_dict(keys, seed)``
    (synthetic weights in the official release's state_dict layout) and ``make_inputs(seed, size)``."""
    path = fixture_path(*OFFICIAL, "make_weights.py")
    spec = importlib.util.spec_from_file_location("pdfnet_fixture_make_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_keys_path() -> Path:
    """``keys.tsv``: every key of the official state_dict (key, shape, dtype, kind), in order."""
    return fixture_path(*OFFICIAL, "keys.tsv")


def official_expected(size: int, seed: int = 0):
    """The official release's outputs and losses for the synthetic case (``np.load`` of the npz)."""
    return np.load(fixture_path(*OFFICIAL, f"expected_S{size}_seed{seed}.npz"))


def write_tiny_dis(root: Path, counts: dict[str, int], size: int = 64, seed: int = 0) -> Path:
    """A DIS5K-layout tree (im/, gt/, depth_*/) of discs on noise, with object-correlated depth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, n in counts.items():
        d = root / split
        for sub in ("im", "gt", *(f"depth_{k}" for k in DEPTHS)):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cx, cy = rng.uniform(0.3, 0.7, 2)
            r = rng.uniform(0.15, 0.3)
            m = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(np.uint8) * 255
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            img[m > 0] = np.array([40, 140, 220], np.uint8)
            depth = np.clip(0.3 + 0.5 * (m > 0) + 0.05 * rng.standard_normal((size, size)), 0, 1)
            stem = f"{split}_{i:03d}"
            cv2.imwrite(str(d / "im" / f"{stem}.jpg"), img)
            cv2.imwrite(str(d / "gt" / f"{stem}.png"), m)
            for k in DEPTHS:
                cv2.imwrite(str(d / f"depth_{k}" / f"{stem}.png"), (depth * 255).astype(np.uint8))
    return root


def make_tiny_dav2(out: Path) -> Path:
    """Save a random 2-layer Depth-Anything-V2-architecture model (``save_pretrained``) into ``out``."""
    # transformers is a heavy import: only the tests that need a depth model pay for it
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(
        image_size=56, patch_size=14, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, out_features=["stage1", "stage2"], reshape_hidden_states=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=8, reassemble_factors=[4, 2],
        neck_hidden_sizes=[4, 8], fusion_hidden_size=8, head_hidden_size=4, patch_size=14,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(cfg).eval()
    with torch.no_grad():  # random init gives ~1e-8 outputs; make them O(1) so maps are not degenerate
        model.head.conv3.weight.mul_(1e4)
    model.save_pretrained(out)
    return out


def write_images(folder: Path, sizes, prefix="img", ext=".jpg", seed=0) -> list[Path]:
    """Random RGB images ``<prefix><i><ext>`` of the given (H, W) sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = folder / f"{prefix}{i}{ext}"
        assert cv2.imwrite(str(p), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def read_unchanged(p: Path) -> np.ndarray:
    """``cv2.imread(IMREAD_UNCHANGED)``, asserting the file decoded."""
    a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert a is not None, p
    return a


# ---------------------------------------------------------------------------------- tiny models on disk

TINY_SIZE = 64


def tiny_model_config(size: int = TINY_SIZE, **overrides):
    """The CPU-sized test network (:class:`~pdfnet.config.schema.ModelConfig`): the paper architecture
    with the toy Swin, emb 16, no dropout or drop-path, input side ``size``; ``overrides`` replace fields."""
    from pdfnet.config.schema import ModelConfig

    fields = dict(backbone="swin_tiny_test", emb=16, input_size=size, drop_path=0.0, attn_dropout=0.0)
    return ModelConfig(**(fields | overrides))


def tiny_config(size: int = TINY_SIZE):
    """A :class:`pdfnet.config.schema.Config` whose model is :func:`tiny_model_config` at side ``size``."""
    from pdfnet.config.schema import Config

    cfg = Config()
    cfg.model = tiny_model_config(size)
    return cfg


def sharpen(model):
    """Scale the head's depth stem and output conv so random-init probabilities span ~[0, 1] and depend
    strongly on depth (a random init gives a flat ~0.5 that would make mask checks vacuous)."""
    with torch.no_grad():
        model.head.stem.weight[:, 3:] *= 20
        model.head.out.weight *= 20
    return model


def write_tiny_release(out: Path, size: int = TINY_SIZE, seed: int = 0) -> Path:
    """A tiny random PDFNet (sharpened, see :func:`sharpen`) saved as our safetensors release in ``out``."""
    from pdfnet.inference.checkpoint import export_release
    from pdfnet.models import build_model

    torch.manual_seed(seed)
    cfg = tiny_config(size)
    export_release(sharpen(build_model(cfg.model)), cfg, out)
    return out


def write_tiny_dav2(out: Path, seed: int = 0) -> Path:
    """A tiny random Depth Anything V2 (transformers layout) whose processor runs at 42 px, in ``out``,
    with its ``preprocessor_config.json`` (what ``Predictor.from_pretrained(depth_model=out)`` loads;
    :func:`make_tiny_dav2` saves the model alone)."""
    import json

    # transformers is a heavy import: only the tests that need a depth model pay for it
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(seed)
    bb = Dinov2Config(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                      patch_size=14, image_size=42, out_features=["stage1", "stage2"],
                      reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=8, neck_hidden_sizes=[8, 8],
                              fusion_hidden_size=8, reassemble_factors=[1, 0.5], head_hidden_size=8,
                              patch_size=14)
    model = DepthAnythingForDepthEstimation(cfg)
    with torch.no_grad():  # random-init activations are ~1e-7: rescale to a positive O(1) map that varies
        model.head.conv3.weight.mul_(3e5)
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps({
        "size": {"height": 42, "width": 42}, "ensure_multiple_of": 14,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}))
    return out
