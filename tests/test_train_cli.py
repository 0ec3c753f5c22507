"""CLI smoke: pdfnet train (with validation) → export-weights → eval --ckpt; the inference loader."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import REPO, write_tiny_dis

from pdfnet.cli.main import main
from pdfnet.engine import checkpoint as ck
from pdfnet.errors import CheckpointError
from pdfnet.inference import checkpoint as ick


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny real training run with validation (3 steps, 64², toy Swin) shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    data = write_tiny_dis(root / "data", {"DIS-TR": 6, "DIS-VD": 3, "DIS-TE1": 2})
    run = root / "run"
    rc = main(["train", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--no-progress",
               "--set", f"data.root={data}", "--set", "data.size=64", "--set", "model.input_size=64",
               "--set", f"train.output_dir={run}", "--set", "train.batch_size=2", "--set", "train.epochs=1",
               "--set", "train.val_every_epochs=1", "--set", "data.num_workers=0",
               "--set", "eval.num_workers=0",
               "--set", "train.log_every_steps=1", "--set", "train.image_log_every_steps=1",
               "--set", "train.device=cpu", "--set", "train.precision=fp32"])
    assert rc == 0
    return root, data, run


@pytest.mark.slow
def test_train_writes_run_dir_and_best(trained):
    _, _, run = trained
    for name in ("config.yaml", "env.json", "metrics.jsonl", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in recs if r["kind"] == "val"]
    assert len(val) == 1 and val[0]["step"] == 3
    assert 0.0 <= val[0]["val/maxF"] <= 1.0 and 0.0 <= val[0]["val/MAE"] <= 1.0
    assert "val/maxF_meanPR" in val[0]
    best = ck.load_train_state(run / "best.pt")
    assert best["best"]["maxF"] == pytest.approx(val[0]["val/maxF"]) and best["step"] == 3
    assert ck.load_train_state(run / "last.pt")["best"] == best["best"]


@pytest.mark.slow
def test_export_eval_and_inference_loader(trained, tmp_path, capsys):
    root, data, run = trained
    rel = tmp_path / "release"
    assert main(["export-weights", str(run), "--out", str(rel)]) == 0
    assert (rel / "model.safetensors").is_file() and (rel / "config.yaml").is_file()
    x, d = torch.randn(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    m_train, cfg_train = ick.load_model_for_inference(run / "best.pt")
    m_rel, cfg_rel = ick.load_model_for_inference(rel)
    m_file, _ = ick.load_model_for_inference(rel / "model.safetensors")
    assert cfg_rel == cfg_train and not m_rel.training
    with torch.no_grad():
        ref = m_train(x, d).logits
        assert torch.equal(ref, m_rel(x, d).logits) and torch.equal(ref, m_file(x, d).logits)
    # inference-only export (no depth decoder) reloads strictly too
    small = tmp_path / "small"
    assert main(["export-weights", str(run / "best.pt"), "--out", str(small), "--inference-only"]) == 0
    m_small, _ = ick.load_model_for_inference(small)
    assert m_small.depth_decoder is None
    with torch.no_grad():
        assert torch.equal(ref, m_small(x, d).logits)
    # a tampered release fails strictly, naming the key
    from safetensors.torch import load_file, save_file

    sd = load_file(str(rel / "model.safetensors"))
    key = sorted(sd)[0]
    del sd[key]
    save_file(sd, str(rel / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"missing key.*{key}"):
        ick.load_model_for_inference(rel)
    # model-mode eval: per-split JSONs + table; predictions at the original size
    out = tmp_path / "eval"
    preds = tmp_path / "preds"
    rc = main(["eval", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--ckpt", str(run / "best.pt"),
               "--splits", "DIS-VD,DIS-TE1", "--out-dir", str(out), "--save-preds", str(preds),
               "--device", "cpu", "--set", f"data.root={data}", "--set", "eval.num_workers=0"])
    assert rc == 0
    for split in ("DIS-VD", "DIS-TE1"):
        doc = json.loads((out / f"{split}.json").read_text())
        assert doc["dataset"]["n_images"] == (3 if split == "DIS-VD" else 2)
        for k in ("maxF", "wF", "meanE", "S", "MAE", "HCE"):
            assert k in doc["dataset"], k
    assert len(list(preds.glob("DIS-VD/*.png"))) == 3
    assert any(out.glob("*.md")), list(out.iterdir())
    out = capsys.readouterr().out
    assert "DIS-TE1" in out and "maxF_meanPR" in out and "F of mean precision/recall" in out  # both rules


@pytest.mark.slow
def test_eval_tta_runs(trained, tmp_path):
    root, data, run = trained
    rc = main(["eval", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--ckpt", str(run), "--tta",
               "--splits", "DIS-TE1", "--out-dir", str(tmp_path), "--device", "cpu",
               "--set", f"data.root={data}", "--set", "eval.num_workers=0"])
    assert rc == 0
    doc = json.loads((tmp_path / "DIS-TE1.json").read_text())
    assert doc["meta"]["tta"] is True


def test_official_state_dict_is_routed(monkeypatch, tmp_path):
    """A plain state dict with the official key layout goes to pdfnet.models.official (strict there)."""
    from pdfnet.models import official

    seen = {}

    def fake(sd, cfg=None, eval_mode=True):
        seen["keys"] = sorted(sd)
        return torch.nn.Linear(1, 1)

    monkeypatch.setattr(official, "from_official_state_dict", fake)
    p = tmp_path / "PDFNet_Best.pth"
    torch.save({"channel_mix1.0.weight": torch.zeros(1), "decoder.Bside.0.weight": torch.zeros(1)}, p)
    model, cfg = ick.load_model_for_inference(p)
    assert seen["keys"] == ["channel_mix1.0.weight", "decoder.Bside.0.weight"]
    assert cfg.model.backbone == "swin_b" and cfg.model.input_size == 1024
    torch.save({"foo.weight": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match="neither a pdfnet checkpoint nor the official"):
        ick.load_model_for_inference(p)
