"""Typed config: dataclass schema + YAML (one optional ``base:``) + ``--set a.b=c`` overrides."""

from pdfnet.config.loader import (
    ConfigError,
    apply_override,
    check_ranges,
    config_to_dict,
    dump_config,
    load_config,
    save_config,
)
from pdfnet.config.schema import (
    Config,
    DataConfig,
    DepthConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

__all__ = [
    "Config", "ConfigError", "DataConfig", "DepthConfig", "EvalConfig", "LossConfig", "ModelConfig",
    "OptimConfig", "TrainConfig", "apply_override", "check_ranges", "config_to_dict", "dump_config",
    "load_config", "save_config",
]
