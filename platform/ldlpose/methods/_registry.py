"""The method registry: a decorator fills it, ``create`` builds a configured method from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldlpose._lazy import LazyModule
from ldlpose.errors import ConfigError
from ldlpose.infra.registry import Registry
from ldlpose.methods._base import Method
from ldlpose.methods._hparams import HPARAMS, Hparams

if TYPE_CHECKING:
    import torch
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")

_METHODS: Registry[type[Method]] = Registry(
    "method", error=ValueError,
    twice=lambda name, registered, new: (
        f"method name {name!r} is registered twice: by {registered.__module__}.{registered.__qualname__} "
        f"and by {new.__module__}.{new.__qualname__}; rename one of them"))


def register(name: str):
    """Class decorator registering a :class:`Method` under ``name``; a duplicate name raises."""

    def decorate(cls: type[Method]) -> type[Method]:
        if name in _METHODS:
            _METHODS.add(name, cls)  # raises, naming both
        if name not in HPARAMS or HPARAMS.get(name) is not cls.Hparams:
            raise ValueError(f"method {name!r}: its Hparams must be ldlpose.methods._hparams.HPARAMS[{name!r}] "
                             f"(the model a run config validates), got {cls.Hparams.__name__}")
        cls.name = name
        return _METHODS.add(name, cls)

    return decorate


def available() -> list[str]:
    """Names of the registered methods, sorted."""
    return _METHODS.names()


def method_class(name: str) -> type[Method]:
    return _METHODS.get(name)


def hparams_class(name: str) -> type[Hparams]:
    """The frozen model of a method's hyperparameters (defaults, docs and ranges in its fields)."""
    return method_class(name).Hparams


def hparams_names(name: str) -> list[str]:
    """The keywords :func:`create` accepts for a method (its fields, plus ``preset`` where it has presets)."""
    return hparams_class(name).names()


def create(name: str, **hparams: Any) -> Method:
    """The method ``name`` configured with ``hparams``; unknown names or invalid values raise ConfigError."""
    cls = method_class(name)
    return cls(cls.Hparams.build(**hparams))


def expectation_bias(name: str, angles_deg: Any, **hparams: Any) -> torch.Tensor:
    """E[target] - angle in degrees, (N, 3), for a method with label distributions (docs/methods.md#gaussian-labels).

    The expectation is decoded exactly as the method decodes its outputs, so this is the error a
    network that fits its targets perfectly would make.
    """
    method = create(name, **hparams)
    if not method.has_distributions:
        with_distributions = [n for n in available() if _METHODS.get(n).has_distributions]
        raise ConfigError(
            f"method {name!r} regresses the pose directly and has no label distribution, so it has no "
            f"expectation bias; methods with distributions: {', '.join(with_distributions)}"
        )
    angles = torch.as_tensor(angles_deg, dtype=torch.float64)
    if angles.ndim != 2 or angles.shape[1] != 3:
        raise ValueError(f"angles_deg must have shape (N, 3) [yaw, pitch, roll], got {tuple(angles.shape)}")
    return method.decode_distributions(method.reference_targets(angles)) - angles
