"""Typed configuration schema: one dataclass per concern, composed into :class:`Config`.

Every field has a type annotation that :mod:`pdfnet.config.loader` enforces; ``Literal`` fields are
enums. Defaults are the paper recipe's network, loss, optimiser and loop (the official release's
``args.py``); ``configs/pdfnet_swinb_dis5k.yaml`` adds, marked, what a bare config leaves out on purpose:
ImageNet backbone weights (a default must not download), 8 loader workers, and TTA at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    """Network architecture (docs/architecture.md). Defaults = the released PDFNet (Swin-B, 1024²)."""

    backbone: str = "swin_b"
    """``swin_b`` (official window-12 Swin-B with APE), ``swin_tiny_test`` (a 4-stage toy Swin for
    CPU tests/demo), or ``timm:<name>`` for any 4-stage timm backbone via ``features_only``."""
    backbone_weights: str | None = None
    """Pretrained backbone: a local ``.pth``/``.safetensors`` file (official Swin-B ImageNet release
    layout or timm layout), ``timm`` to fetch timm's hub weights, or null for random init. The default is
    null so that building a model never touches the network; the paper recipe sets ``timm`` (offline, a
    failed fetch is one line naming a local file as the fix)."""
    emb: int = 128
    input_size: int = 1024
    patch_ratio: int = 8
    down_ratio: int = 2
    drop_path: float = 0.1
    attn_dropout: float = 0.1
    fse_pool_ratios: list[int] = field(default_factory=lambda: [1, 1, 2, 2])
    # Oct-2025 deltas of the official code (docs/differences.md); default = March-2025 release.
    bis_variant: Literal["march2025", "oct2025"] = "march2025"
    patch_weight_variant: Literal["march2025", "oct2025"] = "march2025"
    coa_norm_variant: Literal["march2025", "oct2025"] = "march2025"
    depth_decoder_variant: Literal["march2025", "oct2025"] = "march2025"


@dataclass
class DataConfig:
    """DIS5K-layout dataset (docs/architecture.md, "Data and pseudo-depth")."""

    root: str = "DIS5K"
    train_split: str = "DIS-TR"
    val_split: str | None = "DIS-VD"
    """Validation split (a folder or list file); null with ``val_fraction`` > 0 holds out part of
    ``train_split`` instead."""
    val_fraction: float = 0.0
    """When > 0 (and ``val_split`` is null): validate on this share of ``train_split``, drawn with
    ``val_seed`` and left out of training."""
    val_seed: int = 0
    size: int = 1024
    """Training/validation resize side; follows ``model.input_size`` when a config leaves it out."""
    train_depths: list[str] = field(default_factory=lambda: ["small", "base", "large"])
    """Input pseudo-depths drawn uniformly per training sample (the release's 1/3 each)."""
    eval_depth: str = "large"
    """Depth input at validation and test (the release: ``depth_large``). Which model made the release's
    ``depth_large`` is uncertain: its notebook runs DAv2-Base into that folder, its project page counts
    DAv2-Large's 335 M parameters; evaluating with ``large`` and ``base`` settles it (docs/reproduce.md)."""
    target_depth: str = "large_1024"
    """Depth target D* of the integrity loss; falls back to ``eval_depth`` when absent if
    ``allow_target_fallback`` is true."""
    allow_target_fallback: bool = False
    augment: bool = True
    num_workers: int = 4


@dataclass
class LossConfig:
    """PDFNet training loss (:class:`pdfnet.losses.PDFNetLoss`; docs/architecture.md). Defaults = the release:
    L = Σ wᵢ[structᵢ + ssim_weight·ssimᵢ] + integrity_weight·Σ wᵢ·inteᵢ + silog_weight·Σ wⱼ·silogⱼ."""

    side_weight: float = 0.5
    """Deep-supervision weight wᵢ of every side output (P1..P5, Q1..Q4); P0 and Q0 weigh 1."""
    ssim_weight: float = 0.5
    integrity_weight: float = 0.5
    silog_weight: float = 0.1
    """Weight of the train-only depth decoder's SiLog sum (skipped when the model has none)."""
    iou_smooth: float = 1.0
    """+1 in the March-2025 release, 1e-6 in Oct-2025."""
    integrity_mean: Literal["batch", "per_sample"] = "batch"
    """Object mean depth μ over the whole batch (release) or per sample. An empty GT gives μ = 0
    (the release divides 0/0 → NaN; Oct-2025's +1e-8 gives 0)."""
    depth_target_norm: Literal["batch", "per_sample"] = "batch"
    """Min–max of the raw depth target over the whole batch (release) or per sample. Identical at B = 1."""


@dataclass
class OptimConfig:
    """AdamW + timm-style cosine schedule (release: effectively constant 1e-5)."""

    lr: float = 1.0e-5
    weight_decay: float = 1.0e-4
    eps: float = 1.0e-8
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 5
    warmup_lr: float = 1.0e-5
    min_lr: float = 1.0e-5
    clip_grad: float | None = None
    fused: bool = False


@dataclass
class TrainConfig:
    """The training loop."""

    output_dir: str = "runs/pdfnet"
    epochs: int = 100
    max_steps: int | None = None
    batch_size: int = 1
    grad_accum: int = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp16"
    grad_checkpointing: bool = False
    compile: bool = False
    channels_last: bool = False
    seed: int = 0
    val_every_epochs: int = 1
    """Validate on ``data.val_split`` every N epochs (0 = never by epoch)."""
    val_every_steps: int | None = None
    """Also validate every N optimizer steps."""
    save_every_steps: int | None = None
    """Write ``last.pt`` every N optimizer steps too (it is always written at each epoch end)."""
    log_every_steps: int = 20
    image_log_every_steps: int = 500
    tensorboard: bool = True
    device: str = "auto"
    select_metric: Literal["release_F", "maxF", "maxF_meanPR", "wF", "MAE"] = "release_F"
    """Validation metric that picks ``best.pt`` (a new best when ≥ the best so far; ≤ for MAE), as the
    release: ``release_F`` = the release's own validation F (raw sigmoid, 255 ``torch.histc`` bins,
    F of mean precision and recall); ``maxF`` / ``maxF_meanPR`` = the DIS metric's two Fmax rules; ``wF``;
    ``MAE``."""
    val_precision: Literal["fp32", "train"] = "fp32"
    """``fp32``: validate without autocast (the release); ``train``: under ``train.precision``'s autocast."""
    init: str | None = None
    """Weights to start from (fine-tuning): the official ``.pth``, a ``model.safetensors`` release or a
    train state (its weights only). Not applied when resuming (the train state has the weights)."""
    init_strict: bool = True
    """``false``: load only the keys whose name and shape match, and report what was skipped."""
    freeze: list[str] = field(default_factory=list)
    """Model parts left out of the optimizer: ``backbone``, ``encoder``, ``decoder``, ``head``,
    ``depth_decoder`` or any module path (e.g. ``encoder.projector``)."""
    hard_half: bool = False
    """The release's ``update_half``: on odd epochs train only on the hardest half (by the P0 segmentation
    loss) of the samples seen in the epoch before."""


@dataclass
class EvalConfig:
    """Model evaluation on DIS splits (the official ``metric_tools/Test.py``)."""

    splits: list[str] = field(
        default_factory=lambda: ["DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4"]
    )
    tta: bool = False
    batch_size: int = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    num_workers: int = 2
    """DataLoader worker processes (like ``data.num_workers``; formerly ``eval.workers``)."""
    fast: bool = False
    """The device's inference fast path (``--fast``: exact fast up-conv stem, channels_last; on CPU Winograd
    convs and freed memory kept for reuse)."""


@dataclass
class DepthConfig:
    """Pseudo-depth precompute with Depth Anything V2 (``pdfnet depth``; docs/architecture.md)."""

    models: list[str] = field(default_factory=lambda: ["all"])
    """Aliases ``small``/``base``/``large``/``large_1024``, ``all`` (the four; ``large_1024`` only
    for training splits), or one transformers model id / local dir (then ``name`` is required)."""
    name: str | None = None
    """Folder suffix (``depth_<name>``) for a custom model."""
    model_paths: list[str] = field(default_factory=list)
    """Local weights per alias, ``ALIAS=DIR`` (``large=DIR`` also serves ``large_1024``)."""
    models_dir: str | None = None
    """Folder with one sub-folder per hub model (``Depth-Anything-V2-Small-hf`` …)."""
    input_size: int | None = None
    """Overrides the input size of every model except ``large_1024``; null = 518 (official)."""
    batch_size: int = 8
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    """``auto``: fp16 on CUDA, fp32 on CPU."""
    bit_depth: Literal[8, 16] = 8
    format: Literal["png", "jpg"] = "png"
    """``png`` (lossless) or ``jpg``: 8-bit JPEG at quality 95, like the release's depth files (they differ
    from the PNGs by JPEG's loss only). The loader prefers ``.png`` when a stem has both."""
    threads: int = 4
    """Decode threads and encode/write threads, each (formerly ``depth.workers``)."""
    max_pixels: int = 100_000_000
    """Images over this many pixels are skipped (checked from the file header before decoding); 0 = no
    bound. Equals ``pdfnet.utils.io.MAX_PIXELS``."""
    target_splits: list[str] | None = None
    """Splits that get ``large_1024`` with ``models: [all]``; null = splits named ``*-TR``."""
    device: str = "auto"


@dataclass
class Config:
    """The whole experiment. Sections mirror the package's subpackages."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
