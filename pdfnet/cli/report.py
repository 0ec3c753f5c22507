"""``pdfnet report``: per-split eval JSONs → paper table (Markdown, CSV, LaTeX) and PR / F-threshold plots.

``pdfnet report --json-dir DIR --out DIR [--compare] [--protocol paper|dis] [--method NAME]``

The JSON folder holds one ``pdfnet eval`` document per split (``DIS-VD.json``, ``DIS-TE1.json`` ...; the split
name comes from ``meta.split`` or the file stem). When TE1-4 are all there, a DIS-TE(all) column is added.
``--protocol paper``: Fmax = F(mean P, mean R), DIS-TE(all) = mean of TE1-4 (how the PDFNet table was made);
``--protocol dis``: Fmax = max of the mean F curve, DIS-TE(all) pooled exactly. ``--compare`` adds the
published rows of other methods (PDFNet v1 table) and makes ``paper`` the default protocol.
"""

from __future__ import annotations

import argparse

from pdfnet.metrics.report import ordered_splits, resolve_protocol, write_report


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Write the paper table and PR / F-threshold plots from eval JSONs."
    p.add_argument("--json-dir", required=True, metavar="DIR", help="folder of per-split eval JSONs")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--compare", action="store_true", help="add published rows of other methods")
    p.add_argument("--protocol", choices=("paper", "dis"), default=None,
                   help="paper: Fmax = F(mean P, mean R), DIS-TE(all) = mean of TE1-4 (the PDFNet table's "
                        "rules); dis: Fmax = max of the mean F curve, DIS-TE(all) pooled (DIS/BiRefNet). "
                        "Default: paper with --compare, else dis")
    p.add_argument("--method", default="ours", help="row label for the evaluated method")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    protocol = resolve_protocol(args.protocol, args.compare)
    res = write_report(args.json_dir, args.out, method=args.method, protocol=protocol,
                       compare=args.compare, plots=not args.no_plots)
    print(f"splits: {', '.join(ordered_splits(res['docs']))} (table protocol: {protocol})")
    for p in list(res["tables"].values()) + res["plots"]:
        print(f"wrote {p}")
    return 0
