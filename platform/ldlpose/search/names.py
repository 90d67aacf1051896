"""The one public name of every searched value, and reading back the names older searches stored.

A searched value's public name is its run-config key: ``train.optimizer.lr``, and for a method's own
hyperparameter ``method.hparams.<name>``, whichever method declares it. Tune's trial config, the
``ldlpose.assignment`` tag and MLflow's params use it. Optuna may need a method-qualified name
(``method.gldl.alpha``) inside its study, which :mod:`ldlpose.search.optuna_space` alone maps;
searches started before this rule stored that name in Tune's config and the tag as well, so whatever
reads an assignment back runs it through :func:`public_names`.
"""

from __future__ import annotations

__all__ = ["HPARAMS_PREFIX", "hparam_key", "is_method_hparam", "public_names"]

HPARAMS_PREFIX = "method.hparams."


def is_method_hparam(name: str) -> bool:
    """``method.hparams.<name>`` or a method-qualified ``method.<method>.<name>``."""
    return name.startswith("method.") and name.count(".") == 2


def hparam_key(name: str) -> str:
    """A method hyperparameter's one public name: ``method.gldl.alpha`` -> ``method.hparams.alpha``;
    any other name is returned as it is."""
    return HPARAMS_PREFIX + name.split(".")[2] if is_method_hparam(name) else name


def public_names(assignment: dict) -> dict:
    """An assignment under the public names (:func:`hparam_key`): what the searcher hands Tune, and
    what reading back an assignment stored by an older search (Tune's state, the tag) makes of it.
    A trial holds one method's hyperparameters, so no two names fold into one."""
    return {hparam_key(name): value for name, value in assignment.items()}
