"""``pdfnet bench metrics --processes``: whole processes timed, interpreter start and imports included.

The in-process timings of :mod:`pdfnet.bench.metrics` leave out what a user also waits for: starting Python
and importing the libraries. Here each side is one fresh process from ``exec`` to exit, run ``repeat`` times
alternately (best of the rounds; wall time and the process's CPU time, which a loaded machine inflates
less):

* ``ours``: ``python -m pdfnet.cli.main score --pred-dir P --gt-dir G --quiet --workers W`` (what a user runs;
  no torch is imported);
* ``reference``: a Python process that imports PySODMetrics 1.6.2, scikit-image and OpenCV, reads every pair
  with OpenCV and feeds :class:`pdfnet.bench.reference.ReferenceEvaluator` (PySOD + the official HCE with the
  skeleton computed online, as the official script does without ``gt_ske_root``);
* ``startup``: ``python -m pdfnet.cli.main --version`` and ``python -c pass`` (what start-up alone costs).

Both scoring processes print their aggregates as JSON; maxF, MAE and HCE are compared so that a faster
process that scored something else cannot pass unnoticed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the reference process: argv = pred_dir gt_dir; prints the aggregates as JSON
REFERENCE_SCRIPT = """
import json, sys
from pathlib import Path
import cv2
from pdfnet.bench.reference import ReferenceEvaluator
pred_dir, gt_dir = Path(sys.argv[1]), Path(sys.argv[2])
ev = ReferenceEvaluator()
for gt_path in sorted(gt_dir.iterdir()):
    pred = next(p for p in pred_dir.iterdir() if p.stem == gt_path.stem)
    ev.update(cv2.imread(str(pred), cv2.IMREAD_GRAYSCALE), cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE))
print(json.dumps(ev.compute()))
"""


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict) -> tuple[float, float]:
    """``(wall s, CPU s)`` of one process (CPU: user + system of it and its own children)."""
    c0, t0 = _cpu_children(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt, dc = time.perf_counter() - t0, _cpu_children() - c0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {out.stderr.strip()[-400:]}")
    return dt, dc


def time_processes(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, *, repeat: int = 3,
                   workers: int = 1) -> dict:
    """Best-of-``repeat`` wall times of the whole ``score`` process and the whole reference process.

    Returns:
        wall seconds ``ours_s``, ``reference_s``, ``speedup``; CPU seconds (user + system)
        ``ours_cpu_s``, ``reference_cpu_s``, ``speedup_cpu``; ``version_s``, ``python_s`` (start-up alone);
        ``workers``, ``repeat``; ``check``: the two processes' maxF, MAE and HCE.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="pdfnet-bench-proc-") as tmp:
        ours_json = Path(tmp) / "ours.json"
        ours = [py, "-m", "pdfnet.cli.main", "score", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir),
                "--quiet", "--workers", str(workers), "--json", str(ours_json)]
        ref = [py, "-c", REFERENCE_SCRIPT, str(pred_dir), str(gt_dir)]
        names = ("ours", "reference", "version", "python")
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        for _ in range(repeat):
            times["reference"].append(_run(ref, env))
            times["ours"].append(_run(ours, env))
            times["version"].append(_run([py, "-m", "pdfnet.cli.main", "--version"], env))
            times["python"].append(_run([py, "-c", "pass"], env))
        ref_vals = json.loads(subprocess.run(ref, capture_output=True, text=True, env=env,
                                             check=True).stdout.strip().splitlines()[-1])
        our_vals = json.loads(ours_json.read_text())["dataset"]
    best = {k: min(w for w, _ in v) for k, v in times.items()}
    cpu = {k: min(c for _, c in v) for k, v in times.items()}
    return {
        "ours_s": best["ours"], "reference_s": best["reference"],
        "speedup": best["reference"] / best["ours"],
        "ours_cpu_s": cpu["ours"], "reference_cpu_s": cpu["reference"],
        "speedup_cpu": cpu["reference"] / cpu["ours"],
        "version_s": best["version"], "python_s": best["python"], "workers": workers, "repeat": repeat,
        "check": {k: {"ours": our_vals.get(k), "reference": ref_vals.get(k)}
                  for k in ("maxF", "MAE", "HCE")},
    }


def format_processes(res: dict) -> str:
    c = res["check"]
    agree = all(v["ours"] is not None and abs(v["ours"] - v["reference"]) <= 1e-9 for v in c.values())
    ref, ours = (res["reference_s"], res["reference_cpu_s"]), (res["ours_s"], res["ours_cpu_s"])
    return "\n".join([
        f"whole processes, best of {res['repeat']} (interpreter start + imports included): wall / CPU",
        f"  reference (PySODMetrics + official HCE)  {ref[0]:.2f} s / {ref[1]:.2f} s",
        f"  pdfnet score --workers {res['workers']:<2d}             {ours[0]:.2f} s / {ours[1]:.2f} s",
        f"  speed-up                                 {res['speedup']:.1f}x / {res['speedup_cpu']:.1f}x",
        f"  start-up alone: pdfnet --version {res['version_s']:.2f} s, "
        f"python -c pass {res['python_s']:.2f} s",
        "  values: maxF, MAE and HCE agree" if agree else f"  values DIFFER: {c}",
    ])
