"""``pdfnet train --init`` / ``train.freeze`` / ``train.select_metric`` end to end on tiny CPU runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import write_tiny_dis  # tests/ is on sys.path
from safetensors.torch import load_file

from pdfnet.cli.main import main
from pdfnet.config import load_config
from pdfnet.engine import checkpoint as ck
from pdfnet.inference.checkpoint import export_release
from pdfnet.models import build_model

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo_cpu.yaml"
TINY = ["data.size=64", "model.input_size=64", "train.batch_size=2", "train.log_every_steps=1",
        "train.image_log_every_steps=0", "data.num_workers=0", "eval.num_workers=0", "train.device=cpu",
        "train.precision=fp32", "train.tensorboard=false"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_dis(tmp_path_factory.mktemp("dis"), {"DIS-TR": 4, "DIS-VD": 2})


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny model with its own random weights, exported as model.safetensors + config.yaml."""
    cfg = load_config(DEMO, TINY)
    torch.manual_seed(123)
    out = tmp_path_factory.mktemp("rel")
    export_release(build_model(cfg.model), cfg, out)
    return out


def _train(data: Path, out: Path, *args: str, sets: tuple[str, ...] = ()) -> int:
    argv = ["train", "--config", str(DEMO), "--no-progress", "--set", f"data.root={data}",
            "--set", f"train.output_dir={out}"]
    for s in (*TINY, *sets):
        argv += ["--set", s]
    return main([*argv, *args])


def test_init_then_one_step_at_lr_0_keeps_every_weight_bit_identical(data, release, tmp_path, capsys):
    rc = _train(data, tmp_path / "run", "--init", str(release / "model.safetensors"),
                sets=("optim.lr=0", "optim.warmup_lr=0", "optim.min_lr=0", "train.max_steps=1",
                      "train.val_every_epochs=0"))
    assert rc == 0
    assert "init weights:" in capsys.readouterr().out
    state = ck.load_train_state(tmp_path / "run" / "last.pt")
    assert state["step"] == 1 and state["config"]["train"]["init"] == str(release / "model.safetensors")
    ref = load_file(str(release / "model.safetensors"))
    assert set(state["model"]) == set(ref)
    for k, v in ref.items():
        assert torch.equal(state["model"][k], v), k


def test_init_errors_are_one_line(data, release, tmp_path, capsys):
    # --init with --resume
    assert _train(data, tmp_path / "a", "--init", str(release), "--resume", "auto") == 2
    err = capsys.readouterr().err
    assert "--init" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    # another architecture: strict refuses in one line, non-strict loads what matches and says what not
    other = load_config(DEMO, [*TINY, "model.emb=16"])
    torch.manual_seed(0)
    export_release(build_model(other.model), other, tmp_path / "other")
    sets = ("train.max_steps=1", "train.val_every_epochs=0")
    assert _train(data, tmp_path / "b", "--init", str(tmp_path / "other"), sets=sets) == 2
    err = capsys.readouterr().err
    assert "does not match the model" in err and "init_strict=false" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _train(data, tmp_path / "c", "--init", str(tmp_path / "other"), "--no-init-strict", sets=sets) == 0
    out = capsys.readouterr().out
    assert "skipped, shape differs" in out and "backbone" not in out.split("shape differs")[1].split(";")[0]


def test_freeze_backbone_trains_the_rest(data, release, tmp_path, capsys):
    rc = _train(data, tmp_path / "run", "--init", str(release), sets=(
        "train.freeze=[backbone, depth_decoder]", "optim.lr=1e-3", "optim.warmup_epochs=0",
        "train.max_steps=2", "train.val_every_epochs=0"))
    assert rc == 0
    assert "trainable parameters" in capsys.readouterr().out
    state = ck.load_train_state(tmp_path / "run" / "last.pt")
    ref = load_file(str(release / "model.safetensors"))
    frozen = [k for k in ref if k.startswith(("encoder.backbone.", "depth_decoder."))]
    assert frozen and all(torch.equal(state["model"][k], ref[k]) for k in frozen)
    assert any(not torch.equal(state["model"][k], ref[k]) for k in ref if k.startswith("head."))
    n_opt = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    assert n_opt == sum(1 for k, v in build_model(load_config(DEMO, TINY).model).named_parameters()
                        if not k.startswith(("encoder.backbone.", "depth_decoder.")))


@pytest.mark.parametrize("metric", ["release_F", "MAE", "wF"])
def test_best_checkpoint_follows_the_selection_metric(data, tmp_path, metric):
    rc = _train(data, tmp_path / "run", sets=(f"train.select_metric={metric}", "train.val_every_steps=1",
                                             "train.max_steps=3", "optim.lr=3e-3"))
    assert rc == 0
    vals = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in vals if r["kind"] == "val"]
    assert len(vals) == 3 and all("val/release_F" in r and "val/maxF" in r for r in vals)
    series = [r[f"val/{metric}"] for r in vals]
    if metric == "MAE":  # the release's <=: the last of the lowest
        want = max(i for i, v in enumerate(series) if v == min(series))
    else:  # >=: the last of the highest
        want = max(i for i, v in enumerate(series) if v == max(series))
    best = ck.load_train_state(tmp_path / "run" / "best.pt")
    assert best["step"] == vals[want]["step"]


def test_hard_half_trains_odd_epochs_on_the_hardest_half_and_resumes_exactly(tmp_path):
    data6 = write_tiny_dis(tmp_path / "dis", {"DIS-TR": 6})
    sets = ("train.hard_half=true", "train.batch_size=1", "train.epochs=2", "train.val_every_epochs=0",
            "data.val_split=null", "data.val_fraction=0", "optim.lr=3e-3")

    def run(out: str, steps: int, *extra: str) -> dict:
        assert _train(data6, tmp_path / out, *extra, sets=(*sets, f"train.max_steps={steps}")) == 0
        return ck.load_train_state(tmp_path / out / "last.pt")

    epoch0 = run("a", 6)  # epoch 0: every sample once, losses booked
    recs = epoch0["extra"]["hard_half"]["records"]
    assert sorted(i for i, _ in recs) == list(range(6)) and epoch0["extra"]["hard_half"]["hard"] is None
    epoch1 = run("a", 9, "--resume", "auto")  # epoch 1: 3 steps, on the 3 highest losses of epoch 0
    hard = [i for i, _ in sorted(recs, key=lambda r: r[1], reverse=True)[:3]]
    assert epoch1["extra"]["hard_half"]["hard"] == hard and epoch1["epoch"] == 2
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0 + 1)).tolist()  # seed 0, epoch 1
    assert [i for i, _ in epoch1["extra"]["hard_half"]["records"]] == [i for i in perm if i in hard]
    # stopped in the middle of the hard epoch and resumed = uninterrupted (and = stopped at its start)
    full = run("full", 9)
    run("cut", 7)
    cut = run("cut", 9, "--resume", "auto")
    for k, v in full["model"].items():
        assert torch.equal(v, cut["model"][k]) and torch.equal(v, epoch1["model"][k]), k


def test_validation_runs_in_fp32_unless_asked_to_follow_the_training_precision(data):
    from pdfnet.data import build_eval_dataset
    from pdfnet.engine.distributed import DistInfo
    from pdfnet.engine.evaluate import validate

    cfg = load_config(DEMO, [*TINY, f"data.root={data}"])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    ds = build_eval_dataset(cfg.data)
    fp32, _ = validate(model, ds, cfg, torch.device("cpu"), None, DistInfo(), progress=False)
    default, _ = validate(model, ds, cfg, torch.device("cpu"), torch.bfloat16, DistInfo(), progress=False)
    assert default == fp32 and {"release_F", "release_MAE", "maxF", "maxF_meanPR", "MAE"} <= set(fp32)
    cfg.train.val_precision = "train"
    bf16, _ = validate(model, ds, cfg, torch.device("cpu"), torch.bfloat16, DistInfo(), progress=False)
    assert bf16["release_MAE"] != fp32["release_MAE"]
