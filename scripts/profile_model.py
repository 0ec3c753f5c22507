"""Profile one PDFNet inference on the CPU: torch.profiler by operator (and by input shape) and wall time
by module (forward hooks on the top-level parts and their children).

    PYTHONPATH=. python scripts/profile_model.py --size 512 --dtype fp32 [--fast]

Random weights (speed does not depend on values); one untimed warm-up forward, then one profiled one.
The tables in docs/benchmarks.md ("CPU inference of the paper model") come from this script.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from pdfnet.bench.workloads import make_inputs
from pdfnet.config.schema import ModelConfig
from pdfnet.inference.fast import FastInference, FastPathOptions
from pdfnet.models import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--fast", action="store_true", help="FastPathOptions.best_for('cpu', dtype)")
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args()
    cfg = ModelConfig()
    cfg.input_size = args.size
    torch.manual_seed(0)
    model = build_model(cfg, with_depth_decoder=False)
    opts = FastPathOptions.best_for("cpu", args.dtype) if args.fast else FastPathOptions(dtype=args.dtype)
    runner = FastInference(model, "cpu", opts)
    x = make_inputs(1, args.size, torch.device("cpu"))
    image, depth = runner.prepare(x["image"], x["depth"])
    runner(image, depth)  # warm-up

    spent: dict[str, float] = defaultdict(float)
    hooks = []
    for name, mod in runner.model.named_modules():
        if name and name.count(".") <= 2:
            hooks.append(mod.register_forward_pre_hook(lambda m, i: setattr(m, "_t0", time.perf_counter())))
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, k=name: spent.__setitem__(k, spent[k] + time.perf_counter() - m._t0)))
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        runner(image, depth)
    total = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    for h in hooks:
        h.remove()
    print(f"size {args.size} {opts.label()}: {total:.2f} s (profiled), load {os.getloadavg()[0]:.1f}; "
          f"CPU time user {r1.ru_utime - r0.ru_utime:.1f} s, system {r1.ru_stime - r0.ru_stime:.1f} s, "
          f"{r1.ru_minflt - r0.ru_minflt} minor page faults")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    by_shape = prof.key_averages(group_by_input_shape=True)
    print(by_shape.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    for name, s in sorted(spent.items(), key=lambda kv: -kv[1])[:40]:
        print(f"{name:50s} {s * 1e3:10.1f} ms {100 * s / total:5.1f} %")


if __name__ == "__main__":
    main()
