"""The run config's ``method`` section: a union of every method's hyperparameter model.

Each method declares its hyperparameter model beside its method (``ldlpose/methods/<name>.py``,
decorated by :func:`~ldlpose.methods._hparams.method_hparams`); the method modules import torch
only when they compute, so importing them here keeps loading a config free of torch.

A run config's ``method: {name: gldl, hparams: {sigma: 2.0}}`` is :data:`MethodConfig`, a union
discriminated on ``name`` (``gldl`` when left out), generated from the registered models: the name
picks the member, and that member's hyperparameter model validates ``hparams``, so a key that
another method accepts is an error naming this method. The models stay reachable here by their
class names (``ldlpose.config.hparams.GldlHparams``), as saved search state names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, create_model

import ldlpose.methods  # noqa: F401 (registers every method and its hyperparameter model)
from ldlpose.infra.schema import Strict
from ldlpose.methods._hparams import HPARAMS, Hparams, hparam, method_hparams

__all__ = ["DEFAULT_METHOD", "HPARAMS", "SECTIONS", "Hparams", "MethodConfig", "MethodSection", "hparam",
           "method_hparams"]

DEFAULT_METHOD = "gldl"

# Saved state and older code name the models here (ldlpose.config.hparams.GldlHparams, ...).
globals().update({model.__name__: model for model in HPARAMS.values()})


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
