"""Strict, self-describing hyperparameter dataclasses shared by every method.

Each method declares a frozen dataclass whose fields carry their documentation and validity in
``metadata``: ``{"doc": ..., "range": (lo, hi)}`` (closed interval) or ``{"doc": ..., "choices":
(...)}``. Construction validates every value, so an invalid setting can never reach a loss; a
search reads defaults and ranges through :meth:`Hparams.spec`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ldlpose.errors import ConfigError, closest, unknown


def hparam(default: Any, doc: str, *, range: tuple | None = None, choices: tuple | None = None):
    """A dataclass field with its documentation and either a valid closed range or its choices."""
    assert (range is None) != (choices is None), "give exactly one of range or choices"
    meta = {"doc": doc, "range": range} if range is not None else {"doc": doc, "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Hparams:
    """Base of the methods' hyperparameters: validates on construction, builds from keywords."""

    method: ClassVar[str] = "method"  # set by the registry, used in messages
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(self.method, f, getattr(self, f.name)))

    @classmethod
    def build(cls, **values: Any) -> Hparams:
        """Hyperparameters from keywords; ``preset=NAME`` (where a method has presets) fills in the
        preset's values first and explicit keywords override them."""
        accepted = [f.name for f in dataclasses.fields(cls)] + (["preset"] if cls.presets else [])
        for key in values:
            if key not in accepted:
                raise unknown(f"hyperparameter of method {cls.method!r}", key, accepted)
        preset = values.pop("preset", None)
        base: Mapping[str, Any] = {}
        if preset is not None:
            if preset not in cls.presets:
                raise unknown(f"preset of method {cls.method!r}", str(preset), cls.presets)
            base = cls.presets[preset]
        return cls(**{**base, **values})

    @classmethod
    def spec(cls) -> dict[str, dict[str, Any]]:
        """Per field: ``default``, ``doc`` and ``range`` or ``choices``, for searches and docs."""
        return {f.name: {"default": f.default, **f.metadata} for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _checked(method: str, f: dataclasses.Field, value: Any) -> Any:
    where = f"{method}: {f.name}"
    meta, default = f.metadata, f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if "choices" in meta:
        if value not in meta["choices"]:
            hint = closest(value, [c for c in meta["choices"] if isinstance(c, str)]) if isinstance(value, str) else ""
            raise ConfigError(f"{where} must be one of {list(meta['choices'])}, got {value!r}{hint}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ConfigError(f"{where} must be a list of {len(default)} numbers, got {value!r}")
        return tuple(_number(f"{where}[{i}]", meta, v, float) for i, v in enumerate(value))
    return _number(where, meta, value, type(default))


def _number(where: str, meta: Mapping[str, Any], value: Any, kind: type) -> int | float:
    allowed = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ConfigError(f"{where} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    lo, hi = meta["range"]
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{where} = {value!r} is outside its valid range [{lo}, {hi}] ({meta['doc']})")
    return kind(value)
