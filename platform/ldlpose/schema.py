"""Strict loading of plain dataclasses from YAML-shaped dicts.

Every configuration in ldlpose is a tree of dataclasses loaded by :func:`from_dict`. An unknown key,
a wrong type or a value outside a field's declared bounds is a :class:`ConfigError` naming the file
and the dotted key, e.g. ``run.yaml: train.optimizer.lr: must be > 0, got -0.1``. Bounds live in the
field metadata: ``gt``, ``ge``, ``le``, ``lt``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from ldlpose.errors import ConfigError, closest

__all__ = ["FieldError", "from_dict", "to_dict", "set_dotted", "parse_override"]


class FieldError(ConfigError):
    """Raised by a dataclass's ``__post_init__`` for a key relative to that dataclass."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def _fail(file: str | None, key: str, message: str) -> ConfigError:
    where = f"{file}: " if file else ""
    return ConfigError(f"{where}{key or '<top level>'}: {message}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, key: str, file: str | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is not None and len(options) == 1:  # Optional[X] given a value: X's own message
            return _convert(options[0], value, key, file)
        errors = []
        for option in typing.get_args(tp):
            try:
                return _convert(option, value, key, file)
            except ConfigError as err:
                errors.append(err)
        # A mapping given for an optional dataclass should report its own, more precise error.
        for option, err in zip(typing.get_args(tp), errors):
            if dataclasses.is_dataclass(option) and isinstance(value, dict):
                raise err
        raise _fail(file, key, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = closest(str(value), [str(c) for c in choices])
            raise _fail(file, key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(file, key, f"expected {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(file, key, f"expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, file=file, prefix=key)
    if tp is type(None):
        if value is not None:
            raise _fail(file, key, f"expected null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(file, key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(file, key, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(file, key, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(file, key, f"expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {tp!r} at {key}")


_BOUNDS = {
    "gt": (lambda v, b: v > b, "> {}"),
    "ge": (lambda v, b: v >= b, ">= {}"),
    "lt": (lambda v, b: v < b, "< {}"),
    "le": (lambda v, b: v <= b, "<= {}"),
}


def _check_bounds(field: dataclasses.Field, value: Any, key: str, file: str | None) -> None:
    if value is None or isinstance(value, bool):
        return
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, (int, float)):
            continue
        for name, (ok, text) in _BOUNDS.items():
            if name in field.metadata and not ok(v, field.metadata[name]):
                raise _fail(file, key, f"must be {text.format(field.metadata[name])}, got {v!r}")


def from_dict(cls: type, data: Any, *, file: str | None = None, prefix: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys, wrong types and bad values."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail(file, prefix, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _fail(file, _join(prefix, str(key)),
                        f"unknown key{closest(str(key), fields)}; accepted: {', '.join(fields)}")
    kwargs = {}
    for name, field in fields.items():
        key = _join(prefix, name)
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise _fail(file, key, "is required")
            continue
        value = _convert(hints[name], data[name], key, file)
        _check_bounds(field, value, key, file)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except FieldError as err:  # cross-field checks in __post_init__ name a key relative to cls
        raise _fail(file, _join(prefix, err.key), err.message) from None


def to_dict(obj: Any) -> Any:
    """Plain dicts/lists of a dataclass tree (for YAML, JSON, MLflow)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)``; the value is parsed as YAML."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected dotted.key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({err})") from None


def set_dotted(data: dict, key: str, value: Any, *, create: bool = True) -> None:
    """Set ``data[a][b][c] = value`` for ``key = "a.b.c"``, creating mappings on the way."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None and create:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value
