"""The strict loader and its error format, now :mod:`ldlpose.infra.schema` (below the methods, whose
hyperparameter models are strict models too); re-exported here, where the config modules and saved
state name it."""

from ldlpose.infra.schema import (
    FieldError,
    Strict,
    accepted_keys,
    first_error,
    parse_override,
    set_dotted,
    to_dict,
    translate,
    validate,
)

__all__ = ["FieldError", "Strict", "accepted_keys", "first_error", "parse_override", "set_dotted", "to_dict",
           "translate", "validate"]
