"""``pdfnet report``: per-split eval JSONs → paper table (Markdown, CSV, LaTeX) and PR / F-threshold plots.

``pdfnet report --json-dir DIR --out DIR [--compare] [--maxf-rule curve|meanPR] [--method NAME]``

The JSON folder holds one ``pdfnet eval`` document per split (``DIS-VD.json``, ``DIS-TE1.json`` ...; the split
name comes from ``meta.split`` or the file stem). When TE1-4 are all there, DIS-TE(all) is pooled exactly
from their stored sums. ``--compare`` adds the published rows of other methods (PDFNet v1 table).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables (md/csv/tex) and curve plots from per-split eval JSONs",
                       description="Write the paper table and PR / F-threshold plots from eval JSONs.")
    p.add_argument("--json-dir", required=True, metavar="DIR", help="folder of per-split eval JSONs")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--compare", action="store_true", help="add published rows of other methods")
    p.add_argument("--maxf-rule", choices=("curve", "meanPR"), default="curve",
                   help="Fmax column: max of mean F curve (default, DIS rule) or F of mean P/R (PDFNet rule)")
    p.add_argument("--method", default="ours", help="row label for the evaluated method")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pdfnet.metrics.report import ordered_splits, write_report

    res = write_report(args.json_dir, args.out, method=args.method, maxf_rule=args.maxf_rule,
                       compare=args.compare, plots=not args.no_plots)
    print(f"splits: {', '.join(ordered_splits(res['docs']))}")
    for p in list(res["tables"].values()) + res["plots"]:
        print(f"wrote {p}")
    return 0
