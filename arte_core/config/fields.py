"""Config fields that declare their help and constraints once, and the generic machinery over them:
coercing parsed YAML into a dataclass, checking every field against its rule, and describing every
field (`arte config --help-fields`). Nothing here knows the run's sections; `run.py` declares them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from arte_core.errors import ArteError


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Constraint:
    """What a field allows. On a list field the bounds and choices apply to each item."""

    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    check: Callable[[Any], str | None] | None = None  # returns what is allowed when it refuses a value
    check_text: str = ""  # the custom check's rule, for --help-fields
    non_empty: bool = False  # a list or text must not be empty

    def describe(self) -> str:
        """The rule in words: 'at least 1', 'greater than 0 and less than 1', 'one of a, b'."""
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.minimum is not None:
            parts.append(f"{'greater than' if self.exclusive_minimum else 'at least'} {_number(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"{'less than' if self.exclusive_maximum else 'at most'} {_number(self.maximum)}")
        if self.check_text:
            parts.append(self.check_text)
        return " and ".join(parts)

    def problem(self, value: Any) -> str | None:
        """Why one value (one item of a list field) is refused, or None."""
        if self.choices is not None and value not in self.choices:
            return "choose one of " + ", ".join(str(c) for c in self.choices)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return "it must be a finite number"
            below = self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum)
            above = self.maximum is not None and (value >= self.maximum if self.exclusive_maximum else value > self.maximum)
            if below or above:
                return "it must be " + self.describe()
        if self.check is not None:
            return self.check(value)
        return None


def option(default: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None,
           maximum: float | None = None, exclusive_minimum: bool = False, exclusive_maximum: bool = False,
           check: Callable[[Any], str | None] | None = None, check_text: str = "", non_empty: bool = False) -> Any:
    """A dataclass field with its help text and constraints (shown by `arte config --help-fields` and
    the studio forms, applied by `validate`). On a list field, bounds and choices apply to each item."""
    rule = Constraint(choices, minimum, maximum, exclusive_minimum, exclusive_maximum, check, check_text, non_empty)
    metadata = {"help": help, "constraint": rule}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str) -> Any:
    return field(default_factory=cls, metadata={"help": help})


def coerce_value(path: str, value: Any, annotation: Any) -> Any:
    """Coerce a YAML value to a field's type, or say which field is wrong."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = args[0]
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ArteError(f"config field '{path}' must be a list, got {value!r}.")
        (item_type,) = typing.get_args(hint)
        return [coerce_value(f"{path}[{i}]", v, item_type) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ArteError(f"config field '{path}' must be true or false, got {value!r}.")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-7 as a string
        except ValueError:
            pass
    wrong_type = hint in (int, str, float) and not isinstance(value, hint)
    if wrong_type or isinstance(value, bool):  # YAML's true/false must not pass as a number or text
        raise ArteError(f"config field '{path}' must be of type {hint.__name__}, got {value!r}.")
    return value


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ArteError(f"config section '{prefix or 'top level'}' must be a mapping, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=repr)  # YAML keys may be numbers or null as well as text
    if unknown:
        where = f" in section '{prefix}'" if prefix else ""
        raise ArteError(
            f"unknown config field{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}{where}; "
            f"known fields: {', '.join(sorted(names))}."
        )
    kwargs = {k: coerce_value(f"{prefix}.{k}" if prefix else k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


@dataclass(frozen=True)
class FieldSpec:
    """One leaf field of a config: its dotted path, type, default, constraint and help."""

    path: str
    type: Any
    default: Any
    constraint: Constraint
    help: str

    @property
    def type_name(self) -> str:
        return _type_name(self.type)

    @property
    def is_number(self) -> bool:
        """int or float (a list of them counts: its items are bounded)."""
        hint = self.type
        if typing.get_origin(hint) is list:
            (hint,) = typing.get_args(hint)
        return hint in (int, float)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_type_name(args[0])} or empty"
    if origin is list:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def field_specs(cls: type, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field, in declaration order."""
    out: list[FieldSpec] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out.extend(field_specs(hint, f"{prefix}{f.name}."))
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out.append(FieldSpec(f"{prefix}{f.name}", hint, default, f.metadata.get("constraint", Constraint()),
                             f.metadata.get("help", "")))
    return out


def get_field(config: Any, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_spec(spec: FieldSpec, value: Any) -> None:
    rule = spec.constraint
    if value is None:
        return
    if isinstance(value, list):
        if rule.non_empty and not value:
            raise ArteError(f"config field '{spec.path}' is empty; give at least one item"
                            + (f" ({rule.describe()})." if rule.describe() else "."))
        item_rule = dataclasses.replace(rule, check=None, check_text="")
        for item in value:
            problem = item_rule.problem(item)
            if problem:
                raise ArteError(f"config field '{spec.path}' has {_shown(item)}; for each item {problem}.")
        problem = rule.check(value) if rule.check else None
        if problem:
            raise ArteError(f"config field '{spec.path}' is {value}; {problem}.")
        return
    problem = rule.problem(value)
    if problem:
        raise ArteError(f"config field '{spec.path}' is {_shown(value)}; {problem}.")


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass (a whole config, or one section whose fields are named
    `prefix` + name) against its type and its declared constraint. Raises ArteError naming the field,
    its value and what is allowed."""
    for spec in field_specs(type(obj), prefix):
        value = get_field(obj, spec.path.removeprefix(prefix))
        coerce_value(spec.path, value, spec.type)  # a value set in code must still have the field's type
        check_spec(spec, value)


def help_text(cls: type) -> str:
    """Every field of `cls` with its type, default, constraint and help, grouped by section."""
    lines = []
    section = None
    for spec in field_specs(cls):
        head = spec.path.split(".")[0] if "." in spec.path else ""
        if head != section:
            section = head
            lines.append(f"\n[{head}]" if head else "[top level]")
        default = "empty" if spec.default is None else json.dumps(spec.default)
        allowed = spec.constraint.describe()
        lines.append(f"  {spec.path}  ({spec.type_name}; default {default}"
                     + (f"; {'each item ' if typing.get_origin(spec.type) is list else ''}{allowed}" if allowed else "")
                     + ")")
        lines.append(f"      {spec.help}")
    return "\n".join(lines).lstrip("\n")
