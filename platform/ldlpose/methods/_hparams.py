"""The base of every method's hyperparameter model, the helpers that declare its fields, and the
registry of the models (:data:`HPARAMS`). Each method declares its model in its own module, beside
the method, decorated by :func:`method_hparams`; the run config's ``method`` section
(:mod:`ldlpose.config.hparams`) accepts every registered model.

A model is frozen; its fields carry their documentation and validity: :func:`hparam` gives a closed
``range`` (for numbers, lists of numbers) or the ``choices`` (the field's ``Literal`` or ``bool``
type). Validation happens on construction, so an invalid setting can never reach a loss; a search
and the docs read defaults, ranges and choices through :meth:`Hparams.spec`. Nothing here imports
torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator

from ldlpose.errors import unknown
from ldlpose.infra.registry import Registry
from ldlpose.infra.schema import FieldError, Strict, accepted_keys, first_error, validate

__all__ = ["ALPHA_DOC", "CENTER_DOC", "DECODE_DOC", "HPARAMS", "SIGMA_RANGE", "Center", "Decode", "Hparams", "hparam",
           "method_hparams"]

# Shared by the bin methods (HopeNet, GLDL, DADL, Hybrid, WHENet); docs/methods.md#bins.
Decode = Literal["center", "edge"]
DECODE_DOC = "expectation over bin centres (recommended) or left edges (the papers' 3*E[i]-99)"
Center = Literal["continuous", "bin"]
CENTER_DOC = "Gaussian centred on the exact angle in bin units (recommended) or on its bin index (paper)"


def hparam(default: Any, doc: str, *, range: tuple[float, float] | None = None,
           choices: tuple[Any, ...] | None = None) -> Any:
    """A field with its documentation and either a valid closed range or its choices. A list of
    numbers (a tuple default) declares the range on its item type, where it is enforced."""
    assert (range is None) != (choices is None), "give exactly one of range or choices"
    if choices is not None:
        return Field(default, description=doc, json_schema_extra={"choices": list(choices)})
    low, high = range  # type: ignore[misc]
    if isinstance(default, tuple):
        return Field(default, description=doc, json_schema_extra={"range": [low, high]}, strict=False)
    return Field(default, description=doc, ge=low, le=high, json_schema_extra={"range": [low, high]})


class Hparams(Strict):
    """Base of the methods' hyperparameters.

    ``preset: NAME`` (where a method has presets) fills in the preset's values first; explicit
    values override them. Unpacking (``**hparams``, ``dict(hparams)``) gives the values that were
    set explicitly or by a preset, which is what a run config records; :meth:`to_dict` gives all.
    """

    method: ClassVar[str] = "method"  # the registry name, used in messages
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, /, **values: Any) -> None:
        # Built directly (Method(GldlHparams(sigma=2))) or inside a run config, an invalid value is
        # a FieldError: the run config's translation prefixes the key's place (method.hparams).
        try:
            super().__init__(**values)
        except ValidationError as err:
            error = FieldError(*first_error(err, type(self)))
            error.args = (f"{self.method}: {error.args[0]}",)
            raise error from None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and "preset" in data and cls.presets):
            return data
        values = dict(data)
        preset = values.pop("preset")
        if preset not in cls.presets:
            raise FieldError("preset", str(unknown(f"preset of method {cls.method!r}", str(preset), cls.presets)))
        return {**cls.presets[preset], **values}

    @classmethod
    def build(cls, **values: Any) -> Hparams:
        """Hyperparameters from keywords; invalid ones raise ConfigError ``<method>: <key>: <rule>``."""
        return validate(cls, values, file=cls.method)

    @classmethod
    def names(cls) -> list[str]:
        """The keys a config may give: the fields, plus ``preset`` where the method has presets."""
        return accepted_keys(cls)

    @classmethod
    def spec(cls) -> dict[str, dict[str, Any]]:
        """Per field: ``default``, ``doc`` and ``range`` or ``choices``, for searches and docs."""
        spec = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            rule = {k: tuple(v) for k, v in extra.items() if k in ("range", "choices")}  # type: ignore[arg-type]
            spec[name] = {"default": info.default, "doc": info.description, **rule}
        return spec

    def to_dict(self) -> dict[str, Any]:
        """Every value, defaults included."""
        return self.model_dump()

    def keys(self) -> list[str]:
        return [name for name in type(self).model_fields if name in self.model_fields_set]

    def __getitem__(self, name: str) -> Any:
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def given(self) -> dict[str, Any]:
        """The values set explicitly or by a preset, as plain YAML data."""
        return self.model_dump(mode="json", include=set(self.keys()))


HPARAMS: Registry[type[Hparams]] = Registry(
    "method", error=ValueError,
    twice=lambda name, registered, new: f"method {name!r} has two hyperparameter models: "
                                        f"{registered.__qualname__} and {new.__qualname__}")
"""Method name -> its hyperparameter model; the method registry checks each registered method against it."""


H = TypeVar("H", bound=type[Hparams])


def method_hparams(cls: H) -> H:
    """Class decorator: ``cls`` is the hyperparameter model of method ``cls.method``, and with it the
    run config's ``method`` section accepts that name."""
    HPARAMS.add(cls.method, cls)
    return cls



SIGMA_RANGE = (0.1, 20.0)  # Gaussian widths in bins of 3 degrees
ALPHA_DOC = "weight of the degrees^2 MSE on the expected angle"
