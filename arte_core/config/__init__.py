"""Run configuration: one dataclass per stage (`run.py`), every field declaring its help and its
constraints once (`fields.py`), and loading from YAML, the command line and the studio's form.

`validate` applies every field's constraints (choices, bounds, a custom check) to YAML files,
command-line overrides and the studio's form alike; `arte config --help-fields` lists every field
with its type, default, constraints and help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from arte_core.config.fields import (Constraint, FieldSpec, check_fields, check_spec, field_specs, from_dict,
                                     get_field, help_text)
from arte_core.config.run import (BACKENDS, DTYPES, ENGINES, INFLUENCE_DEVICES, INFLUENCE_MODES,
                                  INFLUENCE_OPTIMIZERS, LR_SCHEDULERS, OPTIMIZERS, PAIR_NEUTRALS, PAIR_SIGNALS,
                                  PAIR_STYLES, PROMPT_FORMATS, SEED_MAX, TECHNIQUES, AlignConfig, DistillConfig,
                                  ElicitConfig, EvalConfig, InfluenceConfig, PairConfig, RegenerateConfig, RunConfig,
                                  ScoreConfig)
from arte_core.errors import ArteError


# Fields that moved between sections: old YAML files still load, into the new place.
MOVED_FIELDS = {
    "distill.n_examples": "regenerate.n_examples",
    "distill.question_temperature": "regenerate.question_temperature",
    "distill.rationale_temperature": "regenerate.rationale_temperature",
}


def upgrade_dict(data: dict) -> dict:
    """An old config mapping in today's layout (fields in MOVED_FIELDS go to their new section)."""
    if not isinstance(data, dict):
        return data
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED_FIELDS.items():
        old_section, name = old.split(".")
        new_section, new_name = new.split(".")
        source = data.get(old_section)
        if not isinstance(source, dict) or name not in source:
            continue
        value = source.pop(name)
        target = data.setdefault(new_section, {})
        if not isinstance(target, dict):
            continue  # from_dict names the malformed section
        if new_name in target and target[new_name] != value:
            raise ArteError(f"config fields '{old}' (its old place) and '{new}' disagree ({value!r} vs "
                            f"{target[new_name]!r}); keep only '{new}'.")
        target[new_name] = value
    return data


def config_from_dict(data: dict) -> RunConfig:
    """A validated RunConfig from a mapping (parsed YAML, the studio's form, command-line values);
    old layouts are upgraded first. Raises ArteError naming the field, its value and what is allowed."""
    config = from_dict(RunConfig, upgrade_dict(data or {}))
    validate(config)
    return config


def config_from_yaml(text: str, source: str = "config") -> RunConfig:
    """A validated RunConfig from YAML text (the studio's Runs form); errors name `source`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ArteError(f"{source} is not valid YAML: {exc}") from None
    try:
        return config_from_dict(data or {})
    except ArteError as exc:
        raise ArteError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML, naming the file and field on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ArteError(f"config file {path} does not exist.")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM from a Windows editor is still UTF-8
    except UnicodeDecodeError as exc:
        raise ArteError(f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); re-save it "
                        "as UTF-8 (in most editors: Save As, encoding UTF-8).") from None
    except OSError as exc:
        raise ArteError(f"cannot read the config file {path}: {exc.strerror or exc}.") from None
    return config_from_yaml(text, str(path))


def demo_config_path() -> Path:
    """The demo config, shipped at the top of the repository (`assets/configs/demo.yaml`)."""
    return Path(__file__).resolve().parents[2] / "assets" / "configs" / "demo.yaml"


def _spec(path: str) -> FieldSpec:
    for spec in field_specs(RunConfig):
        if spec.path == path:
            return spec
    raise KeyError(path)


def field_choices(path: str) -> tuple:
    """The allowed values of a choice field, e.g. `field_choices("pairs.signal")`."""
    choices = _spec(path).constraint.choices
    if choices is None:
        raise KeyError(f"{path} has no choices")
    return choices


def check_field(path: str, value: Any) -> None:
    """Refuse a value of one field (already of the field's type) that breaks its constraint."""
    spec = _spec(path)
    check_spec(spec, value)


def check_section(name: str, section: Any) -> None:
    """Check the fields of one section object (e.g. an InfluenceConfig built in code) like `validate`."""
    check_fields(section, f"{name}.")


def validate(config: RunConfig) -> None:
    """Check every field of every section against its type and its declared constraint. Raises
    ArteError naming the field, its value and what is allowed. No rule ties two fields together today:
    a batch smaller than its per-device batch trains at the smaller of the two (training.common_args)."""
    if not isinstance(config, RunConfig):
        raise ArteError(f"expected a RunConfig, got {type(config).__name__}.")
    check_fields(config)


def help_fields_text() -> str:
    """Every field with its type, default, constraint and help (`arte config --help-fields`)."""
    return help_text(RunConfig)


def field_help(cls: type = RunConfig, prefix: str = "") -> dict[str, str]:
    """Flattened `section.field -> help` for forms and `--help` output."""
    return {spec.path: spec.help for spec in field_specs(cls, prefix)}


__all__ = [
    "AlignConfig", "BACKENDS", "Constraint", "DTYPES", "DistillConfig", "ENGINES", "ElicitConfig", "EvalConfig",
    "FieldSpec", "INFLUENCE_DEVICES", "INFLUENCE_MODES", "INFLUENCE_OPTIMIZERS", "InfluenceConfig", "LR_SCHEDULERS",
    "MOVED_FIELDS", "OPTIMIZERS", "PAIR_NEUTRALS", "PAIR_SIGNALS", "PAIR_STYLES", "PROMPT_FORMATS", "PairConfig",
    "RegenerateConfig", "RunConfig", "SEED_MAX", "ScoreConfig", "TECHNIQUES", "check_field", "check_section",
    "config_from_dict", "config_from_yaml", "demo_config_path", "field_choices", "field_help", "field_specs",
    "get_field", "help_fields_text", "load_config", "upgrade_dict", "validate",
]
