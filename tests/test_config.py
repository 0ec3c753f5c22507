"""Config schema, YAML loading, overrides and CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from pdfnet.cli.main import main
from pdfnet.config import Config, ConfigError, dump_config, load_config, save_config

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_are_paper_recipe():
    cfg = Config()
    assert cfg.model.emb == 128 and cfg.model.input_size == 1024 and cfg.model.backbone == "swin_b"
    assert cfg.optim.lr == 1e-5 and cfg.optim.weight_decay == 1e-4
    assert cfg.optim.warmup_lr == cfg.optim.min_lr == 1e-5
    assert cfg.train.batch_size == 1 and cfg.train.epochs == 100
    assert cfg.data.train_depths == ["small", "base", "large"]
    assert cfg.data.target_depth == "large_1024"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    out = save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(out) == cfg


def test_paper_config_equals_schema_defaults_where_written():
    cfg = load_config(REPO / "configs" / "pdfnet_swinb_dis5k.yaml")
    default = Config()
    assert cfg.optim == default.optim
    assert cfg.loss == default.loss
    assert cfg.model.emb == default.model.emb and cfg.model.fse_pool_ratios == [1, 1, 2, 2]


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "bad.yaml", "train:\n  batch_sise: 2\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "train.batch_sise" in str(e.value) and str(p) in str(e.value)


def test_unknown_section(tmp_path):
    p = write(tmp_path, "bad.yaml", "trian:\n  batch_size: 2\n")
    with pytest.raises(ConfigError, match="'trian'"):
        load_config(p)


@pytest.mark.parametrize(
    "text, key",
    [
        ("train:\n  batch_size: two\n", "train.batch_size"),
        ("train:\n  batch_size: 2.5\n", "train.batch_size"),
        ("data:\n  augment: 'yes'\n", "data.augment"),
        ("train:\n  precision: fp8\n", "train.precision"),
        ("data:\n  train_depths: large\n", "data.train_depths"),
        ("model:\n  fse_pool_ratios: [1, 1, x, 2]\n", "model.fse_pool_ratios[2]"),
        ("train: 3\n", "train"),
    ],
)
def test_wrong_types_and_enums(tmp_path, text, key):
    p = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"'{key}'" in str(e.value)


def test_int_accepted_for_float_and_null_for_optional(tmp_path):
    p = write(tmp_path, "ok.yaml", "optim:\n  lr: 1\n  clip_grad: null\ntrain:\n  max_steps: null\n")
    cfg = load_config(p)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.clip_grad is None


def test_overrides_are_typed():
    cfg = load_config(None, [
        "train.batch_size=4", "optim.lr=1e-4", "data.augment=false", "train.precision=bf16",
        "data.train_depths=[large, base]", "optim.clip_grad=1.0", "train.max_steps=null",
        "model.backbone=swin_tiny_test", "data.root=/data/DIS5K",
    ])
    assert cfg.train.batch_size == 4
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.data.augment is False
    assert cfg.train.precision == "bf16"
    assert cfg.data.train_depths == ["large", "base"]
    assert cfg.optim.clip_grad == 1.0
    assert cfg.train.max_steps is None
    assert cfg.data.root == "/data/DIS5K"


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("train.batchsize=4", "'train.batchsize'"),
        ("train.batch_size=four", "'train.batch_size'"),
        ("train=4", "'train' is a section"),
        ("train.batch_size.x=4", "'train.batch_size' is not a section"),
        ("noequals", "key=value"),
        ("depth.bit_depth=12", "'depth.bit_depth'"),
    ],
)
def test_bad_overrides(item, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(None, [item])
    assert fragment in str(e.value)


def test_enum_int_override():
    assert load_config(None, ["depth.bit_depth=16"]).depth.bit_depth == 16


def test_base_inheritance_one_level(tmp_path):
    write(tmp_path, "base.yaml", "train:\n  batch_size: 3\n  epochs: 7\n")
    child = write(tmp_path, "child.yaml", "base: base.yaml\ntrain:\n  epochs: 9\n")
    cfg = load_config(child)
    assert cfg.train.batch_size == 3 and cfg.train.epochs == 9
    write(tmp_path, "grand.yaml", "base: child.yaml\n")
    with pytest.raises(ConfigError, match="one level"):
        load_config(tmp_path / "grand.yaml")


def test_missing_file_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = write(tmp_path, "broken.yaml", "train: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)


def test_dump_load_identity_with_overrides(tmp_path):
    cfg = load_config(REPO / "configs" / "demo_cpu.yaml", ["optim.betas=[0.8, 0.99]"])
    p = write(tmp_path, "dump.yaml", dump_config(cfg))
    assert load_config(p) == cfg


def test_cli_config_prints_resolved_yaml(capsys, tmp_path):
    out = tmp_path / "r.yaml"
    rc = main(["config", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--set", "train.epochs=3",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "epochs: 3" in text
    assert load_config(out).train.epochs == 3


def test_cli_wrong_key_exit_2_one_line(tmp_path):
    """The acceptance check: a wrong key in a YAML or --set gives exit code 2 and one line naming it."""
    bad = write(tmp_path, "bad.yaml", "model:\n  embb: 64\n")
    for extra in (["--config", str(bad)], ["--set", "model.embb=64"]):
        r = subprocess.run([sys.executable, "-m", "pdfnet.cli.main", "config", *extra],
                           capture_output=True, text=True)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "model.embb" in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_retired_key_loads_with_a_warning_and_set_refuses_it(tmp_path):
    """data.test_splits was never read (eval.splits is): old files still load, --set names the replacement."""
    p = tmp_path / "old.yaml"
    p.write_text("data:\n  test_splits: [DIS-VD]\n  size: 256\n")
    with pytest.warns(UserWarning, match="eval.splits"):
        cfg = load_config(p)
    assert cfg.data.size == 256 and not hasattr(cfg.data, "test_splits")
    with pytest.raises(ConfigError, match="removed.*eval.splits"):
        load_config(None, ["data.test_splits=[DIS-VD]"])


def test_renamed_keys_still_load(tmp_path):
    """``eval.workers``, ``depth.workers`` were renamed (one word per concept); old configs still load."""
    old = tmp_path / "old.yaml"
    old.write_text("eval:\n  workers: 3\ndepth:\n  workers: 5\n")
    cfg = load_config(old, ["eval.workers=1"])
    assert cfg.eval.num_workers == 1 and cfg.depth.threads == 5
    assert "workers" not in dump_config(cfg).split("depth:")[1]  # saved under the new names


def test_data_size_follows_model_input_size_unless_set(tmp_path):
    assert load_config(None, ["model.input_size=512"]).data.size == 512
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  input_size: 256\n")
    assert load_config(f).data.size == 256
    assert load_config(f, ["data.size=128"]).data.size == 128  # an explicit value is kept
    f.write_text("model:\n  input_size: 256\ndata:\n  size: 320\n")
    assert load_config(f).data.size == 320
