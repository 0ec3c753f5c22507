"""The four speed workloads of ``pdfnet bench``: model (inference), train (one step), depth, predict.

Each ``*_cases`` function returns the :class:`~pdfnet.bench.harness.BenchCase` list for one run: the
baseline (the release's way: eager, no fast paths, a configurable dtype) first, then the candidate
with the requested fast paths, at the same input size, so :func:`~pdfnet.bench.harness.run_cases`
measures them side by side in one process. Weights are random (speed does not depend on values);
every case builds its own copy of the same seeded model so one case's conversions (channels_last,
compile) cannot leak into another.

FLOPs are counted once per configuration on a ``meta``-device copy of the model (no compute, no
memory), falling back to a real eager call if the meta run fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pdfnet.bench.harness import BenchCase, Step, count_flops
from pdfnet.config.schema import ModelConfig, OptimConfig
from pdfnet.depth import DepthEstimator
from pdfnet.depth.transforms import quantize
from pdfnet.engine.optim import build_optimizer
from pdfnet.inference.fast import FastInference, FastPathOptions, set_fast_upconv
from pdfnet.losses import PDFNetLoss
from pdfnet.models import build_model
from pdfnet.utils.allocator import retain_freed_memory
from pdfnet.utils.normalize import minmax_normalize, normalize_image
from pdfnet.utils.precision import DTYPES, amp_precision, autocast

__all__ = [
    "RELEASE_INFERENCE",
    "RELEASE_TRAIN",
    "TrainOptions",
    "depth_cases",
    "make_inputs",
    "model_cases",
    "depth_flops",
    "model_flops",
    "predict_cases",
    "random_depth_model",
    "train_cases",
]


#: The release's inference: fp32, eager, no fast paths.
RELEASE_INFERENCE = FastPathOptions()


def _seeded_model(cfg: ModelConfig, with_depth_decoder: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg, with_depth_decoder=with_depth_decoder)


def make_inputs(batch: int, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random image [B,3,S,S] (normalised-RGB-like), depth [B,1,S,S] in [0,1], gt and depth target."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, size, size, generator=g)
    depth = torch.rand(batch, 1, size, size, generator=g)
    gt = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float()
    target = torch.rand(batch, 1, size, size, generator=g)
    return {k: v.to(device) for k, v in
            {"image": image, "depth": depth, "gt": gt, "depth_target": target}.items()}


def model_flops(model: nn.Module, inputs: Callable[[torch.device], tuple], fn: Callable[..., Any],
                fallback_device: torch.device | None = None) -> int:
    """FLOPs of ``fn(model_copy, *inputs(device))``, counted on a meta-device copy (no compute).

    The meta run also counts attention as the matmuls it is (FlopCounterMode has no formula for the
    fused CPU SDPA kernel). If some op has no meta kernel, the count runs for real on
    ``fallback_device`` (default CPU).
    """
    try:
        meta = copy.deepcopy(model).to("meta")
        args = inputs(torch.device("meta"))
        return count_flops(lambda: fn(meta, *args))
    except Exception:  # noqa: BLE001 - an op without a meta kernel: count for real
        dev = fallback_device or torch.device("cpu")
        real = copy.deepcopy(model).to(dev)
        args = inputs(dev)
        return count_flops(lambda: fn(real, *args))


# ----------------------------------------------------------------------------------------- model
def _baseline_then_candidate(case: Callable[..., BenchCase], candidate: Any, baseline: Any | None,
                             batch_size: int, baseline_batch_size: int | None) -> list[BenchCase]:
    """``[baseline case (optional), candidate case]``; ``case(name, options, batch)`` builds one."""
    cases = []
    if baseline is not None:
        bb = baseline_batch_size or batch_size
        cases.append(case(f"baseline:{baseline.label()}:B{bb}", baseline, bb))
    cases.append(case(f"{candidate.label()}:B{batch_size}", candidate, batch_size))
    return cases


def _allocator_for(opts: FastPathOptions, device: torch.device) -> None:
    """Set the process-wide allocator mode of this case before each of its steps (CPU), so interleaved
    cases each run as they would alone: switching it off also hands the retained heap back
    (``malloc_trim``), so the next retaining step starts cold — a conservative figure for it."""
    if device.type == "cpu":
        retain_freed_memory(opts.retain_memory)


def model_cases(
    cfg: ModelConfig,
    device: torch.device,
    *,
    batch_size: int,
    candidate: FastPathOptions,
    baseline: FastPathOptions | None = RELEASE_INFERENCE,
    baseline_batch_size: int | None = None,
) -> list[BenchCase]:
    """Inference of the segmentation network (no depth decoder), P0 logits out.

    Args:
        cfg: model config (``input_size`` is the benchmark size).
        device: where to run.
        batch_size: candidate batch.
        candidate: fast-path options of the candidate.
        baseline: options of the baseline (default: fp32 eager), or None for no baseline.
        baseline_batch_size: baseline batch (default: ``batch_size``).
    """
    size = cfg.input_size
    master = _seeded_model(cfg, with_depth_decoder=False)

    def fwd(m, image, depth):
        return m.eval()(image, depth, with_depth_decoder=False).logits

    def flops_for(b: int) -> Callable[[], int]:
        return lambda: model_flops(master, lambda d: tuple(make_inputs(b, size, torch.device("cpu"))[k].to(d)
                                                           for k in ("image", "depth")), fwd, device)

    def case(name: str, opts: FastPathOptions, b: int) -> BenchCase:
        def setup() -> Step:
            runner = FastInference(copy.deepcopy(master), device, opts)
            x = make_inputs(b, size, device)
            image, depth = runner.prepare(x["image"], x["depth"])

            def step() -> torch.Tensor:
                _allocator_for(opts, device)
                return runner(image, depth)

            return step

        return BenchCase(name, setup, b, options={**opts.to_dict(), "batch_size": b, "size": size},
                         flops_fn=flops_for(b), flops_key=f"model-B{b}-S{size}")

    return _baseline_then_candidate(case, candidate, baseline, batch_size, baseline_batch_size)




# ----------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class TrainOptions:
    """Training-step switches. Defaults = the release (fp16 AMP + GradScaler, eager, plain AdamW).

    Attributes:
        dtype: ``fp16`` (GradScaler; CUDA only — on CPU it means fp32), ``bf16`` or ``fp32``.
        channels_last, fast_upconv, compile, compile_mode: as for inference.
        grad_checkpointing: recompute backbone blocks in backward.
        fused_adamw: fused AdamW kernel (CUDA); with fp16 it also takes the GradScaler's inf check on
            device, so the step has no host synchronisation.
    """

    dtype: str = "fp16"
    channels_last: bool = False
    fast_upconv: bool = False
    compile: bool = False
    compile_mode: str | None = None
    grad_checkpointing: bool = False
    fused_adamw: bool = False

    def label(self) -> str:
        parts = [self.dtype]
        for flag, name in ((self.channels_last, "cl"), (self.fast_upconv, "upconv"),
                           (self.grad_checkpointing, "ckpt"), (self.fused_adamw, "fused"),
                           (self.compile, "compile")):
            if flag:
                parts.append(name)
        return "+".join(parts) if len(parts) > 1 else f"{self.dtype}-eager"


#: The release's training step: fp16 AMP + GradScaler, eager, plain (for-each) AdamW.
RELEASE_TRAIN = TrainOptions()


def _train_step_factory(master: nn.Module, device: torch.device, opts: TrainOptions, batch: int,
                        size: int, optim_cfg: OptimConfig) -> Step:
    amp, use_scaler = amp_precision(opts.dtype, device, warn=False)  # fp16 on CPU → fp32, as the trainer
    model = copy.deepcopy(master).to(device).train()
    if opts.channels_last:
        model.to(memory_format=torch.channels_last)
    if opts.fast_upconv:
        set_fast_upconv(model, True)
    if opts.grad_checkpointing:
        model.set_grad_checkpointing(True)
    loss_fn = PDFNetLoss().to(device)
    ocfg = copy.deepcopy(optim_cfg)
    ocfg.fused = opts.fused_adamw
    optimizer = build_optimizer(model, ocfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    x = make_inputs(batch, size, device)
    if opts.channels_last:
        x = {k: v.contiguous(memory_format=torch.channels_last) for k, v in x.items()}

    def fwd_loss(image, depth, gt, target):
        with autocast(device, amp):
            out = model(image, depth)
        loss, _ = loss_fn(out, gt, target)
        return loss

    fwd = torch.compile(fwd_loss, mode=opts.compile_mode, dynamic=False) if opts.compile else fwd_loss

    def step() -> None:
        loss = fwd(x["image"], x["depth"], x["gt"], x["depth_target"])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def train_cases(
    cfg: ModelConfig,
    device: torch.device,
    *,
    batch_size: int,
    candidate: TrainOptions,
    baseline: TrainOptions | None = RELEASE_TRAIN,
    baseline_batch_size: int | None = None,
    optim_cfg: OptimConfig | None = None,
) -> list[BenchCase]:
    """One full training step: forward (with the depth decoder), the full PDFNet loss, backward,
    AdamW step (release parameter groups), zero_grad. Baseline default: the release (fp16 AMP eager)."""
    size = cfg.input_size
    master = _seeded_model(cfg, with_depth_decoder=True)
    ocfg = optim_cfg or OptimConfig()

    def flops_for(b: int) -> Callable[[], int]:
        # Forward (with the depth decoder) + backward of every output. The loss itself is left out
        # (its few small convs are < 0.1 % and autocast cannot run on the meta device); a plain sum
        # of all outputs sends gradients through exactly the same graph.
        def fb(m, image, depth):
            out = m.train()(image, depth)
            sum(o.float().sum() for o in (*out.all_logits, *out.depth_logits)).backward()

        return lambda: model_flops(master, lambda d: tuple(make_inputs(b, size, torch.device("cpu"))[k].to(d)
                                                           for k in ("image", "depth")), fb, device)

    def case(name: str, opts: TrainOptions, b: int) -> BenchCase:
        return BenchCase(name, lambda: _train_step_factory(master, device, opts, b, size, ocfg), b,
                         options={**asdict(opts), "batch_size": b, "size": size},
                         flops_fn=flops_for(b), flops_key=f"train-B{b}-S{size}")

    return _baseline_then_candidate(case, candidate, baseline, batch_size, baseline_batch_size)


# ----------------------------------------------------------------------------------------- depth
#: DAv2 architectures (transformers' ``*-hf`` configs) for speed runs with random weights.
DAV2_ARCH: dict[str, dict[str, Any]] = {
    "small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
              "out_indices": [3, 6, 9, 12], "neck": [48, 96, 192, 384], "fusion": 64},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "out_indices": [3, 6, 9, 12], "neck": [96, 192, 384, 768], "fusion": 128},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "out_indices": [5, 12, 18, 24], "neck": [256, 512, 1024, 1024], "fusion": 256},
    "tiny": {"hidden_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
             "out_indices": [1, 2, 3, 4], "neck": [8, 8, 16, 16], "fusion": 8},
}


def random_depth_model(arch: str) -> nn.Module:
    """A randomly initialised Depth Anything V2 of architecture ``small``/``base``/``large``/``tiny``.

    Same modules and shapes as the released checkpoints (so the same speed), no download.
    """
    # transformers: loaded only for the depth workloads
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    if arch not in DAV2_ARCH:
        raise ValueError(f"unknown DAv2 architecture {arch!r}; choose one of {sorted(DAV2_ARCH)}")
    a = DAV2_ARCH[arch]
    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=a["hidden_size"], num_hidden_layers=a["num_hidden_layers"],
        num_attention_heads=a["num_attention_heads"], mlp_ratio=4, out_indices=a["out_indices"],
        reshape_hidden_states=False, layerscale_value=1.0, use_swiglu_ffn=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=a["hidden_size"], reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=a["neck"], fusion_hidden_size=a["fusion"], head_hidden_size=32, patch_size=14,
        depth_estimation_type="relative",
    )
    torch.manual_seed(0)
    return DepthAnythingForDepthEstimation(cfg).eval()


def _depth_estimator(spec: str, device: torch.device, dtype: str, batch_size: int, input_size: int):
    if spec.startswith("random:"):
        model = random_depth_model(spec.split(":", 1)[1])
        return DepthEstimator(model, device=device, dtype=DTYPES[dtype], input_size=input_size,
                              batch_size=batch_size, name=spec)
    return DepthEstimator.from_pretrained(spec, device=device, dtype=dtype, input_size=input_size,
                                          batch_size=batch_size)


def depth_flops(spec: str, batch_size: int, image_hw: tuple[int, int], input_size: int) -> int:
    """FLOPs of the depth network's forward for one batch (meta device; pre/post-processing excluded)."""
    est = _depth_estimator(spec, torch.device("cpu"), "fp32", batch_size, input_size)
    th, tw = est.target_size(*image_hw)
    return model_flops(est.model, lambda d: (torch.zeros(batch_size, 3, th, tw, device=d),),
                       lambda m, t: m(pixel_values=t))


def depth_cases(
    spec: str,
    device: torch.device,
    *,
    batch_size: int,
    dtype: str,
    baseline_dtype: str | None = "fp32",
    image_hw: tuple[int, int] = (518, 518),
    input_size: int = 518,
) -> list[BenchCase]:
    """Depth Anything V2 on random images already on the device: preprocess, forward, postprocess
    (the GPU part of ``pdfnet depth``; see :func:`pdfnet.bench.depth.benchmark_model`).

    Args:
        spec: ``small``/``base``/``large``/hub id/local dir (real weights), or ``random:<arch>``
            (random weights, arch in :data:`DAV2_ARCH`; for speed runs without downloads).
        dtype / baseline_dtype: autocast dtype of the candidate / baseline (None = no baseline).
    """
    def case(name: str, dt: str) -> BenchCase:
        def setup() -> Step:
            est = _depth_estimator(spec, device, dt, batch_size, input_size)
            g = torch.Generator().manual_seed(0)
            imgs = [torch.randint(0, 256, (*image_hw, 3), generator=g, dtype=torch.uint8).to(device)
                    for _ in range(batch_size)]

            def step() -> None:
                x, sizes = est.prepare(imgs)
                for d in est.run_prepared(x, sizes):
                    quantize(d, 8)

            return step

        return BenchCase(name, setup, batch_size,
                         options={"model": spec, "dtype": dt, "batch_size": batch_size,
                                  "image_hw": list(image_hw), "input_size": input_size},
                         flops_fn=lambda: depth_flops(spec, batch_size, image_hw, input_size),
                         flops_key=f"depth-{spec}-B{batch_size}")

    cases = []
    if baseline_dtype is not None:
        cases.append(case(f"baseline:{baseline_dtype}:B{batch_size}", baseline_dtype))
    cases.append(case(f"{dtype}:B{batch_size}", dtype))
    return cases


# --------------------------------------------------------------------------------------- predict
def predict_cases(
    cfg: ModelConfig,
    depth_spec: str,
    device: torch.device,
    *,
    batch_size: int,
    candidate: FastPathOptions,
    depth_dtype: str,
    baseline: FastPathOptions | None = RELEASE_INFERENCE,
    baseline_depth_dtype: str = "fp32",
    image_hw: tuple[int, int] = (1024, 1024),
    depth_input_size: int = 518,
) -> list[BenchCase]:
    """End to end on decoded images: depth (DAv2) → resize to S → PDFNet → sigmoid → resize back →
    uint8 masks on the host. File decode/encode is excluded (it is CPU work that overlaps with the GPU
    in a real pipeline). The release baseline runs the depth model and PDFNet in fp32 eager, one batch
    at a time, like the official demo."""
    size = cfg.input_size
    master = _seeded_model(cfg, with_depth_decoder=False)
    rng = np.random.default_rng(0)
    host_imgs = [torch.from_numpy(rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8))
                 for _ in range(batch_size)]

    def flops() -> int:
        seg = model_flops(master, lambda d: tuple(make_inputs(batch_size, size, torch.device("cpu"))[k].to(d)
                                                  for k in ("image", "depth")),
                          lambda m, i, d: m.eval()(i, d, with_depth_decoder=False).logits, device)
        return seg + depth_flops(depth_spec, batch_size, image_hw, depth_input_size)

    def case(name: str, opts: FastPathOptions, ddt: str) -> BenchCase:
        def setup() -> Step:
            est = _depth_estimator(depth_spec, device, ddt, batch_size, depth_input_size)
            runner = FastInference(copy.deepcopy(master), device, opts)

            def step() -> list[np.ndarray]:
                _allocator_for(opts, device)
                imgs = [im.to(device, non_blocking=True) for im in host_imgs]
                x, sizes = est.prepare(imgs)
                depths = [quantize(d, 8) for d in est.run_prepared(x, sizes)]
                depths = torch.stack([torch.as_tensor(d, device=device) for d in depths])[:, None].float()
                rgb = torch.stack(imgs).permute(0, 3, 1, 2).float().div_(255.0)
                rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False)
                dep = F.interpolate(depths / 255.0, size=(size, size), mode="bilinear", align_corners=False)
                logits = runner(normalize_image(rgb), minmax_normalize(dep, "per_sample"))
                prob = F.interpolate(torch.sigmoid(logits), size=image_hw, mode="bilinear",
                                     align_corners=False)
                return list((prob * 255.0).round_().to(torch.uint8).cpu().numpy())

            return step

        return BenchCase(name, setup, batch_size,
                         options={**opts.to_dict(), "depth_model": depth_spec, "depth_dtype": ddt,
                                  "batch_size": batch_size, "size": size, "image_hw": list(image_hw)},
                         flops_fn=flops, flops_key=f"predict-B{batch_size}")

    cases = []
    if baseline is not None:
        cases.append(case(f"baseline:{baseline.label()}+depth-{baseline_depth_dtype}:B{batch_size}",
                          baseline, baseline_depth_dtype))
    cases.append(case(f"{candidate.label()}+depth-{depth_dtype}:B{batch_size}", candidate, depth_dtype))
    return cases
