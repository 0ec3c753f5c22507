"""DIS5K discovery, the PDFNet dataset with the release's augmentations, and synthetic DIS-like data."""

from pdfnet.data.build import (
    ShardSampler,
    build_dataloader,
    build_datasets,
    build_eval_dataset,
    build_train_dataset,
    set_epoch,
)
from pdfnet.data.dataset import DISDataset, sample_rng
from pdfnet.data.dis5k import (
    DIS5K_SPLITS,
    Sample,
    SplitIndex,
    available_depths,
    discover,
    discover_split,
)
from pdfnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize_image, normalize_image

__all__ = [
    "DIS5K_SPLITS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DISDataset",
    "Sample",
    "ShardSampler",
    "SplitIndex",
    "available_depths",
    "build_dataloader",
    "build_datasets",
    "build_eval_dataset",
    "build_train_dataset",
    "denormalize_image",
    "discover",
    "discover_split",
    "normalize_image",
    "sample_rng",
    "set_epoch",
]
