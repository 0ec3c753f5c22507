"""``pdfnet synth``: write a synthetic DIS-like dataset (official DIS5K layout, with depth folders)."""

from __future__ import annotations

import argparse
import time

from pdfnet.data.synth import generate_dataset
from pdfnet.errors import UserError


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write DIS-TR, DIS-VD and DIS-TE1..4 with im/*.jpg, gt/*.png and depth_{small,base,large,"
        "large_1024}/*.png: thin wires, meshes, branching trees, solid parts with holes and wheels over "
        "cluttered backgrounds, with depth that follows the integrity prior. Deterministic for a seed."
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must be empty or absent)")
    p.add_argument("--train", type=int, default=256, metavar="N", help="DIS-TR images (default 256)")
    p.add_argument("--val", type=int, default=64, metavar="N", help="DIS-VD images (default 64)")
    p.add_argument("--test", type=int, default=32, metavar="N",
                   help="images in each of DIS-TE1..4 (default 32)")
    p.add_argument("--size", type=int, default=256, metavar="S", help="image side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="dataset seed (default 0)")
    p.add_argument("--aspect-jitter", type=float, default=0.0, metavar="A",
                   help="non-square images: width = size * exp(U(-A, A)), A in [0, 1] (default 0: square)")
    p.add_argument("--near-floor", type=float, default=None, metavar="P",
                   help="share of scenes whose floor comes as near as the object, in [0, 1] (default "
                        "0.12; 0: the object is always the nearest surface, so depth alone separates it)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="worker processes (default 0: up to 4; output does not depend on it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset synth wrote in --out: only the files its synth.json accounts "
                        "for are deleted; a folder synth did not write is refused")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in ("train", "val", "test"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name} must be >= 0, got {getattr(args, name)}")
    counts = {"DIS-TR": args.train, "DIS-VD": args.val}
    counts.update({f"DIS-TE{i}": args.test for i in range(1, 5)})
    t0 = time.perf_counter()
    extra = {} if args.near_floor is None else {"near_floor": args.near_floor}
    written = generate_dataset(
        args.out, counts, size=args.size, seed=args.seed, aspect_jitter=args.aspect_jitter, **extra,
        workers=args.workers, overwrite=args.overwrite, progress=args.progress,
    )
    total = sum(written.values())
    print(f"wrote {total} images ({', '.join(f'{k} {v}' for k, v in written.items())}) to {args.out} "
          f"in {time.perf_counter() - t0:.1f}s")
    return 0
