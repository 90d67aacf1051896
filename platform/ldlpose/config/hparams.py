"""Every method's hyperparameters, and the run config's ``method`` section as a union of them.

Each method declares a frozen :class:`Hparams` model, registered by :func:`method_hparams`, whose
fields carry their documentation and validity: :func:`hparam` gives a closed ``range`` (for
numbers, lists of numbers) or the ``choices`` (the field's ``Literal`` or ``bool`` type).
Validation happens on construction, so an invalid setting can never reach a loss; a search and the
docs read defaults, ranges and choices through :meth:`Hparams.spec`. The method modules
(:mod:`ldlpose.methods`, which import torch) take their model from here, so that loading a config
or a search space imports neither torch nor Ray.

A run config's ``method: {name: gldl, hparams: {sigma: 2.0}}`` is :data:`MethodConfig`, a union
discriminated on ``name`` (``gldl`` when left out), generated from the registered models: the name
picks the member, and that member's hyperparameter model validates ``hparams``, so a key that
another method accepts is an error naming this method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import Discriminator, Field, Tag, ValidationError, create_model, model_validator

from ldlpose.config.schema import FieldError, Strict, accepted_keys, first_error, validate
from ldlpose.errors import unknown
from ldlpose.infra.registry import Registry

__all__ = ["DEFAULT_METHOD", "HPARAMS", "SECTIONS", "Hparams", "MethodConfig", "MethodSection", "hparam",
           "method_hparams"]

DEFAULT_METHOD = "gldl"

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


# --- the methods' hyperparameters (docs/methods.md says what each means) -----------------------

_SIGMA_RANGE = (0.1, 20.0)
_ALPHA_DOC = "weight of the degrees^2 MSE on the expected angle"


@method_hparams
class AsgHparams(Hparams):
    method = "asg"
    num_points: int = hparam(600, "Fibonacci sphere points per distribution", range=(20, 2000))
    soft_weight: float = hparam(5.0, "weight of KL(target || prediction) (released run: 5)", range=(0.0, 100.0))
    shape_weight: float = hparam(0.0, "weight of the bandwidth regulariser 1/lambda^2 + 1/mu^2", range=(0.0, 100.0))
    ortho_weight: float = hparam(0.0, "weight of the predicted vectors' orthogonality penalty", range=(0.0, 100.0))
    target: Literal["normalized", "softmax", "tempered"] = hparam(
        "normalized", "a / sum a, softmax(a) as the reference, or softmax(temperature * a)",
        choices=("normalized", "softmax", "tempered"),
    )
    temperature: float = hparam(10.0, "multiplier of a in the 'tempered' target", range=(0.1, 1000.0))
    positive_bandwidth: bool = hparam(True, "bandwidths = softplus(raw) + 1e-3 (false: raw, as the reference)",
                                      choices=(True, False))


@method_hparams
class DadlHparams(Hparams):
    method = "dadl"
    # The paper tunes one setting per test set (ldlpose.methods.dadl); aflw2000 is the defaults.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "aflw2000": {"sigma_yaw": 1.0, "sigma_pitch": 2.0, "sigma_roll": 0.5, "alpha": 3.0, "beta": 3.0},
        "biwi": {"sigma_yaw": 0.35, "sigma_pitch": 0.6, "sigma_roll": 0.3, "alpha": 1.0, "beta": 2.0},
    }

    sigma_yaw: float = hparam(1.0, "yaw Gaussian width in bins of 3 degrees", range=_SIGMA_RANGE)
    sigma_pitch: float = hparam(2.0, "pitch Gaussian width in bins of 3 degrees", range=_SIGMA_RANGE)
    sigma_roll: float = hparam(0.5, "roll Gaussian width in bins of 3 degrees", range=_SIGMA_RANGE)
    alpha: float = hparam(3.0, _ALPHA_DOC, range=(0.0, 10.0))
    beta: float = hparam(3.0, "weight of KL(soft label || prediction)", range=(0.0, 10.0))
    center: Center = hparam("continuous", CENTER_DOC, choices=("continuous", "bin"))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


@method_hparams
class GldlHparams(Hparams):
    method = "gldl"
    sigma: float = hparam(4.0, "Gaussian width in bins of 3 degrees (paper: 4)", range=_SIGMA_RANGE)
    alpha: float = hparam(0.01, _ALPHA_DOC, range=(0.0, 10.0))
    target: Literal["normalized", "literal"] = hparam(
        "normalized", "Gaussian over the bins divided by its sum, or eq. 1 as printed",
        choices=("normalized", "literal"),
    )
    center: Center = hparam("continuous", CENTER_DOC, choices=("continuous", "bin"))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


@method_hparams
class HopenetHparams(Hparams):
    method = "hopenet"
    # alpha = 1 is HopeNet's released model best on BIWI (alpha = 2 best on AFLW2000; code default 0.001).
    alpha: float = hparam(1.0, _ALPHA_DOC, range=(0.0, 10.0))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


AuxWeight = Annotated[float, Field(ge=0.0, le=100.0)]


@method_hparams
class HybridHparams(Hparams):
    method = "hybrid"
    alpha: float = hparam(2.0, "weight of the degrees^2 MSE on the fine-bin expectation", range=(0.0, 10.0))
    aux_weights: tuple[AuxWeight, AuxWeight, AuxWeight, AuxWeight, AuxWeight] = hparam(
        (7.0, 5.0, 3.0, 1.0, 1.0), "CE weights of the 198, 66, 18, 6 and 2-bin heads", range=(0.0, 100.0)
    )
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))
    roll_bug: bool = hparam(False, "roll's 2-bin CE is pitch's, as in the released code (faithful only)",
                            choices=(False, True))


@method_hparams
class RankposeHparams(Hparams):
    method = "rankpose"
    rank_weight: float = hparam(1.0, "weight of the margin ranking loss", range=(0.0, 10.0))
    margin: float = hparam(0.0, "ranking margin in degrees", range=(0.0, 30.0))
    signed: bool = hparam(True, "rank signed predictions (true) or absolute ones as the reference",
                          choices=(True, False))
    mse_reduction: Literal["sum", "released"] = hparam(
        "sum", "MSE summed over yaw/pitch/roll, or 'released': two per-image nn.MSELoss() means added (2/3 of the sum)",
        choices=("sum", "released"))


@method_hparams
class SixdrepnetHparams(Hparams):
    """None: the paper's lr, batch and epochs belong to training."""

    method = "sixdrepnet"


@method_hparams
class WhenetHparams(Hparams):
    method = "whenet"
    alpha: float = hparam(1.0, "weight of the (wrapped for yaw) degrees^2 squared error", range=(0.0, 10.0))
    yaw_decode: Literal["circular", "linear"] = hparam(
        "circular", "yaw as the circular mean of bin centres, or linear expectation", choices=("circular", "linear")
    )
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


# --- the run config's method section, one member per registered method -----------------------

class MethodSection(Strict):
    """``method: {name: ..., hparams: {...}}``; each method's member narrows both (:func:`_section`)."""

    name: str
    hparams: Hparams


def _section(hparams: type[Hparams]) -> type[MethodSection]:
    """The member of :data:`MethodConfig` for one method, named as before it was generated
    (``GldlMethod``, ...) and bound in this module, so that a search's pickled state still finds it."""
    name = hparams.method
    tag: Any = Literal[name]
    section = create_model(f"{name.capitalize()}Method", __base__=MethodSection, __module__=__name__,
                           name=(tag, name), hparams=(hparams, Field(default_factory=hparams)))
    globals()[section.__name__] = section
    return section


SECTIONS: dict[str, type[MethodSection]] = {name: _section(HPARAMS.get(name)) for name in HPARAMS.names()}
"""Method name -> its run-config section model."""


def _method_name(value: Any) -> str:
    """The union's tag: ``name`` of a mapping (the default method when left out) or of a member."""
    name = value.get("name", DEFAULT_METHOD) if isinstance(value, dict) else getattr(value, "name", DEFAULT_METHOD)
    return str(name)


if TYPE_CHECKING:
    MethodConfig = MethodSection
else:  # a union discriminated on ``name``: a key that another method accepts is an error naming this one
    MethodConfig = Annotated[Union[tuple(Annotated[SECTIONS[n], Tag(n)] for n in SECTIONS)],  # noqa: UP007
                             Discriminator(_method_name)]


def default_method() -> MethodSection:
    """The method section when a config leaves it out."""
    return SECTIONS[DEFAULT_METHOD].model_validate({})
