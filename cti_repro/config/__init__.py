"""The study config: dataclasses for ``_config.yml``, profile merging, ``--set`` overrides, validation.

``_config.yml`` holds ``defaults`` (the paper's set-up) and named ``profiles`` that override parts
of it. :func:`load_config` deep-merges the chosen profile over the defaults and builds a
:class:`StudyConfig`; any unknown key, wrong type or out-of-range value raises
:class:`ConfigError` naming the file and the dotted field (``profiles.smoke.train.epochs``).

Modules: :mod:`~cti_repro.config.schema` (the dataclasses), :mod:`~cti_repro.config.load`
(reading, merging, overrides), :mod:`~cti_repro.config.checks` (value checks),
:mod:`~cti_repro.config.xmodal` (the text <-> image study's section).
"""

from cti_repro.config.checks import _validate
from cti_repro.config.load import (
    _ALIASES, OVERRIDES_DIR, _build, _default_path, apply_sets, available_profiles, deep_merge, load_config, move_outputs,
    overrides_folder, parse_overrides,
)
from cti_repro.config.schema import (
    DEFAULT_CONFIG, BM25Config, ConfigError, DataConfig, EncodersConfig, EvalConfig, ExtensionsConfig,
    ImageEncoderConfig, LabelsConfig, LossConfig, ModelConfig, SplitConfig, StudyConfig, SyntheticSource,
    TextEncoderConfig, TrainConfig, XMarketSource, beyond_the_paper,
)
from cti_repro.config.xmodal import XModalConfig

__all__ = ["DEFAULT_CONFIG", "ConfigError", "StudyConfig", "DataConfig", "XMarketSource", "SyntheticSource",
           "SplitConfig", "EncodersConfig", "ImageEncoderConfig", "TextEncoderConfig", "BM25Config", "ModelConfig",
           "LossConfig", "TrainConfig", "EvalConfig", "LabelsConfig", "ExtensionsConfig", "XModalConfig",
           "load_config", "parse_overrides", "apply_sets", "move_outputs", "overrides_folder", "OVERRIDES_DIR", "available_profiles", "deep_merge", "beyond_the_paper",
           "_ALIASES", "_build", "_validate", "_default_path"]
