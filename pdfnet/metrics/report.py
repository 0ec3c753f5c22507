"""Per-split eval JSONs → the paper table (Markdown, CSV, LaTeX) and PR / F-threshold plots.

Inputs are eval documents (:func:`pdfnet.metrics.folders.result_document`, schema ``pdfnet.eval/1``), one per
split, e.g. ``DIS-VD.json``, ``DIS-TE1.json`` … ``DIS-TE4.json``. Their ``state`` holds exact sums (curve
sums, scalar sums, counts), so DIS-TE(all) can be pooled exactly over all TE1-4 images (2000 in DIS5K).

Columns follow the paper: Fmax, Fw, Em (mean E), Sα, MAE, plus HCE (official IS-Net protocol). Two table
protocols (:data:`PROTOCOLS`), named in the header line of every table:

* ``paper`` — how the PDFNet paper's table (and so the published rows, :mod:`pdfnet.metrics.published`) was
  made: Fmax = max over thresholds of F(mean precision, mean recall) (the official PDFNet evaluator), and
  DIS-TE(all) = the mean of the TE1-4 values, column by column.
* ``dis`` — the DIS / BiRefNet protocol: Fmax = max of the dataset-mean F curve, and DIS-TE(all) pooled
  exactly over the images of TE1-4 (its Fmax is *not* the mean of the four split values).

With published rows (``compare=True``) the default is ``paper``, so that our row is made like theirs;
otherwise ``dis``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdfnet.errors import UserError
from pdfnet.metrics.dis import DISMetrics
from pdfnet.metrics.folders import RESULT_SCHEMA, json_safe, result_document
from pdfnet.metrics.published import PUBLISHED, PUBLISHED_SOURCE
from pdfnet.utils.atomic import atomic_write_bytes

SPLIT_ORDER: tuple[str, ...] = ("DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4", "DIS-TE(all)")
TE_SPLITS: tuple[str, ...] = ("DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
TE_ALL = "DIS-TE(all)"
#: table column → (aggregate key, decimals)
COLUMNS: dict[str, tuple[str, int]] = {
    "Fmax": ("maxF", 3), "Fw": ("wF", 3), "Em": ("meanE", 3), "S": ("S", 3), "MAE": ("MAE", 3),
    "HCE": ("HCE", 0),
}
#: protocol → (aggregate key of the Fmax column, how DIS-TE(all) is formed: "mean" of TE1-4 or "pooled")
PROTOCOLS: dict[str, tuple[str, str]] = {"paper": ("maxF_meanPR", "mean"), "dis": ("maxF", "pooled")}


def resolve_protocol(protocol: str | None, compare: bool) -> str:
    """``protocol``, or the default: ``paper`` with published rows (they were made so), else ``dis``."""
    if protocol is None:
        return "paper" if compare else "dis"
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown table protocol {protocol!r} (use {' or '.join(PROTOCOLS)})")
    return protocol


# ---------------------------------------------------------------------------------------------------
# documents


def write_split_json(acc: DISMetrics, split: str, out_dir: str | os.PathLike,
                     meta: Mapping | None = None) -> Path:
    """Write ``<out_dir>/<split>.json`` (eval document with ``meta.split``) atomically; returns the path."""
    doc = result_document(acc)
    doc["meta"]["split"] = split
    if meta:
        doc["meta"].update(meta)
    return write_json(doc, Path(out_dir) / f"{split}.json")


def write_json(doc: Mapping, path: str | os.PathLike) -> Path:
    """Strict JSON (no NaN), atomic write."""
    data = json.dumps(json_safe(doc), indent=1, allow_nan=False).encode()
    return atomic_write_bytes(path, data)


def load_docs(json_dir: str | os.PathLike) -> dict[str, dict]:
    """``{split: document}`` for every eval JSON in ``json_dir`` (split = ``meta.split`` or the file stem)."""
    d = Path(json_dir)
    if not d.is_dir():
        raise UserError(f"JSON folder not found: {d}")
    docs: dict[str, dict] = {}
    for f in sorted(d.glob("*.json")):
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read {f}: {e}") from None
        if not isinstance(doc, dict) or doc.get("schema") != RESULT_SCHEMA:
            continue
        split = str(doc.get("meta", {}).get("split") or f.stem)
        if split in docs:
            raise UserError(f"two JSONs for split {split!r} in {d}")
        docs[split] = doc
    if not docs:
        raise UserError(f"no eval JSONs (schema {RESULT_SCHEMA}) in {d}")
    return docs


def pool(docs: Sequence[dict], split: str = TE_ALL) -> dict:
    """Exactly pooled document of several splits (sums added; aggregates recomputed)."""
    acc: DISMetrics | None = None
    for doc in docs:
        st = dict(doc["state"])
        st.setdefault("per_image", {})
        if acc is None:
            acc = DISMetrics(metrics=st.get("metrics"), keep_per_image=False)
        acc.merge(st)
    if acc is None:
        raise ValueError("nothing to pool")
    out = result_document(acc)
    metas = [d.get("meta", {}) for d in docs]
    out["meta"].update({"split": split, "pooled_from": [m.get("split") for m in metas]})
    for key in ("tta", "resolution", "method"):
        vals = {json.dumps(m.get(key)) for m in metas}
        if len(vals) == 1:
            out["meta"][key] = metas[0].get(key)
    return out


def with_te_all(docs: dict[str, dict]) -> dict[str, dict]:
    """Add the pooled ``DIS-TE(all)`` document when all of TE1-4 are present and it is not there already."""
    docs = dict(docs)
    if TE_ALL not in docs and all(s in docs for s in TE_SPLITS):
        docs[TE_ALL] = pool([docs[s] for s in TE_SPLITS])
    return docs


def te_all_mean(docs: Mapping[str, dict], key: str) -> float:
    """Mean of TE1-4 split values of an aggregate (how the PDFNet v1 table's TE(ALL) column was formed; the
    ``paper`` protocol's DIS-TE(all))."""
    vals = [docs[s]["dataset"].get(key) for s in TE_SPLITS]
    if any(v is None for v in vals):
        return float("nan")
    return sum(vals) / 4


def ordered_splits(docs: Mapping[str, Any]) -> list[str]:
    known = [s for s in SPLIT_ORDER if s in docs]
    return known + sorted(s for s in docs if s not in SPLIT_ORDER)


# ---------------------------------------------------------------------------------------------------
# tables


def _settings(docs: Mapping[str, dict]) -> dict[str, str]:
    def one(key: str) -> str:
        vals = {json.dumps(d.get("meta", {}).get(key)) for d in docs.values()}
        if len(vals) != 1:
            return "mixed"
        v = json.loads(vals.pop())
        if v is None:
            return "unknown"
        if isinstance(v, bool):
            return "on" if v else "off"
        return str(v)

    return {"tta": one("tta"), "resolution": one("resolution")}


def header_line(docs: Mapping[str, dict], protocol: str = "dis") -> str:
    """One line naming the protocol (Fmax rule, how TE(all) is formed), TTA and resolution."""
    s = _settings(docs)
    if protocol == "paper":
        rule = ("protocol: paper (official PDFNet evaluator) - Fmax = max over thresholds of "
                "F(mean precision, mean recall); DIS-TE(all) = mean of TE1-4 in every column")
    else:
        rule = ("protocol: DIS (DIS/BiRefNet evaluators) - Fmax = max of the dataset-mean F curve; "
                "DIS-TE(all) pooled over all TE1-4 images")
    return (f"{rule}; beta^2 = 0.3, 256 thresholds; Em = mean E; HCE = official IS-Net (relax 5, eps 2); "
            f"TTA: {s['tta']}; resolution: {s['resolution']}")


def _cell(dataset: Mapping[str, Any], fmax_key: str) -> dict[str, float | None]:
    """One split's table cell ``{column: value or None}`` from its aggregates."""
    cell: dict[str, float | None] = {}
    for col, (key, _) in COLUMNS.items():
        v = dataset.get(fmax_key if col == "Fmax" else key)
        cell[col] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return cell


def table_rows(docs: Mapping[str, dict], method: str = "ours", protocol: str = "dis",
               compare: bool = False) -> tuple[list[str], list[dict]]:
    """``(splits, rows)``; each row ``{"method", "params", split: {column: value or None}}``.

    Our row follows ``protocol`` (:data:`PROTOCOLS`): its Fmax key, and DIS-TE(all) as the column-wise
    mean of TE1-4 (``paper``, when all four are there) or the pooled document (``dis``).
    """
    protocol = resolve_protocol(protocol, compare)
    fmax_key, te_all_rule = PROTOCOLS[protocol]
    splits = ordered_splits(docs)
    rows: list[dict] = []
    if compare:
        for name, entry in PUBLISHED.items():
            row = {"method": name, "params": entry["params"]}
            for sp in splits:
                pub = entry["splits"].get("DIS-TE(ALL)" if sp == TE_ALL else sp)
                row[sp] = {c: (None if pub is None or c == "HCE" else pub[c]) for c in COLUMNS}
            rows.append(row)
    ours: dict[str, Any] = {"method": method, "params": ""}
    for sp in splits:
        ours[sp] = _cell(docs[sp]["dataset"], fmax_key)
    if TE_ALL in splits and te_all_rule == "mean" and all(s in docs for s in TE_SPLITS):
        parts = [ours[s] for s in TE_SPLITS]
        ours[TE_ALL] = {c: (None if any(p[c] is None for p in parts) else sum(p[c] for p in parts) / 4)
                        for c in COLUMNS}
    rows.append(ours)
    return splits, rows


def _fmt(v: float | None, dec: int) -> str:
    if v is None:
        return "–"
    if dec == 0:
        return f"{v:.0f}"
    s = f"{v:.{dec}f}"
    return s[1:] if s.startswith("0.") else s


def to_markdown(splits: list[str], rows: list[dict], header: str) -> str:
    out = [f"_{header}_", ""]
    cols = list(COLUMNS)
    head = ["Method"] + [f"{sp} {c}" for sp in splits for c in cols]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for r in rows:
        cells = [r["method"]] + [_fmt(r[sp][c], COLUMNS[c][1]) for sp in splits for c in cols]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Compact (paper layout, Fmax/Fw/Em/Sα/MAE/HCE per split):")
    out.append("")
    out.append("| Method | " + " | ".join(splits) + " |")
    out.append("|---|" + "---|" * len(splits))
    for r in rows:
        cells = ["/".join(_fmt(r[sp][c], COLUMNS[c][1]) for c in cols) for sp in splits]
        out.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def to_csv(splits: list[str], rows: list[dict], header: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"# {header}"])
    w.writerow(["method", "params", "split", *COLUMNS])
    for r in rows:
        for sp in splits:
            vals = ("" if r[sp][c] is None else r[sp][c] for c in COLUMNS)
            w.writerow([r["method"], r["params"], sp, *vals])
    return buf.getvalue()


def _tex_escape(s: str) -> str:
    return s.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def to_latex(splits: list[str], rows: list[dict], header: str) -> str:
    cols = list(COLUMNS)
    tex_cols = {"Fmax": r"$F_\beta^{max}$", "Fw": r"$F_\beta^{w}$", "Em": r"$E_\phi^{m}$", "S": r"$S_\alpha$",
                "MAE": r"$\mathcal{M}$", "HCE": r"$HCE_\gamma$"}
    spec = "l" + ("|" + "c" * len(cols)) * len(splits)
    lines = [f"% {header}", r"\begin{tabular}{" + spec + "}", r"\hline"]
    lines.append("Method & " + " & ".join(rf"\multicolumn{{{len(cols)}}}{{c}}{{{_tex_escape(sp)}}}"
                                         for sp in splits) + r" \\")
    lines.append(" & " + " & ".join(tex_cols[c] for _ in splits for c in cols) + r" \\ \hline")
    for r in rows:
        cells = [_fmt(r[sp][c], COLUMNS[c][1]) for sp in splits for c in cols]
        lines.append(_tex_escape(r["method"]) + " & " + " & ".join(cells).replace("–", "--") + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_tables(docs: Mapping[str, dict], out_dir: str | os.PathLike, method: str = "ours",
                 protocol: str | None = None, compare: bool = False) -> dict[str, Path]:
    """Write ``table.md``, ``table.csv``, ``table.tex``; returns their paths.

    ``protocol``: ``paper`` or ``dis`` (:data:`PROTOCOLS`); None = ``paper`` with ``compare``, else ``dis``.
    """
    out = Path(out_dir)
    protocol = resolve_protocol(protocol, compare)
    header = header_line(docs, protocol)
    if compare:
        header += f"; published rows: {PUBLISHED_SOURCE} (their own evaluators)"
    splits, rows = table_rows(docs, method, protocol, compare)
    paths = {}
    for ext, fn in (("md", to_markdown), ("csv", to_csv), ("tex", to_latex)):
        paths[ext] = atomic_write_bytes(out / f"table.{ext}", fn(splits, rows, header).encode())
    return paths


# ---------------------------------------------------------------------------------------------------
# plots


def plot_curves(docs: Mapping[str, dict], out_dir: str | os.PathLike) -> list[Path]:
    """PR curves and F-vs-threshold curves, per split and all splits together (PNG, Agg backend)."""
    import matplotlib  # optional at import: only `report` plots need it (slow to import)

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # after choosing the Agg backend

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = ordered_splits(docs)
    thr = 255 - np.arange(256)
    paths: list[Path] = []

    def save(fig, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(atomic_write_bytes(out / name, buf.getvalue()))

    def safe(sp: str) -> str:
        return sp.replace("(", "").replace(")", "").replace("/", "_")

    for group in [[sp] for sp in splits] + [splits]:
        fig_pr, ax_pr = plt.subplots(figsize=(4.5, 4))
        fig_f, ax_f = plt.subplots(figsize=(4.5, 4))
        for sp in group:
            c = docs[sp]["curves"]
            p, r, f = (np.asarray(c[k], dtype=float) for k in ("precision", "recall", "fm"))
            n = docs[sp]["dataset"].get("n_images")
            label = f"{sp} (n={n})"
            ax_pr.plot(r, p, label=label)
            ax_f.plot(thr, f, label=label)
            i = int(np.argmax(f))
            ax_f.plot([thr[i]], [f[i]], "o", ms=3)
        ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="PR (dataset mean)")
        ax_f.set(xlabel="threshold (q >= t)", ylabel="F (beta^2 = 0.3)", xlim=(0, 255), ylim=(0, 1.02),
                 title="F vs threshold (dataset mean)")
        for ax in (ax_pr, ax_f):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
        tag = "all" if len(group) > 1 else safe(group[0])
        save(fig_pr, f"pr_{tag}.png")
        save(fig_f, f"fthr_{tag}.png")
    return paths


# ---------------------------------------------------------------------------------------------------
# one call


def write_report(results: Mapping[str, Any] | str | os.PathLike, out_dir: str | os.PathLike, *,
                 method: str = "ours", protocol: str | None = None, compare: bool = False,
                 plots: bool = True) -> dict[str, Any]:
    """Tables + plots for a set of splits.

    Args:
        results: a folder of eval JSONs, or ``{split: document}``, or ``{split: compute() dict}`` (then the
            documents are read from ``<out_dir>/<split>.json`` when present, else table only).
        out_dir: output folder.
        method, protocol, compare: see :func:`write_tables`.
        plots: also write the PNG curves.

    Returns:
        ``{"docs": {split: document}, "tables": {...}, "plots": [...]}``.
    """
    out = Path(out_dir)
    if isinstance(results, (str, os.PathLike)):
        docs = load_docs(results)
    else:
        docs = {}
        for split, v in results.items():
            if isinstance(v, Mapping) and v.get("schema") == RESULT_SCHEMA:
                docs[split] = dict(v)
            elif (out / f"{split}.json").is_file():
                docs[split] = json.loads((out / f"{split}.json").read_text())
            else:
                docs[split] = {"dataset": dict(v), "meta": {"split": split}}
    docs = with_te_all({k: v for k, v in docs.items()}) if all("state" in d for d in docs.values()) else docs
    tables = write_tables(docs, out, method=method, protocol=protocol, compare=compare)
    pngs = plot_curves({k: v for k, v in docs.items() if "curves" in v}, out) if plots else []
    return {"docs": docs, "tables": tables, "plots": pngs}
