"""Load, validate, override and save :class:`~pdfnet.config.schema.Config`.

Rules (all violations raise :class:`ConfigError` naming the key and its source):

* An experiment YAML may name at most one ``base:`` YAML (relative to itself); the base may not
  itself have a ``base:``.
* Unknown keys, wrong types and values outside a ``Literal`` enum are errors.
* ``--set a.b=c`` overrides are parsed as YAML scalars/lists and then type-checked like YAML values
  (``1e-5`` is accepted for a float field).
* Keys of :data:`RENAMED` are read under their new name, so older YAML files and the configs stored in
  older checkpoints keep loading.
* After the merge, values must lie in their range (:data:`RANGES`: ``optim.lr`` >= 0 and finite,
  ``train.epochs`` >= 1, batch sizes >= 1, probabilities in [0, 1), …): a value out of range is an
  error naming the key, before any work starts.
* Files must be UTF-8 text.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import types
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from pdfnet.config.schema import Config
from pdfnet.errors import ConfigError
from pdfnet.utils.atomic import atomic_write_bytes

#: old dotted key -> its current name (one word per concept: ``num_workers`` = DataLoader worker processes,
#: ``threads`` = threads)
RENAMED: dict[str, str] = {"eval.workers": "eval.num_workers", "depth.workers": "depth.threads"}


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce_scalar(value: Any, tp: type, from_cli: bool) -> tuple[bool, Any]:
    """(ok, converted) for a bool/int/float/str field. Bools are never numbers here."""
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if is_num:
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if isinstance(value, str):
        return True, value
    if from_cli and is_num:
        return True, str(value)
    return False, value


def _coerce(value: Any, tp: Any, key: str, source: str, from_cli: bool) -> Any:
    """Return ``value`` checked (and, for CLI strings, converted) against annotation ``tp``."""
    origin = get_origin(tp)
    bad = ConfigError(f"{source}: '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value in choices and type(value) is type(choices[0]):
            return value
        if from_cli and isinstance(value, str):
            for c in choices:
                if str(c) == value:
                    return c
        raise bad
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, source, from_cli)
            except ConfigError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        (item_tp,) = get_args(tp)[:1] or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]", source, from_cli) for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp in (bool, int, float, str):
        ok, converted = _coerce_scalar(value, tp, from_cli)
        if ok:
            return converted
        raise bad
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{source}: '{key}' is a section; set its fields ('{key}.<field>')")
    raise ConfigError(f"{source}: '{key}' has an unsupported annotation {tp!r}")  # pragma: no cover


#: Keys that were removed because nothing ever read them → what to use instead. Config files and configs
#: stored in older checkpoints still load (the key is dropped with a warning); ``--set`` refuses them.
RETIRED_KEYS: dict[str, str] = {"data.test_splits": "eval.splits"}


def _fields(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _apply(obj: Any, data: dict, prefix: str, source: str) -> None:
    """Recursively set fields of dataclass ``obj`` from mapping ``data`` (strict)."""
    if not isinstance(data, dict):
        where = f"'{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    hints = _fields(type(obj))
    for k, v in data.items():
        key = f"{prefix}{k}"
        if key in RETIRED_KEYS:
            warnings.warn(f"{source}: '{key}' was never used and is ignored (use '{RETIRED_KEYS[key]}')",
                          stacklevel=2)
            continue
        if key in RENAMED:
            key = RENAMED[key]
            k = key.rsplit(".", 1)[-1]
        if k not in hints:
            valid = ", ".join(sorted(hints))
            raise ConfigError(f"{source}: unknown key '{key}' (valid here: {valid})")
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            _apply(getattr(obj, k), v if v is not None else {}, key + ".", source)
        else:
            setattr(obj, k, _coerce(v, tp, key, source, from_cli=False))


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save the config as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b=c`` into ``("a.b", yaml-parsed c)``."""
    if "=" not in item:
        raise ConfigError(f"--set: expected key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set: empty key in {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_override(cfg: Config, key: str, value: Any, source: str = "--set") -> None:
    """Set dotted ``key`` on ``cfg`` with CLI-style type conversion."""
    key = RENAMED.get(key, key)
    obj: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = _fields(type(obj))
        sub = ".".join(parts[: i + 1])
        if sub in RETIRED_KEYS:
            raise ConfigError(f"{source}: '{sub}' was removed (it was never used); use '{RETIRED_KEYS[sub]}'")
        if part not in hints:
            valid = ", ".join(sorted(hints))
            raise ConfigError(f"{source}: unknown key '{sub}' (valid here: {valid})")
        tp = hints[part]
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(tp):
            if last:
                raise ConfigError(f"{source}: '{sub}' is a section; set one of its fields")
            obj = getattr(obj, part)
        else:
            if not last:
                raise ConfigError(f"{source}: '{sub}' is not a section")
            setattr(obj, part, _coerce(value, tp, key, source, from_cli=True))


def _sets(data: dict, section: str, key: str) -> bool:
    return isinstance(data.get(section), dict) and key in data[section]


def load_config(path: str | os.PathLike | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Build a validated :class:`Config` from defaults ⊕ optional base ⊕ YAML ⊕ ``--set`` overrides.

    ``data.size`` follows ``model.input_size`` unless a file or an override sets it (the network's input
    side is one value; setting both differently stays an error where it matters, in training).
    """
    cfg = Config()
    size_given = False
    if path is not None:
        path = Path(path)
        data = _read_yaml(path)
        base = data.pop("base", None)
        if base is not None:
            if not isinstance(base, str):
                raise ConfigError(f"{path}: 'base' must be a path string")
            base_path = (path.parent / base).resolve()
            base_data = _read_yaml(base_path)
            if "base" in base_data:
                raise ConfigError(f"{base_path}: a base config may not have its own 'base' (one level only)")
            _apply(cfg, base_data, "", str(base_path))
            size_given = _sets(base_data, "data", "size")
        _apply(cfg, data, "", str(path))
        size_given = size_given or _sets(data, "data", "size")
    for item in overrides:
        key, value = parse_override(item)
        apply_override(cfg, key, value)
        size_given = size_given or key == "data.size"
    if not size_given:
        cfg.data.size = cfg.model.input_size
    check_ranges(cfg)
    return cfg


# ---------------------------------------------------------------------------------------- ranges
def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _gt0(x: Any) -> bool:
    return _finite(x) and x > 0


def _ge0(x: Any) -> bool:
    return _finite(x) and x >= 0


def _ge1(x: Any) -> bool:
    return _finite(x) and x >= 1


def _unit(x: Any) -> bool:
    return _finite(x) and 0 <= x < 1


def _none_or(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: x is None or check(x)


def _each(check: Callable[[Any], bool], n: int | None = None) -> Callable[[Any], bool]:
    return lambda xs: (n is None or len(xs) == n) and all(check(x) for x in xs)


#: ``(dotted key, rule, check)`` for every numeric config value with a bounded range.
RANGES: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("model.emb", ">= 1", _ge1),
    ("model.input_size", ">= 1", _ge1),
    ("model.patch_ratio", ">= 1", _ge1),
    ("model.down_ratio", ">= 1", _ge1),
    ("model.drop_path", "in [0, 1)", _unit),
    ("model.attn_dropout", "in [0, 1)", _unit),
    ("model.fse_pool_ratios", "4 values >= 1", _each(_ge1, 4)),
    ("data.size", ">= 1", _ge1),
    ("data.num_workers", ">= 0", _ge0),
    ("loss.side_weight", ">= 0 and finite", _ge0),
    ("loss.ssim_weight", ">= 0 and finite", _ge0),
    ("loss.integrity_weight", ">= 0 and finite", _ge0),
    ("loss.silog_weight", ">= 0 and finite", _ge0),
    ("loss.iou_smooth", ">= 0 and finite", _ge0),
    # lr = 0 is a legitimate run: one step at lr 0 proves an --init loads bit-identically
    ("optim.lr", ">= 0 and finite", _ge0),
    ("optim.weight_decay", ">= 0 and finite", _ge0),
    ("optim.eps", "> 0 and finite", _gt0),
    ("optim.betas", "2 values in [0, 1)", _each(_unit, 2)),
    ("optim.warmup_epochs", ">= 0", _ge0),
    ("optim.warmup_lr", ">= 0 and finite", _ge0),
    ("optim.min_lr", ">= 0 and finite", _ge0),
    ("optim.clip_grad", "null or > 0 and finite", _none_or(_gt0)),
    ("train.epochs", ">= 1", _ge1),
    ("train.max_steps", "null or >= 1", _none_or(_ge1)),
    ("train.batch_size", ">= 1", _ge1),
    ("train.grad_accum", ">= 1", _ge1),
    ("train.val_every_epochs", ">= 0 (0 = never)", _ge0),
    ("train.val_every_steps", "null or >= 1", _none_or(_ge1)),
    ("train.save_every_steps", "null or >= 1", _none_or(_ge1)),
    ("train.log_every_steps", ">= 1", _ge1),
    ("train.image_log_every_steps", ">= 0 (0 = never)", _ge0),
    ("eval.batch_size", ">= 1", _ge1),
    ("eval.num_workers", ">= 0", _ge0),
    ("depth.input_size", "null or >= 14", _none_or(lambda x: _finite(x) and x >= 14)),
    ("depth.batch_size", ">= 1", _ge1),
    ("depth.threads", ">= 1", _ge1),
    ("depth.max_pixels", ">= 0 (0 = no bound)", _ge0),
)


def check_ranges(cfg: Config, source: str = "config") -> None:
    """Raise :class:`ConfigError` for the first value of ``cfg`` outside its range (:data:`RANGES`)."""
    for key, rule, check in RANGES:
        obj: Any = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        if not check(obj):
            raise ConfigError(f"{source}: '{key}' must be {rule}, got {obj!r}")


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (lists, scalars)."""
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    """YAML text of the resolved config; ``load_config`` of it gives an equal config."""
    buf = io.StringIO()
    yaml.safe_dump(config_to_dict(cfg), buf, sort_keys=False, default_flow_style=None)
    return buf.getvalue()


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config atomically (temp file + rename)."""
    return atomic_write_bytes(path, dump_config(cfg).encode())
