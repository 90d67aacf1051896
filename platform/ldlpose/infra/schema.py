"""Strict configs: pydantic models behind one loader and one error format.

Every configuration in ldlpose (the run config, the search section, each method's hyperparameters)
is a tree of :class:`Strict` models loaded by :func:`validate`. An unknown key, a wrong type, a value
outside a field's bounds or a failed cross-field check is a :class:`ConfigError` naming the file and
the dotted key, e.g. ``run.yaml: train.optimizer.lr: must be > 0, got -0.1``: pydantic validates,
:func:`translate` turns its first error into that text. Importing this module imports neither torch
nor Ray, so loading a config stays cheap.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Tag, ValidationError, model_validator
from pydantic.fields import FieldInfo

from ldlpose.errors import ConfigError, closest

__all__ = ["FieldError", "Strict", "first_error", "parse_override", "set_dotted", "to_dict", "translate", "validate"]

M = TypeVar("M", bound=BaseModel)


class FieldError(ConfigError):
    """Raised by a model's cross-field check for a key relative to that model."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable, and types are not
    coerced (an integer field refuses 3.5 and "3", a number accepts 3 as 3.0). YAML's empty value
    (``key:``) means the section's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


def validate(model: type[M], data: Any, *, file: str | None = None, prefix: str = "") -> M:
    """``model`` built from ``data``; any invalid input raises one :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise translate(err, model, file=file, prefix=prefix) from None


def to_dict(model: BaseModel) -> Any:
    """Plain dicts and lists of a model tree (for YAML, JSON, MLflow)."""
    return model.model_dump(mode="json")


# --- pydantic's errors in ldlpose's words -----------------------------------------------------

def translate(err: ValidationError, model: type[BaseModel], *, file: str | None = None,
              prefix: str = "") -> ConfigError:
    """The :class:`ConfigError` for the first of ``err``'s errors (an unknown key first, as it is
    the likeliest cause of the others): ``file: dotted.key: rule, got value``."""
    key, message = first_error(err, model)
    key = _join(prefix, key)
    where = f"{file}: " if file else ""
    return ConfigError(f"{where}{key or '<top level>'}: {message}")


def first_error(err: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, rule) of the error to report: an unknown key first, else the first one."""
    errors = err.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    return _message(error, _locate(model, error["loc"]))


class _Place(typing.NamedTuple):
    key: str  # dotted, with [i] for list items
    owner: Any  # the model class holding the last key
    field: FieldInfo | None  # that key's field (None for an unknown key)
    annotation: Any  # the type expected at the location
    container: Any  # the type holding it (a list or tuple for an item)


def _locate(model: type[BaseModel], loc: tuple[int | str, ...]) -> _Place:
    """Walk pydantic's error location through the model's types. Union members that pydantic names
    in the location (a method's name, a tag) are not keys of the YAML and are skipped."""
    tp: Any = model
    key, owner, field, container = "", model, None, None
    for item in loc:
        tp = container = _strip(tp)
        if isinstance(item, int):
            key += f"[{item}]"
            tp = _item_type(tp, item)
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            owner, field = tp, tp.model_fields.get(item)
            key = _join(key, item)
            tp = field.annotation if field is not None else None
        elif _is_union(tp) and (member := _tagged(tp, item)) is not None:
            tp = member
        else:
            key = _join(key, str(item))
            tp = typing.get_args(tp)[-1] if typing.get_origin(tp) is dict else None
    return _Place(key, owner, field, _strip(tp), container)


def _strip(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> X and ``X | None`` -> X."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_union(tp) and type(None) in typing.get_args(tp):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _tagged(tp: Any, tag: str) -> Any:
    for member in typing.get_args(tp):
        tags = typing.get_args(member)[1:] if typing.get_origin(member) is typing.Annotated else ()
        if any(isinstance(m, Tag) and m.tag == tag for m in tags):
            return member
    return None


def _item_type(tp: Any, index: int) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        return args[index] if index < len(args) else None
    return args[0] if args else None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else prefix or key


def _message(error: Any, place: _Place) -> tuple[str, str]:
    """(dotted key, rule) for one pydantic error at ``place``."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    got = f", got {value!r}"
    if kind == "extra_forbidden":
        return place.key, _unknown_key(place)
    if kind == "missing" and place.key.endswith("]"):  # a fixed-length list is too short
        return place.key.rsplit("[", 1)[0], f"expected {_type_name(place.container)}"
    if kind == "missing":
        return place.key, "is required"
    if kind == "value_error" and isinstance(ctx.get("error"), FieldError):
        cause = ctx["error"]
        return _join(place.key, cause.key), cause.message
    if kind == "union_tag_invalid":
        return _bad_tag(place, ctx)
    if kind == "literal_error":
        choices = typing.get_args(place.annotation) or (ctx.get("expected"),)
        hint = closest(str(value), [str(c) for c in choices])
        return place.key, f"must be one of {', '.join(map(repr, choices))}{got}{hint}"
    if kind in _BOUNDS:
        return place.key, _bound(place, kind, ctx) + got
    if kind in _EXPECTED:
        return place.key, f"expected {_EXPECTED[kind]}{got}"
    if kind in ("list_type", "tuple_type", "too_short", "too_long"):
        return place.key, f"expected {_type_name(place.annotation)}{got}"
    cause = ctx.get("error")
    return place.key, (str(cause) if cause is not None else error["msg"]) + got


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
           "less_than_equal": ("le", "<=")}


def _bound(place: _Place, kind: str, ctx: dict) -> str:
    extra = place.field.json_schema_extra if place.field is not None else None
    if isinstance(extra, dict) and "range" in extra:  # a hyperparameter: its closed range and what it means
        low, high = typing.cast(list, extra["range"])
        return f"must be in [{low}, {high}] ({place.field.description})"  # type: ignore[union-attr]
    name, sign = _BOUNDS[kind]
    bound = ctx[name]
    if isinstance(bound, float) and bound.is_integer():
        bound = int(bound)
    return f"must be {sign} {bound}"


def _unknown_key(place: _Place) -> str:
    name = place.key.rsplit(".", 1)[-1]
    accepted = accepted_keys(place.owner)
    method = getattr(place.owner, "method", None)
    what = f"unknown hyperparameter {name!r} of method {method!r}" if isinstance(method, str) else "unknown key"
    return f"{what}{closest(name, accepted)}; accepted: {', '.join(accepted) or 'none'}"


def accepted_keys(model: Any) -> list[str]:
    """The keys a model accepts in YAML: its fields, plus ``preset`` where it has presets."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return list(model.model_fields) + (["preset"] if getattr(model, "presets", None) else [])


def _bad_tag(place: _Place, ctx: dict) -> tuple[str, str]:
    tag, expected = str(ctx.get("tag")), ctx.get("expected_tags", "")
    tags = [t.strip().strip("'") for t in str(expected).split(",")]
    if place.key.rsplit(".", 1)[-1] == "method":  # the method union is tagged by method.name
        return (_join(place.key, "name"),
                f"unknown method {tag!r}{closest(tag, tags)}; accepted: {', '.join(sorted(tags))}")
    return place.key, f"must be one of {expected}, got {tag!r}{closest(tag, tags)}"


def _type_name(tp: Any) -> str:
    tp = _strip(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in args)
    if origin is list or (origin is tuple and args[-1:] == (Ellipsis,)):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is tuple:
        return f"a list of {len(args)} {_plural(args[0])}"
    if (isinstance(tp, type) and issubclass(tp, BaseModel)) or origin is dict:
        return "a mapping"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _plural(tp: Any) -> str:
    tp = _strip(tp)
    return {float: "numbers", int: "integers", str: "strings", bool: "booleans"}.get(tp, "values")


# --- YAML and --set ---------------------------------------------------------------------------

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
