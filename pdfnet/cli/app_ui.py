"""The model side and the page of ``pdfnet app`` (:mod:`pdfnet.cli.app`).

:class:`DemoBackend` runs a :class:`pdfnet.inference.Predictor` on files and writes each image's mask,
soft alpha, cut-out and depth as PNGs (no Gradio needed: tested on its own); :func:`build_demo` lays out
the Gradio page around it. The ``gradio`` module is passed in by the caller (an optional extra, imported
only in :func:`pdfnet.cli.app.import_gradio`).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pdfnet.data.synth import render_scene
from pdfnet.errors import UserError
from pdfnet.inference.files import find_depth, render_outputs
from pdfnet.inference.foreground import DEFAULT_FOREGROUND
from pdfnet.inference.predictor import Predictor
from pdfnet.inference.preprocess import to_depth_float, to_rgb_uint8
from pdfnet.utils.io import write_image

OUTPUT_LABELS: dict[str, str] = {"mask": "Mask", "alpha": "Soft alpha", "cutout": "Cut-out", "depth": "Depth"}


# ------------------------------------------------------------------------------------------ backend


@dataclass
class DemoResult:
    """What one request produced.

    Attributes:
        files: ``{kind: [PNG path per image]}`` for ``mask``, ``alpha``, ``cutout``, ``depth``.
        names: the image names, in order.
        zip_path: every output in one zip (None when nothing succeeded).
        messages: one line per file that could not be used.
        probs: per image the probability map, float32 ``[H, W]`` (for re-thresholding).
    """

    files: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    zip_path: str | None = None
    messages: list[str] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)


class DemoBackend:
    """The app's model side, no Gradio: run a predictor on files and write the outputs as PNGs.

    Args:
        predictor: a :class:`pdfnet.inference.Predictor` (with a depth estimator unless ``depth_dir``).
        workdir: where outputs are written (one sub-folder per request).
        depth_dir: read depth maps ``<stem>.<ext>`` from here instead of estimating them.
    """

    def __init__(self, predictor: Predictor, workdir: str | os.PathLike,
                 depth_dir: str | os.PathLike | None = None) -> None:
        self.predictor = predictor
        self.workdir = Path(workdir)
        self.depth_dir = depth_dir
        self.examples: list[str] = []
        self._example_depth: dict[str, np.ndarray] = {}

    def add_examples(self, n: int, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[str]:
        """Render ``n`` synthetic DIS-like scenes (:func:`pdfnet.data.synth.render_scene`) as examples.

        With ``depth_dir`` set their true depth is used for them (there is no file of theirs there).
        """
        folder = self.workdir / "examples"
        rng = np.random.default_rng(seed)
        for i in range(n):
            scene = render_scene(rng, *size)
            path = str(write_image(folder / f"synthetic_{i}_{scene['kind']}.png", scene["image"]))
            self.examples.append(path)
            self._example_depth[path] = scene["depth"].astype(np.float32)
        return self.examples

    def run(self, paths: list[str], *, tta: bool = False, threshold: float = 0.5,
            refine: bool = True) -> DemoResult:
        """Predict each file and write ``<stem>_{mask,alpha,cutout,depth}.png`` into a fresh folder."""
        res = DemoResult(files={k: [] for k in OUTPUT_LABELS})
        out = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        stems: set[str] = set()
        for path in paths or []:
            name = Path(path).name
            try:
                rgb = to_rgb_uint8(path)
                depth = self._example_depth.get(str(path))
                if depth is None and self.depth_dir is not None:
                    dpath = find_depth(self.depth_dir, Path(path).stem)
                    if dpath is None:
                        raise UserError(f"no depth map named {Path(path).stem}.<ext> in the --depth-dir")
                    depth = to_depth_float(dpath)
                pred = self.predictor.predict_arrays([rgb], None if depth is None else [depth], tta=tta)[0]
                images = render_outputs(rgb, pred.prob, tuple(OUTPUT_LABELS), depth=pred.depth,
                                        threshold=threshold, name=name,
                                        foreground=DEFAULT_FOREGROUND if refine else None)
            except UserError as e:
                res.messages.append(f"{name}: {str(e).replace(str(path), name)}")
                continue
            stem = _unique(Path(path).stem, stems)
            for kind, img in images.items():
                res.files[kind].append(str(write_image(out / f"{stem}_{kind}.png", img)))
            res.names.append(name)
            res.probs.append(pred.prob)
        if res.names:
            res.zip_path = str(out / "pdfnet_outputs.zip")
            with zipfile.ZipFile(res.zip_path, "w") as zf:
                for kind_files in res.files.values():
                    for f in kind_files:
                        zf.write(f, Path(f).name)
        return res

    def rethreshold(self, probs: list[np.ndarray], names: list[str], threshold: float) -> list[str]:
        """Masks at a new threshold for the last request's probability maps (no model call)."""
        out = Path(tempfile.mkdtemp(prefix="mask-", dir=self.workdir))
        stems: set[str] = set()
        return [str(write_image(out / f"{_unique(Path(n).stem, stems)}_mask.png",
                                np.where(p >= threshold, 255, 0).astype(np.uint8)))
                for p, n in zip(probs, names)]


def _unique(stem: str, seen: set[str]) -> str:
    s, i = stem, 1
    while s in seen:
        i += 1
        s = f"{stem}_{i}"
    seen.add(s)
    return s


# ------------------------------------------------------------------------------------------ UI


def theme(gr: Any) -> Any:
    """Gradio's default look with system fonts (the default theme would fetch web fonts)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def build_demo(backend: DemoBackend, gr: Any) -> Any:
    """The Gradio Blocks of the app around ``backend``."""

    def _outputs(res: DemoResult) -> tuple:
        galleries = [[(f, n) for f, n in zip(res.files[k], res.names)] for k in OUTPUT_LABELS]
        lines = [f"Done: {len(res.names)} image(s)."] if res.names else []
        if res.messages:
            lines.append("Could not use: " + "; ".join(res.messages))
        if not res.names and not res.messages:
            lines.append("Upload one or more images first.")
        return (*galleries, res.zip_path, "\n\n".join(lines), {"probs": res.probs, "names": res.names})

    def predict(files, tta, threshold, refine):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        return _outputs(backend.run(paths, tta=bool(tta), threshold=float(threshold), refine=bool(refine)))

    def predict_examples(tta, threshold, refine):
        return _outputs(backend.run(backend.examples, tta=bool(tta), threshold=float(threshold),
                                    refine=bool(refine)))

    def rethreshold(state, threshold):
        if not state or not state.get("probs"):
            return gr.skip()
        files = backend.rethreshold(state["probs"], state["names"], float(threshold))
        return list(zip(files, state["names"]))

    with gr.Blocks(title="PDFNet", analytics_enabled=False) as demo:
        gr.Markdown("## PDFNet — dichotomous image segmentation\nUpload images: each gets a mask, a soft "
                    "alpha, a cut-out (foreground colours refined) and the depth map the model used. "
                    "Everything runs on this machine.")
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label="Images", file_count="multiple", file_types=["image"],
                                type="filepath", elem_id="pdfnet-input")
                threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Mask threshold",
                                      elem_id="pdfnet-threshold")
                tta = gr.Checkbox(value=False, label="Test-time augmentation (6 passes, slower)",
                                  elem_id="pdfnet-tta")
                refine = gr.Checkbox(value=True, label="Refine cut-out colours", elem_id="pdfnet-refine")
                run_btn = gr.Button("Segment", variant="primary", elem_id="pdfnet-run")
                ex_btn = gr.Button(f"Run the synthetic examples ({len(backend.examples)})",
                                   visible=bool(backend.examples), elem_id="pdfnet-examples")
                status = gr.Markdown(elem_id="pdfnet-status")
                download = gr.File(label="Download all outputs (zip)", interactive=False,
                                   elem_id="pdfnet-download")
            with gr.Column(scale=2):
                galleries = []
                kinds = list(OUTPUT_LABELS.items())
                for row in (kinds[:2], kinds[2:]):
                    with gr.Row():
                        galleries += [gr.Gallery(label=label, columns=3, height=300, object_fit="contain",
                                                 elem_id=f"pdfnet-{kind}", buttons=["download", "fullscreen"])
                                      for kind, label in row]
        state = gr.State()
        outs = [*galleries, download, status, state]
        run_btn.click(predict, [files, tta, threshold, refine], outs, concurrency_limit=1)
        ex_btn.click(predict_examples, [tta, threshold, refine], outs, concurrency_limit=1)
        threshold.release(rethreshold, [state, threshold], galleries[0])
    return demo
