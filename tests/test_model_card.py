"""``pdfnet export-weights --model-card`` / ``--push-to-hub``: the card's contents, a strict reload through
``Predictor.from_pretrained(DIR)``, and the one-line refusals of an upload (no test touches the network)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml
from helpers import sharpen, tiny_config

from pdfnet.cli.main import main
from pdfnet.engine.checkpoint import save_train_state
from pdfnet.engine.model_card import CITATION, dataset_name, model_card, training_command, validation_metrics
from pdfnet.inference import Predictor
from pdfnet.models import build_model


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as training leaves it: best.pt (a train state), metrics.jsonl, env.json."""
    torch.manual_seed(0)
    cfg = tiny_config()
    cfg.data.root = "/data/DIS5K"
    model = sharpen(build_model(cfg.model))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    run = tmp_path / "run"
    run.mkdir()
    save_train_state(run / "best.pt", model=model, optimizer=opt, schedule=None, scaler=None, cfg=cfg,
                     step=20, epoch=1, batch_in_epoch=0, best={"maxF": 0.8125, "score": 0.8125, "step": 20})
    recs = [{"kind": "train", "step": 10, "loss": 0.5},
            {"kind": "val", "step": 10, "val/maxF": 0.75, "val/MAE": 0.08},
            {"kind": "val", "step": 20, "val/maxF": 0.8125, "val/MAE": 0.061, "val/HCE": 12},
            {"kind": "val", "step": 30, "val/maxF": 0.7, "val/MAE": 0.09}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n{truncated")
    (run / "env.json").write_text(json.dumps({"argv": ["/venv/bin/pdfnet", "train", "--config",
                                                       "configs/my data.yaml", "--set", "train.epochs=2"]}))
    return run, model


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_export_with_model_card_reloads_strictly(run_dir, tmp_path, capsys):
    run, model = run_dir
    out = tmp_path / "release"
    assert main(["export-weights", str(run), "--out", str(out), "--model-card"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.yaml", "model.safetensors"]
    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["license"] == "mit" and meta["library_name"] == "pdfnet"
    assert meta["pipeline_tag"] == "image-segmentation" and meta["datasets"] == ["DIS5K"]
    assert {"image-segmentation", "dichotomous-image-segmentation", "safetensors"} <= set(meta["tags"])
    # the validation record of the exported step (20), not the later or earlier ones
    assert "| val/maxF | 0.8125 |" in card and "| val/MAE | 0.0610 |" in card and "| val/HCE | 12 |" in card
    assert "0.7000" not in card and "0.0800" not in card
    assert "pdfnet train --config 'configs/my data.yaml' --set train.epochs=2" in card
    assert (out / "config.yaml").read_text().strip() in card  # the config, verbatim
    assert CITATION in card
    # strict reload through the public loader; same predictions as the trained model
    pred = Predictor.from_pretrained(out, depth_model=None, device="cpu")
    rgb = np.random.default_rng(0).integers(0, 255, (40, 52, 3), dtype=np.uint8)
    depth = np.random.default_rng(1).random((40, 52)).astype(np.float32)
    ref = Predictor(model.eval(), size=64, device="cpu")(rgb, depth)
    np.testing.assert_array_equal(pred(rgb, depth), ref)


def test_card_without_records(tmp_path):
    cfg = tiny_config()
    cfg.data.root = "my_products/"
    text = model_card(cfg, step=5, metrics=validation_metrics(tmp_path, 5),
                      command=training_command(tmp_path), repo_id="me/products-pdfnet", inference_only=True)
    assert _front_matter(text)["datasets"] == ["my_products"] == [dataset_name(cfg)]
    assert "No validation metrics were recorded" in text and "training command was not recorded" in text
    assert "Predictor.from_pretrained(\"me/products-pdfnet\"" in text and "without the train-only" in text


def test_push_to_hub_refuses_offline_and_without_token(run_dir, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hf_constants

    run, _ = run_dir
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
        if var in os.environ:
            monkeypatch.delenv(var)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    cases = [({}, "needs a Hugging Face token"), ({"HF_HUB_OFFLINE": "1"}, "offline mode")]
    for env, msg in cases:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        out = tmp_path / f"push{len(env)}"
        assert main(["export-weights", str(run), "--out", str(out), "--push-to-hub", "me/pdfnet-test"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
        assert (out / "README.md").is_file()  # the folder is complete; only the upload was refused
    bad = ["export-weights", str(run), "--out", str(tmp_path / "x"), "--push-to-hub", "not a repo"]
    assert main(bad) == 2
    assert "owner/name" in capsys.readouterr().err and not (tmp_path / "x").exists()
