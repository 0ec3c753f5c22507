"""``pdfnet data check``: validate a dataset before a long run (no torch is imported).

Checks every split of a DIS5K-layout or generic root (or the splits / list files named with ``--splits``):
counts, images without masks and masks without images, unreadable or corrupt files, image/mask size
mismatches, masks that are not single-channel or not binary (warnings unless ``--strict``), stems that
clash across extensions, and the depth folders present or missing with their counts. Exit status: 0 when
the data is trainable, 1 when there are problems, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys

from pdfnet.data.check import check_splits
from pdfnet.errors import UserError


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Dataset tools."
    dsub = p.add_subparsers(dest="data_command", metavar="<action>")
    c = dsub.add_parser(
        "check", help="check a dataset: pairing, readable files, sizes, masks, depth coverage",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("root", metavar="ROOT", help="data root (holds the split folders, or DIS5K/)")
    c.add_argument("--splits", nargs="+", metavar="SPLIT",
                   help="split folders or list files (.csv/.tsv/.txt) to check (default: every split folder)")
    c.add_argument("--depths", nargs="+", metavar="NAME",
                   help="depth folders every split must have complete (depth_<NAME>), e.g. small base large")
    c.add_argument("--strict", action="store_true",
                   help="non-binary, multi-channel or empty masks are problems, not warnings")
    c.add_argument("--decode", action="store_true",
                   help="decode every image fully (default: header and end-of-file check; masks are always "
                        "decoded)")
    c.add_argument("--no-gt", dest="require_gt", action="store_false",
                   help="masks are optional (images to predict on)")
    c.add_argument("--workers", type=int, metavar="N", help="processes (default: CPU count, up to 8)")
    c.add_argument("--no-cache", dest="cache", action="store_false",
                   help="do not reuse or store results (default: cached per file by size and mtime)")
    c.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_check(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    depths = [t for d in (args.depths or []) for t in d.split(",") if t]
    report = check_splits(args.root, args.splits, depths=depths, require_gt=args.require_gt,
                          strict=args.strict, decode=args.decode, workers=args.workers, cache=args.cache,
                          progress=args.progress)
    for rep in report.splits:
        print(rep.summary())
        for issue in rep.issues:
            print(f"  {'warning' if issue.warning else 'error'}: {issue.message}")
    n_err, n_warn = len(report.errors), len(report.warnings)
    n_samples = sum(len(i) for i in report.indexes.values())
    warn = f"; {n_warn} warning{'s' if n_warn != 1 else ''}" if n_warn else ""
    if n_err:
        bad = len({s for s, _ in report.errors})
        print(f"data check: {n_err} problem{'s' if n_err != 1 else ''} in {bad} of {len(report.splits)} "
              f"split(s){warn}; first: {report.errors[0][0]}: {report.errors[0][1].message}", file=sys.stderr)
        return 1
    print(f"data check: ok ({len(report.splits)} split(s), {n_samples} samples{warn})", file=sys.stderr)
    return 0
