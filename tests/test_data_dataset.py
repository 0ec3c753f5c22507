"""DISDataset: output contract, release resizing, depth choice, determinism, data errors, loaders."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from pdfnet.config.schema import DataConfig
from pdfnet.data import (
    DISDataset,
    ShardSampler,
    build_dataloader,
    build_datasets,
    set_epoch,
)
from pdfnet.errors import UserError
from pdfnet.utils.io import ImageReadError
from pdfnet.utils.normalize import denormalize_image

H, W = 30, 40
DEPTH_VALUES = {"small": 40, "base": 120, "large": 200, "large_1024": 250}


def write_split(root: Path, split: str = "DIS-TR", n: int = 3, layout: str = "renamed") -> Path:
    """Images with a bright asymmetric square on black, matching binary GT; depth folders whose constant
    value identifies the depth model."""
    im, gt = ("images", "masks") if layout == "renamed" else ("im", "gt")
    d = root / split
    for sub in (im, gt, *(f"depth_{k}" for k in DEPTH_VALUES)):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        mask = np.zeros((H, W), np.uint8)
        mask[5 + i: 20, 4: 15 + 2 * i] = 255
        rgb = np.stack([mask, mask // 2, np.full_like(mask, 30)], -1)
        cv2.imwrite(str(d / im / f"s{i}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 100])
        cv2.imwrite(str(d / gt / f"s{i}.png"), mask)
        for k, v in DEPTH_VALUES.items():
            cv2.imwrite(str(d / f"depth_{k}" / f"s{i}.png"), np.full((H, W), v, np.uint8))
    return d


def test_eval_item_contract(tmp_path):
    write_split(tmp_path, "DIS-VD")
    ds = DISDataset(tmp_path, "DIS-VD", size=32, train=False, eval_depth="base")
    item = ds[1]
    assert set(item) == {"image", "gt", "depth", "stem", "index", "orig_size", "gt_path", "gt_alpha"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["gt"].shape == item["depth"].shape == (1, 32, 32)
    assert item["gt"].dtype == item["depth"].dtype == torch.float32
    assert set(item["gt"].unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(item["depth"], torch.full_like(item["depth"], 120 / 255))
    assert item["orig_size"].dtype == torch.int64 and item["orig_size"].tolist() == [H, W]
    assert item["index"] == 1 and item["stem"] == "s1" and item["gt_path"].endswith("masks/s1.png")
    # ImageNet normalisation of a [0, 1] image; foreground pixels are bright in the red channel.
    img01 = denormalize_image(item["image"])
    assert -1e-4 <= img01.min() and img01.max() <= 1 + 1e-4
    assert ((img01[0] > 0.5) == (item["gt"][0] > 0.5)).float().mean() > 0.9  # edges: bilinear vs nearest


def test_release_resizing_nearest_gt_and_align_corners_image(tmp_path):
    d = write_split(tmp_path, "DIS-VD", n=1)
    ds = DISDataset(tmp_path, "DIS-VD", size=16, train=False)
    item = ds.load(0, "large")
    gt = cv2.imread(str(d / "masks" / "s0.png"), cv2.IMREAD_GRAYSCALE)
    ref = torch.nn.functional.interpolate(torch.from_numpy((gt > 128).astype(np.float32))[None, None],
                                          size=(16, 16), mode="nearest")[0]
    assert torch.equal(item["gt"], ref)
    rgb = cv2.cvtColor(cv2.imread(str(d / "images" / "s0.jpg")), cv2.COLOR_BGR2RGB)
    assert torch.allclose(item["image"][:, 0, 0], torch.tensor(rgb[0, 0] / 255.0, dtype=torch.float32))
    assert torch.allclose(item["image"][:, -1, -1], torch.tensor(rgb[-1, -1] / 255.0, dtype=torch.float32))


def test_train_items_depth_pick_target_and_collate(tmp_path):
    write_split(tmp_path, n=4)
    ds = DISDataset(tmp_path, "DIS-TR", size=24, train=True, input_depths=("small", "base", "large"),
                    target_depth="large_1024", augment=False, seed=0)
    picked = set()
    for e in range(6):
        ds.set_epoch(e)
        for i in range(len(ds)):
            it = ds[i]
            picked.add(round(it["depth"].mean().item() * 255))
            assert torch.allclose(it["depth_target"], torch.full((1, 24, 24), 250 / 255))
    assert picked == {40, 120, 200}  # uniform pick among the input depths, never the target
    batch = default_collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 24, 24) and batch["depth_target"].shape == (3, 1, 24, 24)
    assert batch["orig_size"].shape == (3, 2) and batch["stem"] == ["s0", "s1", "s2"]


def test_augmented_items_are_reproducible_and_vary_with_epoch(tmp_path):
    write_split(tmp_path, n=2)
    kw = dict(size=32, train=True, input_depths=("small", "large"), target_depth="large_1024", seed=7)
    a, b = DISDataset(tmp_path, "DIS-TR", **kw), DISDataset(tmp_path, "DIS-TR", **kw)
    for e in (0, 3):
        a.set_epoch(e)
        b.set_epoch(e)
        x, y = a[1], b[1]
        for k in ("image", "gt", "depth", "depth_target"):
            assert torch.equal(x[k], y[k]), k
    seen = set()
    for e in range(10):
        a.set_epoch(e)
        it = a[0]
        assert 0 <= it["gt"].min() and it["gt"].max() <= 1
        assert 0 <= it["depth"].min() and it["depth"].max() <= 1
        seen.add(round(it["gt"].sum().item(), 3))
    assert len(seen) > 3


def test_non_binary_gt_is_binarised_at_128_or_kept_soft(tmp_path):
    d = write_split(tmp_path, "DIS-VD", n=1)
    gt = np.zeros((H, W), np.uint8)
    gt[:, :10], gt[:, 10:20], gt[:, 20:30] = 128, 129, 255
    cv2.imwrite(str(d / "masks" / "s0.png"), gt)
    hard = DISDataset(tmp_path, "DIS-VD", size=W, train=False).load(0, "large")["gt"]
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    soft = DISDataset(tmp_path, "DIS-VD", size=W, train=False, binarize_gt=False).load(0, "large")["gt"]
    assert {round(v * 255) for v in soft.unique().tolist()} == {0, 128, 129, 255}


def test_size_mismatch_corrupt_file_and_bad_depth_are_errors(tmp_path):
    d = write_split(tmp_path, "DIS-VD", n=3)
    cv2.imwrite(str(d / "masks" / "s0.png"), np.zeros((H + 1, W), np.uint8))
    (d / "images" / "s1.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(d / "depth_large" / "s2.png"), np.zeros((H, H), np.uint8))
    ds = DISDataset(tmp_path, "DIS-VD", size=16, train=False)
    with pytest.raises(UserError, match=r"GT .*s0.png is 31x40 but image .*s0.jpg is 30x40"):
        ds[0]
    with pytest.raises(ImageReadError, match="s1.jpg"):
        ds[1]
    with pytest.raises(UserError, match="different aspect ratio"):
        ds[2]
    cv2.imwrite(str(d / "depth_large" / "s2.png"), np.zeros((H * 2, W * 2), np.uint16))
    assert ds[2]["depth"].shape == (1, 16, 16)  # same aspect ratio, other resolution: fine


def test_build_datasets_and_loader_with_persistent_workers(tmp_path):
    write_split(tmp_path, "DIS-TR", n=4)
    write_split(tmp_path, "DIS-VD", n=3)
    cfg = DataConfig(root=str(tmp_path), size=16, train_depths=["small", "base"], num_workers=1)
    train, val = build_datasets(cfg, seed=1)
    assert train.train and train.target_depth == "large_1024" and not val.train
    assert "depth_target" not in val[0]
    loader = build_dataloader(train, 2, train=True, num_workers=1, seed=1)
    ref = build_dataloader(train, 2, train=True, num_workers=0, seed=1)
    for e in (0, 1):
        set_epoch(loader, e)
        set_epoch(ref, e)
        got, want = list(loader), list(ref)  # the persistent worker sees the new epoch
        assert len(got) == 2
        for g, w in zip(got, want):
            assert g["stem"] == w["stem"] and torch.equal(g["image"], w["image"])
    assert [b["stem"] for b in build_dataloader(val, 2, train=False)] == [["s0", "s1"], ["s2"]]
    shards = [list(ShardSampler(5, r, 2)) for r in range(2)]
    assert shards == [[0, 2, 4], [1, 3]]


def test_missing_target_depth_fallback(tmp_path):
    import shutil

    d = write_split(tmp_path, "DIS-TR", n=2)
    shutil.rmtree(d / "depth_large_1024")
    cfg = DataConfig(root=str(tmp_path), size=16)
    with pytest.raises(UserError, match="depth_large_1024/ not found"):
        build_datasets(cfg)
    cfg.allow_target_fallback = True
    train = build_datasets(cfg)[0] if (tmp_path / "DIS-VD").exists() else None
    assert train is None  # no DIS-VD here; build only the train split
    from pdfnet.data import build_train_dataset

    ds = build_train_dataset(cfg)
    assert ds.target_depth == "large"


def test_worker_errors_are_the_same_one_line_as_in_process(tmp_path):
    write_split(tmp_path, "DIS-VD", n=2)
    ds = DISDataset(tmp_path, "DIS-VD", size=16, train=False, eval_depth="base")
    (tmp_path / "DIS-VD" / "images" / "s1.jpg").write_bytes(b"not an image")  # breaks mid-run
    messages = []
    for workers in (0, 2):
        loader = build_dataloader(ds, 1, train=False, num_workers=workers)
        with pytest.raises(ImageReadError) as e:
            for _ in loader:
                pass
        messages.append(str(e.value))
    assert messages[0] == messages[1]
    assert "\n" not in messages[1] and messages[1].endswith(str(tmp_path / "DIS-VD" / "images" / "s1.jpg"))


def test_alpha_masks_train_and_evaluate_like_mask_files(tmp_path):
    d = write_split(tmp_path, "DIS-VD", n=2)
    alpha_root = tmp_path / "alpha"
    (alpha_root / "DIS-VD").mkdir(parents=True)
    shutil.copytree(d / "depth_base", alpha_root / "DIS-VD" / "depth_base")
    (alpha_root / "DIS-VD" / "images").mkdir()
    for i in range(2):
        bgr = cv2.imread(str(d / "images" / f"s{i}.jpg"))
        mask = cv2.imread(str(d / "masks" / f"s{i}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(alpha_root / "DIS-VD" / "images" / f"s{i}.png"), np.dstack([bgr, mask]))
    ref = DISDataset(tmp_path, "DIS-VD", size=16, train=False, eval_depth="base", target_depth=None)
    alpha = DISDataset(alpha_root, "DIS-VD", size=16, train=False, eval_depth="base")
    assert alpha.index.layout == "alpha"
    for i in range(2):
        a, r = alpha[i], ref.load(i, "base")
        assert torch.equal(a["gt"], r["gt"]) and a["gt_alpha"] is True


def test_val_fraction_holds_out_a_seeded_part_of_the_train_split(tmp_path):
    from pdfnet.config import load_config

    write_split(tmp_path, "train", n=6)
    cfg = load_config(None, [f"data.root={tmp_path}", "data.train_split=train", "data.val_split=null",
                             "data.val_fraction=0.34", "data.size=16", "data.target_depth=large_1024"]).data
    train, val = build_datasets(cfg)
    t, v = [s.stem for s in train.samples], [s.stem for s in val.samples]
    assert len(v) == 2 and len(t) == 4 and sorted(t + v) == [f"s{i}" for i in range(6)]
    assert not val.train and val.part == "val" and "depth_target" not in val[0]
    assert [s.stem for s in build_datasets(cfg)[1].samples] == v  # same seed, same split
    draws = set()
    for seed in range(6):
        cfg.val_seed = seed
        draws.add(tuple(s.stem for s in build_datasets(cfg)[1].samples))
    assert len(draws) > 1
    cfg.val_split = "train"
    with pytest.raises(UserError, match="data.val_split=null"):
        build_datasets(cfg)
    cfg.val_split, cfg.val_fraction = None, 0.0
    with pytest.raises(UserError, match="no validation data"):
        build_datasets(cfg)
    cfg.val_fraction = 1.0
    with pytest.raises(UserError, match=r"val_fraction must be in \[0, 1\)"):
        build_datasets(cfg)


@pytest.mark.timeout(120)
def test_loader_workers_start_after_opencv_threads_ran_in_this_process(tmp_path):
    """The pre-flight check (and any cv2 call) starts OpenCV's thread pool in the training process; a
    forked loader worker then hung for ever in its first cv2 call. Workers must not be forked from it."""
    write_split(tmp_path, "DIS-TR", n=2)
    write_split(tmp_path, "DIS-VD", n=1)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        with ThreadPoolExecutor(4) as ex:  # the pool, entered from several threads like the check's probes
            blank = np.zeros((1024, 1024), np.float32)
            list(ex.map(lambda _: cv2.GaussianBlur(blank, (31, 31), 5), range(8)))
        train, _ = build_datasets(DataConfig(root=str(tmp_path), size=16, num_workers=1), seed=0)
        loader = build_dataloader(train, 2, train=True, num_workers=1, seed=0)
        set_epoch(loader, 0)
        assert [b["stem"] for b in loader] and loader.multiprocessing_context.get_start_method() != "fork"
    finally:
        cv2.setNumThreads(threads)
